use crate::rows::{self, micros};
use crate::{Backend, Store, StoreError};
use custody_core::{
    AuditDraft, AuditEvent, Classification, Dataset, DatasetId, DatasetVersion, DatasetVersionId, Name, NewDataset,
    NewDatasetVersion, Project, Region, ResourceRef, RetentionPeriod, UseList,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const DATASET_SELECT: &str =
    "SELECT d.*, p.name AS project_name FROM datasets d JOIN projects p ON p.id = d.project_id";

/// Filters for listing datasets in a project. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct DatasetQuery {
    /// Names containing this text.
    pub name_contains: Option<String>,
    /// Only this classification.
    pub classification: Option<Classification>,
    /// Only this region.
    pub region: Option<Region>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Names after this one (for paging).
    pub after: Option<Name>,
    /// At most this many (1 to 500).
    pub limit: u32,
}

impl Store {
    /// Registers a dataset in `project`. The registrant of a restricted dataset is granted
    /// explicit access to it in the same transaction (otherwise nobody could use it).
    pub async fn register_dataset(
        &self,
        draft: AuditDraft,
        project: &Project,
        new: NewDataset,
        created_by: String,
    ) -> Result<(Dataset, AuditEvent), StoreError> {
        new.validate()?;
        let (project_id, project_name) = (project.id, project.name.clone());
        self.write_changing_facts(draft, move |conn, draft| {
            let (project_name, new, created_by) = (project_name.clone(), new.clone(), created_by.clone());
            Box::pin(async move {
                let exists = sqlx::query("SELECT 1 FROM datasets WHERE project_id = $1 AND name = $2")
                    .bind(project_id.to_string())
                    .bind(new.name.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                if exists.is_some() {
                    return Err(StoreError::conflict(
                        "name",
                        format!("project `{project_name}` already has a dataset named `{}`", new.name),
                    ));
                }
                let now = custody_core::now();
                let d = Dataset {
                    id: DatasetId::new(),
                    project_id,
                    project: project_name,
                    name: new.name,
                    owner: new.owner.unwrap_or_else(|| created_by.clone()),
                    licence: new.licence,
                    source_uri: new.source_uri,
                    classification: new.classification,
                    region: new.region,
                    retention: new.retention,
                    intended_use: new.intended_use,
                    prohibited_use: new.prohibited_use,
                    created_by,
                    created_at: now,
                    updated_at: now,
                };
                insert_dataset(conn, &d).await?;
                if d.classification == Classification::Restricted {
                    insert_access(conn, d.id, &d.created_by, &d.created_by).await?;
                }
                draft.resource = ResourceRef::new("dataset", d.id);
                draft.region = Some(d.region.clone());
                draft.details = serde_json::json!({
                    "name": d.name, "classification": d.classification, "owner": d.owner,
                    "region": d.region, "retention": d.retention,
                    "restricted_access_granted_to": (d.classification == Classification::Restricted).then_some(&d.created_by),
                });
                Ok(d)
            })
        })
        .await
    }

    /// The dataset with `id`.
    pub async fn dataset(&self, id: DatasetId) -> Result<Dataset, StoreError> {
        if let Some(d) = self.facts.dataset(id) {
            return Ok(d);
        }
        let ticket = self.facts.ticket();
        let mut conn = self.read.acquire().await?;
        let d = dataset_by_id(&mut conn, self.backend, id, false).await?;
        self.facts.put_dataset(ticket, d.clone());
        Ok(d)
    }

    /// The dataset named `name` in `project`.
    pub async fn dataset_by_name(&self, project: &Name, name: &Name) -> Result<Dataset, StoreError> {
        sqlx::query(&format!("{DATASET_SELECT} WHERE p.name = $1 AND d.name = $2"))
            .bind(project.as_str())
            .bind(name.as_str())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(dataset_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("dataset", format!("{project}/{name}")))
    }

    /// Datasets of `project` matching `q`, by name.
    pub async fn datasets(&self, project: &Project, q: &DatasetQuery) -> Result<Vec<Dataset>, StoreError> {
        let mut sql = format!("{DATASET_SELECT} WHERE d.project_id = $1");
        let mut binds = vec![project.id.to_string()];
        let mut push = |cond: &str, v: String| {
            binds.push(v);
            sql.push_str(&cond.replace('?', &format!("${}", binds.len())));
        };
        if let Some(s) = &q.name_contains {
            let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            push(" AND d.name LIKE ? ESCAPE '\\'", format!("%{escaped}%"));
        }
        if let Some(c) = q.classification {
            push(" AND d.classification = ?", c.as_str().to_owned());
        }
        if let Some(r) = &q.region {
            push(" AND d.region = ?", r.to_string());
        }
        if let Some(o) = &q.owner {
            push(" AND d.owner = ?", o.clone());
        }
        if let Some(a) = &q.after {
            push(" AND d.name > ?", a.to_string());
        }
        sql.push_str(&format!(" ORDER BY d.name LIMIT {}", q.limit.clamp(1, 500)));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(b);
        }
        query.fetch_all(&self.read).await?.iter().map(dataset_from_row).collect()
    }

