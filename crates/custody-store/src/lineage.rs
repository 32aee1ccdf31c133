//! What a project's lineage graph is built from: OpenLineage events as received (each
//! distinct event once, keyed by its content hash, with its audit record), the registry's
//! datasets, transform declarations and erasure receipts. The server parses the events and
//! keeps the graph in memory, rebuilt from here on start; `lineage_heads` tells every replica
//! when it is behind (see `migrations/0007_lineage_context.sql`). On SQLite, where write
//! transactions never overlap, an event's count is taken in its INSERT instead of by bumping
//! the row, and the event count read is the larger of the row's and the highest stored.

use crate::rows::{int, micros, opt_text, opt_time, parsed, text, time};
use crate::writer::GroupWrite;
use crate::{Backend, BoxFuture, Store, StoreError};
use custody_core::{AuditDraft, AuditEvent, Classification, ProjectId, ResourceRef, Sha256Digest, Timestamp};
use sqlx::{AnyConnection, Row};

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
    /// Keeps `event` unless the project already has it. Either way the request is recorded (a
    /// duplicate as such, so retries are visible but harmless); a new event takes the next
    /// count of the project's [`LineageHead`] (so does a duplicate on PostgreSQL).
    pub async fn record_lineage_event(
        &self,
        draft: AuditDraft,
        event: LineageEventRecord,
        by: String,
    ) -> Result<(StoredEvent, AuditEvent), StoreError> {
        self.write_grouped(draft, EventWrite { event, by }).await
    }

    /// Every event body of `project`, in the order received (any order rebuilds the same graph).
    pub async fn lineage_events(&self, project: ProjectId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT body FROM lineage_events WHERE project_id = $1 ORDER BY received_at, event_id")
            .bind(project.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>("body")?)).collect()
    }

    /// The events of `project` stored after generation `after` up to `upto` (see
    /// [`Store::lineage_head`]), for a replica catching up.
    pub async fn lineage_events_between(
        &self,
        project: ProjectId,
        after: i64,
        upto: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM lineage_events WHERE project_id = $1 AND generation > $2 AND generation <= $3 \
             ORDER BY generation",
        )
        .bind(project.to_string())
        .bind(after)
        .bind(upto)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>("body")?)).collect()
    }

    /// How many changes `project`'s lineage has had: (events, context). Zero for a project
    /// with none.
    pub async fn lineage_head(&self, project: ProjectId) -> Result<LineageHead, StoreError> {
        // On SQLite the events' counts are taken in their INSERTs (`insert_events_sqlite`).
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT max(coalesce((SELECT events FROM lineage_heads WHERE project_id = $1), 0), \
                 coalesce((SELECT max(generation) FROM lineage_events WHERE project_id = $1), 0)) AS events, \
                 coalesce((SELECT context FROM lineage_heads WHERE project_id = $1), 0) AS context"
            }
            Backend::Postgres => "SELECT events, context FROM lineage_heads WHERE project_id = $1",
        };
        let row = sqlx::query(sql).bind(project.to_string()).fetch_optional(&self.read).await?;
        Ok(match row {
            Some(r) => LineageHead { events: int(&r, "events")?, context: int(&r, "context")? },
            None => LineageHead::default(),
        })
    }

    /// The projects that have lineage events.
    pub async fn lineage_projects(&self) -> Result<Vec<ProjectId>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT project_id FROM lineage_events").fetch_all(&self.read).await?;
        rows.iter().map(|r| crate::rows::parsed(r, "project_id")).collect()
    }
}

/// What [`Store::record_lineage_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent {
    /// `false` when the project already had the event (nothing was stored).
    pub new: bool,
    /// The project's event count this write took ([`LineageHead::events`]): a graph that has
    /// every count below it and this event has every event up to it. `None` for a duplicate
    /// on SQLite, which takes none.
    pub generation: Option<i64>,
}

/// How many changes a project's lineage has had; a replica whose graph was built from fewer is
/// behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineageHead {
    /// Events stored (on PostgreSQL duplicates included: a count, not a row count).
    pub events: i64,
    /// Changes to the registry's datasets, the transform declarations and the erasures.
    pub context: i64,
}

