//! Offline verification of an exported log segment.
//!
//! An export is a segment of the log: the records `[start, end)`, either as JSON lines (one
//! record per line, the server's `GET /api/v1/audit/export` format, each with its `seq` and
//! `leaf_hash`; [`verify_segment`]) or as a record archive ([`crate::archive`];
//! [`verify_archive`]), the signed checkpoints, and — for a segment that does not start at 0 — the frontier of the
//! tree of the first `start` records (its perfect subtree hashes), which a signed checkpoint
//! of size `start` vouches for. Verification recomputes every leaf hash from the record's
//! canonical serialization, rebuilds the tree from the frontier, and checks the root against
//! every checkpoint inside the segment, so a segment that verifies is exactly what the log
//! signed; the first thing wrong is reported as a [`SegmentFailure`] naming the sequence
//! number (or checkpoint) and what happened to it.
//!
//! What each tampering looks like:
//! - a record's content edited: [`SegmentFailure::Modified`] at its seq (its content no longer
//!   hashes to its leaf hash); if the leaf hash was recomputed too,
//!   [`SegmentFailure::RootMismatch`] for the span between the last checkpoint that still
//!   matches and the first that does not;
//! - an archived record's framing or field lengths broken: [`SegmentFailure::Unreadable`] at
//!   its place;
//! - a record removed: [`SegmentFailure::Missing`]; duplicated or moved:
//!   [`SegmentFailure::OutOfOrder`]; the end cut off: [`SegmentFailure::Truncated`];
//! - a checkpoint forged or altered: [`SegmentFailure::Checkpoint`]; two signed checkpoints of
//!   one size with different roots: [`SegmentFailure::Fork`].

use crate::archive::{FRAME_HEADER_LEN, FrameHeader, MAX_RECORD_LEN, append_frame, read_magic};
use crate::checkpoint::Checkpoint;
use crate::merkle::{Hash, MerkleFrontier};
use crate::note::Verifier;
use crate::record::RecordFields;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::BufRead;

/// One exported record line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedRecord<'a> {
    /// Position in the log.
    pub seq: u64,
    /// RFC 3339 time, microsecond precision.
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    /// Who asked.
    #[serde(borrow)]
    pub actor: Cow<'a, str>,
    /// The action.
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    /// `<type>:<id>`.
    #[serde(borrow)]
    pub resource: Cow<'a, str>,
    /// The project, if any.
    #[serde(borrow)]
    pub project: Option<Cow<'a, str>>,
    /// The region, if any.
    #[serde(borrow)]
    pub region: Option<Cow<'a, str>>,
    /// The decision.
    #[serde(borrow)]
    pub decision: Cow<'a, str>,
    /// Hex policy-set hash.
    #[serde(borrow)]
    pub policy_hash: Cow<'a, str>,
    /// The request id.
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    /// The outcome.
    #[serde(borrow)]
    pub outcome: Cow<'a, str>,
    /// The details, exactly as exported (the bytes the leaf hash covers).
    #[serde(borrow)]
    pub details: &'a RawValue,
    /// Hex leaf hash, as the log computed it.
    #[serde(borrow)]
    pub leaf_hash: Cow<'a, str>,
}

impl ExportedRecord<'_> {
    /// The leaf hash of the record's content (not the one it states).
    pub fn computed_leaf_hash(&self) -> Result<Hash, String> {
        self.computed_leaf_hash_with(&mut Vec::new())
    }

    /// [`ExportedRecord::computed_leaf_hash`], serializing into `scratch` (reused between
    /// records to save an allocation each).
    pub fn computed_leaf_hash_with(&self, scratch: &mut Vec<u8>) -> Result<Hash, String> {
        let time = time::OffsetDateTime::parse(&self.time, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("`time` is not RFC 3339: {e}"))?;
        let time_micros = i64::try_from(time.unix_timestamp_nanos() / 1000).map_err(|_| "`time` is out of range")?;
        let fields = RecordFields {
            seq: self.seq,
            time_micros,
            actor: &self.actor,
            action: &self.action,
            resource: &self.resource,
            project: self.project.as_deref(),
            region: self.region.as_deref(),
            decision: &self.decision,
            policy_hash: &self.policy_hash,
            request_id: &self.request_id,
            outcome: &self.outcome,
            details: self.details.get(),
        };
        fields.write_canonical(scratch);
        Ok(crate::merkle::leaf_hash(scratch))
    }
}

