//! OpenLineage events as received. The store keeps each distinct event of a project once
//! (keyed by its content hash) with its audit record; the server parses them and keeps the
//! graph in memory, rebuilt from here on start.

use crate::rows::micros;
use crate::{Store, StoreError};
use custody_core::{AuditDraft, AuditEvent, ProjectId, ResourceRef};
use sqlx::Row;

/// One event to keep: what the server read from it, and the body exactly as received.
#[derive(Debug, Clone)]
pub struct LineageEventRecord {
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// Hex SHA-256 of the canonical event: the idempotency key.
    pub event_id: String,
    /// `START`, `COMPLETE`, … for run events; `DATASET` or `JOB`.
    pub event_type: String,
    /// When it happened, microseconds since the Unix epoch.
    pub event_time: i64,
    /// The run's id, for run events.
    pub run_id: Option<String>,
    /// `namespace/name` of the job, when there is one.
    pub job: Option<String>,
    /// The producer URI.
    pub producer: String,
    /// The body as received.
    pub body: String,
}

impl Store {
    /// Keeps `event` unless the project already has it; `true` when it was new. Either way
    /// the request is recorded (a duplicate as such, so retries are visible but harmless).
    pub async fn record_lineage_event(
        &self,
        draft: AuditDraft,
        event: LineageEventRecord,
        by: String,
    ) -> Result<(bool, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let (e, by) = (event.clone(), by.clone());
            Box::pin(async move {
                let inserted = sqlx::query(
                    "INSERT INTO lineage_events (project_id, event_id, event_type, event_time, run_id, job, producer, \
                     body, received_by, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (project_id, event_id) DO NOTHING",
                )
                .bind(e.project_id.to_string())
                .bind(&e.event_id)
                .bind(&e.event_type)
                .bind(e.event_time)
                .bind(e.run_id.as_deref())
                .bind(e.job.as_deref())
                .bind(&e.producer)
                .bind(&e.body)
                .bind(&by)
                .bind(micros(custody_core::now()))
                .execute(&mut *conn)
                .await?
                .rows_affected()
                    == 1;
                draft.resource = ResourceRef::new("lineage_event", &e.event_id);
                draft.details = serde_json::json!({
                    "event_id": e.event_id, "event_type": e.event_type, "run_id": e.run_id, "job": e.job,
                    "producer": e.producer, "duplicate": !inserted,
                });
                Ok(inserted)
            })
        })
        .await
    }

    /// Every event body of `project`, in the order received (any order rebuilds the same graph).
    pub async fn lineage_events(&self, project: ProjectId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT body FROM lineage_events WHERE project_id = $1 ORDER BY received_at, event_id")
            .bind(project.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>("body")?)).collect()
    }

    /// The projects that have lineage events.
    pub async fn lineage_projects(&self) -> Result<Vec<ProjectId>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT project_id FROM lineage_events").fetch_all(&self.read).await?;
        rows.iter().map(|r| crate::rows::parsed(r, "project_id")).collect()
    }
}