/// One event to keep, as the writer runs it: together with the events queued next to it.
struct EventWrite {
    event: LineageEventRecord,
    by: String,
}

impl GroupWrite for EventWrite {
    type Output = StoredEvent;

    fn run_group<'c>(
        backend: Backend,
        conn: &'c mut AnyConnection,
        group: &'c [&'c Self],
        drafts: &'c mut [AuditDraft],
    ) -> BoxFuture<'c, Result<Vec<StoredEvent>, StoreError>> {
        Box::pin(async move {
            let stored = match backend {
                Backend::Sqlite => insert_events_sqlite(conn, group).await?,
                Backend::Postgres => insert_events_counted(conn, group).await?,
            };
            for ((w, draft), s) in group.iter().zip(drafts.iter_mut()).zip(&stored) {
                let e = &w.event;
                draft.resource = ResourceRef::new("lineage_event", &e.event_id);
                draft.details = serde_json::json!({
                    "event_id": e.event_id, "event_type": e.event_type, "run_id": e.run_id, "job": e.job,
                    "producer": e.producer, "duplicate": !s.new,
                });
            }
            Ok(stored)
        })
    }
}

/// PostgreSQL: the events take the next counts by bumping their projects' `lineage_heads`
/// rows, whose locks, held to COMMIT, order the counts of several writers and replicas. Each
/// project's row is bumped once for all of its events in the group, the projects in one
/// order, so that two groups never wait for each other's rows crosswise. A duplicate takes a
/// count too (a count of writes, not of rows).
async fn insert_events_counted(
    conn: &mut AnyConnection,
    group: &[&EventWrite],
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut by_project = std::collections::BTreeMap::<ProjectId, Vec<usize>>::new();
    for (i, w) in group.iter().enumerate() {
        by_project.entry(w.event.project_id).or_default().push(i);
    }
    let mut generations = vec![0i64; group.len()];
    for (project, writes) in &by_project {
        let n = writes.len() as i64;
        let last = bump_events(conn, *project, n).await?;
        for (k, &i) in writes.iter().enumerate() {
            generations[i] = last - n + 1 + k as i64;
        }
    }
    let projects: Vec<String> = group.iter().map(|w| w.event.project_id.to_string()).collect();
    let mut new = std::collections::HashSet::new();
    let received_at = micros(custody_core::now());
    for start in (0..group.len()).step_by(PG_EVENTS_PER_INSERT) {
        let chunk = start..group.len().min(start + PG_EVENTS_PER_INSERT);
        let sql = format!(
            "INSERT INTO lineage_events (project_id, event_id, event_type, event_time, run_id, job, producer, body, \
             received_by, received_at, generation) VALUES {} ON CONFLICT (project_id, event_id) DO NOTHING \
             RETURNING project_id, event_id",
            crate::rows::values_list(Backend::Postgres, chunk.len(), 11)
        );
        let mut q = sqlx::query(&sql);
        for i in chunk {
            q = bind_event(q, &projects[i], group[i], received_at).bind(generations[i]);
        }
        for row in q.fetch_all(&mut *conn).await? {
            new.insert((text(&row, "project_id")?, text(&row, "event_id")?));
        }
    }
    Ok((0..group.len())
        .map(|i| {
            // Of two alike in the group, the first is the one stored: it took the lower count.
            let key = (projects[i].clone(), group[i].event.event_id.clone());
            StoredEvent { new: new.remove(&key), generation: Some(generations[i]) }
        })
        .collect())
}

/// Binds the next ten parameters of `q` to `w`'s event, in the order of the columns of
/// `lineage_events` up to `received_at`.
fn bind_event<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    project: &'q str,
    w: &'q EventWrite,
    received_at: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let e = &w.event;
    q.bind(project)
        .bind(&e.event_id)
        .bind(&e.event_type)
        .bind(e.event_time)
        .bind(e.run_id.as_deref())
        .bind(e.job.as_deref())
        .bind(&e.producer)
        .bind(&e.body)
        .bind(w.by.as_str())
        .bind(received_at)
}

/// Events per INSERT on PostgreSQL: 11 parameters each.
const PG_EVENTS_PER_INSERT: usize = 100;

