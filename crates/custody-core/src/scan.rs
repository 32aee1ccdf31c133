//! Scan results attached to what the registry holds: the report of a scanner (which tool, which
//! rules, the digest of exactly what it read, each file's verdict and findings) bound to a model
//! version or a dataset version, so a promotion can require a clean scan of the very bytes that
//! were signed.

use crate::{CoreError, DatasetVersionId, ModelVersionId, ProjectId, Sha256Digest, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

crate::ids::typed_id!(
    /// Identifies a [`ScanResult`].
    ScanId, "scan_id");

/// How serious a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScanSeverity {
    /// Context only.
    Info,
    /// Worth knowing, not a reason to block.
    Low,
    /// Unknown or unusual behaviour.
    Medium,
    /// Known-dangerous behaviour.
    High,
    /// Direct code execution, file or network access, a leaked credential.
    Critical,
}

impl ScanSeverity {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl std::str::FromStr for ScanSeverity {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        [Self::Info, Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| CoreError::invalid("severity", format!("`{s}` is not info, low, medium, high or critical")))
    }
}

/// A scanner's judgement of a file, or of everything scanned. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScanVerdict {
    /// Fully analysed; nothing at medium or above.
    Clean,
    /// Could not be fully analysed; never counts as clean.
    Inconclusive,
    /// Something not known to be safe.
    Suspicious,
    /// Something known to be dangerous.
    Malicious,
}

impl ScanVerdict {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Inconclusive => "inconclusive",
            Self::Suspicious => "suspicious",
            Self::Malicious => "malicious",
        }
    }

    /// The best verdict a file with a finding of this severity can have: a report may judge
    /// worse than its findings (a rule that could not finish), never better.
    pub fn at_least(severity: ScanSeverity) -> Self {
        match severity {
            ScanSeverity::Critical | ScanSeverity::High => Self::Malicious,
            ScanSeverity::Medium => Self::Suspicious,
            ScanSeverity::Low | ScanSeverity::Info => Self::Clean,
        }
    }
}

impl fmt::Display for ScanVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ScanVerdict {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        [Self::Clean, Self::Inconclusive, Self::Suspicious, Self::Malicious]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                CoreError::invalid("verdict", format!("`{s}` is not clean, inconclusive, suspicious or malicious"))
            })
    }
}

/// One finding, as stored: secrets appear only in their redacted form (the scanner never
/// reports more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanFinding {
    /// The rule that fired (`pickle.dangerous-import`, `secret.aws-access-key`, …).
    pub rule: String,
    /// How serious it is.
    pub severity: ScanSeverity,
    /// What was found.
    pub message: String,
    /// Where inside the file: member path, byte offset, cell (free text).
    #[serde(default)]
    pub location: String,
}

/// One scanned file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScannedFile {
    /// Its path, relative to the model directory (`/`-separated); for a dataset version, the
    /// file's name.
    pub path: String,
    /// The format the scanner recognised.
    pub format: String,
    /// The scanner's verdict on it.
    pub verdict: ScanVerdict,
    /// What it found, most severe first.
    #[serde(default)]
    pub findings: Vec<ScanFinding>,
}

/// A scan report to attach (`POST …/scans`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScanResult {
    /// The scanner (`custody-scan`).
    pub tool: String,
    /// Its version.
    pub tool_version: String,
    /// The version of its rules (allow/deny lists, secret rules).
    pub rules_version: String,
    /// The digest of what was scanned: a model version's OMS root digest, a dataset version's
    /// content SHA-256. It must be the subject's own.
    pub scanned_digest: Sha256Digest,
    /// The overall verdict: the worst of the files'.
    pub verdict: ScanVerdict,
    /// Every file scanned.
    pub files: Vec<ScannedFile>,
}

/// The largest report accepted: files, and findings per file.
pub const MAX_SCANNED_FILES: usize = 100_000;
/// Findings kept per file; a scanner reports the most severe first.
pub const MAX_FINDINGS_PER_FILE: usize = 1_000;

fn text(field: &'static str, what: &str, s: &str, max: usize) -> Result<(), CoreError> {
    if s.is_empty() && field != "location" {
        return Err(CoreError::invalid(field, format!("{what} is empty")));
    }
    if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CoreError::invalid(field, format!("{what} must be at most {max} printable characters")));
    }
    Ok(())
}