    /// Adds an immutable version to a dataset. Its label and its digest must both be new to
    /// the dataset.
    pub async fn add_dataset_version(
        &self,
        draft: AuditDraft,
        dataset_id: DatasetId,
        new: NewDatasetVersion,
        created_by: String,
    ) -> Result<(DatasetVersion, AuditEvent), StoreError> {
        new.validate()?;
        self.write(draft, move |conn, draft| {
            let (new, created_by) = (new.clone(), created_by.clone());
            Box::pin(async move {
                // No lookups and no row lock on the happy path: the foreign key proves the
                // dataset exists and the unique indexes on (dataset, label) and (dataset,
                // digest) decide between concurrent versions. Only a refusal looks further.
                let v = DatasetVersion {
                    id: DatasetVersionId::new(),
                    dataset_id,
                    label: new.label,
                    digest: new.digest,
                    size_bytes: new.size_bytes,
                    location: new.location,
                    created_by,
                    created_at: custody_core::now(),
                };
                let inserted = sqlx::query(
                    "INSERT INTO dataset_versions (id, dataset_id, label, digest, size_bytes, location, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                )
                .bind(v.id.to_string())
                .bind(dataset_id.to_string())
                .bind(v.label.as_str())
                .bind(v.digest.to_string())
                .bind(v.size_bytes as i64)
                .bind(v.location.clone())
                .bind(&v.created_by)
                .bind(micros(v.created_at))
                .execute(&mut *conn)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::not_found("dataset", dataset_id),
                    _ => StoreError::from(e),
                })?;
                if inserted.rows_affected() == 0 {
                    return Err(version_conflict(conn, dataset_id, &v).await);
                }
                // The lineage graph counts registered digests (the completeness KPI).
                crate::lineage::bump_context_of(conn, crate::lineage::Owner::Dataset, &dataset_id.to_string()).await?;
                draft.details = serde_json::json!({ "version_id": v.id, "label": v.label, "digest": v.digest, "size_bytes": v.size_bytes });
                Ok(v)
            })
        })
        .await
    }

    /// The versions of a dataset, oldest first.
    pub async fn dataset_versions(&self, dataset_id: DatasetId) -> Result<Vec<DatasetVersion>, StoreError> {
        sqlx::query("SELECT * FROM dataset_versions WHERE dataset_id = $1 ORDER BY created_at, id")
            .bind(dataset_id.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(version_from_row)
            .collect()
    }

    /// A dataset's version by label, if there is one.
    pub async fn dataset_version(
        &self,
        dataset_id: DatasetId,
        label: &str,
    ) -> Result<Option<DatasetVersion>, StoreError> {
        sqlx::query("SELECT * FROM dataset_versions WHERE dataset_id = $1 AND label = $2")
            .bind(dataset_id.to_string())
            .bind(label)
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(version_from_row)
            .transpose()
    }

    /// Raises a dataset's classification. Lowering goes through an approval instead.
    pub async fn raise_classification(
        &self,
        draft: AuditDraft,
        dataset_id: DatasetId,
        to: Classification,
        by: String,
    ) -> Result<(Dataset, AuditEvent), StoreError> {
        let backend = self.backend;
        self.write_changing_facts(draft, move |conn, draft| {
            let by = by.clone();
            Box::pin(async move {
                let d = dataset_by_id(conn, backend, dataset_id, true).await?;
                if to <= d.classification {
                    return Err(StoreError::conflict(
                        "classification",
                        format!("`{to}` does not raise `{}`; lowering needs an approval request", d.classification),
                    ));
                }
                draft.details = serde_json::json!({ "from": d.classification, "to": to });
                set_classification(conn, dataset_id, to).await?;
                if to == Classification::Restricted {
                    // Whoever raised it keeps access, as at registration.
                    insert_access(conn, dataset_id, &by, &by).await?;
                }
                dataset_by_id(conn, backend, dataset_id, false).await
            })
        })
        .await
    }

    /// Grants `principal` explicit access to a restricted dataset.
    pub async fn grant_access(
        &self,
        draft: AuditDraft,
        dataset_id: DatasetId,
        principal: String,
        by: String,
    ) -> Result<((), AuditEvent), StoreError> {
        let backend = self.backend;
        self.write_changing_facts(draft, move |conn, draft| {
            let (principal, by) = (principal.clone(), by.clone());
            Box::pin(async move {
                dataset_by_id(conn, backend, dataset_id, true).await?;
                draft.details = serde_json::json!({ "principal": principal });
                insert_access(conn, dataset_id, &principal, &by).await
            })
        })
        .await
    }

    /// Revokes an explicit grant.
    pub async fn revoke_access(
        &self,
        draft: AuditDraft,
        dataset_id: DatasetId,
        principal: String,
    ) -> Result<((), AuditEvent), StoreError> {
        self.write_changing_facts(draft, move |conn, draft| {
            let principal = principal.clone();
            Box::pin(async move {
                draft.details = serde_json::json!({ "principal": principal });
                let done = sqlx::query("DELETE FROM dataset_access WHERE dataset_id = $1 AND principal = $2")
                    .bind(dataset_id.to_string())
                    .bind(&principal)
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("grant", format!("{dataset_id}/{principal}")));
                }
                Ok(())
            })
        })
        .await
    }

    /// The restricted datasets `principal` was explicitly granted.
    pub async fn access_of(&self, principal: &str) -> Result<Vec<DatasetId>, StoreError> {
        sqlx::query("SELECT dataset_id FROM dataset_access WHERE principal = $1")
            .bind(principal)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| rows::parsed(r, "dataset_id"))
            .collect()
    }
}

