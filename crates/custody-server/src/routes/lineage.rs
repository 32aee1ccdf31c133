//! Lineage: OpenLineage events in (`POST /api/v1/lineage`, what `openlineage-python` posts to),
//! stored once each by content hash and applied to the project's in-memory graph; queries out
//! (upstream, downstream, impact, what trained a model, effective classification, erasure
//! impact, completeness), each as of now or of a past time.

use crate::error::ApiError;
use crate::routes::projects;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_core::{Action, AuditDraft, Project, ProjectScope, Sha256Digest};
use custody_lineage::{Event, EventBody, Graph, GraphError, NodeKey, ParsedEvent, VersionRef, facts_of, parse_event};
use custody_policy::ResourceFacts;
use custody_store::LineageEventRecord;
use serde::Deserialize;
use serde_json::{Value, json};

/// Which project an event goes to, when the path does not say.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestQuery {
    /// The project; default: the only project the token has roles in.
    project: Option<String>,
}

/// Receive an OpenLineage 2-0-2 event (RunEvent, DatasetEvent or JobEvent; gzip bodies
/// accepted). The same event sent again is acknowledged and changes nothing.
#[utoipa::path(post, path = "/api/v1/lineage", tag = "lineage", request_body = Object, params(IngestQuery),
    responses((status = 201, body = Object), (status = 200, body = Object), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn ingest(
    ctx: Ctx,
    query: Result<Query<IngestQuery>, QueryRejection>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let named = match query {
        Ok(Query(q)) => q.project,
        Err(e) => {
            let draft = ctx.unevaluated(Action::LineageWrite, &ResourceFacts::Platform);
            return Err(ctx.refuse(draft, ApiError::invalid("query", e.body_text())).await);
        }
    };
    let name = match named.or_else(|| only_project(&ctx)) {
        Some(n) => n,
        None => {
            let draft = ctx.unevaluated(Action::LineageWrite, &ResourceFacts::Platform);
            let e = ApiError::invalid("project", "the token has roles in several projects: name one with ?project=");
            return Err(ctx.refuse(draft, e).await);
        }
    };
    ingest_into(ctx, &name, body).await
}

/// Receive an OpenLineage event into `project`.
#[utoipa::path(post, path = "/api/v1/projects/{project}/lineage", tag = "lineage", request_body = Object,
    params(("project" = String, Path)),
    responses((status = 201, body = Object), (status = 200, body = Object), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn ingest_project(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    ingest_into(ctx, &project, body).await
}

/// The one project the caller holds roles in, if there is exactly one (and no global role).
fn only_project(ctx: &Ctx) -> Option<String> {
    let mut names = ctx.principal.grants.iter().map(|g| match &g.scope {
        ProjectScope::Project(n) => Some(n.to_string()),
        ProjectScope::All => None,
    });
    let first = names.next()??;
    names.all(|n| n.as_deref() == Some(first.as_str())).then_some(first)
}

async fn ingest_into(
    ctx: Ctx,
    project: &str,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = projects::load(&ctx, Action::LineageWrite, project).await?;
    let draft = ctx.authorize(Action::LineageWrite, ResourceFacts::Project { name: p.name.clone() }).await?;
    let bytes = match body {
        Ok(b) => b.0,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let parsed = match parse_event(&bytes) {
        Ok(p) => p,
        Err(e) => return Err(ctx.refuse(draft, ApiError::invalid(e.path(), e.to_string())).await),
    };
    store_event(ctx, &p, draft, parsed).await
}

/// Stores a parsed event with its audit record and applies it to the project's graph.
pub(crate) async fn store_event(
    ctx: Ctx,
    p: &Project,
    draft: AuditDraft,
    mut parsed: ParsedEvent,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = std::mem::take(&mut parsed.raw);
    let record = record_of(p, &parsed.event, body);
    let id = record.event_id.clone();
    let result = ctx.store().record_lineage_event(draft.clone(), record, ctx.principal.id.clone()).await;
    let ((stored, _), _) = ctx.checked(draft, result).await?;
    let new = stored.new;
    let facts = new.then(|| facts_of(&parsed.event));
    ctx.state.inner.lineage.apply(p.id, stored, facts.as_ref());
    let warnings: Vec<Value> =
        parsed.event.warnings.iter().map(|w| json!({ "path": w.path, "message": w.message })).collect();
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "event_id": id, "duplicate": !new, "warnings": warnings }))))
}

