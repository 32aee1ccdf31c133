//! Persistence for Custody.
//!
//! [`Store`] is the one API every server replica uses, over SQLite (the embedded default) or
//! PostgreSQL (scale-out). Both run the same portable migrations and the same SQL; the few
//! statements that differ live in [`Backend`] methods.
//!
//! # Write path
//! Every mutation is a closure handed to the [writer](Store::write) together with the
//! [`AuditDraft`] that describes it. One writer task per process gathers whatever writes are
//! waiting into one database transaction (group commit): each write runs inside its own
//! savepoint, a failed write is rolled back to its savepoint and its audit record says so,
//! then the batch reserves a gapless range of audit sequence numbers, inserts the audit
//! records and commits once. A caller is answered only after that commit, so an
//! acknowledged write and its audit record are durable together, and a refused write leaves
//! nothing behind but its audit record.
//!
//! Reads go straight to a pool of connections and see every acknowledged write. The two
//! lookups every authorized request makes (a token with its grants, a dataset) are served from
//! a cache on PostgreSQL that every write changing them clears, on every replica (see
//! `cache.rs`).

mod approvals;
mod audit;
mod backend;
mod cache;
mod datasets;
mod error;
mod keyuse;
mod lineage;
mod migrate;
mod models;
mod owner;
mod projects;
mod proofs;
mod rows;
mod scans;
mod signed_head;
mod tokens;
mod wal;
mod writer;

#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditQuery, canonical_record};
pub use backend::Backend;
pub use datasets::DatasetQuery;
pub use error::StoreError;
pub use keyuse::KeyUseQuery;
pub use lineage::{
    ErasureReceiptRecord, LineageEventRecord, LineageHead, RegisteredDataset, StoredEvent, TransformRecord,
};
pub use models::{PromotionRequest, VersionDraft};
pub use proofs::{AuditConsistency, AuditInclusion, SignedCheckpoint};
pub use signed_head::LogSigner;
pub use tokens::{NewToken, TokenRecord};

use custody_core::{AuditDraft, AuditEvent};
use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use std::time::Duration;
use writer::Writer;

/// A boxed future borrowing a connection, as write closures return.
pub type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

/// A write as the writer runs it: given the batch's connection and the audit draft (which it
/// may enrich), it makes its change. It may run more than once (see [`Store::write`]).
pub trait WriteOp<T>:
    for<'c> Fn(&'c mut AnyConnection, &'c mut AuditDraft) -> BoxFuture<'c, Result<T, StoreError>> + Send + Sync + 'static
{
}

impl<T, F> WriteOp<T> for F where
    F: for<'c> Fn(&'c mut AnyConnection, &'c mut AuditDraft) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + Sync
        + 'static
{
}

/// How to open a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections for reads.
    pub max_read_connections: u32,
    /// The most writes one transaction carries.
    pub max_batch: usize,
    /// Writer tasks (and write connections) on PostgreSQL; SQLite always has one.
    pub postgres_writers: usize,
    /// How long to wait for a connection before failing.
    pub acquire_timeout: Duration,
    /// How the audit log signs its checkpoints; `None`: it does not (tests of other things).
    pub checkpoints: Option<CheckpointSigning>,
}

/// How the audit log signs checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSigning {
    /// The log's key (its name is the checkpoints' origin line), with what it last signed.
    pub signer: std::sync::Arc<LogSigner>,
    /// Zero: a checkpoint in every batch's transaction. Otherwise at most one per interval,
    /// each signed under the audit head lock over what has committed.
    pub interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_read_connections: 8,
            max_batch: 512,
            postgres_writers: 4,
            acquire_timeout: Duration::from_secs(10),
            checkpoints: None,
        }
    }
}