/// One exported checkpoint line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Hex root.
    pub root: String,
    /// The signed note.
    pub note: String,
}

/// The first thing wrong with a segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentFailure {
    /// A record line is not a record.
    #[error("records line {line}: not a record: {reason}")]
    Malformed {
        /// 1-based line in the records file.
        line: u64,
        /// Why.
        reason: String,
    },
    /// An archived record's frame or canonical bytes cannot be read.
    #[error("record {seq} is unreadable: {reason}")]
    Unreadable {
        /// The record that belongs at this place of the archive.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The records file is not a record archive.
    #[error("the records file is not a custody audit record archive (its first bytes are not the archive's magic)")]
    NotAnArchive,
    /// A record's content does not hash to its stated leaf hash.
    #[error("record {seq} was modified: its content does not hash to its leaf hash")]
    Modified {
        /// The record.
        seq: u64,
    },
    /// The record that belongs here is absent.
    #[error("record {seq} is missing (the next record is {found})")]
    Missing {
        /// The missing record.
        seq: u64,
        /// The record found in its place.
        found: u64,
    },
    /// A record appears again or out of place.
    #[error("record {found} appears where record {seq} belongs (duplicated or reordered)")]
    OutOfOrder {
        /// The record that belongs here.
        seq: u64,
        /// The record found.
        found: u64,
    },
    /// The tree rebuilt from the records does not have a signed checkpoint's root.
    #[error(
        "records {from}..{size} do not match the signed checkpoint of size {size}: one of them was altered, inserted or removed with its leaf hash recomputed"
    )]
    RootMismatch {
        /// The first record not vouched for by an earlier checkpoint.
        from: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The records end before a signed checkpoint does.
    #[error("the log was truncated: it ends after {records} records but a signed checkpoint covers {size}")]
    Truncated {
        /// Records present (the next expected sequence number).
        records: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// A checkpoint is malformed, not signed by the log key, or inconsistent with its line.
    #[error("checkpoints line {line}: {reason}")]
    Checkpoint {
        /// 1-based line in the checkpoints file.
        line: u64,
        /// Why.
        reason: String,
    },
    /// Two signed checkpoints of the same size disagree: the log was forked.
    #[error("forked log: two signed checkpoints of size {size} have different roots")]
    Fork {
        /// The size.
        size: u64,
    },
    /// The segment's starting frontier is not the tree its start checkpoint signed.
    #[error("the segment's starting frontier does not match the signed checkpoint of size {start}: {reason}")]
    Frontier {
        /// The segment's first sequence number.
        start: u64,
        /// Why.
        reason: String,
    },
    /// The records could not be read.
    #[error("reading the records: {0}")]
    Io(String),
}

/// What a verified segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// The first sequence number.
    pub start: u64,
    /// One past the last record.
    pub end: u64,
    /// The root of the tree of `end` records.
    pub root: Hash,
    /// How many signed checkpoints inside the segment matched.
    pub checkpoints_matched: usize,
    /// The largest checkpoint size inside the segment (`None` if none).
    pub last_checkpoint: Option<u64>,
}

/// The beginning of a segment: `start` records precede it, summarized by their frontier.
#[derive(Debug, Clone, Default)]
pub struct SegmentStart {
    /// Records before the segment.
    pub start: u64,
    /// Their tree's perfect subtree hashes, largest first (empty when `start` is 0).
    pub frontier: Vec<Hash>,
}

/// Parses and checks the checkpoints: each signed by `key` with `key`'s origin, its line's
/// size and root equal to what is signed, sizes increasing; two of one size must agree.
pub fn read_checkpoints(text: &str, key: &Verifier) -> Result<Vec<Checkpoint>, SegmentFailure> {
    let lines: Vec<(u64, &str)> =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i as u64 + 1, l)).collect();
    // Signatures are checked on every core; the order checks below stay sequential.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
    let chunk = lines.len().div_ceil(threads).max(1);
    let opened: Vec<Result<Checkpoint, SegmentFailure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|(n, l)| open_checkpoint(*n, l, key)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| vec![Err(SegmentFailure::Io("a worker panicked".into()))]))
            .collect()
    });
    let mut out: Vec<Checkpoint> = Vec::new();
    for ((line, _), signed) in lines.iter().zip(opened) {
        let signed = signed?;
        if let Some(prev) = out.last() {
            if prev.size == signed.size && prev.root != signed.root {
                return Err(SegmentFailure::Fork { size: signed.size });
            }
            if prev.size > signed.size {
                let reason = format!("size {} goes backwards after {}", signed.size, prev.size);
                return Err(SegmentFailure::Checkpoint { line: *line, reason });
            }
            if prev.size == signed.size {
                continue;
            }
        }
        out.push(signed);
    }
    Ok(out)
}