/// Adds `n` to the event count of `project` and returns the new count. Locks the project's
/// row until COMMIT (see the migration).
async fn bump_events(conn: &mut AnyConnection, project: ProjectId, n: i64) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO lineage_heads (project_id, events, context) VALUES ($1, $2, 0) ON CONFLICT (project_id) \
         DO UPDATE SET events = lineage_heads.events + $2 RETURNING events AS n",
    )
    .bind(project.to_string())
    .bind(n)
    .fetch_one(&mut *conn)
    .await?;
    int(&row, "n")
}

/// Events per INSERT on SQLite: 11 parameters each, far below SQLite's limit.
const EVENTS_PER_INSERT: usize = 256;

/// SQLite, where write transactions never overlap: the events take their counts inside the
/// INSERT, a few hundred events per statement (each statement is a round trip to the
/// connection's thread on the serial path of every write). A new event takes the next count
/// after the highest stored and after `lineage_heads` (which [`Store::lineage_head`] reads
/// together), in the order queued; an event the project has, or the second of two alike in
/// the group, takes none. Sound because stored events are never deleted.
async fn insert_events_sqlite(conn: &mut AnyConnection, group: &[&EventWrite]) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stored = vec![StoredEvent { new: false, generation: None }; group.len()];
    let projects: Vec<String> = group.iter().map(|w| w.event.project_id.to_string()).collect();
    let mut seen = std::collections::HashSet::with_capacity(group.len());
    let firsts: Vec<usize> =
        (0..group.len()).filter(|&i| seen.insert((projects[i].as_str(), group[i].event.event_id.as_str()))).collect();
    let received_at = micros(custody_core::now());
    for chunk in firsts.chunks(EVENTS_PER_INSERT) {
        let sql = sqlite_insert_events(chunk.len());
        let mut q = sqlx::query(&sql);
        for &i in chunk {
            q = bind_event(q.bind(i as i64), &projects[i], group[i], received_at);
        }
        let at: std::collections::HashMap<(&str, &str), usize> =
            chunk.iter().map(|&i| ((projects[i].as_str(), group[i].event.event_id.as_str()), i)).collect();
        for row in q.fetch_all(&mut *conn).await? {
            let (project, event_id) = (text(&row, "project_id")?, text(&row, "event_id")?);
            let i = at.get(&(project.as_str(), event_id.as_str())).ok_or_else(|| StoreError::Corrupt {
                what: "lineage event",
                reason: format!("the INSERT returned event {event_id} of project {project}, which it was not given"),
            })?;
            stored[*i] = StoredEvent { new: true, generation: Some(int(&row, "generation")?) };
        }
    }
    Ok(stored)
}

/// The INSERT of [`insert_events_sqlite`] for `rows` events of 11 parameters each: ordinal,
/// then the columns' values in the INSERT's order.
fn sqlite_insert_events(rows: usize) -> String {
    let values = crate::rows::values_list(Backend::Sqlite, rows, 11);
    format!(
        "{insert} lineage_events (project_id, event_id, event_type, event_time, run_id, job, producer, \
         body, received_by, received_at, generation) \
         SELECT v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, \
         v.column10, v.column11, \
         max(coalesce((SELECT max(generation) FROM lineage_events WHERE project_id = v.column2), 0), \
         coalesce((SELECT events FROM lineage_heads WHERE project_id = v.column2), 0)) \
         + row_number() OVER (PARTITION BY v.column2 ORDER BY v.column1) \
         FROM (VALUES {values}) AS v \
         WHERE NOT EXISTS (SELECT 1 FROM lineage_events AS e WHERE e.project_id = v.column2 AND e.event_id = v.column3) \
         ORDER BY v.column1 \
         RETURNING project_id, event_id, generation",
        insert = Backend::Sqlite.insert_rows(),
    )
}

