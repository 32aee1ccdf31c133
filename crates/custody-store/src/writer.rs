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
use std::any::{Any, TypeId};
use std::sync::Arc;
use tokio::sync::{Mutex, Notify, mpsc, oneshot, watch};

type Erased = Box<dyn Any + Send>;
type OpFn = Box<
    dyn for<'c> Fn(&'c mut AnyConnection, &'c mut AuditDraft) -> BoxFuture<'c, Result<Erased, StoreError>>
        + Send
        + Sync,
>;

/// How often a batch with a write chosen as a deadlock or serialization victim is run again.
const MAX_RETRIES: usize = 8;

/// A write that runs together with the like writes queued next to it: the writer hands a run
/// of them in a batch to [`GroupWrite::run_group`] at once, so that it can make them in a few
/// statements instead of one or more each (every statement is a round trip on the batch's
/// serial path, and every write waits for the batch).
pub(crate) trait GroupWrite: Send + Sync + Sized + 'static {
    /// What one write gives back.
    type Output: Send + 'static;

    /// Makes every write of `group`, enriching its draft (`drafts[i]` is `group[i]`'s); one
    /// output per write, in order. Like a [`crate::WriteOp`] it may run more than once, and on
    /// a group of one: when a write of the batch fails, the batch runs again with a savepoint
    /// per write, so that only the failing one is undone.
    fn run_group<'c>(
        backend: Backend,
        conn: &'c mut AnyConnection,
        group: &'c [&'c Self],
        drafts: &'c mut [AuditDraft],
    ) -> BoxFuture<'c, Result<Vec<Self::Output>, StoreError>>;
}

type GroupItem = dyn Any + Send + Sync;
type RunGroupFn = for<'c> fn(
    Backend,
    &'c mut AnyConnection,
    &'c [&'c GroupItem],
    &'c mut [AuditDraft],
) -> BoxFuture<'c, Result<Vec<Erased>, StoreError>>;

/// [`GroupWrite::run_group`] of `G` on type-erased writes, each of which is a `G`.
fn run_erased<'c, G: GroupWrite>(
    backend: Backend,
    conn: &'c mut AnyConnection,
    group: &'c [&'c GroupItem],
    drafts: &'c mut [AuditDraft],
) -> BoxFuture<'c, Result<Vec<Erased>, StoreError>> {
    Box::pin(async move {
        let mismatch = || StoreError::Corrupt { what: "write group", reason: "type mismatch".into() };
        let writes = group.iter().map(|w| w.downcast_ref::<G>().ok_or_else(mismatch)).collect::<Result<Vec<_>, _>>()?;
        let outputs = G::run_group(backend, conn, &writes, drafts).await?;
        if outputs.len() != writes.len() {
            return Err(StoreError::Corrupt {
                what: "write group",
                reason: format!("{} results for {} writes", outputs.len(), writes.len()),
            });
        }
        Ok(outputs.into_iter().map(|v| Box::new(v) as Erased).collect())
    })
}

/// What a queued write does besides its audit record.
enum Op {
    /// Nothing: an audit record that changes nothing else needs no savepoint.
    Record,
    One(OpFn),
    /// One of a kind of [`GroupWrite`] (`kind` is its type).
    Grouped {
        kind: TypeId,
        write: Box<GroupItem>,
        run: RunGroupFn,
    },
}

