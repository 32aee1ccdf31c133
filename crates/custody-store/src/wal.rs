//! SQLite's WAL checkpoints, off the writer's path.
//!
//! A checkpoint copies the pages committed to the write-ahead log back into the database file
//! and syncs that file. SQLite runs one by default in the COMMIT that takes the log past 1,000
//! pages, so every so often a batch, and every write waiting for it, waited for that copy too
//! (a third of the writer's COMMIT time in lineage ingest; see BENCHMARKS.md, "Lineage"). Here
//! a task with a connection of its own runs PASSIVE checkpoints shortly after commits instead,
//! beside the writer: PASSIVE never waits for the writer or the readers, and copies what no
//! reader still needs. Durability does not change (every COMMIT still syncs the log), nor
//! does crash safety (a checkpoint cut short is redone from the log on the next open). The
//! writer keeps an automatic checkpoint at a much larger size, so that the log stays bounded
//! even if this task falls behind or stops.

use sqlx::{AnyPool, Row};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The log size (in pages) at which the writer's own COMMIT still checkpoints: ten times
/// SQLite's default, reached only when the background checkpoints cannot keep up.
pub(crate) const WRITER_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 10000";

/// How long after a commit the checkpoint runs, so that the commits of a busy moment are
/// copied together (under load about as many pages as SQLite's default of 1,000).
const PAUSE: Duration = Duration::from_millis(50);

/// After a checkpoint fails (the disk is full, say), how long before the next try.
const BACK_OFF: Duration = Duration::from_secs(1);

/// What a PASSIVE checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpointed {
    /// Whether it could not copy everything (a reader still needed some pages, or the log
    /// was being checkpointed already).
    pub(crate) busy: bool,
    /// Pages in the log.
    pub(crate) log: i64,
    /// Pages of the log now in the database file.
    pub(crate) copied: i64,
}

/// Runs a PASSIVE checkpoint on a connection of `pool`.
pub(crate) async fn checkpoint(pool: &AnyPool) -> Result<Checkpointed, sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await?;
    Ok(Checkpointed { busy: row.try_get::<i64, _>(0)? != 0, log: row.try_get(1)?, copied: row.try_get(2)? })
}

/// Checkpoints `pool`'s database (a pool of its own, not the readers') a little after each
/// time `commits` is notified, until aborted. Aborting mid-checkpoint is safe: SQLite
/// finishes or abandons it, and the log still has every page.
pub(crate) async fn run(pool: AnyPool, commits: Arc<Notify>) {
    loop {
        commits.notified().await;
        tokio::time::sleep(PAUSE).await;
        match checkpoint(&pool).await {
            Ok(c) => tracing::trace!(busy = c.busy, log = c.log, copied = c.copied, "WAL checkpoint"),
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; the writer's own checkpoints bound the log");
                tokio::time::sleep(BACK_OFF).await;
            }
        }
    }
}
