//! Exporting the audit log to a directory (resumable) and verifying such an export offline.
//!
//! An export directory holds:
//! - `segment.json`: `{"origin", "start", "frontier"}` — the records before the segment,
//!   summarized by the hex roots of their perfect subtrees (empty when `start` is 0);
//! - `records.archive`: the records `start..` as a record archive (`custody_audit::archive`):
//!   each record as the canonical bytes its leaf hash covers, so verifying is hashing;
//! - `checkpoints.jsonl`: the signed checkpoints of size ≥ `start`, one per line.
//!
//! `verify` also reads a directory whose records are JSON lines (`records.jsonl`, the
//! server's SIEM export) in place of the archive; it is slower, as every line is parsed.

use crate::client::Client;
use crate::commands::{Exit, hash};
use crate::output::write_atomically;
use anyhow::{Context, bail};
use custody_audit::archive::{ARCHIVE_MAGIC, ArchiveReader, complete_frames, whole_frames};
use custody_audit::{SegmentFailure, SegmentStart, Verifier, read_checkpoints, verify_archive, verify_segment};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The exit code of an export that does not verify (also in docs/cli.md).
pub const TAMPERED: u8 = 9;

/// The description of an exported segment.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Segment {
    origin: String,
    start: u64,
    frontier: Vec<String>,
}

fn progress(total: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || total < 10_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {wide_bar} {human_pos}/{human_len} records {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// What an export wrote.
#[derive(Debug, Serialize)]
pub struct Exported {
    /// First record.
    pub start: u64,
    /// One past the last record.
    pub end: u64,
    /// Records already there from an interrupted export.
    pub resumed: u64,
    /// Checkpoints written.
    pub checkpoints: usize,
}

/// Exports records `from..to` (default: to the current end) into `dir`, continuing an
/// interrupted export of the same segment where it stopped.
pub async fn export(c: &Client, dir: &Path, from: u64, to: Option<u64>, quiet: bool) -> anyhow::Result<Exported> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let key: serde_json::Value = c.get("/api/v1/audit/key").await?;
    let origin = key["origin"].as_str().context("the server names its log")?.to_owned();
    let end = match to {
        Some(to) => to,
        None => {
            let root: serde_json::Value = c.get("/api/v1/audit/root").await?;
            root["size"].as_u64().context("the server gives the log's size")?
        }
    };
    let segment_path = dir.join("segment.json");
    let resumable = match std::fs::read_to_string(&segment_path) {
        Ok(text) => {
            let s: Segment =
                serde_json::from_str(&text).with_context(|| format!("reading `{}`", segment_path.display()))?;
            if s.start != from || s.origin != origin {
                bail!(
                    "`{}` holds another export (log {}, from {}); use an empty directory",
                    dir.display(),
                    s.origin,
                    s.start
                );
            }
            true
        }
        Err(_) => false,
    };
    if !resumable {
        let frontier: serde_json::Value = c.get(&format!("/api/v1/audit/frontier?size={from}")).await?;
        let nodes = frontier["nodes"].as_array().context("the server gives the frontier")?;
        let segment = Segment {
            origin,
            start: from,
            frontier: nodes.iter().map(|n| n.as_str().unwrap_or_default().to_owned()).collect(),
        };
        write_atomically(&segment_path, serde_json::to_string_pretty(&segment)?.as_bytes())?;
    }
    let records_path = dir.join(ARCHIVE);
    let (mut out, done) = open_archive(&records_path)?;
    let next = from + done;
    if next > end {
        bail!("`{}` already holds records up to {} (asked: up to {end})", records_path.display(), next);
    }
    let bar = progress(end - from, quiet, "export");
    bar.set_position(done);
    let mut resp = c.get_raw(&format!("/api/v1/audit/export?from={next}&to={end}&format=archive")).await?;
    // Only whole frames are written: an interruption leaves at most one partial frame, which
    // the next run cuts off.
    let (mut pending, mut magic_seen, mut written) = (Vec::new(), false, 0u64);
    while let Some(chunk) =
        resp.chunk().await.context("the export stream broke off; run the command again to resume")?
    {
        pending.extend_from_slice(&chunk);
        if !magic_seen {
            if pending.len() < ARCHIVE_MAGIC.len() {
                continue;
            }
            if !pending.starts_with(ARCHIVE_MAGIC) {
                bail!("the server did not send a record archive");
            }
            pending.drain(..ARCHIVE_MAGIC.len());
            magic_seen = true;
        }
        let (frames, len) = whole_frames(&pending);
        out.write_all(&pending[..len])?;
        pending.drain(..len);
        written += frames;
        bar.inc(frames);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    if next + written != end || !pending.is_empty() {
        bail!("the export stopped at record {} of {end}; run the command again to resume", next + written);
    }
    let checkpoints = export_checkpoints(c, &dir.join("checkpoints.jsonl"), from, end).await?;
    Ok(Exported { start: from, end, resumed: done, checkpoints })
}

/// Writes every signed checkpoint of size `from..=end` (one per line), replacing the file.
async fn export_checkpoints(c: &Client, path: &Path, from: u64, end: u64) -> anyhow::Result<usize> {
    let mut text = String::new();
    let mut count = 0;
    let mut next = from;
    loop {
        let page: Vec<serde_json::Value> =
            c.get(&format!("/api/v1/audit/checkpoints?from_size={next}&limit=10000")).await?;
        let Some(last) = page.last().and_then(|c| c["size"].as_u64()) else { break };
        for cp in page.iter().filter(|cp| cp["size"].as_u64().is_some_and(|s| s <= end)) {
            text.push_str(&serde_json::to_string(cp)?);
            text.push('\n');
            count += 1;
        }
        if last >= end || page.len() < 10_000 {
            break;
        }
        next = last + 1;
    }
    write_atomically(path, text.as_bytes())?;
    Ok(count)
}

/// The records file of an export directory.
const ARCHIVE: &str = "records.archive";

/// Opens the archive at `path` for appending, creating it (with its magic) if absent; cuts
/// off a partial last frame (an interrupted write). Returns it and the records it holds.
fn open_archive(path: &Path) -> anyhow::Result<(std::fs::File, u64)> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("opening `{}`", path.display()))?;
    if file.metadata()?.len() == 0 {
        file.write_all(ARCHIVE_MAGIC)?;
        return Ok((file, 0));
    }
    let (frames, len) = complete_frames(&mut std::io::BufReader::new(&file))
        .with_context(|| format!("`{}` is not a record archive; use an empty directory", path.display()))?;
    file.set_len(len)?;
    Ok((file, frames))
}