/// The system of record: projects, datasets, versions, approvals, tokens and the audit log.
/// Cheap to clone; clones share the pools and the writer.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: sqlx::AnyPool,
    writer: Writer,
    facts: std::sync::Arc<cache::FactsCache>,
    /// Projects read so far (immutable rows, see `projects.rs`).
    projects: std::sync::Arc<projects::KnownProjects>,
    /// On SQLite, this process's ownership of the database file, which the cache rests on.
    _owner: Option<std::sync::Arc<owner::SqliteOwner>>,
    /// Immutable audit subtree hashes read so far (see `proofs.rs`).
    tree: std::sync::Arc<proofs::TreeCache>,
    /// Background tasks (the PostgreSQL invalidation listener, the checkpoint ticker),
    /// stopped by [`Store::close`].
    tasks: std::sync::Arc<Vec<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://path?mode=rwc` or `postgres://…`), applies any
    /// missing migrations and starts the writer task. Must be called inside a Tokio runtime.
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        // Before anything opens it: a database another process owns is not touched.
        let sqlite_owner = match backend {
            Backend::Sqlite => owner::database_file(url)?.map(|f| owner::own(&f)).transpose()?,
            Backend::Postgres => None,
        };
        let read = pool_options(backend, options.max_read_connections, &options, &[]).connect(url).await?;
        // SQLite allows one writer at a time; PostgreSQL serialises only the end of each batch
        // on `audit_head`.
        let writers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => options.postgres_writers.max(1),
        };
        let periodic = options.checkpoints.as_ref().filter(|c| !c.interval.is_zero());
        // Each writer keeps a connection from batch to batch; a periodic checkpoint signer needs
        // one of its own beside them.
        let connections = writers as u32 + u32::from(periodic.is_some());
        let write_pool = pool_options(backend, connections, &options, &[wal::WRITER_AUTOCHECKPOINT, WRITER_TEMP_STORE])
            .connect(url)
            .await?;
        {
            let mut conn = write_pool.acquire().await?;
            migrate::run(backend, &mut conn).await?;
            proofs::backfill_nodes(backend, &mut conn).await?;
        }
        let mut tasks = Vec::new();
        let in_batch = options.checkpoints.as_ref().filter(|c| c.interval.is_zero()).map(|c| c.signer.clone());
        if let Some(c) = periodic {
            tasks.push(tokio::spawn(proofs::sign_periodically(backend, write_pool.clone(), c.clone())).abort_handle());
        }
        // A SQLite file's checkpoints run beside the writer (`wal.rs`); an in-memory database
        // has no log.
        let commits = match &sqlite_owner {
            Some(_) => {
                let commits = std::sync::Arc::new(tokio::sync::Notify::new());
                let pool = pool_options(backend, 1, &options, &[]).connect(url).await?;
                tasks.push(tokio::spawn(wal::run(pool, commits.clone())).abort_handle());
                Some(commits)
            }
            None => None,
        };
        let writer = Writer::start(backend, write_pool, options.max_batch, writers, in_batch, commits);
        // On PostgreSQL, off until the listener is up. On a SQLite file, on: this process owns
        // it (`owner.rs`) and its stores on it share the cache. An in-memory SQLite database
        // never caches (several stores of a process could share one, each with its own cache).
        let facts = match &sqlite_owner {
            Some(o) => o.facts.clone(),
            None => std::sync::Arc::new(cache::FactsCache::new(false)),
        };
        if backend == Backend::Postgres {
            tasks.push(tokio::spawn(cache::listen(url.to_owned(), facts.clone())).abort_handle());
        }
        Ok(Self {
            backend,
            read,
            writer,
            facts,
            projects: Default::default(),
            _owner: sqlite_owner,
            tree: std::sync::Arc::default(),
            tasks: std::sync::Arc::new(tasks),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers and the writer is running.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        if self.writer.is_closed() {
            return Err(StoreError::WriterStopped);
        }
        Ok(())
    }

    /// Runs `op` in the next group-commit batch and records `draft` in the same transaction.
    ///
    /// `op` may run more than once: when PostgreSQL picks it as a deadlock or serialization
    /// victim (several writers or replicas touching the same rows), its savepoint is rolled
    /// back and it runs again, so it must derive everything from its captures and the
    /// database.
    ///
    /// On success the audit record's outcome is the draft's; when `op` fails its changes are
    /// rolled back and the audit record is kept with outcome `rejected` (domain errors) or
    /// `error` (database errors) and the reason in `details.error`. The closure may enrich the
    /// draft (e.g. add the id it created to `details`).
    pub async fn write<T, F>(&self, draft: AuditDraft, op: F) -> Result<(T, AuditEvent), StoreError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        self.writer.submit(draft, op).await
    }

    /// [`Store::write`] of a write that runs together with the like writes queued next to it
    /// (see [`writer::GroupWrite`]).
    pub(crate) async fn write_grouped<G: writer::GroupWrite>(
        &self,
        draft: AuditDraft,
        write: G,
    ) -> Result<(G::Output, AuditEvent), StoreError> {
        self.writer.submit_grouped(draft, write).await
    }

    /// [`Store::write`] for a change to what authorization reads (a token's revocation, a
    /// grant, a dataset's classification): the transaction also notifies every replica, and
    /// this replica's cache is cleared once it has committed.
    pub(crate) async fn write_changing_facts<T, F>(
        &self,
        draft: AuditDraft,
        op: F,
    ) -> Result<(T, AuditEvent), StoreError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        let backend = self.backend;
        let op = std::sync::Arc::new(op);
        let result = self
            .write(draft, move |conn, draft| {
                let op = op.clone();
                Box::pin(async move {
                    let value = op(&mut *conn, draft).await?;
                    if backend == Backend::Postgres {
                        // Delivered to the listeners only when the transaction commits.
                        exec(conn, &format!("NOTIFY {}", cache::CHANNEL)).await?;
                    }
                    Ok(value)
                })
            })
            .await;
        self.facts.invalidate();
        result
    }

    /// Whether authorization lookups (tokens, datasets) are being served from the cache: on
    /// PostgreSQL while this replica is listening for invalidations; on a SQLite file this
    /// process owns, always.
    pub fn caches_facts(&self) -> bool {
        self.facts.is_on()
    }

    /// Records an audit event that changes nothing else (a refusal, a read of sensitive data).
    pub async fn record(&self, draft: AuditDraft) -> Result<AuditEvent, StoreError> {
        self.writer.record(draft).await
    }

    /// Stops accepting writes and waits until the batches in flight are committed.
    pub async fn close(&self) {
        for task in self.tasks.iter() {
            task.abort();
        }
        self.writer.close().await;
        self.read.close().await;
    }
}