fn record_of(p: &Project, e: &Event, body: String) -> LineageEventRecord {
    let (event_type, run_id, job) = match &e.body {
        EventBody::Run(r) => (
            r.event_type.map(|t| t.as_str()).unwrap_or("OTHER").to_owned(),
            Some(r.run.run_id.to_string()),
            Some(format!("{}/{}", r.job.namespace, r.job.name)),
        ),
        EventBody::Dataset(_) => ("DATASET".to_owned(), None, None),
        EventBody::Job(j) => ("JOB".to_owned(), None, Some(format!("{}/{}", j.job.namespace, j.job.name))),
    };
    LineageEventRecord {
        project_id: p.id,
        event_id: e.id.to_hex(),
        event_type,
        event_time: e.time_micros(),
        run_id,
        job,
        producer: e.producer.clone(),
        body,
    }
}

/// A node named in a request body: a dataset version (namespace and name with at most one
/// of version, digest, run), a job, or a run.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSpec {
    /// A dataset's namespace (with `name`).
    pub(crate) namespace: Option<String>,
    /// A dataset's name (with `namespace`).
    pub(crate) name: Option<String>,
    /// The dataset version, as its `version` facet declared it.
    pub(crate) version: Option<String>,
    /// The dataset version by content digest (`sha256:…`).
    pub(crate) digest: Option<String>,
    /// The dataset version written by this run (a UUID); alone, the run itself.
    pub(crate) run: Option<String>,
    /// A job (`namespace/name`).
    pub(crate) job: Option<String>,
}

/// The node a query starts from, and how far and as of when.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeQuery {
    /// A dataset's namespace (with `name`).
    namespace: Option<String>,
    /// A dataset's name (with `namespace`).
    name: Option<String>,
    /// The dataset version, as its `version` facet declared it.
    version: Option<String>,
    /// The dataset version by content digest (`sha256:…`).
    digest: Option<String>,
    /// The dataset version written by this run (a UUID); alone, the run itself.
    run: Option<String>,
    /// A job (`namespace/name`).
    job: Option<String>,
    /// How many edges to follow at most.
    depth: Option<u32>,
    /// Answer as the graph was at this time (RFC 3339).
    as_of: Option<String>,
}

impl NodeQuery {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            digest: self.digest.clone(),
            run: self.run.clone(),
            job: self.job.clone(),
        }
    }
}

/// The graph key `q` names.
pub(crate) fn node_of(q: &NodeSpec) -> Result<NodeKey, ApiError> {
    let run = q
        .run
        .as_deref()
        .map(|r| uuid::Uuid::try_parse(r).map_err(|_| ApiError::invalid("run", format!("`{r}` is not a UUID"))))
        .transpose()?;
    match (&q.namespace, &q.name, &q.job) {
        (Some(ns), Some(name), None) => {
            let version = match (&q.version, &q.digest, run) {
                (Some(v), None, None) => VersionRef::Declared(v.clone()),
                (None, Some(d), None) => VersionRef::Digest(d.parse::<Sha256Digest>().map_err(ApiError::from)?),
                (None, None, Some(r)) => VersionRef::Run(r),
                (None, None, None) => VersionRef::Base,
                _ => return Err(ApiError::invalid("version", "give at most one of version, digest and run")),
            };
            Ok(NodeKey::version(ns.clone(), name.clone(), version))
        }
        (None, None, Some(job)) => match job.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok(NodeKey::job(ns, name)),
            _ => Err(ApiError::invalid("job", "must be `namespace/name`")),
        },
        (None, None, None) => match run {
            Some(r) => Ok(NodeKey::run(r)),
            None => Err(ApiError::invalid("namespace", "name a dataset (namespace and name), a job or a run")),
        },
        _ => Err(ApiError::invalid("namespace", "give namespace with name, or job, or run")),
    }
}

fn graph_query(q: &NodeQuery) -> Result<custody_lineage::Query, ApiError> {
    let as_of = q
        .as_of
        .as_deref()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::invalid("as_of", format!("`{t}` is not an RFC 3339 time")))
        })
        .transpose()?;
    Ok(custody_lineage::Query { depth: q.depth, as_of })
}

pub(crate) fn graph_error(e: GraphError) -> ApiError {
    match e {
        GraphError::UnknownNode(_) => ApiError::not_found("node", e.to_string()),
        _ => ApiError::invalid("node", e.to_string()),
    }
}

