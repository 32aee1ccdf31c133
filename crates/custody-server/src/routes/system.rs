use crate::error::ApiError;
use crate::state::{AppState, Ctx};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use custody_core::Principal;
use utoipa::OpenApi;

/// Liveness: the process answers.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers and the writer runs.
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match state.store().ping().await {
        Ok(()) => Ok("ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            Err(ApiError::unavailable("the database is not reachable"))
        }
    }
}

/// Prometheus metrics (text exposition format).
pub(crate) async fn metrics(_ctx: Ctx, State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.inner.metrics.render())
}

/// The OpenAPI document.
pub(crate) async fn openapi(_ctx: Ctx) -> impl IntoResponse {
    (StatusCode::OK, Json(crate::routes::ApiDoc::openapi()))
}

/// Who the caller is, as the server sees it: id, kind, grants, restricted access, regions.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "system", responses((status = 200, body = Principal)))]
pub(crate) async fn whoami(ctx: Ctx) -> Json<Principal> {
    Json(ctx.principal)
}
