//! `custody-scan`: static analysis of ML model files, without executing them.
//!
//! The heart is [`pickle`]-level analysis: a walker over every opcode of pickle protocols 0-5
//! with a faithful model of CPython's unpickler (stack, marks, memo, frames), which reports what
//! a file would import, call and rewrite when loaded. Around it, [`container`]-level detection
//! (by content, never by extension) unpacks PyTorch zip and legacy checkpoints, NumPy
//! `.npy`/`.npz`, joblib dumps (plain or compressed) and 7z archives, within resource budgets.
//! A [`policy`] of allowed and denied globals turns imports into findings, and findings into a
//! [`Verdict`]. Jupyter notebooks and plain text are scanned for leaked [`secrets`]
//! ([`scan_notebook`], [`scan_text`]).
//! [`Verdict`]. Separately, [`deps`] checks the pinned versions of dependency lockfiles against
//! an offline OSV vulnerability database.
//!
//! The model formats that hold no pickle are checked for what they can carry instead:
//! safetensors (header and layout validity, metadata worth review), GGUF (full parse; Jinja chat
//! templates, elevated when they look like template injection), ONNX (external data that
//! escapes the model directory, custom operator domains) and Keras (`.keras` archives and legacy
//! HDF5 files: `Lambda` layers, op lambdas, custom objects).
//!
//! ```
//! use custody_scan::{scan_bytes, ScanOptions, Verdict};
//!
//! // protocol 4: builtins.eval("print('hi')")
//! let evil = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x0bprint('hi')\x85R.";
//! let report = scan_bytes("evil.pkl", evil, &ScanOptions::default());
//! assert_eq!(report.verdict, Verdict::Malicious);
//!
//! let benign = b"\x80\x04}\x94\x8c\x01a\x94K\x01s.";
//! assert_eq!(scan_bytes("ok.pkl", benign, &ScanOptions::default()).verdict, Verdict::Clean);
//! ```
//!
//! [`scan_path`] gives the report [`scan_bytes`] gives on the file's bytes, without reading
//! bytes no check needs: pickle streams are walked through a window with their large payloads
//! skipped, and zip archives of the usual layout (PyTorch checkpoints) are indexed from their
//! end, so tensor storages are never read (see [`scan_path`]).
//!
//! Invariants: the library never panics on input, never prints, and never reports an input it
//! could not fully analyse as [`Verdict::Clean`].

#![forbid(unsafe_code)]

pub mod container;
pub mod deps;
mod error;
mod gguf;
mod keras;
mod notebook;
mod onnx;
pub mod opcodes;
pub mod pickle;
pub mod policy;
mod protobuf;
pub mod report;
mod safetensors;
pub mod secrets;
mod source;
mod template;
mod text;
mod zip;

#[cfg(test)]
mod path_tests;

use std::path::Path;
use std::time::Duration;

/// The version of the rules: the import allow- and deny-lists, the secret rules, the format
/// checks and their severities. Bumped with every change to what is reported or how severe
/// it is, so a stored scan says which rules judged it (a scan under older rules can be
/// re-run).
pub const RULES_VERSION: &str = "2026.12.1";

pub use container::detect_format;
pub use deps::{OsvDatabase, is_dependency_file, scan_dependencies};
pub use error::ScanError;
pub use report::{
    AttributeRewrite, Call, Disposition, FileReport, Finding, Format, Import, ImportVia, Location, PickleError,
    PickleReport, RuleId, Severity, Verdict,
};