impl NewScanResult {
    /// Checks sizes and that no verdict is better than its findings, nor the overall verdict
    /// better than a file's. Paths must be relative, without `.`/`..` components, and unique.
    pub fn validate(&self) -> Result<(), CoreError> {
        text("tool", "tool", &self.tool, 100)?;
        text("tool_version", "tool_version", &self.tool_version, 100)?;
        text("rules_version", "rules_version", &self.rules_version, 100)?;
        if self.files.is_empty() {
            return Err(CoreError::invalid("files", "a scan of nothing proves nothing: no files"));
        }
        if self.files.len() > MAX_SCANNED_FILES {
            return Err(CoreError::invalid("files", format!("more than {MAX_SCANNED_FILES} files")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in self.files.iter().enumerate() {
            f.validate(i)?;
            if !seen.insert(f.path.as_str()) {
                return Err(CoreError::invalid("files", format!("files[{i}]: `{}` is listed twice", f.path)));
            }
        }
        let worst = self.files.iter().map(|f| f.verdict).max().unwrap_or(ScanVerdict::Clean);
        if self.verdict < worst {
            return Err(CoreError::invalid(
                "verdict",
                format!("`{}` is better than the worst file's verdict `{worst}`", self.verdict),
            ));
        }
        Ok(())
    }
}

impl ScannedFile {
    fn validate(&self, i: usize) -> Result<(), CoreError> {
        let at = |reason: String| CoreError::invalid("files", format!("files[{i}]: {reason}"));
        text("files", "path", &self.path, 4096).map_err(|e| at(e.reason))?;
        if self.path.starts_with('/') || self.path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(at(format!("path `{}` is not a clean relative path", crate::name::truncate(&self.path, 80))));
        }
        text("files", "format", &self.format, 50).map_err(|e| at(e.reason))?;
        if self.findings.len() > MAX_FINDINGS_PER_FILE {
            return Err(at(format!("more than {MAX_FINDINGS_PER_FILE} findings")));
        }
        for (j, f) in self.findings.iter().enumerate() {
            let at = |reason: String| at(format!("findings[{j}]: {reason}"));
            text("files", "rule", &f.rule, 100).map_err(|e| at(e.reason))?;
            text("files", "message", &f.message, 2000).map_err(|e| at(e.reason))?;
            text("location", "location", &f.location, 4096).map_err(|e| at(e.reason))?;
            let floor = ScanVerdict::at_least(f.severity);
            if self.verdict < floor {
                return Err(at(format!(
                    "a {:?} finding makes the file at least `{floor}`, not `{}`",
                    f.severity, self.verdict
                )
                .to_lowercase()));
            }
        }
        Ok(())
    }
}

/// What a scan is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ScanSubject {
    /// A model version (its OMS root digest was scanned).
    ModelVersion(ModelVersionId),
    /// A dataset version (its content was scanned).
    DatasetVersion(DatasetVersionId),
}

/// A stored scan result. Never changed: a later scan is a new result, and the latest decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScanResult {
    /// Its id.
    pub id: ScanId,
    /// The project.
    pub project_id: ProjectId,
    /// What was scanned.
    pub subject: ScanSubject,
    /// The scanner.
    pub tool: String,
    /// Its version.
    pub tool_version: String,
    /// Its rules' version.
    pub rules_version: String,
    /// The digest of what was scanned (equal to the subject's).
    pub scanned_digest: Sha256Digest,
    /// The overall verdict.
    pub verdict: ScanVerdict,
    /// The most severe finding's severity, if any.
    pub max_severity: Option<ScanSeverity>,
    /// How many findings in all.
    pub findings: u64,
    /// Every file with its verdict and findings.
    pub files: Vec<ScannedFile>,
    /// Who attached it.
    pub submitted_by: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, verdict: ScanVerdict, severity: Option<ScanSeverity>) -> ScannedFile {
        ScannedFile {
            path: path.into(),
            format: "pickle".into(),
            verdict,
            findings: severity
                .map(|severity| ScanFinding {
                    rule: "r".into(),
                    severity,
                    message: "m".into(),
                    location: String::new(),
                })
                .into_iter()
                .collect(),
        }
    }

    fn report(verdict: ScanVerdict, files: Vec<ScannedFile>) -> NewScanResult {
        NewScanResult {
            tool: "custody-scan".into(),
            tool_version: "0.1.0".into(),
            rules_version: "1".into(),
            scanned_digest: Sha256Digest::from_bytes([7; 32]),
            verdict,
            files,
        }
    }

    #[test]
    fn verdicts_are_never_better_than_findings() {
        use ScanSeverity::*;
        use ScanVerdict::*;
        assert!(report(Clean, vec![file("a", Clean, Some(Low))]).validate().is_ok());
        assert!(report(Inconclusive, vec![file("a", Inconclusive, Some(Low))]).validate().is_ok());
        let e = report(Clean, vec![file("a", Clean, Some(High))]).validate().unwrap_err();
        assert!(e.reason.contains("files[0]: findings[0]"), "{e}");
        assert!(report(Malicious, vec![file("a", Suspicious, Some(Critical))]).validate().is_err());
        let e =
            report(Clean, vec![file("a", Clean, None), file("b", Suspicious, Some(Medium))]).validate().unwrap_err();
        assert_eq!(e.field, "verdict");
        assert!(report(Malicious, vec![file("a", Clean, None)]).validate().is_ok(), "worse than the files is allowed");
    }

    #[test]
    fn paths_are_clean_relative_and_unique() {
        use ScanVerdict::*;
        for bad in ["/etc/passwd", "a/../b", "./a", "a//b", ""] {
            assert!(report(Clean, vec![file(bad, Clean, None)]).validate().is_err(), "{bad}");
        }
        assert!(report(Clean, vec![file("a/b.pkl", Clean, None), file("a/b.pkl", Clean, None)]).validate().is_err());
        assert!(report(Clean, vec![]).validate().is_err());
    }
}
