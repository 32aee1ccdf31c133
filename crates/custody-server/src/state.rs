//! Shared server state and the per-request context handlers work through.

use crate::auth::Authenticator;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use custody_core::{Action, AuditDraft, Decision, Name, Outcome, Principal, Region, RequestId, ResourceRef};
use custody_policy::{AuthzRequest, PolicyEngine, RequestContext, ResourceFacts};
use custody_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) policy: PolicyEngine,
    pub(crate) auth: Authenticator,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) max_body_bytes: usize,
    /// The public half of the audit log's key.
    pub(crate) log_key: custody_audit::Verifier,
    /// Dataset versions' data, encrypted, and the KEK policy.
    pub(crate) data: DataStore,
    /// The registry's admission gates.
    pub(crate) registry: crate::config::RegistryConfig,
    /// Every project's lineage graph, in memory.
    pub(crate) lineage: crate::lineage::LineageIndex,
}

/// The encrypted blob store and what chooses its keys.
pub(crate) struct DataStore {
    pub(crate) blobs: custody_blobs::BlobStore,
    pub(crate) keys: crate::keys::KeysConfig,
    pub(crate) max_bytes: u64,
    /// The background rewrap job's progress.
    pub(crate) rewrap: std::sync::Mutex<crate::routes::RewrapStatus>,
}

impl AppState {
    pub(crate) fn new(inner: Inner) -> Self {
        Self { inner: Arc::new(inner) }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// The authenticated caller of a request, put in the request's extensions by the
/// authentication middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
}

/// A request's id, put in its extensions by the outermost middleware.
#[derive(Debug, Clone, Copy)]
pub struct RequestIdExt(pub RequestId);

/// Per-request context: the state, the caller, the request id and the policy context.
pub(crate) struct Ctx {
    pub(crate) state: AppState,
    pub(crate) principal: Principal,
    pub(crate) request_id: RequestId,
    pub(crate) ticket: Option<String>,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let request_id = parts.extensions.get::<RequestIdExt>().map(|r| r.0).unwrap_or_default();
        // Handlers are unreachable without a caller: the middleware refuses first, and this
        // refuses again if a route were ever mounted without it.
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("authentication required").with_request(request_id))?;
        let ticket = parts
            .headers
            .get("custody-ticket")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .map(str::to_owned);
        Ok(Ctx { state: state.clone(), principal: caller.principal, request_id, ticket })
    }
}

/// Where a resource sits, for audit records.
fn locate(facts: &ResourceFacts) -> (ResourceRef, Option<Name>, Option<Region>) {
    let project = facts.project().cloned();
    match facts {
        ResourceFacts::Platform => (ResourceRef::new("platform", "custody"), None, None),
        ResourceFacts::Project { name } => (ResourceRef::new("project", name), project, None),
        ResourceFacts::Dataset { id, region, .. } => (ResourceRef::new("dataset", id), project, Some(region.clone())),
        ResourceFacts::Approval { id, .. } => (ResourceRef::new("approval", id), project, None),
        ResourceFacts::Model { id, .. } => (ResourceRef::new("model", id), project, None),
        ResourceFacts::Promotion { id, .. } => (ResourceRef::new("promotion", id), project, None),
        ResourceFacts::Token { id, .. } => {
            (ResourceRef::new("token", id.map(|i| i.to_string()).unwrap_or_else(|| "new".into())), project, None)
        }
        ResourceFacts::AuditLog { project: p } => {
            (ResourceRef::new("audit", p.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "*".into())), project, None)
        }
    }
}

impl Ctx {
    pub(crate) fn store(&self) -> &Store {
        &self.state.inner.store
    }

    fn draft(&self, action: Action, facts: &ResourceFacts, decision: Decision) -> AuditDraft {
        let (resource, project, region) = locate(facts);
        AuditDraft {
            actor: self.principal.id.clone(),
            action,
            resource,
            project,
            region,
            decision,
            policy_hash: self.state.inner.policy.policy_hash().to_owned(),
            request_id: self.request_id,
            outcome: Outcome::Success,
            details: serde_json::json!({}),
        }
    }

    /// Asks the policies whether the caller may do `action` to the resource. A denial is
    /// recorded in the audit log and answered 403; an allow returns the audit draft the
    /// change will be recorded with.
    pub(crate) async fn authorize(&self, action: Action, facts: ResourceFacts) -> Result<AuditDraft, ApiError> {
        let context = RequestContext { time: custody_core::now(), ticket: self.ticket.clone(), source_region: None };
        let decision = self.state.inner.policy.authorize(&AuthzRequest {
            principal: &self.principal,
            action,
            resource: &facts,
            context: &context,
        });
        metrics::counter!("custody_authz_decisions_total", "decision" => decision.decision.as_str()).increment(1);
        let mut draft = self.draft(action, &facts, decision.decision);
        draft.details = serde_json::json!({ "authz": decision.to_json() });
        if decision.is_allowed() {
            return Ok(draft);
        }
        draft.outcome = Outcome::Denied;
        let resource = draft.resource.0.clone();
        self.store().record(draft).await.map_err(|e| ApiError::from(e).with_request(self.request_id))?;
        Err(ApiError::forbidden(format!("`{action}` on `{resource}` is not allowed by policy"))
            .with_request(self.request_id))
    }