/// Explains why a version was not inserted: which of label and digest the dataset has.
async fn version_conflict(conn: &mut AnyConnection, id: DatasetId, v: &DatasetVersion) -> StoreError {
    let clash = sqlx::query("SELECT label FROM dataset_versions WHERE dataset_id = $1 AND (label = $2 OR digest = $3)")
        .bind(id.to_string())
        .bind(v.label.as_str())
        .bind(v.digest.to_string())
        .fetch_optional(&mut *conn)
        .await;
    match clash {
        Ok(Some(row)) => match row.try_get::<String, _>("label") {
            Ok(label) if label == v.label.as_str() => {
                StoreError::conflict("label", format!("version `{label}` exists"))
            }
            Ok(label) => StoreError::conflict("digest", format!("`{}` is already version `{label}`", v.digest)),
            Err(e) => e.into(),
        },
        Ok(None) => StoreError::conflict("label", "a concurrent write added the same label or digest"),
        Err(e) => e.into(),
    }
}

async fn insert_dataset(conn: &mut AnyConnection, d: &Dataset) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO datasets (id, project_id, name, owner, licence, source_uri, classification, region, retention_days, \
         intended_use, prohibited_use, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(d.id.to_string())
    .bind(d.project_id.to_string())
    .bind(d.name.as_str())
    .bind(&d.owner)
    .bind(&d.licence)
    .bind(&d.source_uri)
    .bind(d.classification.as_str())
    .bind(d.region.as_str())
    .bind(i64::from(d.retention.days()))
    .bind(rows::to_json("intended_use", &d.intended_use)?)
    .bind(rows::to_json("prohibited_use", &d.prohibited_use)?)
    .bind(&d.created_by)
    .bind(micros(d.created_at))
    .bind(micros(d.updated_at))
    .execute(&mut *conn)
    .await?;
    crate::lineage::bump_context(conn, d.project_id).await?;
    Ok(())
}

