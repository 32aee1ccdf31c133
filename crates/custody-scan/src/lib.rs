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
mod template;
mod text;
mod zip;

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

/// Read and scan a file. (The file is read into memory: memory-mapping needs `unsafe`.)
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
    let data = std::fs::read(path).map_err(io_err)?;
    Ok(scan_bytes(&name, &data, opts))
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