/// Counts one change to `project`'s lineage context. Runs inside the write's transaction and
/// locks the project's row until COMMIT (see the migration).
pub(crate) async fn bump_context(conn: &mut AnyConnection, project: ProjectId) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO lineage_heads (project_id, events, context) VALUES ($1, 0, 1) ON CONFLICT (project_id) \
         DO UPDATE SET context = lineage_heads.context + 1",
    )
    .bind(project.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What a context change belongs to, when the write knows it only by that row's id.
#[derive(Clone, Copy)]
pub(crate) enum Owner {
    Dataset,
    Model,
    ModelVersion,
}

/// [`bump_context`] of the context of the project the `owner` row `id` belongs to.
pub(crate) async fn bump_context_of(conn: &mut AnyConnection, owner: Owner, id: &str) -> Result<(), StoreError> {
    let project_of = match owner {
        Owner::Dataset => "SELECT project_id, 0, 1 FROM datasets WHERE id = $1",
        Owner::Model => "SELECT project_id, 0, 1 FROM models WHERE id = $1",
        Owner::ModelVersion => {
            "SELECT m.project_id, 0, 1 FROM model_versions v JOIN models m ON m.id = v.model_id WHERE v.id = $1"
        }
    };
    let sql = format!(
        "INSERT INTO lineage_heads (project_id, events, context) {project_of} \
         ON CONFLICT (project_id) DO UPDATE SET context = lineage_heads.context + 1"
    );
    sqlx::query(&sql).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// A registered dataset as lineage sees it: its names, level and versions' digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredDataset {
    /// Its id.
    pub id: custody_core::DatasetId,
    /// The dataset's name in its project.
    pub name: String,
    /// Where it comes from (a URI; its OpenLineage name is derived from it).
    pub source_uri: String,
    /// Its classification.
    pub classification: Classification,
    /// Its versions: label and content digest.
    pub versions: Vec<(String, Sha256Digest)>,
}

/// How a job is declared to transform data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformRecord {
    /// The job's namespace.
    pub job_namespace: String,
    /// The job's name.
    pub job_name: String,
    /// `anonymizing` or `aggregating` (checked by the server).
    pub kind: String,
    /// Why the output no longer holds the inputs' sensitive data.
    pub justification: String,
    /// Who declared it.
    pub declared_by: String,
    /// When.
    pub declared_at: Timestamp,
    /// Who approved it, if anyone has.
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<Timestamp>,
}

/// An erasure's receipt, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceiptRecord {
    /// Its id (a UUID).
    pub id: String,
    /// The project.
    pub project_id: ProjectId,
    /// Why (the DSAR's reference).
    pub reason: String,
    /// Hex SHA-256 commitment to the record key, when the request named one.
    pub key_commitment: Option<String>,
    /// The dataset versions erased from (JSON).
    pub sources: serde_json::Value,
    /// Hex SHA-256 of the impact report the actions answer.
    pub report_sha256: String,
    /// Every item with what was done (JSON).
    pub items: serde_json::Value,
    /// What Custody itself deleted (JSON).
    pub deleted: serde_json::Value,
    /// Who.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
}

