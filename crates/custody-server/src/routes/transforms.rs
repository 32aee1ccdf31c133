//! Transform declarations: a job declared anonymizing or aggregating, and approved by someone
//! other than its declarer, stops classification inheritance through it (its outputs no
//! longer inherit its inputs' level) and turns erasure items reached only through it into
//! "accept with justification". Declaring again clears the approval; withdrawing deletes it.

use crate::error::ApiError;
use crate::routes::projects;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custody_core::{Action, Timestamp};
use custody_lineage::TransformKind;
use custody_policy::ResourceFacts;
use custody_store::TransformRecord;
use serde::{Deserialize, Serialize};

/// A declaration, as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TransformView {
    /// The job (`namespace/name`).
    job: String,
    /// `anonymizing` or `aggregating`.
    kind: String,
    /// Why its outputs no longer hold its inputs' sensitive data.
    justification: String,
    /// Who declared it.
    declared_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    declared_at: Timestamp,
    /// Whether it is approved, and so in force.
    approved: bool,
    /// Who approved it.
    approved_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    approved_at: Option<Timestamp>,
}

impl From<TransformRecord> for TransformView {
    fn from(t: TransformRecord) -> Self {
        Self {
            job: format!("{}/{}", t.job_namespace, t.job_name),
            kind: t.kind,
            justification: t.justification,
            declared_by: t.declared_by,
            declared_at: t.declared_at,
            approved: t.approved_by.is_some(),
            approved_by: t.approved_by,
            approved_at: t.approved_at,
        }
    }
}

/// A job's declaration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransformDeclarationBody {
    /// The job (`namespace/name`, as its OpenLineage events name it).
    job: String,
    /// `anonymizing` or `aggregating`.
    #[schema(value_type = String)]
    kind: TransformKind,
    /// Why its outputs no longer hold its inputs' sensitive data (quoted in erasure reports).
    justification: String,
}

/// A job, named.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobBody {
    /// The job (`namespace/name`).
    job: String,
}

fn split_job(job: &str) -> Result<(String, String), ApiError> {
    match job.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && job.len() <= 1024 => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(ApiError::invalid("job", format!("`{job}` is not `namespace/name`"))),
    }
}

fn kind_name(kind: TransformKind) -> &'static str {
    match kind {
        TransformKind::Anonymizing => "anonymizing",
        TransformKind::Aggregating => "aggregating",
    }
}

/// Authorizes `action` on `project` and reads the job the body names.
async fn named_job(
    ctx: &Ctx,
    action: Action,
    project: &str,
    body: Result<JsonBody, ApiError>,
) -> Result<(custody_core::Project, custody_core::AuditDraft, (String, String)), ApiError> {
    let p = projects::load(ctx, action, project).await?;
    let draft = ctx.authorize(action, ResourceFacts::Project { name: p.name.clone() }).await?;
    let b: JobBody = ctx.parse(&draft, body).await?;
    match split_job(&b.job) {
        Ok(job) => Ok((p, draft, job)),
        Err(e) => Err(ctx.refuse(draft, e).await),
    }
}

/// List a project's transform declarations.
#[utoipa::path(get, path = "/api/v1/projects/{project}/lineage/transforms", tag = "lineage",
    params(("project" = String, Path)), responses((status = 200, body = Vec<TransformView>)))]
pub(crate) async fn list(ctx: Ctx, Path(project): Path<String>) -> Result<Json<Vec<TransformView>>, ApiError> {
    let p = projects::load(&ctx, Action::LineageRead, &project).await?;
    let draft = ctx.authorize(Action::LineageRead, ResourceFacts::Project { name: p.name.clone() }).await?;
    let all = ctx.store().transforms(p.id).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(all.into_iter().map(TransformView::from).collect()))
}

/// Declare that a job anonymises or aggregates. Not in force until approved by someone else;
/// declaring an approved job again clears its approval.
#[utoipa::path(put, path = "/api/v1/projects/{project}/lineage/transforms", tag = "lineage",
    params(("project" = String, Path)), request_body = TransformDeclarationBody,
    responses((status = 201, body = TransformView), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn declare(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<TransformView>), ApiError> {
    let p = projects::load(&ctx, Action::LineageTransformDeclare, &project).await?;
    let draft = ctx.authorize(Action::LineageTransformDeclare, ResourceFacts::Project { name: p.name.clone() }).await?;
    let d: TransformDeclarationBody = ctx.parse(&draft, body).await?;
    let checked = split_job(&d.job).and_then(|job| {
        let n = d.justification.trim().chars().count();
        if n == 0 || n > 2000 {
            return Err(ApiError::invalid("justification", "must be 1 to 2000 characters"));
        }
        Ok(job)
    });
    let (ns, name) = match checked {
        Ok(j) => j,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let record = TransformRecord {
        job_namespace: ns,
        job_name: name,
        kind: kind_name(d.kind).to_owned(),
        justification: d.justification.trim().to_owned(),
        declared_by: ctx.principal.id.clone(),
        declared_at: custody_core::now(),
        approved_by: None,
        approved_at: None,
    };
    let (t, _) = ctx.store().declare_transform(draft, p.id, record).await.map_err(|e| ctx.store_error(e))?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

/// Approve a job's declaration as it stands (not the declarer's to approve).
#[utoipa::path(post, path = "/api/v1/projects/{project}/lineage/transforms/approve", tag = "lineage",
    params(("project" = String, Path)), request_body = JobBody,
    responses((status = 200, body = TransformView), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn approve(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<Json<TransformView>, ApiError> {
    let (p, draft, job) = named_job(&ctx, Action::LineageTransformApprove, &project, body).await?;
    let by = ctx.principal.id.clone();
    let (t, _) = ctx.store().approve_transform(draft, p.id, job, by).await.map_err(|e| ctx.store_error(e))?;
    Ok(Json(t.into()))
}

/// Withdraw a job's declaration: its outputs inherit their inputs' level again.
#[utoipa::path(post, path = "/api/v1/projects/{project}/lineage/transforms/withdraw", tag = "lineage",
    params(("project" = String, Path)), request_body = JobBody,
    responses((status = 200, body = TransformView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn withdraw(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<Json<TransformView>, ApiError> {
    let (p, draft, job) = named_job(&ctx, Action::LineageTransformDeclare, &project, body).await?;
    let (t, _) = ctx.store().withdraw_transform(draft, p.id, job).await.map_err(|e| ctx.store_error(e))?;
    Ok(Json(t.into()))
}
