//! The model registry as lineage: every registered model version, its training provenance
//! (the dataset versions it was trained on, code commit, image digest) and every deployment,
//! written as the OpenLineage events they stand for and applied to the project's graph with
//! its context. Registry rows are never changed or deleted, so the events are a pure function
//! of them: every replica derives the same events, with the same content-hash ids, and applying
//! them again changes nothing.
//!
//! Names: a model version is `custody://<project>` + `models/<model>`, version = its label; a
//! deployment is `custody://<project>` + `deployments/<model>/<environment>`, version = its id.
//! A producer's own OpenLineage events that use these names meet the registry's nodes.

use crate::lineage::registry_namespace;
use custody_core::{Deployment, ModelVersion, Sha256Digest, Timestamp};
use custody_store::RegisteredDataset;
use serde_json::{Map, Value, json};

const PRODUCER: &str = "https://custody.dev/registry";
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const DATASET_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent";
pub(crate) const VERSION_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json";
pub(crate) const CUSTODY_FACET: &str = "https://custody.dev/facets/custody.json";

/// `fields` as a facet written by `producer` under `schema` (the spec's `_producer` and
/// `_schemaURL`), inserted into `facets` as `name`; nothing when there are no fields.
pub(crate) fn put_facet(facets: &mut Map<String, Value>, name: &str, producer: &str, schema: &str, fields: Value) {
    if let Value::Object(mut f) = fields
        && !f.is_empty()
    {
        f.insert("_producer".into(), json!(producer));
        f.insert("_schemaURL".into(), json!(schema));
        facets.insert(name.into(), Value::Object(f));
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn node(ns: &str, name: &str, version: &str, custody: Value) -> Value {
    let mut facets = Map::new();
    put_facet(&mut facets, "version", PRODUCER, VERSION_FACET, json!({ "datasetVersion": version }));
    put_facet(&mut facets, "custody", PRODUCER, CUSTODY_FACET, custody);
    json!({ "namespace": ns, "name": name, "facets": facets })
}

fn model_node(ns: &str, v: &ModelVersion) -> Value {
    let custody = json!({ "kind": "modelVersion", "contentDigest": v.root_digest });
    node(ns, &format!("models/{}", v.model), v.version.as_str(), custody)
}

/// A training input: the registered dataset version with this digest, or the URI's own name.
fn input(ns: &str, datasets: &[RegisteredDataset], uri: &str, digest: &Sha256Digest) -> Value {
    let registered = datasets.iter().find_map(|d| {
        d.versions.iter().find(|(_, dg)| dg == digest).map(|(label, _)| (d.name.as_str(), label.as_str()))
    });
    match registered {
        Some((name, label)) => node(ns, name, label, json!({ "contentDigest": digest })),
        None => {
            let n = custody_lineage::DatasetName::from_uri(uri)
                .unwrap_or_else(|| custody_lineage::DatasetName::new("custody-provenance", uri));
            let mut facets = Map::new();
            put_facet(&mut facets, "custody", PRODUCER, CUSTODY_FACET, json!({ "contentDigest": digest }));
            json!({ "namespace": n.namespace, "name": n.name, "facets": facets })
        }
    }
}

fn version_events(ns: &str, datasets: &[RegisteredDataset], v: &ModelVersion) -> Value {
    let Some(p) = &v.provenance else {
        return json!({ "eventTime": rfc3339(v.created_at), "producer": PRODUCER, "schemaURL": DATASET_EVENT,
                       "dataset": model_node(ns, v) });
    };
    let mut run = Map::new();
    if let Some(c) = &p.code_commit {
        run.insert("codeCommit".into(), json!(c));
    }
    if let Some(d) = p.image_digest.as_deref().and_then(|d| d.parse::<Sha256Digest>().ok()) {
        run.insert("containerImageDigest".into(), json!(d));
    }
    let mut run_facets = Map::new();
    put_facet(&mut run_facets, "custody", PRODUCER, CUSTODY_FACET, Value::Object(run));
    let job = p.job.clone().unwrap_or_else(|| format!("train/{}", v.model));
    let inputs: Vec<Value> = p.datasets.iter().map(|d| input(ns, datasets, &d.uri, &d.digest)).collect();
    json!({
        "eventType": "COMPLETE", "eventTime": rfc3339(v.created_at), "producer": PRODUCER, "schemaURL": RUN_EVENT,
        "run": { "runId": v.id.to_string(), "facets": run_facets },
        "job": { "namespace": ns, "name": job },
        "inputs": inputs, "outputs": [model_node(ns, v)],
    })
}

fn deployment_node(ns: &str, d: &Deployment, live: bool) -> Value {
    let name = format!("deployments/{}/{}", d.model, d.environment);
    node(ns, &name, &d.id.to_string(), json!({ "kind": "deployment", "live": live }))
}

/// The events of one model's versions and deployments. A deployment is live until a later
/// one of the same model to the same environment replaces it (a DatasetEvent then says so,
/// at the replacement's time).
pub(crate) fn model_events(
    project: &str,
    datasets: &[RegisteredDataset],
    versions: &[ModelVersion],
    deployments: &[Deployment],
) -> Vec<Value> {
    let ns = registry_namespace(project);
    let mut out: Vec<Value> = versions.iter().map(|v| version_events(&ns, datasets, v)).collect();
    for d in deployments {
        let Some(v) = versions.iter().find(|v| v.id == d.model_version_id) else { continue };
        let mut model = model_node(&ns, v);
        model["facets"].as_object_mut().map(|f| f.remove("custody"));
        out.push(json!({
            "eventType": "COMPLETE", "eventTime": rfc3339(d.deployed_at), "producer": PRODUCER, "schemaURL": RUN_EVENT,
            "run": { "runId": d.id.to_string() },
            "job": { "namespace": ns, "name": format!("deploy/{}", d.model) },
            "inputs": [model], "outputs": [deployment_node(&ns, d, true)],
        }));
        let replaced_by = deployments
            .iter()
            .filter(|n| {
                n.environment == d.environment && (n.deployed_at, n.id.to_string()) > (d.deployed_at, d.id.to_string())
            })
            .min_by_key(|n| (n.deployed_at, n.id.to_string()));
        if let Some(n) = replaced_by {
            out.push(json!({ "eventTime": rfc3339(n.deployed_at), "producer": PRODUCER, "schemaURL": DATASET_EVENT,
                             "dataset": deployment_node(&ns, d, false) }));
        }
    }
    out
}