/// One checkpoint line: signed by `key`, with `key`'s origin, and the line's size and root
/// equal to what is signed.
fn open_checkpoint(line: u64, text: &str, key: &Verifier) -> Result<Checkpoint, SegmentFailure> {
    let bad = |reason: String| SegmentFailure::Checkpoint { line, reason };
    let c: ExportedCheckpoint = serde_json::from_str(text).map_err(|e| bad(format!("not a checkpoint: {e}")))?;
    let signed = Checkpoint::open(&c.note, std::slice::from_ref(key))
        .map_err(|e| bad(format!("not signed by the log key `{}`: {e}", key.name())))?;
    if signed.origin != key.name() {
        return Err(bad(format!("origin `{}` is not the log's `{}`", signed.origin, key.name())));
    }
    if signed.size != c.size || hex::encode(signed.root) != c.root {
        return Err(bad("its size or root differs from what is signed".into()));
    }
    Ok(signed)
}

/// Bytes of records read and hashed per round; the records of a round are split between threads.
const BLOCK: usize = 8 << 20;

/// How a segment's records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsFormat {
    /// JSON lines, the server's export (`GET /api/v1/audit/export`).
    JsonLines,
    /// The record archive ([`crate::archive`]): canonical bytes with their leaf hashes.
    Archive,
}

/// Verifies the records of a segment (JSON lines from `records`) against `checkpoints` (from
/// [`read_checkpoints`]), starting from `start`. `progress` is called with the number of
/// records checked after every block of records and at the end.
///
/// Records are parsed and hashed on every core; the tree is rebuilt and the checkpoints
/// checked in sequence order, so the failure reported is the first one a record-by-record
/// reading meets.
pub fn verify_segment(
    records: impl BufRead,
    checkpoints: &[Checkpoint],
    start: &SegmentStart,
    progress: impl FnMut(u64),
) -> Result<SegmentReport, SegmentFailure> {
    verify_records(RecordsFormat::JsonLines, records, checkpoints, start, progress)
}

/// [`verify_segment`] for a record archive ([`crate::archive`]), magic included: each record
/// is hashed as it is stored, nothing is parsed but its framing and field lengths.
pub fn verify_archive(
    mut records: impl BufRead,
    checkpoints: &[Checkpoint],
    start: &SegmentStart,
    progress: impl FnMut(u64),
) -> Result<SegmentReport, SegmentFailure> {
    if !read_magic(&mut records).map_err(|e| SegmentFailure::Io(e.to_string()))? {
        return Err(SegmentFailure::NotAnArchive);
    }
    verify_records(RecordsFormat::Archive, records, checkpoints, start, progress)
}

fn verify_records(
    format: RecordsFormat,
    mut records: impl BufRead,
    checkpoints: &[Checkpoint],
    start: &SegmentStart,
    mut progress: impl FnMut(u64),
) -> Result<SegmentReport, SegmentFailure> {
    let frontier = MerkleFrontier::from_parts(start.start, start.frontier.clone())
        .map_err(|e| SegmentFailure::Frontier { start: start.start, reason: e.to_string() })?;
    if start.start > 0 {
        let vouching = checkpoints.iter().find(|c| c.size == start.start).ok_or_else(|| SegmentFailure::Frontier {
            start: start.start,
            reason: "no signed checkpoint of that size".into(),
        })?;
        if vouching.root != frontier.root() {
            return Err(SegmentFailure::Frontier { start: start.start, reason: "its root differs".into() });
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
    let tree = TreeCheck {
        pending: checkpoints.iter().filter(|c| c.size > start.start).peekable(),
        matched: 0,
        last: None,
        vouched: start.start,
    };
    // The tree is rebuilt on its own thread while the next block is read and hashed.
    let (frontier, mut tree) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Hashed>(2 * threads);
        let builder = scope.spawn(move || rebuild(frontier, tree, rx));
        let reading = Reading { format, first_seq: start.start, threads };
        let produced = reading.hash_blocks(&mut records, &tx, &mut progress);
        drop(tx);
        let built = builder.join().unwrap_or_else(|_| Err(SegmentFailure::Io("the tree thread panicked".into())));
        // A failure in the records comes first: hashing stops when the tree thread has failed.
        let (frontier, tree) = built?;
        produced.map(|()| (frontier, tree))
    })?;
    progress(frontier.len() - start.start);
    if let Some(c) = tree.pending.next() {
        return Err(SegmentFailure::Truncated { records: frontier.len(), size: c.size });
    }
    Ok(SegmentReport {
        start: start.start,
        end: frontier.len(),
        root: frontier.root(),
        checkpoints_matched: tree.matched,
        last_checkpoint: tree.last,
    })
}

