use crate::auth::issue_token;
use crate::error::ApiError;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use custody_core::{Action, ApiToken, Grant, PrincipalKind, ProjectScope, Region, Role, TokenId};
use custody_policy::ResourceFacts;
use custody_store::NewToken;
use serde::{Deserialize, Serialize};

/// What to issue.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    /// A label for people.
    name: String,
    /// The principal it authenticates as.
    principal: String,
    /// `user` or `workload`.
    kind: PrincipalKind,
    /// A project name, or `*` for every project.
    #[schema(value_type = String)]
    project: ProjectScope,
    /// The role it carries.
    role: Role,
    /// When set, the only regions it may touch.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_regions: Option<Vec<Region>>,
    /// Days until it expires (1 to 3650); default: never.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A new token. `secret` is shown this once and cannot be retrieved again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IssuedTokenBody {
    /// Its metadata.
    token: ApiToken,
    /// The token string to present as `Authorization: Bearer <secret>`.
    secret: String,
}

fn scope_facts(id: Option<TokenId>, scope: &ProjectScope) -> ResourceFacts {
    let project = match scope {
        ProjectScope::All => None,
        ProjectScope::Project(p) => Some(p.clone()),
    };
    ResourceFacts::Token { id, project }
}

fn check(r: &TokenRequest) -> Result<(), ApiError> {
    for (field, v) in [("name", &r.name), ("principal", &r.principal)] {
        if v.trim().is_empty() || v.len() > 200 || v.chars().any(char::is_control) {
            return Err(ApiError::invalid(field, "must be 1 to 200 printable characters"));
        }
    }
    if r.principal.starts_with("oidc:") {
        return Err(ApiError::invalid("principal", "`oidc:` principals are reserved for OIDC users"));
    }
    if r.expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
        return Err(ApiError::invalid("expires_in_days", "must be 1 to 3650"));
    }
    Ok(())
}

/// Issue an API token (project admins for their project; platform admins for `*`).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenRequest,
    responses((status = 201, body = IssuedTokenBody), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    ctx: Ctx,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<IssuedTokenBody>), ApiError> {
    // The scope is in the body, and the policy needs it, so the body is read first.
    let unevaluated = ctx.unevaluated(Action::TokenCreate, &ResourceFacts::Token { id: None, project: None });
    let req: TokenRequest = ctx.parse(&unevaluated, body).await?;
    if let Err(e) = check(&req) {
        return Err(ctx.refuse(unevaluated, e).await);
    }
    if let ProjectScope::Project(p) = &req.project {
        crate::routes::projects::load(&ctx, Action::TokenCreate, p.as_str()).await?;
    }
    let draft = ctx.authorize(Action::TokenCreate, scope_facts(None, &req.project)).await?;
    let issued = issue_token().map_err(|_| ApiError::internal().with_request(ctx.request_id))?;
    let expires_at = req.expires_in_days.map(|d| custody_core::now() + time::Duration::days(i64::from(d)));
    let new = NewToken {
        id: issued.id,
        name: req.name,
        principal: req.principal,
        kind: req.kind,
        grant: Grant { scope: req.project, role: req.role },
        secret_hash: issued.secret_hash.clone(),
        allowed_regions: req.allowed_regions,
        expires_at,
        created_by: ctx.principal.id.clone(),
    };
    let (token, _) = ctx.store().create_token(draft, new).await.map_err(|e| ctx.store_error(e))?;
    Ok((StatusCode::CREATED, Json(IssuedTokenBody { token, secret: issued.token })))
}

/// Which tokens to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenFilter {
    /// A project name, or `*` for global tokens.
    project: String,
}

/// List the tokens of a project (or `*`: global tokens). Secrets are never returned.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TokenFilter), responses((status = 200, body = Vec<ApiToken>)))]
pub(crate) async fn list(
    ctx: Ctx,
    filter: Result<Query<TokenFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let unevaluated = ctx.unevaluated(Action::TokenRead, &ResourceFacts::Token { id: None, project: None });
    let filter = ctx.query(&unevaluated, "project", filter).await?;
    let scope = match ProjectScope::parse(&filter.project) {
        Ok(s) => s,
        Err(e) => return Err(ctx.refuse(unevaluated, e.into()).await),
    };
    let draft = ctx.authorize(Action::TokenRead, scope_facts(None, &scope)).await?;
    let tokens = ctx.store().tokens(Some(&scope)).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(tokens))
}

/// Revoke a token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = ApiToken), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn revoke(ctx: Ctx, Path(id): Path<String>) -> Result<Json<ApiToken>, ApiError> {
    let unevaluated = ctx.unevaluated(Action::TokenRevoke, &ResourceFacts::Token { id: None, project: None });
    let record = match TokenId::parse(&id) {
        Ok(id) => ctx.store().token(id).await.map_err(|e| ctx.store_error(e))?,
        Err(e) => return Err(ctx.refuse(unevaluated, e.into()).await),
    };
    let Some(record) = record else {
        return Err(ctx.refuse(unevaluated, ApiError::not_found("token_id", format!("token `{id}` not found"))).await);
    };
    let t = record.token;
    let draft = ctx.authorize(Action::TokenRevoke, scope_facts(Some(t.id), &t.grant.scope)).await?;
    let (t, _) = ctx.store().revoke_token(draft, t.id).await.map_err(|e| ctx.store_error(e))?;
    Ok(Json(t))
}
