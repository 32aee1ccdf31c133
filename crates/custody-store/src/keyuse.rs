//! The key-use ledger: appended with the audit record of the request that used the keys,
//! read by project with filters.

use crate::rows::{from_micros, int, micros, opt_text, text};
use crate::{Store, StoreError};
use custody_core::{AuditDraft, AuditEvent, KeyOperation, KeyUse, Timestamp};

/// Which ledger entries to read: one project's, narrowed by any of the rest.
#[derive(Debug, Clone, Default)]
pub struct KeyUseQuery {
    /// The project.
    pub project: String,
    /// Only this dataset.
    pub dataset_id: Option<String>,
    /// Only this dataset version (label).
    pub dataset_version: Option<String>,
    /// Only uses for this job or run.
    pub run_id: Option<String>,
    /// Only this KEK.
    pub key_id: Option<String>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this operation.
    pub operation: Option<KeyOperation>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
    /// At most this many, oldest first.
    pub limit: u32,
}

enum Bind {
    Text(String),
    Int(i64),
}

fn key_use_from_row(row: &sqlx::any::AnyRow) -> Result<KeyUse, StoreError> {
    let operation = text(row, "operation")?;
    Ok(KeyUse {
        at: from_micros("at", int(row, "at")?)?,
        operation: KeyOperation::parse(&operation)
            .ok_or_else(|| StoreError::Corrupt { what: "key_uses.operation", reason: format!("`{operation}`") })?,
        provider: text(row, "provider")?,
        key_id: text(row, "key_id")?,
        key_version: u32::try_from(int(row, "key_version")?).unwrap_or(0),
        object: text(row, "object")?,
        project: text(row, "project")?,
        dataset_id: opt_text(row, "dataset_id")?,
        dataset_version: opt_text(row, "dataset_version")?,
        region: opt_text(row, "region")?,
        classification: opt_text(row, "classification")?,
        principal: text(row, "principal")?,
        run_id: opt_text(row, "run_id")?,
        request_id: text(row, "request_id")?,
    })
}

impl Store {
    /// Appends `uses` to the ledger in the transaction that appends `draft` to the audit log.
    pub async fn record_key_uses(&self, draft: AuditDraft, uses: Vec<KeyUse>) -> Result<AuditEvent, StoreError> {
        let (_, event) = self
            .write(draft, move |conn, _draft| {
                let uses = uses.clone();
                Box::pin(async move {
                    for u in uses {
                        sqlx::query(
                            "INSERT INTO key_uses (id, at, operation, provider, key_id, key_version, object, project, \
                             dataset_id, dataset_version, region, classification, principal, run_id, request_id) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                        )
                        // A time-ordered UUID v7, as request ids are.
                        .bind(custody_core::RequestId::new().to_string())
                        .bind(micros(u.at))
                        .bind(u.operation.as_str())
                        .bind(u.provider)
                        .bind(u.key_id)
                        .bind(i64::from(u.key_version))
                        .bind(u.object)
                        .bind(u.project)
                        .bind(u.dataset_id)
                        .bind(u.dataset_version)
                        .bind(u.region)
                        .bind(u.classification)
                        .bind(u.principal)
                        .bind(u.run_id)
                        .bind(u.request_id)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(event)
    }

    /// The ledger entries `q` selects, oldest first.
    pub async fn key_uses(&self, q: &KeyUseQuery) -> Result<Vec<KeyUse>, StoreError> {
        let mut sql = String::from("SELECT * FROM key_uses WHERE project = $1");
        let mut binds = vec![Bind::Text(q.project.clone())];
        let mut filter = |column: &str, op: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&format!(" AND {column} {op} ${}", binds.len()));
        };
        let texts = [
            ("dataset_id", &q.dataset_id),
            ("dataset_version", &q.dataset_version),
            ("run_id", &q.run_id),
            ("key_id", &q.key_id),
            ("principal", &q.principal),
        ];
        for (column, value) in texts {
            if let Some(v) = value {
                filter(column, "=", Bind::Text(v.clone()));
            }
        }
        if let Some(op) = q.operation {
            filter("operation", "=", Bind::Text(op.as_str().into()));
        }
        if let Some(t) = q.since {
            filter("at", ">=", Bind::Int(micros(t)));
        }
        if let Some(t) = q.until {
            filter("at", "<", Bind::Int(micros(t)));
        }
        sql.push_str(&format!(" ORDER BY at, id LIMIT {}", q.limit.clamp(1, 10_000)));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(&self.read).await?.iter().map(key_use_from_row).collect()
    }

    /// How many ledger entries name KEK `key_id` for data outside dataset version
    /// (`dataset_id`, `version`): zero means the KEK protects that version alone.
    pub async fn key_uses_elsewhere(&self, key_id: &str, dataset_id: &str, version: &str) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM key_uses WHERE key_id = $1 AND operation <> 'destroy' \
             AND (dataset_id IS NULL OR dataset_id <> $2 OR dataset_version IS NULL OR dataset_version <> $3)",
        )
        .bind(key_id)
        .bind(dataset_id)
        .bind(version)
        .fetch_one(&self.read)
        .await?;
        Ok(u64::try_from(int(&row, "n")?).unwrap_or(0))
    }
}
