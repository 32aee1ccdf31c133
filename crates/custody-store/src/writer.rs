//! The group-commit writer: one task per process that turns waiting writes into batches.
//!
//! Each worker runs on a thread of its own, with a single-threaded runtime. A batch is a chain
//! of round trips to the database (on SQLite, to the connection's thread), every one of which
//! wakes the worker; on the server's runtime each wake-up queued the worker behind every
//! request being parsed, and the batch (which every write waits for) took that much longer.
//! Measured in BENCHMARKS.md ("Lineage"): OpenLineage ingest 5-13% faster on two cores.

use crate::LogSigner;
use crate::{Backend, BoxFuture, StoreError, WriteOp, audit::insert_events};
use custody_core::{AuditDraft, AuditEvent, Outcome};
use sqlx::pool::PoolConnection;
use sqlx::{Any as AnyDb, AnyConnection, AnyPool};
use std::any::Any;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

type Erased = Box<dyn Any + Send>;
type OpFn = Box<
    dyn for<'c> Fn(&'c mut AnyConnection, &'c mut AuditDraft) -> BoxFuture<'c, Result<Erased, StoreError>>
        + Send
        + Sync,
>;

/// How often a write chosen as a deadlock or serialization victim is run again.
const MAX_RETRIES: usize = 8;

struct Job {
    draft: AuditDraft,
    /// `None` for an audit record that changes nothing else: it needs no savepoint.
    op: Option<OpFn>,
    reply: oneshot::Sender<Result<(Erased, AuditEvent), StoreError>>,
}

/// The worker tasks, and what tells them to stop.
struct Running {
    stop: watch::Sender<bool>,
    /// Each closes when its worker has drained the queue and ended.
    workers: Vec<oneshot::Receiver<()>>,
}

#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    running: Arc<Mutex<Option<Running>>>,
}

impl Writer {
    /// Starts `workers` tasks taking batches from one queue. SQLite has one writer at a time,
    /// so one worker; on PostgreSQL several batches run their writes side by side and only
    /// the short final step (sequencing, audit insert, commit) takes turns on `audit_head`.
    pub(crate) fn start(
        backend: Backend,
        pool: AnyPool,
        max_batch: usize,
        workers: usize,
        signer: Option<Arc<LogSigner>>,
    ) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel(max_batch * 4);
        let rx = Arc::new(Mutex::new(rx));
        let (stop, stopped) = watch::channel(false);
        let workers = (0..workers.max(1))
            .map(|i| {
                spawn_worker(i, work(backend, pool.clone(), rx.clone(), stopped.clone(), max_batch, signer.clone()))
            })
            .collect();
        Self { queue, running: Arc::new(Mutex::new(Some(Running { stop, workers }))) }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    pub(crate) async fn submit<T, F>(&self, draft: AuditDraft, op: F) -> Result<(T, AuditEvent), StoreError>
    where
        T: Send + 'static,
        F: WriteOp<T>,
    {
        let op: OpFn = Box::new(move |conn, draft| {
            let fut = op(conn, draft);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Erased) })
        });
        let (value, event) = self.enqueue(draft, Some(op)).await?;
        let value = value
            .downcast::<T>()
            .map_err(|_| StoreError::Corrupt { what: "write result", reason: "type mismatch".into() })?;
        Ok((*value, event))
    }

    /// Queues an audit record that changes nothing else.
    pub(crate) async fn record(&self, draft: AuditDraft) -> Result<AuditEvent, StoreError> {
        self.enqueue(draft, None).await.map(|(_, event)| event)
    }

    async fn enqueue(&self, draft: AuditDraft, op: Option<OpFn>) -> Result<(Erased, AuditEvent), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { draft, op, reply }).await.map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Stops taking writes, commits those already queued, and waits for the workers to end.
    pub(crate) async fn close(&self) {
        if let Some(running) = self.running.lock().await.take() {
            let _ = running.stop.send(true);
            for ended in running.workers {
                // Err: the worker ended (its sender dropped), which is what is waited for.
                let _ = ended.await;
            }
        }
    }
}

/// Runs `worker` on a thread of its own (see the module's comment); on the caller's runtime
/// if the thread or its runtime cannot be had, which is slower but as correct.
fn spawn_worker(i: usize, worker: impl Future<Output = ()> + Send + 'static) -> oneshot::Receiver<()> {
    let (ended, on_end) = oneshot::channel::<()>();
    let worker: Worker = Box::pin(async move {
        worker.await;
        drop(ended);
    });
    if let Err((worker, e)) = spawn_on_own_thread(i, worker) {
        tracing::warn!(error = %e, "no thread for the store's writer; it shares the server's runtime");
        tokio::spawn(worker);
    }
    on_end
}

