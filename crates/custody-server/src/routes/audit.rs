use crate::error::ApiError;
use crate::state::Ctx;
use axum::Json;
use axum::extract::Query;
use custody_core::{Action, AuditEvent, Name};
use custody_policy::ResourceFacts;
use custody_store::AuditQuery;
use serde::Deserialize;

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
}

/// Read audit events in sequence order.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter), responses((status = 200, body = Vec<AuditEvent>)))]
pub(crate) async fn list(
    ctx: Ctx,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
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
    let draft = ctx.authorize(Action::AuditRead, ResourceFacts::AuditLog { project: project.clone() }).await?;
    let q = AuditQuery {
        from_seq: f.from.unwrap_or(0),
        limit: f.limit.unwrap_or(100).clamp(1, 1000),
        actor: f.actor,
        action: f.action,
        project,
        resource: f.resource,
    };
    let events = ctx.store().audit_events(&q).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(events))
}
