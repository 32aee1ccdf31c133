use crate::error::ApiError;
use crate::routes::projects;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use custody_core::{
    Action, Approval, Classification, Dataset, DatasetId, DatasetVersion, Name, NewDataset, NewDatasetVersion, Region,
};
use custody_policy::ResourceFacts;
use custody_store::DatasetQuery;
use serde::Deserialize;

pub(crate) fn facts(d: &Dataset) -> ResourceFacts {
    ResourceFacts::Dataset {
        id: d.id,
        project: d.project.clone(),
        classification: d.classification,
        region: d.region.clone(),
        owner: d.owner.clone(),
    }
}

/// Resolves a dataset id from a path; an invalid or unknown id is refused and recorded.
pub(crate) async fn load(ctx: &Ctx, action: Action, id: &str) -> Result<Dataset, ApiError> {
    let looked_up = match DatasetId::parse(id) {
        Ok(id) => ctx.store().dataset(id).await,
        Err(e) => Err(custody_store::StoreError::Invalid(e)),
    };
    ctx.found(action, looked_up).await
}

/// Register a dataset in a project.
#[utoipa::path(post, path = "/api/v1/projects/{project}/datasets", tag = "datasets", request_body = NewDataset,
    params(("project" = String, Path)),
    responses((status = 201, body = Dataset), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn register(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Dataset>), ApiError> {
    let project = projects::load(&ctx, Action::DatasetRegister, &project).await?;
    let draft = ctx.authorize(Action::DatasetRegister, ResourceFacts::Project { name: project.name.clone() }).await?;
    let new: NewDataset = ctx.parse(&draft, body).await?;
    if let Err(e) = new.validate() {
        return Err(ctx.refuse(draft, e.into()).await);
    }
    let by = ctx.principal.id.clone();
    let (d, _) = ctx.store().register_dataset(draft, &project, new, by).await.map_err(|e| ctx.store_error(e))?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// Search parameters for listing datasets.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetSearch {
    /// Names containing this text.
    q: Option<String>,
    /// Only this classification.
    classification: Option<Classification>,
    /// Only this region.
    region: Option<String>,
    /// Only this owner.
    owner: Option<String>,
    /// Names after this one (paging).
    after: Option<String>,
    /// At most this many (default 100, at most 500).
    limit: Option<u32>,
}

/// List and search the datasets of a project the caller may read.
#[utoipa::path(get, path = "/api/v1/projects/{project}/datasets", tag = "datasets",
    params(("project" = String, Path), DatasetSearch), responses((status = 200, body = Vec<Dataset>)))]