impl Op {
    fn group_kind(&self) -> Option<TypeId> {
        match self {
            Op::Grouped { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

struct Job {
    draft: AuditDraft,
    op: Op,
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
    /// `commits`, if given, is notified after every batch.
    pub(crate) fn start(
        backend: Backend,
        pool: AnyPool,
        max_batch: usize,
        workers: usize,
        signer: Option<Arc<LogSigner>>,
        commits: Option<Arc<Notify>>,
    ) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel(max_batch * 4);
        let rx = Arc::new(Mutex::new(rx));
        let (stop, stopped) = watch::channel(false);
        let workers = (0..workers.max(1))
            .map(|i| {
                let (rx, stopped, signer, commits) = (rx.clone(), stopped.clone(), signer.clone(), commits.clone());
                spawn_worker(i, work(backend, pool.clone(), rx, stopped, max_batch, signer, commits))
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
        let (value, event) = self.enqueue(draft, Op::One(op)).await?;
        Ok((downcast(value)?, event))
    }

    /// Queues `write`, to run with the writes of its kind queued next to it.
    pub(crate) async fn submit_grouped<G: GroupWrite>(
        &self,
        draft: AuditDraft,
        write: G,
    ) -> Result<(G::Output, AuditEvent), StoreError> {
        let op = Op::Grouped { kind: TypeId::of::<G>(), write: Box::new(write), run: run_erased::<G> };
        let (value, event) = self.enqueue(draft, op).await?;
        Ok((downcast(value)?, event))
    }

    /// Queues an audit record that changes nothing else.
    pub(crate) async fn record(&self, draft: AuditDraft) -> Result<AuditEvent, StoreError> {
        self.enqueue(draft, Op::Record).await.map(|(_, event)| event)
    }

    async fn enqueue(&self, draft: AuditDraft, op: Op) -> Result<(Erased, AuditEvent), StoreError> {
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

fn downcast<T: 'static>(value: Erased) -> Result<T, StoreError> {
    value
        .downcast::<T>()
        .map(|v| *v)
        .map_err(|_| StoreError::Corrupt { what: "write result", reason: "type mismatch".into() })
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
    commits: Option<Arc<Notify>>,
) {
    let signer = signer.as_deref();
    let mut conn = Held { pool, conn: None };
    // Tells the WAL checkpointer (`wal.rs`) there are pages to copy; a notice not yet taken
    // stands for every batch since.
    let committed = || {
        if let Some(c) = &commits {
            c.notify_one();
        }
    };
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
            Some(_) => {
                commit_batch(backend, &mut conn, std::mem::take(&mut batch), signer).await;
                committed();
            }
            None => {
                // Stopping: refuse new writes, then drain what was queued before.
                let mut rx = rx.lock().await;
                rx.close();
                while rx.recv_many(&mut batch, max_batch).await > 0 {
                    commit_batch(backend, &mut conn, std::mem::take(&mut batch), signer).await;
                    committed();
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
    let mut ops: Vec<Op> = Vec::with_capacity(jobs.len());
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
        Optimistic::RolledBack => run_carefully(backend, conn, &ops, &mut drafts, &originals, signer).await,
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
    ops: &[Op],
    drafts: &mut [AuditDraft],
    signer: Option<&LogSigner>,
) -> Optimistic {
    let Ok(conn) = held.begin(backend).await else { return Optimistic::RolledBack };
    let attempt = async {
        let mut results = Vec::with_capacity(ops.len());
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                Op::Record => results.push(JobResult::Done(Box::new(()))),
                Op::One(op) => results.push(JobResult::Done(op(&mut *conn, &mut drafts[i]).await?)),
                Op::Grouped { kind, run, .. } => {
                    let end = i + ops[i..].iter().take_while(|o| o.group_kind() == Some(*kind)).count();
                    let group: Vec<&GroupItem> = ops[i..end]
                        .iter()
                        .filter_map(|o| match o {
                            Op::Grouped { write, .. } => Some(&**write),
                            _ => None,
                        })
                        .collect();
                    let outputs = run(backend, &mut *conn, &group, &mut drafts[i..end]).await?;
                    results.extend(outputs.into_iter().map(JobResult::Done));
                    i = end;
                    continue;
                }
            }
            i += 1;
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

/// Runs the batch with a savepoint per write ([`run_batch`]). A write that loses a lock race
/// (a PostgreSQL deadlock or serialization victim) cannot simply run again in its savepoint:
/// the locks its batch took before it stay held, and they may be what the other side of the
/// cycle waits for, so it would lose again, and again. The whole batch is rolled back instead
/// (which lets the other side finish) and run again after a short, growing pause; on the last
/// attempt such a write fails alone, like any other failing write.
async fn run_carefully(
    backend: Backend,
    held: &mut Held,
    ops: &[Op],
    drafts: &mut Vec<AuditDraft>,
    originals: &[AuditDraft],
    signer: Option<&LogSigner>,
) -> Result<BatchDone, StoreError> {
    let mut attempt = 0;
    loop {
        drafts.clear();
        drafts.extend_from_slice(originals);
        let last = attempt == MAX_RETRIES;
        match run_batch(backend, held, ops, drafts, signer, last).await {
            Err(e) if !last && is_retryable(&e) => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "a write lost a lock race; running its batch again");
                tokio::time::sleep(std::time::Duration::from_millis(2 * attempt as u64)).await;
            }
            outcome => return outcome,
        }
    }
}

/// Runs every op in its own savepoint, sequences the audit records and commits. A write that
/// loses a lock race ends the attempt ([`run_carefully`] runs it again) unless `last`.
async fn run_batch(
    backend: Backend,
    held: &mut Held,
    ops: &[Op],
    drafts: &mut [AuditDraft],
    signer: Option<&LogSigner>,
    last: bool,
) -> Result<BatchDone, StoreError> {
    let conn = held.begin(backend).await?;
    let result = async {
        let mut results = Vec::with_capacity(ops.len());
        for (op, draft) in ops.iter().zip(drafts.iter_mut()) {
            if let Op::Record = op {
                results.push(JobResult::Done(Box::new(())));
                continue;
            }
            crate::exec(&mut *conn, "SAVEPOINT w").await?;
            match run_alone(backend, &mut *conn, op, draft).await {
                Ok(v) => {
                    crate::exec(&mut *conn, "RELEASE SAVEPOINT w").await?;
                    results.push(JobResult::Done(v));
                }
                Err(e) if !last && is_retryable(&e) => return Err(e),
                Err(e) => {
                    // Rolling back to the savepoint also releases the locks taken after it.
                    crate::exec(&mut *conn, "ROLLBACK TO SAVEPOINT w").await?;
                    crate::exec(&mut *conn, "RELEASE SAVEPOINT w").await?;
                    draft.outcome = if e.is_caller_error() { Outcome::Rejected } else { Outcome::Error };
                    set_error_detail(draft, &e);
                    results.push(JobResult::Failed(e));
                }
            }
        }
        let (events, signed) = insert_events(backend, &mut *conn, drafts, signer).await?;
        if let Err(e) = crate::exec(&mut *conn, "COMMIT").await {
            // Whether it took effect is unknown: never a reason to run the batch again.
            return Err(StoreError::Database(sqlx::Error::Protocol(format!("COMMIT failed: {e}"))));
        }
        Ok::<_, StoreError>((results, events, signed))
    }
    .await;
    if result.is_err() {
        // The connection may be mid-transaction; roll back, and drop it if even that fails.
        held.roll_back().await;
    }
    result
}

/// Runs one write by itself (a grouped one as a group of one).
async fn run_alone(
    backend: Backend,
    conn: &mut AnyConnection,
    op: &Op,
    draft: &mut AuditDraft,
) -> Result<Erased, StoreError> {
    match op {
        Op::Record => Ok(Box::new(())),
        Op::One(op) => op(conn, draft).await,
        Op::Grouped { write, run, .. } => {
            let mut outputs = run(backend, conn, &[&**write], std::slice::from_mut(draft)).await?;
            outputs.pop().ok_or(StoreError::Corrupt { what: "write group", reason: "no result".into() })
        }
    }
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
