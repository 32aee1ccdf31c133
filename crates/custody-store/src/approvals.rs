use crate::datasets::{dataset_by_id, set_classification};
use crate::rows::{self, micros};
use crate::{Store, StoreError};
use custody_core::{
    Approval, ApprovalId, ApprovalKind, ApprovalStatus, AuditDraft, AuditEvent, Classification, DatasetId, Project,
    ResourceRef,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

const APPROVAL_SELECT: &str =
    "SELECT a.*, p.name AS project_name FROM approvals a JOIN projects p ON p.id = a.project_id";

impl Store {
    /// Opens a request to lower a dataset's classification to `to`. Nothing changes until an
    /// approver other than the requester approves it.
    pub async fn request_lower_classification(
        &self,
        draft: AuditDraft,
        dataset_id: DatasetId,
        to: Classification,
        reason: String,
        ticket: Option<String>,
        requested_by: String,
    ) -> Result<(Approval, AuditEvent), StoreError> {
        let backend = self.backend;
        self.write(draft, move |conn, draft| {
            let (reason, ticket, requested_by) = (reason.clone(), ticket.clone(), requested_by.clone());
            Box::pin(async move {
                let d = dataset_by_id(conn, backend, dataset_id, true).await?;
                if to >= d.classification {
                    return Err(StoreError::conflict(
                        "classification",
                        format!("`{to}` does not lower `{}`; raising needs no approval", d.classification),
                    ));
                }
                let subject = ResourceRef::new("dataset", dataset_id);
                let pending = sqlx::query("SELECT id FROM approvals WHERE subject = $1 AND status = 'pending'")
                    .bind(&subject.0)
                    .fetch_optional(&mut *conn)
                    .await?;
                if pending.is_some() {
                    return Err(StoreError::conflict("dataset", "a classification change for it is already pending"));
                }
                let a = Approval {
                    id: ApprovalId::new(),
                    project_id: d.project_id,
                    project: d.project,
                    subject,
                    kind: ApprovalKind::LowerClassification { from: d.classification, to },
                    reason,
                    ticket,
                    requested_by,
                    requested_at: custody_core::now(),
                    status: ApprovalStatus::Pending,
                    decided_by: None,
                    decided_at: None,
                    decision_comment: None,
                };
                sqlx::query(
                    "INSERT INTO approvals (id, project_id, subject, kind, reason, ticket, requested_by, requested_at, status) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
                )
                .bind(a.id.to_string())
                .bind(a.project_id.to_string())
                .bind(&a.subject.0)
                .bind(rows::to_json("kind", &a.kind)?)
                .bind(&a.reason)
                .bind(a.ticket.clone())
                .bind(&a.requested_by)
                .bind(micros(a.requested_at))
                .execute(&mut *conn)
                .await?;
                draft.details = serde_json::json!({ "approval_id": a.id, "kind": a.kind, "ticket": a.ticket });
                Ok(a)
            })
        })
        .await
    }

    /// Decides a pending approval. The decider must not be the requester. An approved
    /// classification change is applied in the same transaction, and only if the dataset is
    /// still at the level the request was made from.
    pub async fn decide_approval(
        &self,
        draft: AuditDraft,
        id: ApprovalId,
        approve: bool,
        decided_by: String,
        comment: Option<String>,
    ) -> Result<(Approval, AuditEvent), StoreError> {
        let backend = self.backend;
        self.write_changing_facts(draft, move |conn, draft| {
            let (decided_by, comment) = (decided_by.clone(), comment.clone());
            Box::pin(async move {
                let sql = format!("{APPROVAL_SELECT} WHERE a.id = $1{}", backend.for_update().replace("UPDATE", "UPDATE OF a"));
                let mut a = sqlx::query(&sql)
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .as_ref()
                    .map(approval_from_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::not_found("approval", id))?;
                if a.status != ApprovalStatus::Pending {
                    return Err(StoreError::conflict("approval", format!("it was already {}", a.status.as_str())));
                }
                if a.requested_by == decided_by {
                    return Err(StoreError::conflict("approval", "the requester cannot decide their own request"));
                }
                a.status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Rejected };
                a.decided_by = Some(decided_by);
                a.decided_at = Some(custody_core::now());
                a.decision_comment = comment;
                if approve {
                    apply(conn, backend, &a).await?;
                }
                sqlx::query("UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, decision_comment = $4 WHERE id = $5")
                    .bind(a.status.as_str())
                    .bind(a.decided_by.clone())
                    .bind(a.decided_at.map(micros))
                    .bind(a.decision_comment.clone())
                    .bind(a.id.to_string())
                    .execute(&mut *conn)
                    .await?;
                draft.resource = ResourceRef::new("approval", a.id);
                draft.details = serde_json::json!({ "status": a.status, "subject": a.subject, "kind": a.kind, "requested_by": a.requested_by });
                Ok(a)
            })
        })
        .await
    }

    /// The approval with `id`.
    pub async fn approval(&self, id: ApprovalId) -> Result<Approval, StoreError> {
        sqlx::query(&format!("{APPROVAL_SELECT} WHERE a.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(approval_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("approval", id))
    }

    /// The approvals of a project, newest first, optionally only those with `status`.
    pub async fn approvals(
        &self,
        project: &Project,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut q = format!("{APPROVAL_SELECT} WHERE a.project_id = $1");
        if status.is_some() {
            q.push_str(" AND a.status = $2");
        }
        q.push_str(" ORDER BY a.requested_at DESC LIMIT 500");
        let mut query = sqlx::query(&q).bind(project.id.to_string());
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        query.fetch_all(&self.read).await?.iter().map(approval_from_row).collect()
    }
}

async fn apply(conn: &mut AnyConnection, backend: crate::Backend, a: &Approval) -> Result<(), StoreError> {
    match &a.kind {
        ApprovalKind::LowerClassification { from, to } => {
            let id: DatasetId = a
                .subject
                .0
                .strip_prefix("dataset:")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::Corrupt { what: "approval subject", reason: a.subject.0.clone() })?;
            let d = dataset_by_id(conn, backend, id, true).await?;
            if d.classification != *from {
                return Err(StoreError::conflict(
                    "approval",
                    format!("the dataset is now `{}`, not `{from}` as when this was requested", d.classification),
                ));
            }
            set_classification(conn, id, *to).await
        }
    }
}

fn approval_from_row(row: &AnyRow) -> Result<Approval, StoreError> {
    Ok(Approval {
        id: rows::parsed(row, "id")?,
        project_id: rows::parsed(row, "project_id")?,
        project: rows::parsed(row, "project_name")?,
        subject: ResourceRef(rows::text(row, "subject")?),
        kind: rows::json(row, "kind")?,
        reason: rows::text(row, "reason")?,
        ticket: rows::opt_text(row, "ticket")?,
        requested_by: rows::text(row, "requested_by")?,
        requested_at: rows::time(row, "requested_at")?,
        status: rows::parsed(row, "status")?,
        decided_by: rows::opt_text(row, "decided_by")?,
        decided_at: rows::opt_time(row, "decided_at")?,
        decision_comment: rows::opt_text(row, "decision_comment")?,
    })
}