/// The leaf hashes of a run of records, and what is wrong with the record after them, if anything.
type Hashed = (Vec<Hash>, Option<SegmentFailure>);

/// A block of whole records read from the segment: record `i` is `bytes[ends[i-1]..ends[i]]`.
#[derive(Default)]
struct Block {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Block {
    fn record(&self, i: usize) -> &[u8] {
        let from = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[from..self.ends[i]]
    }
}

/// How the records of a segment are read and hashed.
struct Reading {
    format: RecordsFormat,
    first_seq: u64,
    threads: usize,
}

impl Reading {
    /// Reads `records` a block at a time and hashes each block's records on `threads`
    /// threads, sending the results in order. Stops at the first bad record or when the tree
    /// thread stops listening.
    fn hash_blocks(
        &self,
        records: &mut impl BufRead,
        tx: &std::sync::mpsc::SyncSender<Hashed>,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), SegmentFailure> {
        let mut block = Block { bytes: Vec::with_capacity(BLOCK + 4096), ends: Vec::new() };
        let mut before = 0u64;
        loop {
            self.read_block(records, &mut block).map_err(|e| SegmentFailure::Io(e.to_string()))?;
            if block.ends.is_empty() {
                return Ok(());
            }
            let per_thread = block.ends.len().div_ceil(self.threads);
            let hashed: Vec<Hashed> = std::thread::scope(|scope| {
                let block = &block;
                let handles: Vec<_> = (0..block.ends.len())
                    .step_by(per_thread)
                    .map(|first| {
                        let last = (first + per_thread).min(block.ends.len());
                        scope.spawn(move || self.hash_records(block, first..last, before))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| (Vec::new(), Some(SegmentFailure::Io("a worker panicked".into()))))
                    })
                    .collect()
            });
            for result in hashed {
                let failed = result.1.is_some();
                if tx.send(result).is_err() || failed {
                    return Ok(());
                }
            }
            before += block.ends.len() as u64;
            progress(before);
        }
    }

    /// Fills `block` with the next whole records (about [`BLOCK`] bytes). A record cut short
    /// by the end of the input is kept, for its check to name it.
    fn read_block(&self, records: &mut impl BufRead, block: &mut Block) -> std::io::Result<()> {
        block.bytes.clear();
        block.ends.clear();
        let bytes = &mut block.bytes;
        while bytes.len() < BLOCK {
            let read = match self.format {
                RecordsFormat::JsonLines => records.read_until(b'\n', bytes)?,
                RecordsFormat::Archive => append_frame(records, bytes)?,
            };
            if read == 0 {
                break;
            }
            block.ends.push(bytes.len());
        }
        Ok(())
    }

    /// Checks and hashes records `range` of `block`, the first of which is record `before +
    /// range.start` of the segment. Returns the leaf hashes of the records before the first
    /// bad one, and what is wrong with it.
    fn hash_records(&self, block: &Block, range: std::ops::Range<usize>, before: u64) -> Hashed {
        let mut leaves = Vec::with_capacity(range.len());
        let mut scratch = Vec::with_capacity(1024);
        for i in range {
            let index = before + i as u64;
            let seq = self.first_seq + index;
            let record = block.record(i);
            let checked = match self.format {
                RecordsFormat::JsonLines => {
                    check_record(record.strip_suffix(b"\n").unwrap_or(record), index + 1, seq, &mut scratch)
                }
                RecordsFormat::Archive => check_frame(record, seq),
            };
            match checked {
                Ok(leaf) => leaves.push(leaf),
                Err(f) => return (leaves, Some(f)),
            }
        }
        (leaves, None)
    }
}

