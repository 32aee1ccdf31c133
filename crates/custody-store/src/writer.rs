//! The group-commit writer: one task per process that turns waiting writes into batches.

use crate::{Backend, BoxFuture, StoreError, audit::insert_events};
use custody_core::{AuditDraft, AuditEvent, Outcome};
use sqlx::{AnyConnection, AnyPool};
use std::any::Any;
use tokio::sync::{mpsc, oneshot};

type Erased = Box<dyn Any + Send>;
type Op = Box<
    dyn for<'c> FnOnce(&'c mut AnyConnection, &'c mut AuditDraft) -> BoxFuture<'c, Result<Erased, StoreError>> + Send,
>;

struct Job {
    draft: AuditDraft,
    op: Op,
    reply: oneshot::Sender<Result<(Erased, AuditEvent), StoreError>>,
}

/// What stops the writer task, and the task to wait for.
type Running = (oneshot::Sender<()>, tokio::task::JoinHandle<()>);

#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    shutdown: std::sync::Arc<tokio::sync::Mutex<Option<Running>>>,
}

impl Writer {
    pub(crate) fn start(backend: Backend, pool: AnyPool, max_batch: usize) -> Self {
        let (queue, rx) = mpsc::channel(max_batch.max(1) * 4);
        let (stop, stopped) = oneshot::channel();
        let handle = tokio::spawn(run(backend, pool, rx, stopped, max_batch.max(1)));
        Self { queue, shutdown: std::sync::Arc::new(tokio::sync::Mutex::new(Some((stop, handle)))) }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    pub(crate) async fn submit<T, F>(&self, draft: AuditDraft, op: F) -> Result<(T, AuditEvent), StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection, &'c mut AuditDraft) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let op: Op = Box::new(move |conn, draft| {
            let fut = op(conn, draft);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Erased) })
        });
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { draft, op, reply }).await.map_err(|_| StoreError::WriterStopped)?;
        let (value, event) = answer.await.map_err(|_| StoreError::WriterStopped)??;
        let value = value
            .downcast::<T>()
            .map_err(|_| StoreError::Corrupt { what: "write result", reason: "type mismatch".into() })?;
        Ok((*value, event))
    }

    /// Stops taking writes, commits those already queued, and waits for the writer to end.
    pub(crate) async fn close(&self) {
        if let Some((stop, handle)) = self.shutdown.lock().await.take() {
            let _ = stop.send(());
            let _ = handle.await;
        }
    }
}

async fn run(
    backend: Backend,
    pool: AnyPool,
    mut rx: mpsc::Receiver<Job>,
    mut stopped: oneshot::Receiver<()>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, max_batch) => {
                if n == 0 { break; }
                commit_batch(backend, &pool, std::mem::take(&mut batch)).await;
            }
            _ = &mut stopped => {
                rx.close();
                while rx.recv_many(&mut batch, max_batch).await > 0 {
                    commit_batch(backend, &pool, std::mem::take(&mut batch)).await;
                }
                break;
            }
        }
    }
    pool.close().await;
}

enum JobResult {
    Done(Erased),
    Failed(StoreError),
}

async fn commit_batch(backend: Backend, pool: &AnyPool, jobs: Vec<Job>) {
    let mut drafts = Vec::with_capacity(jobs.len());
    let mut replies = Vec::with_capacity(jobs.len());
    let mut ops = Vec::with_capacity(jobs.len());
    for job in jobs {
        drafts.push(job.draft);
        replies.push(job.reply);
        ops.push(job.op);
    }
    match run_batch(backend, pool, ops, &mut drafts).await {
        Ok((results, events)) => {
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

/// Runs every op in its own savepoint, sequences the audit records and commits.
async fn run_batch(
    backend: Backend,
    pool: &AnyPool,
    ops: Vec<Op>,
    drafts: &mut [AuditDraft],
) -> Result<(Vec<JobResult>, Vec<AuditEvent>), StoreError> {
    let mut conn = pool.acquire().await?;
    crate::exec(&mut conn, backend.begin_write()).await?;
    let result = async {
        let mut results = Vec::with_capacity(ops.len());
        for (op, draft) in ops.into_iter().zip(drafts.iter_mut()) {
            crate::exec(&mut conn, "SAVEPOINT w").await?;
            match op(&mut conn, draft).await {
                Ok(v) => {
                    crate::exec(&mut conn, "RELEASE SAVEPOINT w").await?;
                    results.push(JobResult::Done(v));
                }
                Err(e) => {
                    crate::exec(&mut conn, "ROLLBACK TO SAVEPOINT w").await?;
                    crate::exec(&mut conn, "RELEASE SAVEPOINT w").await?;
                    draft.outcome = if e.is_caller_error() { Outcome::Rejected } else { Outcome::Error };
                    set_error_detail(draft, &e);
                    results.push(JobResult::Failed(e));
                }
            }
        }
        let events = insert_events(backend, &mut conn, drafts).await?;
        crate::exec(&mut conn, "COMMIT").await?;
        Ok::<_, StoreError>((results, events))
    }
    .await;
    if result.is_err() {
        // The connection may be mid-transaction; roll back, and drop it if even that fails.
        if crate::exec(&mut conn, "ROLLBACK").await.is_err() {
            conn.detach();
        }
    }
    result
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
