//! Lineage from systems that do not speak OpenLineage: a run recorded through a small native
//! body (job, inputs, outputs, code commit, image digest, parameters) is written as the
//! OpenLineage RunEvent it stands for, with Custody's facets, and then takes exactly the
//! ingest path: one stored form, one idempotency rule, one graph.

use crate::error::ApiError;
use crate::lineage_registry::{CUSTODY_FACET, VERSION_FACET, put_facet};
use crate::routes::lineage::store_event;
use crate::routes::projects;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custody_core::{Action, Classification, Sha256Digest};
use custody_lineage::parse_event;
use custody_policy::ResourceFacts;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What the stored events name as their producer.
const PRODUCER: &str = "https://custody.dev/api/v1/lineage/runs";
const SOURCE_CODE_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/SourceCodeLocationJobFacet.json";
const RUN_EVENT_SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// A run, as a system without OpenLineage reports it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NativeRun {
    /// The run's id (a UUID; the same run reported again is the same run).
    run_id: uuid::Uuid,
    /// The job it is a run of.
    job: NativeJob,
    /// `START`, `RUNNING`, `COMPLETE` (default), `ABORT`, `FAIL` or `OTHER`.
    #[serde(default)]
    state: Option<String>,
    /// When the run reached `state` (RFC 3339). Required, so that a retry is the same event.
    event_time: String,
    /// What it read.
    #[serde(default)]
    inputs: Vec<NativeDataset>,
    /// What it wrote.
    #[serde(default)]
    outputs: Vec<NativeDataset>,
    /// The code's commit.
    #[serde(default)]
    code_commit: Option<String>,
    /// Where the code lives (a repository URL), recorded with the commit.
    #[serde(default)]
    code_url: Option<String>,
    /// The container image it ran in, by digest.
    #[serde(default)]
    image_digest: Option<Sha256Digest>,
    /// Its parameters (hyper-parameters, configuration), values as text.
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

/// A job: namespace (the scheduler) and name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NativeJob {
    namespace: String,
    name: String,
}

/// A dataset version a run read or wrote.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NativeDataset {
    /// Its namespace (data source), per the OpenLineage naming conventions.
    namespace: String,
    /// Its name.
    name: String,
    /// Its version label.
    #[serde(default)]
    version: Option<String>,
    /// Its content digest.
    #[serde(default)]
    digest: Option<Sha256Digest>,
    /// `dataset` (default), `modelVersion`, `deployment` or `cache`.
    #[serde(default)]
    kind: Option<String>,
    /// Its classification, when the producer knows it (it only ever raises the level).
    #[serde(default)]
    classification: Option<Classification>,
    /// For a deployment: whether it serves.
    #[serde(default)]
    live: Option<bool>,
}

impl NativeDataset {
    fn to_openlineage(&self) -> Value {
        let mut facets = Map::new();
        if let Some(v) = &self.version {
            put_facet(&mut facets, "version", PRODUCER, VERSION_FACET, json!({ "datasetVersion": v }));
        }
        let mut custody = Map::new();
        if let Some(k) = &self.kind {
            custody.insert("kind".into(), json!(k));
        }
        if let Some(c) = self.classification {
            custody.insert("classification".into(), json!(c));
        }
        if let Some(d) = &self.digest {
            custody.insert("contentDigest".into(), json!(d));
        }
        if let Some(l) = self.live {
            custody.insert("live".into(), json!(l));
        }
        put_facet(&mut facets, "custody", PRODUCER, CUSTODY_FACET, Value::Object(custody));
        json!({ "namespace": self.namespace, "name": self.name, "facets": facets })
    }
}

impl NativeRun {
    /// The OpenLineage RunEvent this run stands for.
    fn to_openlineage(&self) -> Value {
        let time = &self.event_time;
        let mut run_facet = Map::new();
        if let Some(d) = &self.image_digest {
            run_facet.insert("containerImageDigest".into(), json!(d));
        }
        if let Some(c) = &self.code_commit {
            run_facet.insert("codeCommit".into(), json!(c));
        }
        if !self.parameters.is_empty() {
            run_facet.insert("parameters".into(), json!(self.parameters));
        }
        let mut run_facets = Map::new();
        put_facet(&mut run_facets, "custody", PRODUCER, CUSTODY_FACET, Value::Object(run_facet));
        let mut job_facets = Map::new();
        if let (Some(url), Some(commit)) = (&self.code_url, &self.code_commit) {
            let location = json!({ "type": "git", "url": url, "version": commit });
            put_facet(&mut job_facets, "sourceCodeLocation", PRODUCER, SOURCE_CODE_FACET, location);
        }
        json!({
            "eventTime": time,
            "eventType": self.state.as_deref().unwrap_or("COMPLETE"),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT_SCHEMA,
            "run": { "runId": self.run_id, "facets": run_facets },
            "job": { "namespace": self.job.namespace, "name": self.job.name, "facets": job_facets },
            "inputs": self.inputs.iter().map(NativeDataset::to_openlineage).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(NativeDataset::to_openlineage).collect::<Vec<_>>(),
        })
    }
}

/// Record a run from a system that does not speak OpenLineage. It is stored as the
/// equivalent OpenLineage RunEvent (returned as `event_id`), so the same run reported again
/// is acknowledged and changes nothing.
#[utoipa::path(post, path = "/api/v1/projects/{project}/lineage/runs", tag = "lineage", request_body = NativeRun,
    params(("project" = String, Path)),
    responses((status = 201, body = Object), (status = 200, body = Object), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn record_run(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = projects::load(&ctx, Action::LineageWrite, &project).await?;
    let draft = ctx.authorize(Action::LineageWrite, ResourceFacts::Project { name: p.name.clone() }).await?;
    let run: NativeRun = ctx.parse(&draft, body).await?;
    // The event is checked by the same parser as any OpenLineage event: a bad state, time or
    // kind is refused with the path into the native body's equivalent.
    let event = run.to_openlineage().to_string();
    let parsed = match parse_event(event.as_bytes()) {
        Ok(parsed) => parsed,
        Err(e) => return Err(ctx.refuse(draft, ApiError::invalid(native_path(e.path()), e.to_string())).await),
    };
    store_event(ctx, &p, draft, parsed).await
}

/// The native body's field for a path into the OpenLineage event made of it.
fn native_path(path: &str) -> String {
    let path = path.trim_start_matches('$').trim_start_matches('.');
    let mapped = [
        ("eventType", "state"),
        ("eventTime", "event_time"),
        ("run.facets.custody.parameters", "parameters"),
        ("run.facets.custody", "run"),
        ("job.", "job."),
    ]
    .iter()
    .find_map(|(from, to)| path.strip_prefix(from).map(|rest| format!("{to}{rest}")));
    match mapped {
        Some(m) => m,
        None => path.replace(".facets.custody", "").replace(".facets.version.datasetVersion", ".version"),
    }
}
