//! Key management: rotate a KEK; rewrap every stored data key onto its KEK's current version
//! in the background, with progress. A rewrap rewrites only headers, one atomic put each, so
//! data stays readable throughout (old versions still unwrap until retired); a header already
//! current is skipped, so a job that was interrupted resumes by being started again.

use crate::error::ApiError;
use crate::state::{AppState, Ctx};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custody_core::{Action, AuditDraft, KeyOperation, KeyUse};
use custody_crypto::Header;
use custody_policy::ResourceFacts;
use serde::Serialize;

/// Ledger rows (and one audit record) per this many rewrapped keys.
const BATCH: usize = 256;
/// Failures kept in the status.
const MAX_FAILURES: usize = 20;

/// Where the rewrap job is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum RewrapState {
    /// None has run since the server started.
    #[default]
    Idle,
    Running,
    Finished,
    /// It could not list the store.
    Failed,
}

/// The rewrap job's progress.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct RewrapStatus {
    state: RewrapState,
    /// Who started the last job.
    started_by: Option<String>,
    /// When it started and finished (RFC 3339).
    started_at: Option<String>,
    finished_at: Option<String>,
    /// Blobs found, looked at, and rewrapped (the rest were already current or failed).
    blobs: u64,
    scanned: u64,
    rewrapped: u64,
    /// How many failed, and the first few: "blob: cause".
    failed: u64,
    failures: Vec<String>,
}

/// A KEK's new version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Rotated {
    key_id: String,
    current: u32,
}

fn now_text() -> String {
    custody_core::now().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Rotate a KEK: new data keys are wrapped under the new version; old versions still unwrap.
#[utoipa::path(post, path = "/api/v1/keys/{key}/rotate", tag = "keys", params(("key" = String, Path)),
    responses((status = 200, body = Rotated), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn rotate(ctx: Ctx, Path(key): Path<String>) -> Result<Json<Rotated>, ApiError> {
    let mut draft = ctx.authorize(Action::KeyManage, ResourceFacts::Platform).await?;
    draft.resource = custody_core::ResourceRef::new("kek", &key);
    match ctx.state.inner.data.blobs.provider().rotate(&key).await {
        Ok(current) => {
            draft.details = serde_json::json!({ "key_id": key, "current": current });
            ctx.record(draft).await?;
            Ok(Json(Rotated { key_id: key, current }))
        }
        Err(custody_crypto::KeyError::UnknownKey(k)) => {
            Err(ctx.refuse(draft, ApiError::not_found("key", format!("no KEK `{k}`"))).await)
        }
        Err(e) => Err(ctx.refuse(draft, ApiError::unavailable(format!("key provider: {e}"))).await),
    }
}

/// Start rewrapping every stored data key onto its KEK's current version (in the background).
#[utoipa::path(post, path = "/api/v1/keys/rewrap", tag = "keys",
    responses((status = 202, body = RewrapStatus), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn start_rewrap(ctx: Ctx) -> Result<(StatusCode, Json<RewrapStatus>), ApiError> {
    let draft = ctx.authorize(Action::KeyManage, ResourceFacts::Platform).await?;
    let started = {
        let mut status = ctx.state.inner.data.rewrap.lock().map_err(|_| ApiError::internal())?;
        if status.state == RewrapState::Running {
            None
        } else {
            *status = RewrapStatus {
                state: RewrapState::Running,
                started_by: Some(ctx.principal.id.clone()),
                started_at: Some(now_text()),
                ..RewrapStatus::default()
            };
            Some(status.clone())
        }
    };
    let Some(status) = started else {
        return Err(ctx.refuse(draft, ApiError::conflict("rewrap", "a rewrap job is already running")).await);
    };
    let mut record = draft.clone();
    record.details = serde_json::json!({ "job": "rewrap", "event": "started" });
    ctx.record(record).await?;
    tokio::spawn(run_rewrap(ctx.state.clone(), draft));
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// The rewrap job's progress.
#[utoipa::path(get, path = "/api/v1/keys/rewrap", tag = "keys", responses((status = 200, body = RewrapStatus)))]
pub(crate) async fn rewrap_status(ctx: Ctx) -> Result<Json<RewrapStatus>, ApiError> {
    let draft = ctx.authorize(Action::KeyManage, ResourceFacts::Platform).await?;
    let status = ctx.state.inner.data.rewrap.lock().map_err(|_| ApiError::internal())?.clone();
    ctx.record(draft).await?;
    Ok(Json(status))
}

fn rewrap_use(draft: &AuditDraft, header: &Header) -> KeyUse {
    let c = |k: &str| header.context.get(k).cloned();
    KeyUse {
        at: custody_core::now(),
        operation: KeyOperation::Rewrap,
        provider: header.kek.provider.clone(),
        key_id: header.kek.key_id.clone(),
        key_version: header.kek.version,
        object: c("object").unwrap_or_default(),
        project: c("project").unwrap_or_default(),
        dataset_id: c("dataset"),
        dataset_version: c("version"),
        region: c("region"),
        classification: c("classification"),
        principal: draft.actor.clone(),
        run_id: None,
        request_id: draft.request_id.to_string(),
    }
}

fn update(state: &AppState, f: impl FnOnce(&mut RewrapStatus)) {
    if let Ok(mut s) = state.inner.data.rewrap.lock() {
        f(&mut s);
    }
}

/// Writes a batch of rewraps to the ledger with one audit record.
async fn flush(state: &AppState, draft: &AuditDraft, uses: &mut Vec<KeyUse>) {
    if uses.is_empty() {
        return;
    }
    let mut record = draft.clone();
    record.details = serde_json::json!({ "job": "rewrap", "event": "rewrapped", "keys": uses.len() });
    if let Err(e) = state.inner.store.record_key_uses(record, std::mem::take(uses)).await {
        tracing::error!(error = %e, "recording rewraps");
    }
}

async fn run_rewrap(state: AppState, draft: AuditDraft) {
    let blobs = state.inner.data.blobs.clone();
    let locations = match blobs.locations().await {
        Ok(l) => l,
        Err(e) => {
            update(&state, |s| {
                s.state = RewrapState::Failed;
                s.failures.push(e.to_string());
                s.finished_at = Some(now_text());
            });
            return;
        }
    };
    update(&state, |s| s.blobs = locations.len() as u64);
    let mut uses = Vec::new();
    for location in &locations {
        match blobs.rewrap_at(location).await {
            Ok((_, Some(new))) => {
                uses.push(rewrap_use(&draft, &new));
                update(&state, |s| s.rewrapped += 1);
            }
            Ok((_, None)) => {}
            Err(e) => update(&state, |s| {
                s.failed += 1;
                if s.failures.len() < MAX_FAILURES {
                    s.failures.push(format!("{location}: {e}"));
                }
            }),
        }
        update(&state, |s| s.scanned += 1);
        if uses.len() >= BATCH {
            flush(&state, &draft, &mut uses).await;
        }
    }
    flush(&state, &draft, &mut uses).await;
    let mut done = draft.clone();
    let status = state.inner.data.rewrap.lock().map(|s| s.clone()).unwrap_or_default();
    done.details = serde_json::json!({
        "job": "rewrap", "event": "finished", "blobs": status.blobs, "rewrapped": status.rewrapped, "failed": status.failed,
    });
    if let Err(e) = state.inner.store.record(done).await {
        tracing::error!(error = %e, "recording the end of a rewrap job");
    }
    update(&state, |s| {
        s.state = RewrapState::Finished;
        s.finished_at = Some(now_text());
    });
}
