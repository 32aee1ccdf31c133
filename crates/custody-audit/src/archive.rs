//! The record archive: a segment of the log as the canonical bytes its leaf hashes cover.
//!
//! JSON lines are what a SIEM reads, but checking one means parsing it and serializing it
//! again. The archive stores each record exactly as it is hashed, so verifying it is SHA-256
//! and the tree, and the JSON view of a record is derived from bytes that were verified:
//!
//! ```text
//! archive = magic frame*
//! magic   = "custody-audit-records/1\n"         ; 24 bytes
//! frame   = leaf_hash[32] len:u32 record[len]    ; len big-endian, at most MAX_RECORD_LEN
//! record  = the canonical record bytes (see `record`), whose SHA-256(0x00 || record) is leaf_hash
//! ```
//!
//! The stated leaf hash lets a verifier name a record whose content was changed without
//! recomputing it; one whose hash was recomputed too is caught by the signed checkpoints.

use crate::merkle::Hash;
use crate::record::RecordFields;
use serde::Serialize;
use serde_json::value::RawValue;
use std::io::{BufRead, Seek};

/// The first bytes of every archive.
pub const ARCHIVE_MAGIC: &[u8; 24] = b"custody-audit-records/1\n";

/// Bytes before a record in its frame: the leaf hash and the length.
pub const FRAME_HEADER_LEN: usize = 36;

/// The longest record an archive holds (16 MiB): a larger length is a corrupt frame, not a
/// reason to allocate.
pub const MAX_RECORD_LEN: u32 = 16 << 20;

/// Appends one frame to `out`.
pub fn push_frame(out: &mut Vec<u8>, leaf: &Hash, record: &[u8]) {
    out.extend_from_slice(leaf);
    // Records are far below 4 GiB (`MAX_RECORD_LEN`); saturating keeps this total.
    out.extend_from_slice(&u32::try_from(record.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(record);
}

/// One frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The leaf hash the frame states.
    pub leaf: Hash,
    /// The record's length.
    pub len: u32,
}

impl FrameHeader {
    /// Reads a header from its 36 bytes.
    pub fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> Self {
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(&bytes[..32]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[32..]);
        FrameHeader { leaf, len: u32::from_be_bytes(len) }
    }
}

/// Reads the magic from the front of `reader`: whether it is there.
pub(crate) fn read_magic(reader: &mut impl BufRead) -> std::io::Result<bool> {
    let mut magic = Vec::with_capacity(ARCHIVE_MAGIC.len());
    append_up_to(reader, ARCHIVE_MAGIC.len(), &mut magic)?;
    Ok(magic == ARCHIVE_MAGIC)
}

/// Appends up to `n` bytes of `reader` to `out` (fewer only where the input ends), copying
/// straight from the reader's buffer; returns how many.
fn append_up_to(reader: &mut impl BufRead, n: usize, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut left = n;
    while left > 0 {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let take = available.len().min(left);
        out.extend_from_slice(&available[..take]);
        reader.consume(take);
        left -= take;
    }
    Ok(n - left)
}

/// Appends the next frame (header and record) to `out` as far as the input holds it, and
/// returns the bytes appended: 0 at the end, fewer than the frame when it is cut short, only
/// the header when it states a length over [`MAX_RECORD_LEN`].
pub(crate) fn append_frame(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let at = out.len();
    append_up_to(reader, FRAME_HEADER_LEN, out)?;
    if let Some(header) = out[at..].first_chunk::<FRAME_HEADER_LEN>() {
        let len = FrameHeader::parse(header).len;
        if len <= MAX_RECORD_LEN {
            append_up_to(reader, len as usize, out)?;
        }
    }
    Ok(out.len() - at)
}

/// Where the complete frames of an archive end: their count and the byte length they span
/// with the magic. An interrupted write leaves a partial last frame; cutting the file to this
/// length makes it an archive again, ready to be appended to.
pub fn complete_frames(archive: &mut (impl BufRead + Seek)) -> std::io::Result<(u64, u64)> {
    let total = archive.seek(std::io::SeekFrom::End(0))?;
    archive.rewind()?;
    if !read_magic(archive)? {
        return Err(invalid("not a custody audit record archive".to_owned()));
    }
    let (mut frames, mut end) = (0u64, ARCHIVE_MAGIC.len() as u64);
    let mut header = Vec::with_capacity(FRAME_HEADER_LEN);
    loop {
        header.clear();
        append_up_to(archive, FRAME_HEADER_LEN, &mut header)?;
        let Some(header) = header.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok((frames, end));
        };
        let len = FrameHeader::parse(header).len;
        let next = end + FRAME_HEADER_LEN as u64 + u64::from(len);
        if len > MAX_RECORD_LEN || next > total {
            return Ok((frames, end));
        }
        // Relative seeks keep the reader's buffer.
        archive.seek_relative(i64::from(len))?;
        (frames, end) = (frames + 1, next);
    }
}