/// Authorizes a read of `project`'s lineage, reads the query, and answers with `f`'s result.
async fn answer<F>(
    ctx: Ctx,
    project: &str,
    query: Result<Query<NodeQuery>, QueryRejection>,
    needs_node: bool,
    f: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&Graph, Option<&NodeKey>, &custody_lineage::Query) -> Result<Vec<u8>, GraphError>,
{
    let p = projects::load(&ctx, Action::LineageRead, project).await?;
    let draft = ctx.authorize(Action::LineageRead, ResourceFacts::Project { name: p.name.clone() }).await?;
    let q = ctx.query(&draft, "query", query).await?;
    let (node, gq) = match parse_node(&q, needs_node) {
        Ok(v) => v,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    synced(&ctx, p.id).await?;
    let out = ctx.state.inner.lineage.read(p.id, |g| f(g, node.as_ref(), &gq)).ok_or_else(ApiError::internal)?;
    match out {
        Ok(v) => {
            record(&ctx, draft, node.as_ref()).await?;
            Ok(([(header::CONTENT_TYPE, "application/json")], v).into_response())
        }
        Err(e) => Err(ctx.refuse(draft, graph_error(e)).await),
    }
}

/// Brings `project`'s graph up to date with what every replica has committed.
pub(crate) async fn synced(ctx: &Ctx, project: custody_core::ProjectId) -> Result<(), ApiError> {
    ctx.state.inner.lineage.sync(ctx.store(), project).await.map_err(|e| {
        tracing::error!(%project, error = %e, "lineage index catch-up failed");
        ApiError::unavailable("the lineage index could not be brought up to date").with_request(ctx.request_id)
    })
}

fn parse_node(q: &NodeQuery, needs_node: bool) -> Result<(Option<NodeKey>, custody_lineage::Query), ApiError> {
    let node = if needs_node { Some(node_of(&q.spec())?) } else { None };
    Ok((node, graph_query(q)?))
}

async fn record(ctx: &Ctx, mut draft: AuditDraft, node: Option<&NodeKey>) -> Result<(), ApiError> {
    if let Some(n) = node {
        draft.details = json!({ "node": n });
    }
    ctx.record(draft).await.map(|_| ())
}

/// The answer's JSON, written while the graph is read (answers such as impact views borrow it).
fn to_json<T: serde::Serialize>(v: T) -> Result<Vec<u8>, GraphError> {
    // Serializing our own types cannot fail (no maps with non-string keys); an empty object
    // is what a failure would give, never a panic.
    Ok(serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec()))
}

macro_rules! node_route {
    ($(#[$doc:meta])* $fn:ident, $path:literal, |$g:ident, $n:ident, $q:ident| $body:expr) => {
        $(#[$doc])*
        #[utoipa::path(get, path = $path, tag = "lineage", params(("project" = String, Path), NodeQuery),
            responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
        pub(crate) async fn $fn(
            ctx: Ctx,
            Path(project): Path<String>,
            query: Result<Query<NodeQuery>, QueryRejection>,
        ) -> Result<Response, ApiError> {
            answer(ctx, &project, query, true, |$g, node, $q| {
                let $n = node.ok_or_else(|| GraphError::UnknownNode(String::new()))?;
                to_json($body?)
            })
            .await
        }
    };
}

node_route!(
    /// Everything downstream of a node, to `depth`, with the edge each was reached by.
    downstream, "/api/v1/projects/{project}/lineage/downstream", |g, n, q| g.downstream(n, q));
node_route!(
    /// Everything upstream of a node, to `depth`.
    upstream, "/api/v1/projects/{project}/lineage/upstream", |g, n, q| g.upstream(n, q));
node_route!(
    /// The impact of a dataset version: every derived dataset, cache, model version and live
    /// deployment it reached.
    impact, "/api/v1/projects/{project}/lineage/impact", |g, n, q| g.impact_view(n, q));
node_route!(
    /// What trained a model version: source dataset versions with digests, runs with code
    /// commits, image digests and parameters, jobs.
    training, "/api/v1/projects/{project}/lineage/training", |g, n, q| g.what_trained(n, q));
node_route!(
    /// The erasure (DSAR) impact of a dataset version: every item it reached and what to do.
    erasure, "/api/v1/projects/{project}/lineage/erasure", |g, n, q| g.erasure_report(n, q));
node_route!(
    /// A dataset version's effective classification, and the chain that explains it.
    classification, "/api/v1/projects/{project}/lineage/classification", |g, n, _q| g.effective_classification(n));

/// The share of model versions whose training inputs are fully traced.
#[utoipa::path(get, path = "/api/v1/projects/{project}/lineage/completeness", tag = "lineage",
    params(("project" = String, Path), NodeQuery), responses((status = 200, body = Object)))]
pub(crate) async fn completeness(
    ctx: Ctx,
    Path(project): Path<String>,
    query: Result<Query<NodeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    answer(ctx, &project, query, false, |g, _, q| to_json(g.completeness(q))).await
}
