use crate::error::ApiError;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custody_core::{Action, Name, NewProject, Project};
use custody_policy::ResourceFacts;

/// Create a project (platform administrators).
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = Project), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    ctx: Ctx,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    let draft = ctx.authorize(Action::ProjectCreate, ResourceFacts::Platform).await?;
    let new: NewProject = ctx.parse(&draft, body).await?;
    let by = ctx.principal.id.clone();
    let (project, _) = ctx.store().create_project(draft, new, by).await.map_err(|e| ctx.store_error(e))?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// List the projects the caller may read.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", responses((status = 200, body = Vec<Project>)))]
pub(crate) async fn list(ctx: Ctx) -> Result<Json<Vec<Project>>, ApiError> {
    let all = ctx.store().projects().await.map_err(|e| ctx.store_error(e))?;
    let visible = all
        .into_iter()
        .filter(|p| ctx.allows(Action::ProjectRead, &ResourceFacts::Project { name: p.name.clone() }))
        .collect();
    Ok(Json(visible))
}

/// Read a project.
#[utoipa::path(get, path = "/api/v1/projects/{project}", tag = "projects", params(("project" = String, Path)),
    responses((status = 200, body = Project), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(ctx: Ctx, Path(project): Path<String>) -> Result<Json<Project>, ApiError> {
    let project = load(&ctx, Action::ProjectRead, &project).await?;
    let draft = ctx.authorize(Action::ProjectRead, ResourceFacts::Project { name: project.name.clone() }).await?;
    ctx.record(draft).await?;
    Ok(Json(project))
}

/// Resolves a project named in a path; an invalid or unknown name is refused and recorded.
pub(crate) async fn load(ctx: &Ctx, action: Action, name: &str) -> Result<Project, ApiError> {
    let name = match Name::new(name) {
        Ok(n) => n,
        Err(e) => {
            let draft = ctx.unevaluated(action, &ResourceFacts::Platform);
            return Err(ctx.refuse(draft, ApiError::from(e.for_field("project"))).await);
        }
    };
    match ctx.store().project(&name).await {
        Ok(p) => Ok(p),
        Err(custody_store::StoreError::NotFound { .. }) => {
            let err = ApiError::not_found("project", format!("project `{name}` not found"));
            Err(ctx.refuse(ctx.unevaluated(action, &ResourceFacts::Project { name }), err).await)
        }
        Err(e) => Err(ctx.store_error(e)),
    }
}
