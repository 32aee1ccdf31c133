//! The canonical serialization of an audit record, version 1, from which its leaf hash is
//! computed. An independent verifier needs only this description and SHA-256:
//!
//! ```text
//! record   = version:u8 (0x01) seq:u64 time:i64 field{10}
//! field    = 0x00                      ; absent (only project and region may be)
//!          | 0x01 len:u32 bytes[len]   ; present: UTF-8, len in bytes
//! fields, in order: actor, action, resource, project, region, decision, policy_hash,
//!                   request_id, outcome, details
//! leaf hash = SHA-256(0x00 || record)  ; RFC 6962 leaf
//! ```
//!
//! Integers are big-endian; `time` is microseconds since the Unix epoch (UTC); `details` is
//! the exact JSON text the log stores and exports (compact, keys sorted), never re-encoded.

use crate::merkle::{Hash, leaf_hash};

/// The version byte of the serialization this crate writes.
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// The fields of one audit record, as stored and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFields<'a> {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Microseconds since the Unix epoch, UTC.
    pub time_micros: i64,
    /// Who asked.
    pub actor: &'a str,
    /// The dotted action name.
    pub action: &'a str,
    /// `<type>:<id>`.
    pub resource: &'a str,
    /// The project, if any.
    pub project: Option<&'a str>,
    /// The region, if any.
    pub region: Option<&'a str>,
    /// `allow`, `deny` or `not_evaluated`.
    pub decision: &'a str,
    /// Hex SHA-256 of the policy set.
    pub policy_hash: &'a str,
    /// The request id.
    pub request_id: &'a str,
    /// `success`, `denied`, `rejected` or `error`.
    pub outcome: &'a str,
    /// The details, as stored JSON text.
    pub details: &'a str,
}

impl RecordFields<'_> {
    /// The canonical bytes (version 1).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_canonical(&mut out);
        out
    }

    /// Writes the canonical bytes into `out`, replacing what it held.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        let texts = [
            Some(self.actor),
            Some(self.action),
            Some(self.resource),
            self.project,
            self.region,
            Some(self.decision),
            Some(self.policy_hash),
            Some(self.request_id),
            Some(self.outcome),
            Some(self.details),
        ];
        let len = 17 + texts.iter().map(|t| 5 + t.map_or(0, str::len)).sum::<usize>();
        out.clear();
        out.reserve(len);
        out.push(RECORD_FORMAT_VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time_micros.to_be_bytes());
        for t in texts {
            match t {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    // A field longer than 4 GiB cannot be stored; saturating keeps this total.
                    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    /// The record's Merkle leaf hash: SHA-256(0x00 || canonical bytes).
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordFields<'static> {
        RecordFields {
            seq: 7,
            time_micros: 1_700_000_000_000_000,
            actor: "alice",
            action: "dataset.read",
            resource: "dataset:x",
            project: Some("fraud"),
            region: None,
            decision: "allow",
            policy_hash: "ab",
            request_id: "r",
            outcome: "success",
            details: "{}",
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let b = sample().canonical_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(&b[1..9], &7u64.to_be_bytes());
        assert_eq!(&b[9..17], &1_700_000_000_000_000i64.to_be_bytes());
        assert_eq!(&b[17..22], &[1, 0, 0, 0, 5]);
        assert_eq!(&b[22..27], b"alice");
        // project present, region absent.
        let region_at = 27 + 5 + 12 + 5 + 9 + 5 + 5;
        assert_eq!(b[region_at], 0);
        assert_eq!(b.len(), 17 + 10 + 4 * 9 + 5 + 12 + 9 + 5 + 5 + 2 + 1 + 7 + 2);
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = sample();
        let h = base.leaf_hash();
        let variants = [
            RecordFields { seq: 8, ..base },
            RecordFields { time_micros: 1, ..base },
            RecordFields { actor: "alicf", ..base },
            RecordFields { action: "dataset.reae", ..base },
            RecordFields { resource: "dataset:y", ..base },
            RecordFields { project: None, ..base },
            RecordFields { region: Some(""), ..base },
            RecordFields { decision: "deny", ..base },
            RecordFields { policy_hash: "ac", ..base },
            RecordFields { request_id: "s", ..base },
            RecordFields { outcome: "error", ..base },
            RecordFields { details: "{ }", ..base },
            // Moving bytes between adjacent fields is not a collision.
            RecordFields { actor: "alic", action: "edataset.read", ..base },
        ];
        for v in variants {
            assert_ne!(v.leaf_hash(), h, "{v:?}");
        }
    }
}
