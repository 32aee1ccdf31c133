//! `custody model scan` and `custody dataset scan`: scan exactly the bytes a version is, and
//! attach the result to it. What is scanned is proven to be the version here first (the model's
//! files hashed to the root its trusted signer signed, the dataset file to the version's
//! SHA-256), so a clean scan cannot be attached to a version for some other files.

use crate::auditlog::TAMPERED;
use crate::client::Client;
use crate::commands::{Exit, path_segment as segment, show};
use anyhow::{Context, bail};
use custody_core::{
    DatasetVersion, MAX_FINDINGS_PER_FILE, NewScanResult, ScanFinding, ScanResult, ScanSeverity, ScanVerdict,
    ScannedFile, Sha256Digest,
};
use custody_provenance::ManifestDiff;
use custody_scan::{FileReport, Location, OsvDatabase, ScanOptions, Severity, Verdict};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

fn severity(s: Severity) -> ScanSeverity {
    match s {
        Severity::Info => ScanSeverity::Info,
        Severity::Low => ScanSeverity::Low,
        Severity::Medium => ScanSeverity::Medium,
        Severity::High => ScanSeverity::High,
        Severity::Critical => ScanSeverity::Critical,
    }
}

fn verdict(v: Verdict) -> ScanVerdict {
    match v {
        Verdict::Clean => ScanVerdict::Clean,
        Verdict::Inconclusive => ScanVerdict::Inconclusive,
        Verdict::Suspicious => ScanVerdict::Suspicious,
        Verdict::Malicious => ScanVerdict::Malicious,
    }
}

fn place(l: &Location) -> String {
    let mut parts = Vec::new();
    if !l.member.is_empty() {
        parts.push(l.member.clone());
    }
    if let Some(c) = l.cell {
        parts.push(match l.output {
            Some(o) => format!("cell {c} output {o}"),
            None => format!("cell {c}"),
        });
    }
    match (l.line, l.column, l.offset) {
        (Some(line), Some(col), _) => parts.push(format!("line {line} column {col}")),
        (Some(line), None, _) => parts.push(format!("line {line}")),
        (None, _, Some(offset)) => parts.push(format!("byte {offset}")),
        _ => {}
    }
    parts.join(", ")
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max - 1).collect::<String>()) }
}

/// One file's report as the registry stores it: findings most severe first, as many as it
/// keeps (the verdict is the scanner's, over all of them).
pub fn scanned_file(path: String, r: &FileReport) -> ScannedFile {
    let format = serde_json::to_value(r.format).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    ScannedFile {
        path,
        format,
        verdict: verdict(r.verdict),
        findings: r
            .findings
            .iter()
            .take(MAX_FINDINGS_PER_FILE)
            .map(|f| ScanFinding {
                rule: f.rule.to_string(),
                severity: severity(f.severity),
                message: clip(&f.message, 2000),
                location: clip(&place(&f.location), 4096),
            })
            .collect(),
    }
}

fn result(scanned_digest: Sha256Digest, files: Vec<ScannedFile>) -> NewScanResult {
    NewScanResult {
        tool: "custody-scan".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        rules_version: custody_scan::RULES_VERSION.into(),
        scanned_digest,
        verdict: files.iter().map(|f| f.verdict).max().unwrap_or(ScanVerdict::Clean),
        files,
    }
}

