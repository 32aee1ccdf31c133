//! The HTTP surface: one table of every route, the router built from it, and the OpenAPI
//! document describing it.

mod approvals;
mod audit;
mod data;
mod datasets;
mod erasure;
mod keys;
mod lineage;
mod lineage_runs;
mod models;
mod projects;
mod proofs;
mod scans;
mod system;
mod tokens;
mod transforms;

use crate::error::ApiError;
use crate::state::{AppState, Caller, RequestIdExt};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use custody_core::RequestId;
use std::time::Instant;
use utoipa::OpenApi;

pub(crate) use keys::RewrapStatus;

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: &'static str,
    /// The path pattern (`/api/v1/datasets/{id}`).
    pub path: &'static str,
    /// Whether it answers without authentication (only liveness and readiness do).
    pub public: bool,
}

macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path $(, $public:ident)?;)*) => {
        /// Every route the server answers, in one table: the router is built from it, so a
        /// test that walks it walks the whole API.
        pub fn route_table() -> Vec<RouteInfo> {
            vec![$(RouteInfo {
                method: stringify!($method),
                path: $path,
                public: route_table!(@public $($public)?),
            },)*]
        }

        fn method_routers() -> Vec<(&'static str, bool, MethodRouter<AppState>)> {
            vec![$(($path, route_table!(@public $($public)?), $method($handler)),)*]
        }
    };
    (@public public) => { true };
    (@public) => { false };
}

route_table! {
    get "/healthz" => system::healthz, public;
    get "/readyz" => system::readyz, public;
    get "/metrics" => system::metrics;
    get "/api/v1/openapi.json" => system::openapi;
    get "/api/v1/whoami" => system::whoami;
    post "/api/v1/projects" => projects::create;
    get "/api/v1/projects" => projects::list;
    get "/api/v1/projects/{project}" => projects::get;
    post "/api/v1/projects/{project}/datasets" => datasets::register;
    get "/api/v1/projects/{project}/datasets" => datasets::list;
    get "/api/v1/projects/{project}/approvals" => approvals::list;
    get "/api/v1/datasets/{id}" => datasets::get;
    post "/api/v1/datasets/{id}/versions" => datasets::add_version;
    get "/api/v1/datasets/{id}/versions" => datasets::versions;
    post "/api/v1/datasets/{id}/classification/raise" => datasets::raise;
    post "/api/v1/datasets/{id}/classification/lower" => datasets::lower;
    post "/api/v1/datasets/{id}/grants" => datasets::grant;
    delete "/api/v1/datasets/{id}/grants/{principal}" => datasets::revoke;
    post "/api/v1/projects/{project}/models" => models::register;
    post "/api/v1/projects/{project}/signers" => models::add_signer;
    get "/api/v1/projects/{project}/signers" => models::signers;
    get "/api/v1/models/{id}" => models::get;
    post "/api/v1/models/{id}/versions" => models::add_version;
    get "/api/v1/models/{id}/versions/{label}" => models::get_version;
    get "/api/v1/models/{id}/versions/{label}/signature" => models::signature;
    get "/api/v1/models/{id}/versions/{label}/history" => models::history;
    get "/api/v1/models/{id}/versions/{label}/approval-proof" => models::approval_proof;
    post "/api/v1/models/{id}/versions/{label}/scans" => scans::attach_to_model;
    get "/api/v1/models/{id}/versions/{label}/scans" => scans::model_scans;
    post "/api/v1/models/{id}/versions/{label}/promotions" => models::request_promotion;
    post "/api/v1/models/{id}/versions/{label}/deployments" => models::deploy;
    get "/api/v1/models/{id}/deployments" => models::deployments;
    get "/api/v1/promotions/{id}" => models::get_promotion;
    post "/api/v1/promotions/{id}/approvals" => models::approve;
    post "/api/v1/datasets/{id}/versions/{label}/scans" => scans::attach_to_dataset;
    get "/api/v1/datasets/{id}/versions/{label}/scans" => scans::dataset_scans;
    put "/api/v1/datasets/{id}/versions/{label}/data" => data::put;
    get "/api/v1/datasets/{id}/versions/{label}/data" => data::get;
    post "/api/v1/datasets/{id}/versions/{label}/data/shred" => data::shred;
    get "/api/v1/projects/{project}/key-uses" => data::key_uses;
    post "/api/v1/keys/{key}/rotate" => keys::rotate;
    post "/api/v1/keys/rewrap" => keys::start_rewrap;
    get "/api/v1/keys/rewrap" => keys::rewrap_status;
    post "/api/v1/lineage" => lineage::ingest;
    post "/api/v1/projects/{project}/lineage" => lineage::ingest_project;
    get "/api/v1/projects/{project}/lineage/downstream" => lineage::downstream;
    get "/api/v1/projects/{project}/lineage/upstream" => lineage::upstream;
    get "/api/v1/projects/{project}/lineage/impact" => lineage::impact;
    get "/api/v1/projects/{project}/lineage/training" => lineage::training;
    get "/api/v1/projects/{project}/lineage/erasure" => lineage::erasure;
    get "/api/v1/projects/{project}/lineage/classification" => lineage::classification;
    get "/api/v1/projects/{project}/lineage/completeness" => lineage::completeness;
    post "/api/v1/projects/{project}/lineage/runs" => lineage_runs::record_run;
    get "/api/v1/projects/{project}/lineage/transforms" => transforms::list;
    put "/api/v1/projects/{project}/lineage/transforms" => transforms::declare;
    post "/api/v1/projects/{project}/lineage/transforms/approve" => transforms::approve;
    post "/api/v1/projects/{project}/lineage/transforms/withdraw" => transforms::withdraw;
    post "/api/v1/projects/{project}/lineage/erasure/report" => erasure::report;
    post "/api/v1/projects/{project}/lineage/erasures" => erasure::erase;
    get "/api/v1/projects/{project}/lineage/erasures" => erasure::receipts;
    get "/api/v1/approvals/{id}" => approvals::get;
    post "/api/v1/approvals/{id}/decision" => approvals::decide;
    post "/api/v1/tokens" => tokens::create;
    get "/api/v1/tokens" => tokens::list;
    delete "/api/v1/tokens/{id}" => tokens::revoke;
    get "/api/v1/audit" => audit::list;
    get "/api/v1/audit/root" => proofs::root;
    get "/api/v1/audit/proofs/inclusion" => proofs::inclusion;
    get "/api/v1/audit/proofs/consistency" => proofs::consistency;
    get "/api/v1/audit/key" => proofs::key;
    get "/api/v1/audit/checkpoint" => proofs::checkpoint;
    get "/api/v1/audit/checkpoints" => proofs::checkpoints;
    get "/api/v1/audit/frontier" => proofs::frontier;
    get "/api/v1/audit/export" => proofs::export;
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Custody API", description = "The chain of custody for AI data and models."),
    paths(
        system::whoami, projects::create, projects::list, projects::get, datasets::register, datasets::list,
        datasets::get, datasets::add_version, datasets::versions, datasets::raise, datasets::lower, datasets::grant,
        datasets::revoke, data::put, data::get, data::shred, data::key_uses, keys::rotate, keys::start_rewrap, keys::rewrap_status, approvals::list, approvals::get, approvals::decide, tokens::create, tokens::list,
        tokens::revoke, audit::list, proofs::root, proofs::inclusion, proofs::consistency, proofs::key,
        proofs::checkpoint, proofs::checkpoints, proofs::frontier, proofs::export, models::register,
        models::add_signer, models::signers, models::get, models::add_version, models::get_version,
        models::signature, models::history, models::approval_proof, models::request_promotion, models::deploy, models::deployments,
        models::get_promotion, models::approve, scans::attach_to_model, scans::model_scans,
        scans::attach_to_dataset, scans::dataset_scans, lineage::ingest, lineage::ingest_project,
        lineage::downstream, lineage::upstream, lineage::impact, lineage::training, lineage::erasure,
        lineage::classification, lineage::completeness, lineage_runs::record_run, transforms::list,
        transforms::declare, transforms::approve, transforms::withdraw, erasure::report, erasure::erase,
        erasure::receipts,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("cust_… or OIDC JWT").build(),
            ),
        );
    }
}