pub(crate) async fn set_classification(
    conn: &mut AnyConnection,
    id: DatasetId,
    to: Classification,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE datasets SET classification = $1, updated_at = $2 WHERE id = $3")
        .bind(to.as_str())
        .bind(micros(custody_core::now()))
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    crate::lineage::bump_context_of(conn, crate::lineage::Owner::Dataset, &id.to_string()).await?;
    Ok(())
}

async fn insert_access(conn: &mut AnyConnection, id: DatasetId, principal: &str, by: &str) -> Result<(), StoreError> {
    let exists = sqlx::query("SELECT 1 FROM dataset_access WHERE dataset_id = $1 AND principal = $2")
        .bind(id.to_string())
        .bind(principal)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        sqlx::query(
            "INSERT INTO dataset_access (dataset_id, principal, granted_by, granted_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(principal)
        .bind(by)
        .bind(micros(custody_core::now()))
        .execute(conn)
        .await?;
    }
    Ok(())
}

pub(crate) async fn dataset_by_id(
    conn: &mut AnyConnection,
    backend: Backend,
    id: DatasetId,
    lock: bool,
) -> Result<Dataset, StoreError> {
    let lock = if lock { backend.for_update() } else { "" };
    // PostgreSQL refuses FOR UPDATE on the nullable side of a join; lock the dataset row only.
    let lock = if lock.is_empty() { String::new() } else { format!("{lock} OF d") };
    sqlx::query(&format!("{DATASET_SELECT} WHERE d.id = $1{lock}"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(dataset_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::not_found("dataset", id))
}

fn dataset_from_row(row: &AnyRow) -> Result<Dataset, StoreError> {
    let days = rows::int(row, "retention_days")?;
    Ok(Dataset {
        id: rows::parsed(row, "id")?,
        project_id: rows::parsed(row, "project_id")?,
        project: rows::parsed(row, "project_name")?,
        name: rows::parsed(row, "name")?,
        owner: rows::text(row, "owner")?,
        licence: rows::text(row, "licence")?,
        source_uri: rows::text(row, "source_uri")?,
        classification: rows::parsed(row, "classification")?,
        region: rows::parsed(row, "region")?,
        retention: u32::try_from(days)
            .ok()
            .and_then(|d| RetentionPeriod::from_days(d).ok())
            .ok_or_else(|| StoreError::Corrupt { what: "retention_days", reason: days.to_string() })?,
        intended_use: rows::json::<UseList>(row, "intended_use")?,
        prohibited_use: rows::json::<UseList>(row, "prohibited_use")?,
        created_by: rows::text(row, "created_by")?,
        created_at: rows::time(row, "created_at")?,
        updated_at: rows::time(row, "updated_at")?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<DatasetVersion, StoreError> {
    Ok(DatasetVersion {
        id: rows::parsed(row, "id")?,
        dataset_id: rows::parsed(row, "dataset_id")?,
        label: custody_core::VersionLabel::new(&rows::text(row, "label")?)
            .map_err(|e| StoreError::Corrupt { what: "label", reason: e.to_string() })?,
        digest: rows::parsed(row, "digest")?,
        size_bytes: rows::int(row, "size_bytes")? as u64,
        location: rows::opt_text(row, "location")?,
        created_by: rows::text(row, "created_by")?,
        created_at: rows::time(row, "created_at")?,
    })
}