impl Store {
    /// The registry's datasets of `project` with their versions' digests.
    pub async fn registered_datasets(&self, project: ProjectId) -> Result<Vec<RegisteredDataset>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, d.name, d.source_uri, d.classification, v.label, v.digest FROM datasets d \
             LEFT JOIN dataset_versions v ON v.dataset_id = d.id WHERE d.project_id = $1 ORDER BY d.id, v.label",
        )
        .bind(project.to_string())
        .fetch_all(&self.read)
        .await?;
        let mut out: Vec<RegisteredDataset> = Vec::new();
        for r in &rows {
            let id: custody_core::DatasetId = parsed(r, "id")?;
            if out.last().is_none_or(|last| last.id != id) {
                out.push(RegisteredDataset {
                    id,
                    name: text(r, "name")?,
                    source_uri: text(r, "source_uri")?,
                    classification: parsed(r, "classification")?,
                    versions: Vec::new(),
                });
            }
            if let (Some(label), Some(last)) = (opt_text(r, "label")?, out.last_mut()) {
                last.versions.push((label, parsed(r, "digest")?));
            }
        }
        Ok(out)
    }

    /// The projects with lineage of any kind: events, or registry datasets, transforms and
    /// erasures (anything that counted a change).
    pub async fn lineage_heads(&self) -> Result<Vec<ProjectId>, StoreError> {
        let rows = sqlx::query("SELECT project_id FROM lineage_heads").fetch_all(&self.read).await?;
        rows.iter().map(|r| parsed(r, "project_id")).collect()
    }

    /// Declares (or declares again, clearing any approval) how a job transforms data.
    pub async fn declare_transform(
        &self,
        draft: AuditDraft,
        project: ProjectId,
        t: TransformRecord,
    ) -> Result<(TransformRecord, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let t = t.clone();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO lineage_transforms (project_id, job_namespace, job_name, kind, justification, \
                     declared_by, declared_at, approved_by, approved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL) \
                     ON CONFLICT (project_id, job_namespace, job_name) DO UPDATE SET kind = $4, justification = $5, \
                     declared_by = $6, declared_at = $7, approved_by = NULL, approved_at = NULL",
                )
                .bind(project.to_string())
                .bind(&t.job_namespace)
                .bind(&t.job_name)
                .bind(&t.kind)
                .bind(&t.justification)
                .bind(&t.declared_by)
                .bind(micros(t.declared_at))
                .execute(&mut *conn)
                .await?;
                bump_context(conn, project).await?;
                draft.resource = ResourceRef::new("lineage_transform", format!("{}/{}", t.job_namespace, t.job_name));
                draft.details = serde_json::json!({ "kind": t.kind, "justification": t.justification });
                Ok(TransformRecord { approved_by: None, approved_at: None, ..t })
            })
        })
        .await
    }

    /// Approves a job's declaration as it stands. Refused when there is none, when it is
    /// approved already, or when `by` declared it (nobody approves their own declaration).
    pub async fn approve_transform(
        &self,
        draft: AuditDraft,
        project: ProjectId,
        job: (String, String),
        by: String,
    ) -> Result<(TransformRecord, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let (job, by) = (job.clone(), by.clone());
            Box::pin(async move {
                let name = format!("{}/{}", job.0, job.1);
                draft.resource = ResourceRef::new("lineage_transform", &name);
                let mut t =
                    transform(conn, project, &job).await?.ok_or_else(|| StoreError::not_found("transform", &name))?;
                if t.approved_by.is_some() {
                    return Err(StoreError::conflict(
                        "job",
                        format!("the declaration of `{name}` is approved already"),
                    ));
                }
                if t.declared_by == by {
                    return Err(StoreError::conflict(
                        "job",
                        format!("`{by}` declared `{name}` and cannot approve it: ask another approver"),
                    ));
                }
                let now = custody_core::now();
                sqlx::query(
                    "UPDATE lineage_transforms SET approved_by = $1, approved_at = $2 \
                     WHERE project_id = $3 AND job_namespace = $4 AND job_name = $5",
                )
                .bind(&by)
                .bind(micros(now))
                .bind(project.to_string())
                .bind(&job.0)
                .bind(&job.1)
                .execute(&mut *conn)
                .await?;
                bump_context(conn, project).await?;
                draft.details = serde_json::json!({
                    "kind": t.kind, "justification": t.justification, "declared_by": t.declared_by,
                });
                t.approved_by = Some(by);
                t.approved_at = Some(now);
                Ok(t)
            })
        })
        .await
    }

    /// Withdraws a job's declaration (the row is deleted; the log keeps its history).
    pub async fn withdraw_transform(
        &self,
        draft: AuditDraft,
        project: ProjectId,
        job: (String, String),
    ) -> Result<(TransformRecord, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let job = job.clone();
            Box::pin(async move {
                let name = format!("{}/{}", job.0, job.1);
                draft.resource = ResourceRef::new("lineage_transform", &name);
                let t =
                    transform(conn, project, &job).await?.ok_or_else(|| StoreError::not_found("transform", &name))?;
                sqlx::query(
                    "DELETE FROM lineage_transforms WHERE project_id = $1 AND job_namespace = $2 AND job_name = $3",
                )
                .bind(project.to_string())
                .bind(&job.0)
                .bind(&job.1)
                .execute(&mut *conn)
                .await?;
                bump_context(conn, project).await?;
                draft.details = serde_json::json!({ "kind": t.kind, "was_approved_by": t.approved_by });
                Ok(t)
            })
        })
        .await
    }

    /// Every transform declaration of `project`.
    pub async fn transforms(&self, project: ProjectId) -> Result<Vec<TransformRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM lineage_transforms WHERE project_id = $1 ORDER BY job_namespace, job_name")
                .bind(project.to_string())
                .fetch_all(&self.read)
                .await?;
        rows.iter().map(transform_row).collect()
    }

    /// Records an erasure's receipt and marks the dataset versions whose data it deleted, in
    /// one transaction with its audit record.
    pub async fn record_erasure(
        &self,
        draft: AuditDraft,
        receipt: ErasureReceiptRecord,
        erased_versions: Vec<custody_core::DatasetVersionId>,
    ) -> Result<(ErasureReceiptRecord, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let (r, erased) = (receipt.clone(), erased_versions.clone());
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO erasure_receipts (id, project_id, reason, key_commitment, sources, report_sha256, items, \
                     deleted, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&r.id)
                .bind(r.project_id.to_string())
                .bind(&r.reason)
                .bind(r.key_commitment.as_deref())
                .bind(r.sources.to_string())
                .bind(&r.report_sha256)
                .bind(r.items.to_string())
                .bind(r.deleted.to_string())
                .bind(&r.created_by)
                .bind(micros(r.created_at))
                .execute(&mut *conn)
                .await?;
                for v in &erased {
                    sqlx::query(
                        "INSERT INTO erased_versions (version_id, receipt_id, erased_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (version_id) DO NOTHING",
                    )
                    .bind(v.to_string())
                    .bind(&r.id)
                    .bind(micros(r.created_at))
                    .execute(&mut *conn)
                    .await?;
                }
                bump_context(conn, r.project_id).await?;
                draft.resource = ResourceRef::new("erasure_receipt", &r.id);
                draft.details = serde_json::json!({
                    "reason": r.reason, "key_commitment": r.key_commitment, "sources": r.sources,
                    "report_sha256": r.report_sha256, "items": r.items, "deleted": r.deleted,
                });
                Ok(r)
            })
        })
        .await
    }

    /// The erasure receipts of `project`, oldest first.
    pub async fn erasure_receipts(&self, project: ProjectId) -> Result<Vec<ErasureReceiptRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM erasure_receipts WHERE project_id = $1 ORDER BY created_at, id")
            .bind(project.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ErasureReceiptRecord {
                    id: text(r, "id")?,
                    project_id: parsed(r, "project_id")?,
                    reason: text(r, "reason")?,
                    key_commitment: opt_text(r, "key_commitment")?,
                    sources: crate::rows::json(r, "sources")?,
                    report_sha256: text(r, "report_sha256")?,
                    items: crate::rows::json(r, "items")?,
                    deleted: crate::rows::json(r, "deleted")?,
                    created_by: text(r, "created_by")?,
                    created_at: time(r, "created_at")?,
                })
            })
            .collect()
    }

    /// The receipt that erased a dataset version's data, and when, if one did.
    pub async fn erasure_of_version(
        &self,
        version: custody_core::DatasetVersionId,
    ) -> Result<Option<(String, Timestamp)>, StoreError> {
        let row = sqlx::query("SELECT receipt_id, erased_at FROM erased_versions WHERE version_id = $1")
            .bind(version.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| Ok((text(&r, "receipt_id")?, time(&r, "erased_at")?))).transpose()
    }
}

async fn transform(
    conn: &mut AnyConnection,
    project: ProjectId,
    job: &(String, String),
) -> Result<Option<TransformRecord>, StoreError> {
    let row =
        sqlx::query("SELECT * FROM lineage_transforms WHERE project_id = $1 AND job_namespace = $2 AND job_name = $3")
            .bind(project.to_string())
            .bind(&job.0)
            .bind(&job.1)
            .fetch_optional(&mut *conn)
            .await?;
    row.as_ref().map(transform_row).transpose()
}

fn transform_row(r: &sqlx::any::AnyRow) -> Result<TransformRecord, StoreError> {
    Ok(TransformRecord {
        job_namespace: text(r, "job_namespace")?,
        job_name: text(r, "job_name")?,
        kind: text(r, "kind")?,
        justification: text(r, "justification")?,
        declared_by: text(r, "declared_by")?,
        declared_at: time(r, "declared_at")?,
        approved_by: opt_text(r, "approved_by")?,
        approved_at: opt_time(r, "approved_at")?,
    })
}