/// What a verification established.
#[derive(Debug, Serialize)]
pub struct Verified {
    /// First record.
    pub start: u64,
    /// One past the last record.
    pub end: u64,
    /// Hex root of the tree of `end` records.
    pub root: String,
    /// Signed checkpoints matched.
    pub checkpoints_matched: usize,
    /// Records after the last signed checkpoint (not vouched for by a signature).
    pub unsigned_tail: u64,
}

/// Verifies the export in `dir` with the log key `key` (a verifier key string), offline.
/// A failure is printed on stderr and ends with exit code [`TAMPERED`].
pub fn verify(dir: &Path, key: &str, quiet: bool) -> anyhow::Result<Verified> {
    match verify_dir(dir, key, quiet)? {
        Ok(v) => Ok(v),
        Err(failure) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: the audit log does not verify: {failure}");
            }
            Err(Exit(TAMPERED).into())
        }
    }
}

/// Verifies the export in `dir`: `Err` when it cannot be read at all, `Ok(Err)` when it was
/// read and is not what the log signed.
pub fn verify_dir(dir: &Path, key: &str, quiet: bool) -> anyhow::Result<Result<Verified, SegmentFailure>> {
    let key =
        Verifier::parse(key.trim()).context("reading the log key (a verifier key string, `custody audit key`)")?;
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))
    };
    let segment: Segment = serde_json::from_str(&read("segment.json")?).context("reading segment.json")?;
    let frontier = segment
        .frontier
        .iter()
        .map(|h| hash(&serde_json::Value::String(h.clone())))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("segment.json: frontier")?;
    let start = SegmentStart { start: segment.start, frontier };
    let checkpoints = read("checkpoints.jsonl")?;
    let (path, archived) = match dir.join(ARCHIVE) {
        p if p.exists() => (p, true),
        _ => (dir.join("records.jsonl"), false),
    };
    let file = std::fs::File::open(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let outcome = read_checkpoints(&checkpoints, &key).and_then(|cps| {
        let total = file.metadata().map(|m| m.len() / if archived { 500 } else { 650 }).unwrap_or(0);
        let bar = progress(total, quiet, "verify");
        let records = std::io::BufReader::with_capacity(1 << 20, file);
        let report = if archived {
            verify_archive(records, &cps, &start, |n| bar.set_position(n))
        } else {
            verify_segment(records, &cps, &start, |n| bar.set_position(n))
        };
        bar.finish_and_clear();
        report
    });
    Ok(outcome.map(|r| Verified {
        start: r.start,
        end: r.end,
        root: hex::encode(r.root),
        checkpoints_matched: r.checkpoints_matched,
        unsigned_tail: r.end - r.last_checkpoint.unwrap_or(r.start),
    }))
}

/// Writes the records of the (verified) export in `dir` as JSON lines, the server's export
/// format, to `out`. Only an archive is rendered: JSON lines are already that.
pub fn write_json_lines(dir: &Path, out: &mut impl Write) -> anyhow::Result<u64> {
    let path = dir.join(ARCHIVE);
    let file = std::fs::File::open(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let mut archive = ArchiveReader::new(std::io::BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("reading `{}`", path.display()))?;
    let (mut record, mut n) = (Vec::new(), 0u64);
    while let Some(leaf) = archive.next_frame(&mut record)? {
        let fields = custody_audit::RecordFields::decode(&record).context("a verified record does not decode")?;
        let line = custody_audit::archive::export_line(&fields, &leaf).map_err(anyhow::Error::msg)?;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Checks audit entries fetched `with_proofs`: each record's leaf hash recomputed from its
/// content, and its inclusion proof verified against the root it names. A failure is printed
/// on stderr and ends with exit code [`TAMPERED`].
pub fn check_entry_proofs(entries: &[serde_json::Value]) -> anyhow::Result<()> {
    for entry in entries {
        let mut record = entry.clone();
        let inclusion = record.as_object_mut().and_then(|o| o.remove("inclusion")).context("an entry has no proof")?;
        let seq = record["seq"].as_u64().context("an entry has no seq")?;
        let text = serde_json::to_string(&record)?;
        let parsed: custody_audit::export::ExportedRecord<'_> =
            serde_json::from_str(&text).with_context(|| format!("record {seq} is not a record"))?;
        let leaf = parsed.computed_leaf_hash().map_err(anyhow::Error::msg)?;
        let size = inclusion["size"].as_u64().context("a proof has no size")?;
        let proof = crate::commands::hashes(&inclusion["proof"])?;
        let root = hash(&inclusion["root"])?;
        if let Err(e) = custody_audit::verify_inclusion(&leaf, seq, size, &proof, &root) {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: record {seq} is not proven in the log of size {size}: {e}");
            }
            return Err(Exit(TAMPERED).into());
        }
    }
    Ok(())
}
