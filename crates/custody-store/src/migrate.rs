//! Schema migrations: numbered SQL files embedded in the binary, applied in order, each in
//! its own transaction, with a checksum so an edited migration is noticed instead of ignored.

use crate::{Backend, StoreError};
use sqlx::{AnyConnection, Row};

struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, description: "foundation", sql: include_str!("../migrations/0001_foundation.sql") },
    Migration { version: 2, description: "audit tree", sql: include_str!("../migrations/0002_audit_tree.sql") },
    Migration { version: 3, description: "key-use ledger", sql: include_str!("../migrations/0003_key_uses.sql") },
    Migration { version: 4, description: "model registry", sql: include_str!("../migrations/0004_registry.sql") },
    Migration { version: 5, description: "scan results", sql: include_str!("../migrations/0005_scans.sql") },
    Migration { version: 6, description: "lineage events", sql: include_str!("../migrations/0006_lineage.sql") },
    Migration {
        version: 7,
        description: "lineage context and erasure",
        sql: include_str!("../migrations/0007_lineage_context.sql"),
    },
];

/// An arbitrary constant: the PostgreSQL advisory lock that keeps replicas starting together
/// from migrating at once.
const MIGRATION_LOCK: i64 = 0x0063_7573_746f_6479;

pub(crate) async fn run(backend: Backend, conn: &mut AnyConnection) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    let result = apply_missing(backend, conn).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    result
}

/// The statements of a migration for `backend`. The files are written once for both; on
/// SQLite a `BIGINT PRIMARY KEY` becomes `INTEGER PRIMARY KEY`, the rowid itself, so a lookup
/// by key is one B-tree search instead of an index search and a table search (both are 64-bit
/// there). The checksum is of the file as written.
fn statements(backend: Backend, sql: &str) -> std::borrow::Cow<'_, str> {
    match backend {
        Backend::Sqlite => sql.replace("BIGINT PRIMARY KEY", "INTEGER PRIMARY KEY").into(),
        Backend::Postgres => sql.into(),
    }
}

async fn apply_missing(backend: Backend, conn: &mut AnyConnection) -> Result<(), StoreError> {
    crate::exec(
        &mut *conn,
        "CREATE TABLE IF NOT EXISTS custody_migrations (\
         version BIGINT PRIMARY KEY, description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied =
        sqlx::query("SELECT version, checksum FROM custody_migrations ORDER BY version").fetch_all(&mut *conn).await?;
    let mut applied_versions = Vec::with_capacity(applied.len());
    for row in &applied {
        let version: i64 = row.try_get("version")?;
        let checksum: String = row.try_get("checksum")?;
        match MIGRATIONS.iter().find(|m| m.version == version) {
            None => {
                return Err(StoreError::Migration {
                    version,
                    reason: "the database is newer than this build; upgrade custody".into(),
                });
            }
            Some(m) if checksum != checksum_of(m.sql) => {
                return Err(StoreError::Migration {
                    version,
                    reason: "its checksum changed since it was applied".into(),
                });
            }
            Some(_) => applied_versions.push(version),
        }
    }
    for m in MIGRATIONS.iter().filter(|m| !applied_versions.contains(&m.version)) {
        crate::exec(&mut *conn, "BEGIN").await?;
        let step = async {
            crate::exec(&mut *conn, &statements(backend, m.sql)).await?;
            sqlx::query(
                "INSERT INTO custody_migrations (version, description, checksum, applied_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(m.version)
            .bind(m.description)
            .bind(checksum_of(m.sql))
            .bind(crate::rows::micros(custody_core::now()))
            .execute(&mut *conn)
            .await?;
            Ok::<_, StoreError>(())
        }
        .await;
        match step {
            Ok(()) => {
                crate::exec(&mut *conn, "COMMIT").await?;
                tracing::info!(version = m.version, description = m.description, "applied migration");
            }
            Err(e) => {
                let _ = crate::exec(&mut *conn, "ROLLBACK").await;
                return Err(e);
            }
        }
    }
    Ok(())
}

fn checksum_of(sql: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, sql.as_bytes()))
}
