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

/// Why bytes are not a canonical record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordDecodeError {
    /// The version byte is not one this crate reads.
    #[error("unknown record format version {0} (this verifier reads version 1)")]
    Version(u8),
    /// The bytes end before the record does.
    #[error("the record ends inside its {0}")]
    Short(&'static str),
    /// A field's presence byte is neither 0x00 nor 0x01, or a required field is absent.
    #[error("`{0}` has a bad presence byte or is absent though required")]
    Presence(&'static str),
    /// A field is not UTF-8.
    #[error("`{0}` is not UTF-8")]
    Utf8(&'static str),
    /// Bytes follow the last field.
    #[error("{0} bytes follow the last field")]
    Trailing(usize),
}

/// The ten text fields in canonical order, and whether each may be absent.
const FIELDS: [(&str, bool); 10] = [
    ("actor", false),
    ("action", false),
    ("resource", false),
    ("project", true),
    ("region", true),
    ("decision", false),
    ("policy_hash", false),
    ("request_id", false),
    ("outcome", false),
    ("details", false),
];

impl<'a> RecordFields<'a> {
    /// Reads canonical bytes (version 1) back into fields, borrowing the texts. The inverse of
    /// [`RecordFields::write_canonical`]: every byte is accounted for, so two different byte
    /// strings never decode to the same fields.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, RecordDecodeError> {
        let (&version, rest) = bytes.split_first().ok_or(RecordDecodeError::Short("version"))?;
        if version != RECORD_FORMAT_VERSION {
            return Err(RecordDecodeError::Version(version));
        }
        let (seq, rest) = take::<8>(rest, "seq")?;
        let (time, mut rest) = take::<8>(rest, "time")?;
        let mut texts: [Option<&'a str>; 10] = [None; 10];
        for (slot, (name, optional)) in texts.iter_mut().zip(FIELDS) {
            let (&presence, after) = rest.split_first().ok_or(RecordDecodeError::Short(name))?;
            rest = match (presence, optional) {
                (0, true) => after,
                (1, _) => {
                    let (len, after) = take::<4>(after, name)?;
                    let len = u32::from_be_bytes(len) as usize;
                    if after.len() < len {
                        return Err(RecordDecodeError::Short(name));
                    }
                    let (text, after) = after.split_at(len);
                    *slot = Some(std::str::from_utf8(text).map_err(|_| RecordDecodeError::Utf8(name))?);
                    after
                }
                _ => return Err(RecordDecodeError::Presence(name)),
            };
        }
        if !rest.is_empty() {
            return Err(RecordDecodeError::Trailing(rest.len()));
        }
        let [actor, action, resource, project, region, decision, policy_hash, request_id, outcome, details] = texts;
        // Required fields were checked present above; `unwrap_or_default` keeps this total.
        Ok(RecordFields {
            seq: u64::from_be_bytes(seq),
            time_micros: i64::from_be_bytes(time),
            actor: actor.unwrap_or_default(),
            action: action.unwrap_or_default(),
            resource: resource.unwrap_or_default(),
            project,
            region,
            decision: decision.unwrap_or_default(),
            policy_hash: policy_hash.unwrap_or_default(),
            request_id: request_id.unwrap_or_default(),
            outcome: outcome.unwrap_or_default(),
            details: details.unwrap_or_default(),
        })
    }
}

/// Splits `N` bytes off the front of `bytes`.
fn take<'b, const N: usize>(bytes: &'b [u8], what: &'static str) -> Result<([u8; N], &'b [u8]), RecordDecodeError> {
    let (head, rest) = bytes.split_first_chunk::<N>().ok_or(RecordDecodeError::Short(what))?;
    Ok((*head, rest))
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
    fn decoding_gives_back_the_fields_and_refuses_anything_else() {
        let base = sample();
        let bytes = base.canonical_bytes();
        assert_eq!(RecordFields::decode(&bytes), Ok(base));
        assert_eq!(RecordFields::decode(&bytes[..bytes.len() - 1]), Err(RecordDecodeError::Short("details")));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(RecordFields::decode(&longer), Err(RecordDecodeError::Trailing(1)));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(RecordFields::decode(&v2), Err(RecordDecodeError::Version(2)));
        let mut absent_actor = bytes.clone();
        absent_actor[17] = 0;
        assert_eq!(RecordFields::decode(&absent_actor), Err(RecordDecodeError::Presence("actor")));
        let mut not_utf8 = bytes;
        not_utf8[22] = 0xff;
        assert_eq!(RecordFields::decode(&not_utf8), Err(RecordDecodeError::Utf8("actor")));
        assert_eq!(RecordFields::decode(&[]), Err(RecordDecodeError::Short("version")));
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