type Worker = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a thread with a single-threaded runtime running `worker`; gives it back if it cannot.
fn spawn_on_own_thread(i: usize, worker: Worker) -> Result<(), (Worker, std::io::Error)> {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return Err((worker, e)),
    };
    // What the thread runs is sent once it exists, so a failed spawn still has it.
    let (go, started) = std::sync::mpsc::channel::<Worker>();
    let spawned = std::thread::Builder::new().name(format!("custody-writer-{i}")).spawn(move || {
        if let Ok(worker) = started.recv() {
            runtime.block_on(worker);
        }
    });
    match spawned {
        Ok(_) => {
            let _ = go.send(worker);
            Ok(())
        }
        Err(e) => Err((worker, e)),
    }
}

async fn work(
    backend: Backend,
    pool: AnyPool,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    mut stopped: watch::Receiver<bool>,
    max_batch: usize,
    signer: Option<Arc<LogSigner>>,
) {
    let signer = signer.as_deref();
    let mut conn = Held { pool, conn: None };
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let received = {
            let mut rx = rx.lock().await;
            tokio::select! {
                n = rx.recv_many(&mut batch, max_batch) => Some(n),
                _ = stopped.wait_for(|s| *s) => None,
            }
        };
        match received {
            Some(0) => break,
            Some(_) => commit_batch(backend, &mut conn, std::mem::take(&mut batch), signer).await,
            None => {
                // Stopping: refuse new writes, then drain what was queued before.
                let mut rx = rx.lock().await;
                rx.close();
                while rx.recv_many(&mut batch, max_batch).await > 0 {
                    commit_batch(backend, &mut conn, std::mem::take(&mut batch), signer).await;
                }
                break;
            }
        }
    }
}

/// A worker's connection, kept from one batch to the next. Taking it from the pool for every
/// batch cost the serial path of every write two round trips more: the pool pings a connection
/// it takes back, and on SQLite that is a hop to the connection's thread and back, then a
/// wake-up of the batch waiting for it (11% of the writer's time in lineage ingest; +5% events/s
/// in A/B runs of the lineage bench once the writer had its own thread).
struct Held {
    pool: AnyPool,
    conn: Option<PoolConnection<AnyDb>>,
}

impl Held {
    /// Starts a write transaction on the kept connection; on one that fails to (the database
    /// went away since the last batch, say), once more on a fresh connection. Nothing ran on
    /// the failed one, so trying again repeats nothing.
    async fn begin(&mut self, backend: Backend) -> Result<&mut AnyConnection, StoreError> {
        if let Some(mut c) = self.conn.take() {
            match crate::exec(&mut c, backend.begin_write()).await {
                Ok(()) => return Ok(&mut **self.conn.insert(c)),
                Err(e) => {
                    tracing::debug!(error = %e, "the writer's connection failed to begin; taking a new one");
                    drop(c.detach());
                }
            }
        }
        let mut c = self.pool.acquire().await?;
        crate::exec(&mut c, backend.begin_write()).await?;
        Ok(&mut **self.conn.insert(c))
    }

    /// Drops the connection, whose state is unknown (a failed COMMIT or ROLLBACK), for good.
    fn discard(&mut self) {
        if let Some(c) = self.conn.take() {
            drop(c.detach());
        }
    }

    /// Rolls back what the connection has begun; discards it if even that fails.
    async fn roll_back(&mut self) {
        let failed = match self.conn.as_mut() {
            Some(c) => crate::exec(c, "ROLLBACK").await.is_err(),
            None => false,
        };
        if failed {
            self.discard();
        }
    }
}

enum JobResult {
    Done(Erased),
    Failed(StoreError),
}

async fn commit_batch(backend: Backend, conn: &mut Held, jobs: Vec<Job>, signer: Option<&LogSigner>) {
    let mut drafts = Vec::with_capacity(jobs.len());
    let mut replies = Vec::with_capacity(jobs.len());
    let mut ops: Vec<Option<OpFn>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        drafts.push(job.draft);
        replies.push(job.reply);
        ops.push(job.op);
    }
    // Most batches have no failing write: run them without savepoints (two statements fewer
    // per write). If any write fails, nothing of that attempt is kept, and the batch runs
    // again with a savepoint per write so that only the failing one is undone.
    let originals = drafts.clone();
    let outcome = match run_optimistic(backend, conn, &ops, &mut drafts, signer).await {
        Optimistic::Committed(done) => Ok(done),
        Optimistic::CommitFailed(e) => Err(e),
        Optimistic::RolledBack => {
            drafts = originals;
            run_batch(backend, conn, &ops, &mut drafts, signer).await
        }
    };
    match outcome {
        Ok((results, events, signed)) => {
            if let (Some(signer), Some((size, root))) = (signer, signed) {
                signer.committed(size, root);
            }
            for ((reply, result), event) in replies.into_iter().zip(results).zip(events) {
                let _ = reply.send(match result {
                    JobResult::Done(v) => Ok((v, event)),
                    JobResult::Failed(e) => Err(e),
                });
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batch = replies.len(), "write batch failed; nothing was committed");
            let msg = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Database(sqlx::Error::Protocol(format!(
                    "write batch not committed: {msg}"
                )))));
            }
        }
    }
}