pub(crate) async fn list(
    ctx: Ctx,
    Path(project): Path<String>,
    search: Result<Query<DatasetSearch>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Dataset>>, ApiError> {
    let project = projects::load(&ctx, Action::ProjectRead, &project).await?;
    let draft = ctx.authorize(Action::ProjectRead, ResourceFacts::Project { name: project.name.clone() }).await?;
    let search = ctx.query(&draft, "query", search).await?;
    let query = match search_query(search) {
        Ok(q) => q,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let found = ctx.store().datasets(&project, &query).await.map_err(|e| ctx.store_error(e))?;
    let visible: Vec<Dataset> = found.into_iter().filter(|d| ctx.allows(Action::DatasetRead, &facts(d))).collect();
    let mut draft = draft;
    draft.details["returned"] = visible.len().into();
    ctx.record(draft).await?;
    Ok(Json(visible))
}

fn search_query(s: DatasetSearch) -> Result<DatasetQuery, ApiError> {
    Ok(DatasetQuery {
        name_contains: s.q.filter(|q| !q.is_empty()),
        classification: s.classification,
        region: s.region.map(|r| Region::new(&r)).transpose()?,
        owner: s.owner,
        after: s.after.map(|a| Name::new(&a).map_err(|e| e.for_field("after"))).transpose()?,
        limit: s.limit.unwrap_or(100).clamp(1, 500),
    })
}

/// Read a dataset.
#[utoipa::path(get, path = "/api/v1/datasets/{id}", tag = "datasets", params(("id" = String, Path)),
    responses((status = 200, body = Dataset), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Dataset>, ApiError> {
    let d = load(&ctx, Action::DatasetRead, &id).await?;
    let draft = ctx.authorize(Action::DatasetRead, facts(&d)).await?;
    ctx.record(draft).await?;
    Ok(Json(d))
}

/// Add an immutable version (identified by its SHA-256) to a dataset.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/versions", tag = "datasets", request_body = NewDatasetVersion,
    params(("id" = String, Path)),
    responses((status = 201, body = DatasetVersion), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn add_version(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<DatasetVersion>), ApiError> {
    let d = load(&ctx, Action::DatasetVersionCreate, &id).await?;
    let draft = ctx.authorize(Action::DatasetVersionCreate, facts(&d)).await?;
    let new: NewDatasetVersion = ctx.parse(&draft, body).await?;
    if let Err(e) = new.validate() {
        return Err(ctx.refuse(draft, e.into()).await);
    }
    let by = ctx.principal.id.clone();
    let (v, _) = ctx.store().add_dataset_version(draft, d.id, new, by).await.map_err(|e| ctx.store_error(e))?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// List a dataset's versions, oldest first.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/versions", tag = "datasets", params(("id" = String, Path)),
    responses((status = 200, body = Vec<DatasetVersion>)))]
pub(crate) async fn versions(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Vec<DatasetVersion>>, ApiError> {
    let d = load(&ctx, Action::DatasetRead, &id).await?;
    let draft = ctx.authorize(Action::DatasetRead, facts(&d)).await?;
    let versions = ctx.store().dataset_versions(d.id).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(versions))
}

/// A classification change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClassificationChange {
    /// The level asked for.
    classification: Classification,
    /// Why.
    reason: String,
    /// The change ticket (required by the default policy to lower).
    #[serde(default)]
    ticket: Option<String>,
}

fn check_reason(c: &ClassificationChange) -> Result<(), ApiError> {
    let n = c.reason.trim().chars().count();
    if n == 0 || n > 1000 {
        return Err(ApiError::invalid("reason", "must be 1 to 1000 characters"));
    }
    if c.ticket.as_ref().is_some_and(|t| t.trim().is_empty() || t.len() > 128) {
        return Err(ApiError::invalid("ticket", "must be 1 to 128 characters"));
    }
    Ok(())
}

/// Raise a dataset's classification (owners, ML engineers, admins).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/classification/raise", tag = "datasets", request_body = ClassificationChange,
    params(("id" = String, Path)), responses((status = 200, body = Dataset), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn raise(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<Json<Dataset>, ApiError> {
    let d = load(&ctx, Action::DatasetClassificationRaise, &id).await?;
    let draft = ctx.authorize(Action::DatasetClassificationRaise, facts(&d)).await?;
    let change: ClassificationChange = ctx.parse(&draft, body).await?;
    if let Err(e) = check_reason(&change) {
        return Err(ctx.refuse(draft, e).await);
    }
    let mut draft = draft;
    draft.details["reason"] = change.reason.into();
    let by = ctx.principal.id.clone();
    let (d, _) = ctx
        .store()
        .raise_classification(draft, d.id, change.classification, by)
        .await
        .map_err(|e| ctx.store_error(e))?;
    Ok(Json(d))
}

/// Ask for a dataset's classification to be lowered. Nothing changes until an approver other
/// than the requester approves the returned request.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/classification/lower", tag = "datasets", request_body = ClassificationChange,
    params(("id" = String, Path)), responses((status = 202, body = Approval), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn lower(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Approval>), ApiError> {
    let mut ctx = ctx;
    let d = load(&ctx, Action::DatasetClassificationLower, &id).await?;
    // The ticket is part of the policy context, so the body is read before deciding.
    let unevaluated = ctx.unevaluated(Action::DatasetClassificationLower, &facts(&d));
    let change: ClassificationChange = ctx.parse(&unevaluated, body).await?;
    if let Err(e) = check_reason(&change) {
        return Err(ctx.refuse(unevaluated, e).await);
    }
    if change.ticket.is_some() {
        ctx.ticket = change.ticket.clone();
    }
    let draft = ctx.authorize(Action::DatasetClassificationLower, facts(&d)).await?;
    let by = ctx.principal.id.clone();
    let (a, _) = ctx
        .store()
        .request_lower_classification(draft, d.id, change.classification, change.reason, ctx.ticket.clone(), by)
        .await
        .map_err(|e| ctx.store_error(e))?;
    Ok((StatusCode::ACCEPTED, Json(a)))
}

/// An explicit grant of a restricted dataset.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessGrant {
    /// The principal id to grant.
    principal: String,
}

/// Grant a principal explicit access to a restricted dataset (project admins).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/grants", tag = "datasets", request_body = AccessGrant,
    params(("id" = String, Path)), responses((status = 204)))]
pub(crate) async fn grant(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<StatusCode, ApiError> {
    let d = load(&ctx, Action::DatasetGrantManage, &id).await?;
    let draft = ctx.authorize(Action::DatasetGrantManage, facts(&d)).await?;
    let g: AccessGrant = ctx.parse(&draft, body).await?;
    if g.principal.is_empty() || g.principal.len() > 255 || g.principal.chars().any(char::is_control) {
        return Err(ctx.refuse(draft, ApiError::invalid("principal", "must be 1 to 255 printable characters")).await);
    }
    let by = ctx.principal.id.clone();
    ctx.store().grant_access(draft, d.id, g.principal, by).await.map_err(|e| ctx.store_error(e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke a principal's explicit access to a restricted dataset.
#[utoipa::path(delete, path = "/api/v1/datasets/{id}/grants/{principal}", tag = "datasets",
    params(("id" = String, Path), ("principal" = String, Path)), responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn revoke(ctx: Ctx, Path((id, principal)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let d = load(&ctx, Action::DatasetGrantManage, &id).await?;
    let draft = ctx.authorize(Action::DatasetGrantManage, facts(&d)).await?;
    ctx.store().revoke_access(draft, d.id, principal).await.map_err(|e| ctx.store_error(e))?;
    Ok(StatusCode::NO_CONTENT)
}