    /// Records a request refused before or after authorization (bad input, unknown
    /// resource) and returns the error to answer with.
    /// Records and answers a read the store refused as the caller's error (out of range, not
    /// found), or answers a store failure; passes a success through with the draft to record.
    pub(crate) async fn checked<T>(
        &self,
        draft: AuditDraft,
        result: Result<T, custody_store::StoreError>,
    ) -> Result<(T, AuditDraft), ApiError> {
        match result {
            Ok(v) => Ok((v, draft)),
            Err(e) if e.is_caller_error() => Err(self.refuse(draft, e.into()).await),
            Err(e) => Err(self.store_error(e)),
        }
    }

    pub(crate) async fn refuse(&self, mut draft: AuditDraft, err: ApiError) -> ApiError {
        draft.outcome = if err.status.is_server_error() { Outcome::Error } else { Outcome::Rejected };
        if let serde_json::Value::Object(map) = &mut draft.details {
            map.insert(
                "error".into(),
                serde_json::json!({ "code": err.code, "field": err.field, "message": err.message }),
            );
        }
        if let Err(e) = self.store().record(draft).await {
            return ApiError::from(e).with_request(self.request_id);
        }
        err.with_request(self.request_id)
    }

    /// A draft for refusing a request about `facts` before any policy was asked.
    pub(crate) fn unevaluated(&self, action: Action, facts: &ResourceFacts) -> AuditDraft {
        self.draft(action, facts, Decision::NotEvaluated)
    }

    /// Parses a JSON body; on failure records the refusal under `draft`.
    pub(crate) async fn parse<T: serde::de::DeserializeOwned>(
        &self,
        draft: &AuditDraft,
        body: Result<JsonBody, ApiError>,
    ) -> Result<T, ApiError> {
        let parsed = body.and_then(|b| parse_json(&b.0));
        match parsed {
            Ok(v) => Ok(v),
            Err(e) => Err(self.refuse(draft.clone(), e).await),
        }
    }

    /// Passes on what a lookup found; a lookup refused for the caller's input (malformed id,
    /// no such thing) is recorded as a refusal of `action` and answered 4xx.
    pub(crate) async fn found<T>(
        &self,
        action: Action,
        looked_up: Result<T, custody_store::StoreError>,
    ) -> Result<T, ApiError> {
        match looked_up {
            Ok(v) => Ok(v),
            Err(e) if e.is_caller_error() => {
                Err(self.refuse(self.unevaluated(action, &ResourceFacts::Platform), e.into()).await)
            }
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// Takes query parameters; malformed ones are refused under `draft` with `field` named.
    pub(crate) async fn query<T>(
        &self,
        draft: &AuditDraft,
        field: &str,
        query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
    ) -> Result<T, ApiError> {
        match query {
            Ok(axum::extract::Query(q)) => Ok(q),
            Err(e) => Err(self.refuse(draft.clone(), ApiError::invalid(field, e.body_text())).await),
        }
    }

    /// Records an allowed request that changed nothing (a read).
    pub(crate) async fn record(&self, draft: AuditDraft) -> Result<(), ApiError> {
        self.store().record(draft).await.map(|_| ()).map_err(|e| self.store_error(e))
    }

    /// Maps a store error to the response; the store already recorded the audit event.
    pub(crate) fn store_error(&self, e: custody_store::StoreError) -> ApiError {
        ApiError::from(e).with_request(self.request_id)
    }
}

/// Parses JSON strictly: the error names the path of the offending field.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(field, e.inner().to_string())
    })?;
    de.end().map_err(|e| ApiError::invalid("body", e.to_string()))?;
    Ok(value)
}

/// A request body that claims to be JSON and is within the size limit.
pub(crate) struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::unsupported_media_type());
        }
        let limit = state.inner.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| ApiError::too_large(limit))?;
        Ok(JsonBody(bytes))
    }
}

impl Ctx {
    /// Whether the policies allow `action` on `facts`, without recording anything (used to
    /// filter list results; the list request itself is recorded).
    pub(crate) fn allows(&self, action: Action, facts: &ResourceFacts) -> bool {
        let context = RequestContext { time: custody_core::now(), ticket: self.ticket.clone(), source_region: None };
        self.state
            .inner
            .policy
            .authorize(&AuthzRequest { principal: &self.principal, action, resource: facts, context: &context })
            .is_allowed()
    }
}
