//! Scan results attached to model and dataset versions: appended, never changed; the latest
//! one of a subject is what a promotion gate reads.

use crate::rows::{self, micros};
use crate::{Store, StoreError};
use custody_core::{
    AuditDraft, AuditEvent, ModelVersionId, NewScanResult, ProjectId, ResourceRef, ScanId, ScanResult, ScanSeverity,
    ScanSubject, ScanVerdict,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

fn subject_parts(s: &ScanSubject) -> (&'static str, String) {
    match s {
        ScanSubject::ModelVersion(id) => ("model_version", id.to_string()),
        ScanSubject::DatasetVersion(id) => ("dataset_version", id.to_string()),
    }
}

impl Store {
    /// Attaches a scan result to `subject` (whose digest the caller has checked against
    /// `new.scanned_digest`), with its audit record.
    pub async fn attach_scan(
        &self,
        draft: AuditDraft,
        project: ProjectId,
        subject: ScanSubject,
        new: NewScanResult,
        by: String,
    ) -> Result<(ScanResult, AuditEvent), StoreError> {
        new.validate()?;
        let findings = new.files.iter().map(|f| f.findings.len() as u64).sum();
        let max_severity = new.files.iter().flat_map(|f| f.findings.iter().map(|x| x.severity)).max();
        let files = rows::to_json("files", &new.files)?;
        self.write(draft, move |conn, draft| {
            let (new, by, files) = (new.clone(), by.clone(), files.clone());
            Box::pin(async move {
                let r = ScanResult {
                    id: ScanId::new(),
                    project_id: project,
                    subject,
                    tool: new.tool,
                    tool_version: new.tool_version,
                    rules_version: new.rules_version,
                    scanned_digest: new.scanned_digest,
                    verdict: new.verdict,
                    max_severity,
                    findings,
                    files: new.files,
                    submitted_by: by,
                    submitted_at: custody_core::now(),
                };
                let (kind, subject_id) = subject_parts(&r.subject);
                sqlx::query(
                    "INSERT INTO scan_results (id, project_id, subject_kind, subject_id, tool, tool_version, \
                     rules_version, scanned_digest, verdict, max_severity, findings, files, submitted_by, submitted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(r.id.to_string())
                .bind(r.project_id.to_string())
                .bind(kind)
                .bind(&subject_id)
                .bind(&r.tool)
                .bind(&r.tool_version)
                .bind(&r.rules_version)
                .bind(r.scanned_digest.to_string())
                .bind(r.verdict.as_str())
                .bind(r.max_severity.map(ScanSeverity::as_str))
                .bind(i64::try_from(r.findings).unwrap_or(i64::MAX))
                .bind(files)
                .bind(&r.submitted_by)
                .bind(micros(r.submitted_at))
                .execute(&mut *conn)
                .await?;
                draft.resource = ResourceRef::new("scan", r.id);
                // The record says what the decision rests on; the findings themselves are in
                // the result (redacted), and their count is here.
                draft.details = serde_json::json!({
                    "subject": r.subject, "scanned_digest": r.scanned_digest, "verdict": r.verdict,
                    "max_severity": r.max_severity, "findings": r.findings, "files": r.files.len(),
                    "tool": r.tool, "tool_version": r.tool_version, "rules_version": r.rules_version,
                });
                Ok(r)
            })
        })
        .await
    }

    /// The id of model version `version`'s latest scan if it is clean; a conflict naming the
    /// scan, or its absence, otherwise.
    pub async fn clean_scan(&self, version: ModelVersionId) -> Result<ScanId, StoreError> {
        let mut conn = self.read.acquire().await?;
        clean_scan(&mut conn, version).await
    }

    /// The scans attached to `subject`, newest first.
    pub async fn scans(&self, subject: ScanSubject) -> Result<Vec<ScanResult>, StoreError> {
        let (kind, id) = subject_parts(&subject);
        sqlx::query(
            "SELECT * FROM scan_results WHERE subject_kind = $1 AND subject_id = $2 \
             ORDER BY submitted_at DESC, id DESC",
        )
        .bind(kind)
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(scan_from_row)
        .collect()
    }
}

/// The id of model version `version`'s latest scan, which must be clean: a conflict naming the
/// scan (or its absence) otherwise. The promotion gate runs it inside the completing
/// transaction; [`Store::clean_scan`] outside one.
pub(crate) async fn clean_scan(conn: &mut AnyConnection, version: ModelVersionId) -> Result<ScanId, StoreError> {
    match latest(conn, ScanSubject::ModelVersion(version)).await? {
        Some(s) if s.verdict == ScanVerdict::Clean => Ok(s.id),
        Some(s) => Err(StoreError::conflict(
            "scan",
            format!(
                "the version's latest scan ({}, {} {}) is {}: a clean scan of its files is needed first",
                s.id, s.tool, s.tool_version, s.verdict
            ),
        )),
        None => Err(StoreError::conflict("scan", "the version has no scan: attach a clean scan of its files first")),
    }
}

/// The latest scan of `subject`.
async fn latest(conn: &mut AnyConnection, subject: ScanSubject) -> Result<Option<ScanResult>, StoreError> {
    let (kind, id) = subject_parts(&subject);
    sqlx::query(
        "SELECT * FROM scan_results WHERE subject_kind = $1 AND subject_id = $2 \
         ORDER BY submitted_at DESC, id DESC LIMIT 1",
    )
    .bind(kind)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(scan_from_row)
    .transpose()
}

fn scan_from_row(r: &AnyRow) -> Result<ScanResult, StoreError> {
    let kind = rows::text(r, "subject_kind")?;
    let subject = match kind.as_str() {
        "model_version" => ScanSubject::ModelVersion(rows::parsed(r, "subject_id")?),
        "dataset_version" => ScanSubject::DatasetVersion(rows::parsed(r, "subject_id")?),
        other => return Err(StoreError::Corrupt { what: "subject_kind", reason: format!("`{other}`") }),
    };
    let verdict: ScanVerdict = rows::parsed(r, "verdict")?;
    Ok(ScanResult {
        id: rows::parsed(r, "id")?,
        project_id: rows::parsed(r, "project_id")?,
        subject,
        tool: rows::text(r, "tool")?,
        tool_version: rows::text(r, "tool_version")?,
        rules_version: rows::text(r, "rules_version")?,
        scanned_digest: rows::parsed(r, "scanned_digest")?,
        verdict,
        max_severity: rows::opt_text(r, "max_severity")?
            .map(|s| {
                s.parse().map_err(|e: custody_core::CoreError| StoreError::Corrupt {
                    what: "max_severity",
                    reason: e.reason,
                })
            })
            .transpose()?,
        findings: u64::try_from(r.try_get::<i64, _>("findings")?).unwrap_or(0),
        files: rows::json(r, "files")?,
        submitted_by: rows::text(r, "submitted_by")?,
        submitted_at: rows::time(r, "submitted_at")?,
    })
}