/// Builds the router: authentication on every route but the public ones, then request ids,
/// metrics and request logs around everything.
pub(crate) fn router(state: AppState) -> Router {
    let mut public = Router::new();
    let mut protected = Router::new();
    for (path, is_public, handler) in method_routers() {
        if is_public {
            public = public.route(path, handler);
        } else {
            protected = protected.route(path, handler);
        }
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    public
        .merge(protected)
        .fallback(|| async { ApiError::not_found("path", "no such route") })
        .with_state(state)
        // gzip request bodies (OpenLineage clients may compress); the body limits apply to
        // the decompressed bytes, so a small bomb cannot grow past them.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(middleware::from_fn(observe))
}

/// Assigns the request id, logs the request (method, route pattern, status, duration; never
/// headers, bodies or query strings) and counts it in the metrics.
async fn observe(mut req: Request, next: Next) -> Response {
    let id = RequestId::new();
    req.extensions_mut().insert(RequestIdExt(id));
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let elapsed = start.elapsed();
    let status = resp.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), micros = elapsed.as_micros() as u64, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), micros = elapsed.as_micros() as u64, "request");
        }
    });
    let labels = [("method", method.to_string()), ("route", route), ("status", status.as_u16().to_string())];
    metrics::counter!("custody_http_requests_total", &labels).increment(1);
    metrics::histogram!("custody_http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Refuses requests without valid credentials (401), and hands the caller to the handler.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req.extensions().get::<RequestIdExt>().map(|r| r.0).unwrap_or_default();
    let header = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes().to_vec());
    match state.inner.auth.authenticate(header.as_deref()).await {
        Ok(principal) => {
            req.extensions_mut().insert(Caller { principal });
            next.run(req).await
        }
        Err(e) => {
            metrics::counter!("custody_authn_failures_total").increment(1);
            tracing::info!(reason = %e, "authentication failed");
            let err = match e {
                crate::auth::AuthError::Store(_) | crate::auth::AuthError::JwksUnavailable => {
                    ApiError::unavailable(e.to_string())
                }
                other => ApiError::unauthenticated(other.to_string()),
            };
            err.with_request(request_id).into_response()
        }
    }
}