/// Scans `(relative path, file)` pairs on every core.
async fn scan_files(files: Vec<(String, PathBuf)>, osv: Option<PathBuf>) -> anyhow::Result<Vec<ScannedFile>> {
    let db = match &osv {
        Some(dir) => Some(OsvDatabase::open(dir).map_err(|e| anyhow::anyhow!(e).context("--osv"))?),
        None => None,
    };
    tokio::task::spawn_blocking(move || {
        let opts = ScanOptions::default();
        files
            .par_iter()
            .map(|(rel, path)| {
                let r = crate::scan::scan_one(path, &opts, db.as_ref())
                    .map_err(|e| anyhow::anyhow!("cannot scan `{}`: {e}", path.display()))?;
                Ok(scanned_file(rel.clone(), &r))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await
    .context("the scanning task failed")?
}

fn print_attached(r: &ScanResult, what: &str, gated: bool) {
    println!("attached scan {} to {what}: {} ({} files, {} findings)", r.id, r.verdict, r.files.len(), r.findings);
    for f in r.files.iter().filter(|f| f.verdict != ScanVerdict::Clean) {
        println!("{} {}", f.verdict, f.path);
        for x in &f.findings {
            let at = if x.location.is_empty() { String::new() } else { format!("  [{}]", x.location) };
            println!("  {:<8} {:<26} {}{at}", format!("{:?}", x.severity).to_lowercase(), x.rule, x.message);
        }
    }
    if gated && r.verdict != ScanVerdict::Clean {
        println!("the version cannot move to staging or production until a clean scan is attached");
    }
}

/// Scans the model directory `dir` as version `label` of model `id` and attaches the result:
/// `Err(diff)` (nothing scanned, nothing sent) when `dir` is not the signed version.
pub async fn attach_model(
    c: &Client,
    id: &str,
    label: &str,
    dir: &Path,
    osv: Option<PathBuf>,
    quiet: bool,
) -> anyhow::Result<Result<ScanResult, ManifestDiff>> {
    let sv = crate::registry::signed_version(c, id, label).await?;
    let served = crate::cli::ServedArgs { dir: Some(dir.to_path_buf()), url: None };
    let actual = crate::registry::hash_served(&served, &sv.signed, quiet).await?.manifest;
    let diff = sv.signed.manifest.diff(&actual);
    if !diff.is_empty() {
        return Ok(Err(diff));
    }
    let mut paths: Vec<String> = sv.signed.manifest.resources.iter().map(|r| r.name.path.clone()).collect();
    paths.dedup();
    let files = paths
        .into_iter()
        .map(|rel| {
            let path = if dir.is_file() { dir.to_path_buf() } else { dir.join(&rel) };
            (rel, path)
        })
        .collect();
    let body = result(sv.version.root_digest, scan_files(files, osv).await?);
    let path = format!("/api/v1/models/{}/versions/{}/scans", segment(id), segment(label));
    Ok(Ok(c.post(&path, &body).await?))
}

/// `custody model scan ID --label V DIR`.
pub async fn model(
    c: &Client,
    id: &str,
    label: &str,
    dir: &Path,
    osv: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    match attach_model(c, id, label, dir, osv, json).await? {
        Ok(r) => show(json, &r, || print_attached(&r, &format!("model {id} version {label}"), true)),
        Err(diff) => {
            if json {
                crate::output::json(&serde_json::json!({ "attached": false, "differences": diff }))?;
            } else {
                eprintln!("`{}` is not version {label} as signed: nothing was scanned or attached", dir.display());
                crate::registry::print_diff(&diff, true);
            }
            Err(Exit(TAMPERED).into())
        }
    }
}

/// `custody dataset scan ID --label V FILE`.
pub async fn dataset(c: &Client, id: &str, label: &str, file: &Path, json: bool) -> anyhow::Result<()> {
    let versions: Vec<DatasetVersion> = c.get(&format!("/api/v1/datasets/{}/versions", segment(id))).await?;
    let Some(v) = versions.into_iter().find(|v| v.label.as_str() == label) else {
        bail!("dataset {id} has no version `{label}`");
    };
    let (digest, _) = crate::digest::sha256_file(file, json)?;
    if digest != v.digest {
        if !json {
            eprintln!(
                "`{}` is {digest}, not version {label}'s {}: nothing was scanned or attached",
                file.display(),
                v.digest
            );
        }
        return Err(Exit(TAMPERED).into());
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    let body = result(v.digest, scan_files(vec![(name, file.to_path_buf())], None).await?);
    let path = format!("/api/v1/datasets/{}/versions/{}/scans", segment(id), segment(label));
    let r: ScanResult = c.post(&path, &body).await?;
    show(json, &r, || print_attached(&r, &format!("dataset version {label}"), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_read_like_the_scan_output() {
        let l = Location { member: "archive/data.pkl".into(), offset: Some(42), ..Location::default() };
        assert_eq!(place(&l), "archive/data.pkl, byte 42");
        let l = Location { cell: Some(3), output: Some(0), line: Some(2), column: Some(7), ..Location::default() };
        assert_eq!(place(&l), "cell 3 output 0, line 2 column 7");
        assert_eq!(place(&Location::default()), "");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