/// Limits and knobs for a scan. Every limit, when reached, yields an inconclusive finding
/// rather than a clean verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanOptions {
    /// Maximum nesting of containers and nested pickles (zip in zip, pickle in pickle...).
    pub max_depth: u32,
    /// Maximum total bytes produced by decompression for one file.
    pub max_decompressed: u64,
    /// Maximum size of any single decompressed member or stream.
    pub max_member_size: u64,
    /// Maximum decompression ratio (output / input) before a stream is treated as a bomb
    /// (streams under 16 MiB of output are always allowed).
    pub max_ratio: u64,
    /// Maximum memo entries per pickle.
    pub max_memo: usize,
    /// Maximum stack depth per pickle.
    pub max_stack: usize,
    /// Maximum members per archive.
    pub max_members: usize,
    /// Maximum nested pickles scanned per file.
    pub max_nested: u32,
    /// Maximum size of a file read by [`scan_path`].
    pub max_file_size: u64,
    /// Optional wall-clock budget per file.
    pub time_budget: Option<Duration>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_depth: 4,
            max_decompressed: 4 << 30,
            max_member_size: 2 << 30,
            max_ratio: 1000,
            max_memo: 1 << 25,
            max_stack: 1 << 20,
            max_members: 100_000,
            max_nested: 256,
            max_file_size: 64 << 30,
            time_budget: None,
        }
    }
}

/// Scan an in-memory file. `name` is only used in the report. Content that looks like a
/// Jupyter notebook (a JSON object with `"cells"`, `"nbformat"` or `"worksheets"`) goes to
/// [`scan_notebook`].
pub fn scan_bytes(name: &str, data: &[u8], opts: &ScanOptions) -> FileReport {
    if notebook::looks_like_notebook(data) {
        return scan_notebook(name, data);
    }
    let mut ctx = container::Ctx::new(opts);
    let format = ctx.scan_blob(data, "", 0);
    finish(name, format, ctx)
}

/// Scan `data` as a raw pickle stream, whatever its first bytes: every pickle in it, one after
/// another (the first is judged strictly; the ones after each `STOP` as far as they parse, the
/// way a loader calling `pickle.load` repeatedly — e.g. legacy `torch.load` — would read them).
pub fn scan_pickles(name: &str, data: &[u8], opts: &ScanOptions) -> FileReport {
    let mut ctx = container::Ctx::new(opts);
    ctx.bytes_scanned = data.len() as u64;
    let out = pickle::scan_stream(&mut ctx, data, 0, "", 0, pickle::Mode::Primary);
    let format = if out.joblib { Format::Joblib } else { Format::Pickle };
    finish(name, format, ctx)
}