/// What a committed batch produced: each write's result, the audit events, and the tree size
/// and root it signed, if it did.
type BatchDone = (Vec<JobResult>, Vec<AuditEvent>, Option<(u64, custody_audit::Hash)>);

enum Optimistic {
    Committed(BatchDone),
    /// Something failed before COMMIT was sent: nothing was kept; run it again carefully.
    RolledBack,
    /// COMMIT itself failed: whether it took effect is unknown, so it must not run again.
    CommitFailed(StoreError),
}

/// Runs every op without savepoints, sequences the audit records and commits.
async fn run_optimistic(
    backend: Backend,
    held: &mut Held,
    ops: &[Option<OpFn>],
    drafts: &mut [AuditDraft],
    signer: Option<&LogSigner>,
) -> Optimistic {
    let Ok(conn) = held.begin(backend).await else { return Optimistic::RolledBack };
    let attempt = async {
        let mut results = Vec::with_capacity(ops.len());
        for (op, draft) in ops.iter().zip(drafts.iter_mut()) {
            match op {
                Some(op) => results.push(JobResult::Done(op(&mut *conn, draft).await?)),
                None => results.push(JobResult::Done(Box::new(()))),
            }
        }
        let (events, signed) = insert_events(backend, &mut *conn, drafts, signer).await?;
        Ok::<_, StoreError>((results, events, signed))
    }
    .await;
    match attempt {
        Ok(done) => match crate::exec(&mut *conn, "COMMIT").await {
            Ok(()) => Optimistic::Committed(done),
            Err(e) => {
                held.discard();
                Optimistic::CommitFailed(e.into())
            }
        },
        Err(e) => {
            tracing::debug!(error = %e, "a write in the batch failed; running the batch with savepoints");
            held.roll_back().await;
            Optimistic::RolledBack
        }
    }
}

/// Runs every op in its own savepoint, sequences the audit records and commits.
async fn run_batch(
    backend: Backend,
    held: &mut Held,
    ops: &[Option<OpFn>],
    drafts: &mut [AuditDraft],
    signer: Option<&LogSigner>,
) -> Result<BatchDone, StoreError> {
    let conn = held.begin(backend).await?;
    let result = async {
        let mut results = Vec::with_capacity(ops.len());
        for (op, draft) in ops.iter().zip(drafts.iter_mut()) {
            let Some(op) = op else {
                results.push(JobResult::Done(Box::new(())));
                continue;
            };
            let mut attempt = 0;
            loop {
                crate::exec(&mut *conn, "SAVEPOINT w").await?;
                match op(&mut *conn, draft).await {
                    Ok(v) => {
                        crate::exec(&mut *conn, "RELEASE SAVEPOINT w").await?;
                        results.push(JobResult::Done(v));
                        break;
                    }
                    Err(e) => {
                        // Rolling back to the savepoint also releases the locks taken after it.
                        crate::exec(&mut *conn, "ROLLBACK TO SAVEPOINT w").await?;
                        crate::exec(&mut *conn, "RELEASE SAVEPOINT w").await?;
                        if is_retryable(&e) && attempt < MAX_RETRIES {
                            attempt += 1;
                            tracing::debug!(attempt, error = %e, "write lost a lock race; running it again");
                            continue;
                        }
                        draft.outcome = if e.is_caller_error() { Outcome::Rejected } else { Outcome::Error };
                        set_error_detail(draft, &e);
                        results.push(JobResult::Failed(e));
                        break;
                    }
                }
            }
        }
        let (events, signed) = insert_events(backend, &mut *conn, drafts, signer).await?;
        crate::exec(&mut *conn, "COMMIT").await?;
        Ok::<_, StoreError>((results, events, signed))
    }
    .await;
    if result.is_err() {
        // The connection may be mid-transaction; roll back, and drop it if even that fails.
        held.roll_back().await;
    }
    result
}

/// PostgreSQL's deadlock, serialization and lock-timeout failures: the write did nothing
/// wrong and succeeds when run again.
fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001" | "55P03"))
        }
        _ => false,
    }
}

fn set_error_detail(draft: &mut AuditDraft, e: &StoreError) {
    let text = if e.is_caller_error() { e.to_string() } else { "internal store error".to_owned() };
    match &mut draft.details {
        serde_json::Value::Object(map) => {
            map.insert("error".into(), text.into());
        }
        other => {
            *other = serde_json::json!({ "error": text, "request": other.take() });
        }
    }
}
