//! The demo's lineage part: a pipeline's OpenLineage events (raw card transactions → cleaned
//! → features → a training run → the fraud-scorer model → its deployment) sent out of order
//! and twice, then the questions an auditor asks of the graph.

use super::{Demo, issue};
use crate::client::Client;
use anyhow::bail;
use serde_json::{Value, json};

const PROJECT: &str = "fraud-detection";
const SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent";
const PRODUCER: &str = "https://example.com/fraud-pipeline";

fn dataset(ns: &str, name: &str, facets: Value) -> Value {
    json!({ "namespace": ns, "name": name, "facets": facets })
}

fn custody_kind(kind: &str, extra: Value) -> Value {
    let mut facet =
        json!({ "_producer": PRODUCER, "_schemaURL": "https://custody.dev/facets/custody.json", "kind": kind });
    if let (Some(f), Some(e)) = (facet.as_object_mut(), extra.as_object()) {
        f.extend(e.clone());
    }
    json!({ "custody": facet })
}

fn event(run: &str, job: &str, time: &str, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
    json!({ "eventType": "COMPLETE", "eventTime": time, "producer": PRODUCER, "schemaURL": SCHEMA,
            "run": { "runId": run }, "job": { "namespace": "fraud-pipeline", "name": job },
            "inputs": inputs, "outputs": outputs })
}

fn events() -> Vec<Value> {
    let raw = dataset(
        "s3://cards-raw",
        "transactions",
        json!({ "version": {
        "_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
        "datasetVersion": "2024-06" } }),
    );
    let clean = dataset("s3://cards-clean", "transactions", json!({}));
    let features = dataset("s3://features", "card-features", json!({}));
    let model = dataset("custody://fraud-detection", "models/fraud-scorer", custody_kind("modelVersion", json!({})));
    let deployment =
        dataset("https://infer.example.com", "fraud-scorer", custody_kind("deployment", json!({ "live": true })));
    vec![
        event(
            "0190c3a4-1b2c-7d3e-8f40-0000000d0001",
            "clean",
            "2024-06-02T01:00:00Z",
            vec![raw.clone()],
            vec![clean.clone()],
        ),
        event(
            "0190c3a4-1b2c-7d3e-8f40-0000000d0002",
            "featurize",
            "2024-06-02T02:00:00Z",
            vec![clean],
            vec![features.clone()],
        ),
        event(
            "0190c3a4-1b2c-7d3e-8f40-0000000d0003",
            "train-fraud-scorer",
            "2024-06-03T09:00:00Z",
            vec![features],
            vec![model.clone()],
        ),
        event("0190c3a4-1b2c-7d3e-8f40-0000000d0004", "deploy", "2024-06-04T09:00:00Z", vec![model], vec![deployment]),
    ]
}

const RAW: &str = "namespace=s3%3A%2F%2Fcards-raw&name=transactions&version=2024-06";

pub async fn run(demo: &mut Demo, admin: &Client) -> anyhow::Result<()> {
    demo.note("Lineage: OpenLineage in, an auditor's questions out");
    let pipeline = issue(admin, "fraud-pipeline", "workload", PROJECT, "ml-engineer", None).await?;
    let path = format!("/api/v1/projects/{PROJECT}/lineage");
    let (mut new, mut repeated) = (0, 0);
    // Newest first, then all again: the graph must not care.
    for e in events().iter().rev().chain(events().iter()) {
        let a: Value = pipeline.post(&path, e).await?;
        if a["duplicate"] == json!(true) { repeated += 1 } else { new += 1 }
    }
    if (new, repeated) != (4, 4) {
        bail!("expected 4 new events and 4 repeats, got {new} and {repeated}");
    }
    demo.step(
        "the pipeline's workload token sent 4 OpenLineage events newest first, then all 4 again: 4 stored, 4 acknowledged as repeats",
        "ingest is idempotent (content-hash ids) and order-independent; every event is in the audit log",
    );
    let q = |what: &str| format!("/api/v1/projects/{PROJECT}/lineage/{what}?{RAW}");
    let impact: Value = pipeline.get(&q("impact")).await?;
    let text = impact.to_string();
    if !text.contains("models/fraud-scorer") || !text.contains("infer.example.com") {
        bail!("the impact of the raw data misses the model or its deployment: {text}");
    }
    let before: Value = pipeline.get(&format!("{}&as_of=2024-06-02T12:00:00Z", q("impact"))).await?;
    if before.to_string().contains("models/fraud-scorer") {
        bail!("as of June 2nd the model was not trained yet: {before}");
    }
    demo.step(
        "impact of s3://cards-raw/transactions 2024-06: the cleaned data, the features, model fraud-scorer and its live deployment; as of June 2nd, before training, no model",
        "the graph answers downstream impact now and as of any past time",
    );
    let erasure: Value = pipeline.get(&q("erasure")).await?;
    let lowered = erasure.to_string().to_lowercase();
    for action in ["delete", "retrain", "retire"] {
        if !lowered.contains(action) {
            bail!("the erasure report suggests no `{action}`: {erasure}");
        }
    }
    demo.step(
        "an erasure request on the raw transactions reaches the cleaned data and the features (delete), the model (retrain) and the deployment (retire or replace)",
        "a DSAR's reach is computed from recorded lineage, item by item",
    );
    Ok(())
}