/// Checks one archive frame expected to hold record `expected`; returns its leaf hash.
fn check_frame(frame: &[u8], expected: u64) -> Result<Hash, SegmentFailure> {
    let bad = |reason: String| SegmentFailure::Unreadable { seq: expected, reason };
    let (header, record) = frame
        .split_first_chunk::<FRAME_HEADER_LEN>()
        .ok_or_else(|| bad("the archive ends inside its frame header".into()))?;
    let header = FrameHeader::parse(header);
    if header.len > MAX_RECORD_LEN {
        return Err(bad(format!("its length {} exceeds the largest record, {MAX_RECORD_LEN} bytes", header.len)));
    }
    if record.len() < header.len as usize {
        return Err(bad(format!("the archive ends inside it ({} of {} bytes)", record.len(), header.len)));
    }
    let fields = RecordFields::decode(record).map_err(|e| bad(e.to_string()))?;
    check_order(fields.seq, expected)?;
    if crate::merkle::leaf_hash(record) != header.leaf {
        return Err(SegmentFailure::Modified { seq: expected });
    }
    Ok(header.leaf)
}

/// The record found where record `expected` belongs must be that record.
fn check_order(found: u64, expected: u64) -> Result<(), SegmentFailure> {
    if found > expected {
        return Err(SegmentFailure::Missing { seq: expected, found });
    }
    if found < expected {
        return Err(SegmentFailure::OutOfOrder { seq: expected, found });
    }
    Ok(())
}

/// Appends the leaves as they arrive and checks each signed checkpoint the tree reaches.
fn rebuild<'a, I: Iterator<Item = &'a Checkpoint>>(
    mut frontier: MerkleFrontier,
    mut tree: TreeCheck<'a, I>,
    rx: std::sync::mpsc::Receiver<Hashed>,
) -> Result<(MerkleFrontier, TreeCheck<'a, I>), SegmentFailure> {
    for (leaves, failure) in rx {
        for leaf in leaves {
            frontier.push(leaf);
            tree.check(&frontier)?;
        }
        if let Some(f) = failure {
            return Err(f);
        }
    }
    Ok((frontier, tree))
}

/// The signed checkpoints still ahead, checked as the tree reaches their sizes.
struct TreeCheck<'a, I: Iterator<Item = &'a Checkpoint>> {
    pending: std::iter::Peekable<I>,
    matched: usize,
    last: Option<u64>,
    /// The size up to which the records are vouched for by a matched checkpoint.
    vouched: u64,
}

impl<'a, I: Iterator<Item = &'a Checkpoint>> TreeCheck<'a, I> {
    fn check(&mut self, frontier: &MerkleFrontier) -> Result<(), SegmentFailure> {
        while let Some(c) = self.pending.next_if(|c| c.size == frontier.len()) {
            if c.root != frontier.root() {
                return Err(SegmentFailure::RootMismatch { from: self.vouched, size: c.size });
            }
            (self.matched, self.last, self.vouched) = (self.matched + 1, Some(c.size), c.size);
        }
        Ok(())
    }
}

/// Parses one record line expected to be record `expected`; returns its leaf hash.
fn check_record(text: &[u8], line: u64, expected: u64, scratch: &mut Vec<u8>) -> Result<Hash, SegmentFailure> {
    let malformed = |reason: String| SegmentFailure::Malformed { line, reason };
    // Validating UTF-8 once for the whole line lets the parser borrow strings unchecked.
    let text = std::str::from_utf8(text).map_err(|e| malformed(e.to_string()))?;
    let record: ExportedRecord<'_> = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    check_order(record.seq, expected)?;
    let computed = record.computed_leaf_hash_with(scratch).map_err(malformed)?;
    let mut stated = [0u8; 32];
    hex::decode_to_slice(record.leaf_hash.as_bytes(), &mut stated)
        .map_err(|_| malformed("`leaf_hash` is not 32 bytes of hex".into()))?;
    if computed != stated {
        return Err(SegmentFailure::Modified { seq: record.seq });
    }
    Ok(computed)
}
