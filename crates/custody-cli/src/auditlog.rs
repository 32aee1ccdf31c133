//! Exporting the audit log to a directory (resumable) and verifying such an export offline.
//!
//! An export directory holds:
//! - `segment.json`: `{"origin", "start", "frontier"}` — the records before the segment,
//!   summarized by the hex roots of their perfect subtrees (empty when `start` is 0);
//! - `records.jsonl`: the records `start..`, one JSON object per line (the server's export);
//! - `checkpoints.jsonl`: the signed checkpoints of size ≥ `start`, one per line.

use crate::client::Client;
use crate::commands::{Exit, hash};
use anyhow::{Context, bail};
use custody_audit::{SegmentFailure, SegmentStart, Verifier, read_checkpoints, verify_segment};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Seek, Write};
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
    let records_path = dir.join("records.jsonl");
    let done = complete_lines(&records_path)?;
    let next = from + done;
    if next > end {
        bail!("`{}` already holds records up to {} (asked: up to {end})", records_path.display(), next);
    }
    let bar = progress(end - from, quiet, "export");
    bar.set_position(done);
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&records_path)?;
    let mut resp = c.get_raw(&format!("/api/v1/audit/export?from={next}&to={end}")).await?;
    let mut written = 0u64;
    while let Some(chunk) =
        resp.chunk().await.context("the export stream broke off; run the command again to resume")?
    {
        out.write_all(&chunk)?;
        let lines = chunk.iter().filter(|b| **b == b'\n').count() as u64;
        written += lines;
        bar.inc(lines);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    if next + written != end {
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

/// Counts the complete lines of `path` and cuts off a partial last line (an interrupted write).
fn complete_lines(path: &Path) -> anyhow::Result<u64> {
    let file = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("opening `{}`", path.display())),
    };
    let mut reader = std::io::BufReader::new(&file);
    let (mut lines, mut complete_len, mut buf) = (0u64, 0u64, Vec::new());
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        lines += 1;
        complete_len += n as u64;
    }
    drop(reader);
    file.set_len(complete_len)?;
    let mut file = file;
    file.seek(std::io::SeekFrom::End(0))?;
    Ok(lines)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing `{}`", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing `{}`", path.display()))?;
    Ok(())
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
    let path = dir.join("records.jsonl");
    let file = std::fs::File::open(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let outcome = read_checkpoints(&checkpoints, &key).and_then(|cps| {
        let total = file.metadata().map(|m| m.len() / 400).unwrap_or(0);
        let bar = progress(total, quiet, "verify");
        let report =
            verify_segment(std::io::BufReader::with_capacity(1 << 20, file), &cps, &start, |n| bar.set_position(n));
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