/// Read and scan a file: the same report as [`scan_bytes`] on the file's bytes.
///
/// Memory-mapping needs `unsafe`, so the file is read, but by position where that saves work:
/// a pickle stream (protocol 2 or later: NumPy, joblib, legacy torch...) is walked through a
/// window, its large payloads skipped unless a check needs them (a constant that may be a
/// pickle, a `str` to validate, a loader's argument), and a zip archive of the usual layout
/// (PyTorch checkpoints) is indexed from its end and only the members that need scanning are
/// read (never a tensor storage). Anything else, including a zip of unusual layout, is read
/// whole. A file that changes while it is scanned (a read that fails or comes back short) is
/// an error, never a report on partial bytes.
pub fn scan_path(path: &Path, opts: &ScanOptions) -> Result<FileReport, ScanError> {
    let io_err = |source| ScanError::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    let name = path.display().to_string();
    if meta.len() > opts.max_file_size {
        let mut ctx = container::Ctx::new(opts);
        ctx.findings.push(Finding {
            rule: RuleId::ARCHIVE_BUDGET,
            severity: Severity::Low,
            message: format!("file is {} bytes, over the limit of {}; not scanned", meta.len(), opts.max_file_size),
            location: Location::default(),
        });
        return Ok(finish(&name, Format::Unknown, ctx));
    }
    if !meta.is_file() {
        let data = std::fs::read(path).map_err(io_err)?;
        return Ok(scan_bytes(&name, &data, opts));
    }
    let file = std::fs::File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let src = source::FileSrc::new(file, len, source::WINDOW);
    let report = scan_file(&name, &src, opts);
    match src.take_error() {
        Some(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(io_err(std::io::Error::new(
            e.kind(),
            "the file changed while it was scanned: it is shorter than when it was opened",
        ))),
        Some(e) => Err(io_err(e)),
        None => Ok(report),
    }
}

/// [`scan_path`] on an open file (whose read errors the caller checks).
fn scan_file(name: &str, src: &source::FileSrc, opts: &ScanOptions) -> FileReport {
    let len = src.len();
    // At least enough for every signature the choice below looks at.
    let head_len = len.min(src.window().max(64) as u64) as usize;
    let head = src.read_vec(0, head_len).unwrap_or_default();
    if head.len() as u64 == len {
        return scan_bytes(name, &head, opts);
    }
    let mut ctx = container::Ctx::new(opts);
    if streams_as_pickle(&head)
        && let Ok(n) = usize::try_from(len)
    {
        ctx.bytes_scanned += len;
        let input = source::Input::file(src, 0, n);
        let format = ctx.scan_pickle_stream_input(&input, &head, "", 0);
        return finish(name, format, ctx);
    }
    if head.starts_with(b"PK\x03\x04")
        && let Some(index) = zip::read_index_at(src, opts.max_members)
    {
        ctx.bytes_scanned += len;
        let format = ctx.scan_zip_index(zip::Archive::File(src), &index, "", 0);
        return finish(name, format, ctx);
    }
    let data = usize::try_from(len).ok().and_then(|n| src.read_vec(0, n)).unwrap_or_default();
    scan_bytes(name, &data, opts)
}

/// Whether a file starting with `head` is one that [`scan_bytes`] walks as a pickle stream
/// (`detect_format` says pickle or torch legacy): `PROTO` 0-5 first, and no `{` at offset 8,
/// which safetensors detection (the only earlier check such a start can pass) needs.
fn streams_as_pickle(head: &[u8]) -> bool {
    head.first() == Some(&opcodes::PROTO)
        && head.get(1).is_some_and(|&p| p <= opcodes::HIGHEST_PROTOCOL)
        && head.get(8) != Some(&b'{')
}

/// Scan a plain text file (source code, `.env`, JSON, YAML, config...) for secrets. Findings
/// carry byte offset, line and column; secrets appear only redacted. Text has no structure to
/// fail on, so this is never inconclusive.
///
/// ```
/// use custody_scan::{scan_text, RuleId, Verdict};
///
/// let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
/// let report = scan_text(".env", format!("GITHUB_TOKEN={token}\n").as_bytes());
/// assert_eq!(report.verdict, Verdict::Malicious);
/// let finding = &report.findings[0];
/// assert_eq!(finding.rule, RuleId::SECRET_GITHUB_TOKEN);
/// assert_eq!((finding.location.line, finding.location.column), (Some(1), Some(14)));
/// assert!(finding.message.contains("`ghp_…3zA5`"));
/// assert!(!serde_json::to_string(&report).unwrap().contains(&token));
/// ```
pub fn scan_text(name: &str, text: &[u8]) -> FileReport {
    text_report(name, Format::Text, notebook::scan_text(text), text.len())
}

/// Scan a Jupyter notebook (nbformat 4, or 3 with `worksheets`) for secrets in cell sources and
/// outputs (text of every kind; base64 images and PDFs are skipped). Findings carry the cell
/// and output index and the line within that text. A notebook that does not parse is
/// inconclusive (`notebook.malformed`, naming the JSON error position), never clean, and its
/// raw bytes are still scanned for secrets.
pub fn scan_notebook(name: &str, data: &[u8]) -> FileReport {
    text_report(name, Format::Notebook, notebook::scan_notebook(data), data.len())
}

fn text_report(name: &str, format: Format, mut findings: Vec<Finding>, len: usize) -> FileReport {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let verdict = report::verdict_for(&findings);
    FileReport {
        name: name.to_string(),
        format,
        verdict,
        findings,
        pickles: Vec::new(),
        members: Vec::new(),
        bytes_scanned: len as u64,
    }
}

fn finish(name: &str, format: Format, ctx: container::Ctx<'_>) -> FileReport {
    let mut findings = ctx.findings;
    // Most severe first; stable so equal findings keep stream order.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let verdict = report::verdict_for(&findings);
    FileReport {
        name: name.to_string(),
        format,
        verdict,
        findings,
        pickles: ctx.pickles,
        members: ctx.members,
        bytes_scanned: ctx.bytes_scanned,
    }
}
