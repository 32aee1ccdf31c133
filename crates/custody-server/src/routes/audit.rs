use crate::error::ApiError;
use crate::state::Ctx;
use axum::Json;
use axum::extract::Query;
use custody_core::{Action, AuditEvent, Name};
use custody_policy::ResourceFacts;
use custody_store::AuditQuery;
use serde::{Deserialize, Serialize};

/// Filters for reading the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditFilter {
    /// Start at this sequence number (default 0).
    from: Option<u64>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// Only this actor.
    actor: Option<String>,
    /// Only this action (e.g. `dataset.read`).
    action: Option<String>,
    /// Only this project; without it, the whole log (platform auditors and admins).
    project: Option<String>,
    /// Only this resource (e.g. `dataset:<id>`).
    resource: Option<String>,
    /// Only resources of this kind (`dataset`, `model`, `deployment`, `token`, …).
    resource_kind: Option<String>,
    /// Only this region.
    region: Option<String>,
    /// Only this outcome: `success`, `denied`, `rejected` or `error`.
    outcome: Option<String>,
    /// Only events at or after this time (RFC 3339, or a date `YYYY-MM-DD` meaning its start, UTC).
    since: Option<String>,
    /// Only events before this time (same forms).
    until: Option<String>,
    /// Attach to each event its inclusion proof in the log as of the newest signed checkpoint.
    with_proofs: Option<bool>,
}

/// An audit event, with its inclusion proof when asked for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditEntry {
    #[serde(flatten)]
    event: AuditEvent,
    /// Present with `with_proofs=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    inclusion: Option<RecordInclusion>,
}

/// Where a record sits in a tree of the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RecordInclusion {
    /// The tree size proven against (the newest signed checkpoint's when it covers the record).
    size: u64,
    /// Hex root of that tree.
    root: String,
    /// Hex audit path, leaf to root.
    proof: Vec<String>,
}

/// Parses `since`/`until`: RFC 3339, or a date taken as its midnight UTC.
fn parse_time(field: &'static str, text: &str) -> Result<custody_core::Timestamp, ApiError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &date_format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| ApiError::invalid(field, format!("`{text}` is neither RFC 3339 nor YYYY-MM-DD")))
}

/// Read audit events in sequence order.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter), responses((status = 200, body = Vec<AuditEntry>)))]
pub(crate) async fn list(
    ctx: Ctx,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let unevaluated = ctx.unevaluated(Action::AuditRead, &ResourceFacts::AuditLog { project: None });
    let f = ctx.query(&unevaluated, "query", filter).await?;
    let project = match f.project.as_deref().map(Name::new).transpose() {
        Ok(p) => p,
        Err(e) => return Err(ctx.refuse(unevaluated, ApiError::from(e.for_field("project"))).await),
    };
    if let Some(a) = &f.action
        && !Action::ALL.iter().any(|x| x.as_str() == a)
    {
        return Err(ctx.refuse(unevaluated, ApiError::invalid("action", format!("`{a}` is not an action"))).await);
    }
    if let Some(o) = &f.outcome
        && !["success", "denied", "rejected", "error"].contains(&o.as_str())
    {
        let err = ApiError::invalid("outcome", format!("`{o}` is not success, denied, rejected or error"));
        return Err(ctx.refuse(unevaluated, err).await);
    }
    let times = (
        f.since.as_deref().map(|t| parse_time("since", t)).transpose(),
        f.until.as_deref().map(|t| parse_time("until", t)).transpose(),
    );
    let (since, until) = match times {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return Err(ctx.refuse(unevaluated, e).await),
    };
    let draft = ctx.authorize(Action::AuditRead, ResourceFacts::AuditLog { project: project.clone() }).await?;
    let q = AuditQuery {
        from_seq: f.from.unwrap_or(0),
        limit: f.limit.unwrap_or(100).clamp(1, 1000),
        actor: f.actor,
        action: f.action,
        project,
        resource: f.resource,
        resource_kind: f.resource_kind,
        region: f.region,
        outcome: f.outcome,
        since,
        until,
    };
    let events = ctx.store().audit_events(&q).await.map_err(|e| ctx.store_error(e))?;
    let entries = if f.with_proofs.unwrap_or(false) {
        with_proofs(&ctx, events).await?
    } else {
        events.into_iter().map(|event| AuditEntry { event, inclusion: None }).collect()
    };
    ctx.record(draft).await?;
    Ok(Json(entries))
}

/// Proves each event in the newest signed tree that holds it (or the current tree).
async fn with_proofs(ctx: &Ctx, events: Vec<AuditEvent>) -> Result<Vec<AuditEntry>, ApiError> {
    let store = ctx.store();
    let signed = store.audit_latest_checkpoint().await.map_err(|e| ctx.store_error(e))?.map_or(0, |c| c.size);
    let current = store.audit_len().await.map_err(|e| ctx.store_error(e))?;
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let size = if event.seq < signed { signed } else { current };
        let p = store.audit_inclusion(event.seq, size).await.map_err(|e| ctx.store_error(e))?;
        let inclusion =
            RecordInclusion { size, root: hex::encode(p.root), proof: p.proof.iter().map(hex::encode).collect() };
        out.push(AuditEntry { event, inclusion: Some(inclusion) });
    }
    Ok(out)
}