/// The whole frames at the start of `bytes` (no magic): their count and byte length. What
/// follows is a frame still arriving, or a corrupt one (a length over [`MAX_RECORD_LEN`]).
pub fn whole_frames(bytes: &[u8]) -> (u64, usize) {
    let (mut frames, mut at) = (0u64, 0usize);
    while let Some((_, len)) = first_frame(&bytes[at..]) {
        (frames, at) = (frames + 1, at + len);
    }
    (frames, at)
}

/// The header and whole length of the frame `bytes` start with, if it is all there.
fn first_frame(bytes: &[u8]) -> Option<(FrameHeader, usize)> {
    let header = FrameHeader::parse(bytes.first_chunk::<FRAME_HEADER_LEN>()?);
    let len = FRAME_HEADER_LEN + header.len as usize;
    (header.len <= MAX_RECORD_LEN && len <= bytes.len()).then_some((header, len))
}

/// Reads an archive one frame at a time.
#[derive(Debug)]
pub struct ArchiveReader<R> {
    inner: R,
    frames: u64,
    /// The frame being read (header and record).
    frame: Vec<u8>,
}

impl<R: BufRead> ArchiveReader<R> {
    /// Checks the magic.
    pub fn new(mut inner: R) -> std::io::Result<Self> {
        if !read_magic(&mut inner)? {
            return Err(invalid("not a custody audit record archive".to_owned()));
        }
        Ok(ArchiveReader { inner, frames: 0, frame: Vec::new() })
    }

    /// Reads the next frame's record into `record` and returns its stated leaf hash; `None`
    /// at the end. A frame cut short or oversized is an `InvalidData` error naming it.
    pub fn next_frame(&mut self, record: &mut Vec<u8>) -> std::io::Result<Option<Hash>> {
        self.frame.clear();
        if append_frame(&mut self.inner, &mut self.frame)? == 0 {
            return Ok(None);
        }
        let Some(header) = self.frame.first_chunk::<FRAME_HEADER_LEN>().map(FrameHeader::parse) else {
            return Err(invalid(format!("frame {} is cut short in its header", self.frames)));
        };
        if header.len > MAX_RECORD_LEN {
            return Err(invalid(format!("frame {} states a length of {} bytes", self.frames, header.len)));
        }
        if self.frame.len() < FRAME_HEADER_LEN + header.len as usize {
            return Err(invalid(format!("frame {} is cut short in its record", self.frames)));
        }
        record.clear();
        record.extend_from_slice(&self.frame[FRAME_HEADER_LEN..]);
        self.frames += 1;
        Ok(Some(header.leaf))
    }
}

fn invalid(reason: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, reason)
}

/// A record as one JSON object, the shape of the server's export lines.
#[derive(Serialize)]
struct ExportLine<'a> {
    seq: u64,
    time: String,
    actor: &'a str,
    action: &'a str,
    resource: &'a str,
    project: Option<&'a str>,
    region: Option<&'a str>,
    decision: &'a str,
    policy_hash: &'a str,
    request_id: &'a str,
    outcome: &'a str,
    details: &'a RawValue,
    leaf_hash: String,
}

/// The JSON export line of a record (without the newline): the view of an archived record
/// for people and SIEMs, equal to the line the server exports for it.
pub fn export_line(fields: &RecordFields<'_>, leaf: &Hash) -> Result<String, String> {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(fields.time_micros) * 1000)
        .map_err(|e| format!("record {}: time out of range: {e}", fields.seq))?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("record {}: time cannot be written: {e}", fields.seq))?;
    let details: &RawValue = serde_json::from_str(fields.details)
        .map_err(|e| format!("record {}: details are not JSON: {e}", fields.seq))?;
    let line = ExportLine {
        seq: fields.seq,
        time,
        actor: fields.actor,
        action: fields.action,
        resource: fields.resource,
        project: fields.project,
        region: fields.region,
        decision: fields.decision,
        policy_hash: fields.policy_hash,
        request_id: fields.request_id,
        outcome: fields.outcome,
        details,
        leaf_hash: hex::encode(leaf),
    };
    serde_json::to_string(&line).map_err(|e| format!("record {}: {e}", fields.seq))
}
