use crate::error::ApiError;
use crate::routes::projects;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::{Path, Query};
use custody_core::{Action, Approval, ApprovalId, ApprovalStatus};
use custody_policy::ResourceFacts;
use serde::Deserialize;

fn facts(a: &Approval) -> ResourceFacts {
    ResourceFacts::Approval { id: a.id, project: a.project.clone(), requested_by: a.requested_by.clone() }
}

async fn load(ctx: &Ctx, action: Action, id: &str) -> Result<Approval, ApiError> {
    let looked_up = match ApprovalId::parse(id) {
        Ok(id) => ctx.store().approval(id).await,
        Err(e) => Err(custody_store::StoreError::Invalid(e)),
    };
    ctx.found(action, looked_up).await
}

/// Filter for listing approvals.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalFilter {
    /// Only those with this status (`pending`, `approved`, `rejected`).
    status: Option<ApprovalStatus>,
}

/// List a project's approval requests, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/approvals", tag = "approvals",
    params(("project" = String, Path), ApprovalFilter), responses((status = 200, body = Vec<Approval>)))]
pub(crate) async fn list(
    ctx: Ctx,
    Path(project): Path<String>,
    filter: Result<Query<ApprovalFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Approval>>, ApiError> {
    let project = projects::load(&ctx, Action::ProjectRead, &project).await?;
    let draft = ctx.authorize(Action::ProjectRead, ResourceFacts::Project { name: project.name.clone() }).await?;
    let filter = ctx.query(&draft, "status", filter).await?;
    let found = ctx.store().approvals(&project, filter.status).await.map_err(|e| ctx.store_error(e))?;
    let found: Vec<Approval> = found.into_iter().filter(|a| ctx.allows(Action::ApprovalRead, &facts(a))).collect();
    ctx.record(draft).await?;
    Ok(Json(found))
}

/// Read an approval request.
#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path)),
    responses((status = 200, body = Approval), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Approval>, ApiError> {
    let a = load(&ctx, Action::ApprovalRead, &id).await?;
    let draft = ctx.authorize(Action::ApprovalRead, facts(&a)).await?;
    ctx.record(draft).await?;
    Ok(Json(a))
}

/// A decision on an approval request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalDecision {
    /// Approve (`true`) or reject (`false`).
    approve: bool,
    /// A comment for the record.
    #[serde(default)]
    comment: Option<String>,
}

/// Approve or reject a pending request (approvers other than the requester). An approved
/// change is applied in the same transaction.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/decision", tag = "approvals", request_body = ApprovalDecision,
    params(("id" = String, Path)),
    responses((status = 200, body = Approval), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn decide(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<Json<Approval>, ApiError> {
    let a = load(&ctx, Action::ApprovalDecide, &id).await?;
    let draft = ctx.authorize(Action::ApprovalDecide, facts(&a)).await?;
    let d: ApprovalDecision = ctx.parse(&draft, body).await?;
    if d.comment.as_ref().is_some_and(|c| c.chars().count() > 1000) {
        return Err(ctx.refuse(draft, ApiError::invalid("comment", "must be at most 1000 characters")).await);
    }
    let by = ctx.principal.id.clone();
    let (a, _) =
        ctx.store().decide_approval(draft, a.id, d.approve, by, d.comment).await.map_err(|e| ctx.store_error(e))?;
    Ok(Json(a))
}
