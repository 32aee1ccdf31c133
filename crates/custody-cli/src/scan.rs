//! `custody scan`: model files, archives and directories checked for code that would run when
//! they are loaded, offline, failing closed.

use crate::cli::{FailLevel, ScanArgs};
use crate::commands::{Exit, show};
use custody_scan::{
    FileReport, Format, OsvDatabase, ScanOptions, Severity, Verdict, is_dependency_file, scan_dependencies, scan_path,
    scan_text,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Findings at or above the fail level.
pub const FINDINGS: u8 = 1;
/// A file could not be fully analysed (and nothing failed the scan).
pub const INCONCLUSIVE: u8 = 2;
/// A usage or I/O error.
pub const USAGE: u8 = 3;

/// Files to scan under `paths`, and the paths that could not be read.
fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let (mut files, mut errors) = (Vec::new(), Vec::new());
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                errors.push((path, e.to_string()));
                continue;
            }
        };
        if meta.is_dir() {
            match std::fs::read_dir(&path).and_then(|d| d.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>()) {
                Ok(mut children) => {
                    children.sort_unstable_by(|a, b| b.cmp(a));
                    pending.extend(children);
                }
                Err(e) => errors.push((path, e.to_string())),
            }
        } else if meta.is_file() {
            files.push(path);
        } else if meta.file_type().is_symlink() && paths.contains(&path) {
            // A link named on the command line is what the user asked for; links met while
            // walking are not followed (they could leave the tree or loop).
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => files.push(path),
                Ok(_) => errors.push((path, "a symbolic link to something that is not a file".into())),
                Err(e) => errors.push((path, e.to_string())),
            }
        }
    }
    (files, errors)
}

fn threshold(level: FailLevel) -> Severity {
    match level {
        FailLevel::Critical => Severity::Critical,
        FailLevel::High => Severity::High,
        FailLevel::Medium => Severity::Medium,
        FailLevel::Low => Severity::Low,
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Clean => "clean",
        Verdict::Inconclusive => "INCONCLUSIVE",
        Verdict::Suspicious => "SUSPICIOUS",
        Verdict::Malicious => "MALICIOUS",
    }
}

fn print_report(r: &FileReport, at_least: Severity) {
    println!("{} {} ({:?})", verdict_word(r.verdict), r.name, r.format);
    for f in r.findings.iter().filter(|f| f.severity >= at_least || f.rule.is_inconclusive()) {
        let mut place = f.location.member.clone();
        if let Some(offset) = f.location.offset {
            place = if place.is_empty() { format!("byte {offset}") } else { format!("{place} byte {offset}") };
        }
        println!(
            "  {:<8} {:<26} {}{}",
            format!("{:?}", f.severity).to_lowercase(),
            f.rule.to_string(),
            f.message,
            if place.is_empty() { String::new() } else { format!("  [{place}]") }
        );
    }
}

/// Scans one file: a dependency lockfile against the OSV database when one is given, a model
/// file or archive by its content, and text that is no known format for secrets.
pub(crate) fn scan_one(path: &Path, opts: &ScanOptions, db: Option<&OsvDatabase>) -> Result<FileReport, String> {
    if let Some(db) = db
        && is_dependency_file(path)
    {
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        return Ok(scan_dependencies(path, &data, db));
    }
    let report = scan_path(path, opts).map_err(|e| e.to_string())?;
    if report.format != Format::Unknown {
        return Ok(report);
    }
    // Source, configuration and documents are no model format, but they can leak credentials.
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    if looks_like_text(&data) { Ok(scan_text(&report.name, &data)) } else { Ok(report) }
}

/// UTF-8 with no NUL in its first 64 KiB.
fn looks_like_text(data: &[u8]) -> bool {
    let head = &data[..data.len().min(64 * 1024)];
    !head.contains(&0)
        && match std::str::from_utf8(head) {
            Ok(_) => true,
            // A multi-byte character cut at the window's end is still text.
            Err(e) => e.error_len().is_none(),
        }
}

/// The scan's exit code: findings at the fail level first, then unreadable files, then files
/// that could not be fully analysed.
fn exit_code(reports: &[FileReport], errors: usize, fail: Severity) -> u8 {
    if reports.iter().any(|r| r.findings.iter().any(|f| f.severity >= fail)) {
        FINDINGS
    } else if errors > 0 {
        USAGE
    } else if reports.iter().any(|r| r.verdict == Verdict::Inconclusive) {
        INCONCLUSIVE
    } else {
        0
    }
}

/// `custody scan`.
pub async fn run(args: ScanArgs, json: bool) -> anyhow::Result<()> {
    let (files, errors) = collect(&args.paths);
    let bar = ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
    if json || files.len() < 50 {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("scanning {pos}/{len} files {wide_bar} {eta}")?);
    let db = match &args.osv {
        Some(dir) => Some(OsvDatabase::open(dir).map_err(|e| anyhow::anyhow!(e).context("--osv"))?),
        None => None,
    };
    let worker_bar = bar.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        let opts = ScanOptions::default();
        files
            .par_iter()
            .map(|f| {
                let r = scan_one(f, &opts, db.as_ref()).map_err(|e| (f.clone(), e));
                worker_bar.inc(1);
                r
            })
            .collect::<Vec<_>>()
    })
    .await?;
    bar.finish_and_clear();
    let mut errors = errors;
    let mut reports = Vec::new();
    for o in outcomes {
        match o {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(e),
        }
    }
    let fail = threshold(args.fail_level);
    let code = exit_code(&reports, errors.len(), fail);
    let count = |v: Verdict| reports.iter().filter(|r| r.verdict == v).count();
    let summary = json!({
        "files": reports.len(), "clean": count(Verdict::Clean), "suspicious": count(Verdict::Suspicious),
        "malicious": count(Verdict::Malicious), "inconclusive": count(Verdict::Inconclusive), "errors": errors.len(),
        "fail_level": format!("{:?}", args.fail_level).to_lowercase(), "exit": code,
        "scanner": { "name": "custody-scan", "version": env!("CARGO_PKG_VERSION") },
    });
    let value = json!({
        "summary": summary,
        "reports": reports,
        "errors": errors.iter().map(|(p, e)| json!({ "path": p, "error": e })).collect::<Vec<_>>(),
    });
    let sarif_to_stdout = args.sarif.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if let Some(path) = &args.sarif {
        let log = crate::sarif::log(&reports, &errors);
        if sarif_to_stdout {
            crate::output::json(&log)?;
        } else {
            crate::output::write_atomically(path, serde_json::to_string_pretty(&log)?.as_bytes())?;
        }
    }
    if sarif_to_stdout {
        for (p, e) in &errors {
            eprintln!("error: cannot scan `{}`: {e}", p.display());
        }
        return if code == 0 { Ok(()) } else { Err(Exit(code).into()) };
    }
    show(json, &value, || {
        let shown = if args.all { Severity::Info } else { fail };
        for r in reports.iter().filter(|r| args.all || r.verdict != Verdict::Clean) {
            print_report(r, shown);
        }
        for (p, e) in &errors {
            eprintln!("error: cannot scan `{}`: {e}", p.display());
        }
        println!(
            "scanned {} files: {} clean, {} suspicious, {} malicious, {} inconclusive{}",
            reports.len(),
            count(Verdict::Clean),
            count(Verdict::Suspicious),
            count(Verdict::Malicious),
            count(Verdict::Inconclusive),
            if errors.is_empty() { String::new() } else { format!(", {} unreadable", errors.len()) }
        );
    })?;
    if code == 0 { Ok(()) } else { Err(Exit(code).into()) }
}