/// The writer's savepoints, and its statements that a foreign-key check could stop half-way,
/// journal the pages they change so that they can be undone alone; past 64 KiB SQLite spills
/// that journal to a temporary file, created and deleted again in about half of the batches.
/// A batch's journal is bounded by the batch, so the writer keeps it in memory. (Readers keep
/// the default: a large sort there may spill to disk.)
const WRITER_TEMP_STORE: &str = "PRAGMA temp_store = MEMORY";

/// A pool's options; on SQLite each connection runs `extra` after the pragmas every one runs.
fn pool_options(backend: Backend, max: u32, options: &StoreOptions, extra: &'static [&'static str]) -> AnyPoolOptions {
    let opts = AnyPoolOptions::new().max_connections(max).acquire_timeout(options.acquire_timeout);
    match backend {
        // A SQLite connection is a thread of this process, not a socket that can go away: a
        // ping before every acquire would only cost a round trip to that thread (the pool
        // still pings on release, which flushes a cancelled statement).
        Backend::Sqlite => opts.test_before_acquire(false).after_connect(move |conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL makes every commit durable.
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA busy_timeout = 10000",
                    "PRAGMA foreign_keys = ON",
                    // 16 MiB of pages per connection (the default is 2 MiB): the upper B-tree
                    // levels of a large audit log stay in memory.
                    "PRAGMA cache_size = -16384",
                ]
                .into_iter()
                .chain(extra.iter().copied())
                {
                    exec(conn, pragma).await?;
                }
                Ok(())
            })
        }),
        Backend::Postgres => opts,
    }
}

/// Runs statements that take no parameters (transaction control, pragmas, migrations).
/// A plain `async fn` so that futures holding it stay `Send` for every lifetime.
pub(crate) async fn exec(conn: &mut AnyConnection, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    conn.execute(sql).await.map(|_| ())
}
