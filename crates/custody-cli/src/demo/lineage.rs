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
    governed(demo, admin, &pipeline, &erasure).await
}

/// The registry's classification flowing down the graph, and an erasure carried out.
async fn governed(demo: &mut Demo, admin: &Client, pipeline: &Client, report: &Value) -> anyhow::Result<()> {
    let raw = b"card_id,amount,merchant\n4111...,12.30,coffee\n".to_vec();
    let digest = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &raw));
    let dataset: Value = admin
        .post(
            &format!("/api/v1/projects/{PROJECT}/datasets"),
            &json!({ "name": "raw-card-transactions", "licence": "proprietary", "source_uri": "s3://cards-raw/transactions",
                     "classification": "confidential", "region": "eu-west-1", "retention": "2y" }),
        )
        .await?;
    let id = dataset["id"].as_str().unwrap_or_default().to_owned();
    let version = json!({ "label": "2024-06", "digest": format!("sha256:{digest}"), "size_bytes": raw.len() });
    let _: Value = admin.post(&format!("/api/v1/datasets/{id}/versions"), &version).await?;
    let data = format!("/api/v1/datasets/{id}/versions/2024-06/data");
    let _: Value = admin.put_bytes(&data, raw, &[]).await?;
    let model =
        "namespace=custody%3A%2F%2Ffraud-detection&name=models%2Ffraud-scorer&run=0190c3a4-1b2c-7d3e-8f40-0000000d0003";
    let level: Value = pipeline.get(&format!("/api/v1/projects/{PROJECT}/lineage/classification?{model}")).await?;
    if level["level"] != "confidential" || level["origin"]["kind"] != "inherited" {
        bail!("the model should inherit the raw data's confidential level: {level}");
    }
    demo.step(
        "registering s3://cards-raw/transactions as confidential made the model confidential too, with the chain that explains it",
        "derived data inherits the highest classification of its inputs, fed from the dataset registry as it changes",
    );
    let mut actions = vec![json!({ "node": report["source"]["key"], "done": "deleted" })];
    for item in report["items"].as_array().into_iter().flatten() {
        let done = match item["action"]["action"].as_str() {
            Some("retrain") => "retrained",
            Some("retireOrReplace") => "replaced",
            Some("reDerive") => "rederived",
            Some("acceptWithJustification" | "noneRetired") => "accepted",
            _ => "deleted",
        };
        actions
            .push(json!({ "node": item["node"]["key"], "done": done, "note": "fraud-scorer v2 trained without it" }));
    }
    let request = json!({
        "sources": [{ "namespace": "s3://cards-raw", "name": "transactions", "version": "2024-06" }],
        "reason": "DSAR-2024-117: cardholder asked to be forgotten", "actions": actions,
    });
    let path = format!("/api/v1/projects/{PROJECT}/lineage/erasures");
    let receipt: Value = admin
        .send_with(reqwest::Method::POST, &path, &[("custody-ticket", "DSAR-2024-117")], Some(&request))
        .await?
        .json()
        .await?;
    if receipt["deleted"][0]["blobs_deleted"] != 1 {
        bail!("the erasure should have deleted the stored raw data: {receipt}");
    }
    match admin.get_raw(&data).await {
        Err(crate::client::ClientError::Api { status, .. }) if status.as_u16() == 410 => {}
        other => bail!("erased data must be gone (410), got {:?}", other.map(|r| r.status())),
    }
    demo.step(
        "the erasure was carried out: every item answered (deleted, retrained, replaced), the stored raw data deleted for good (410 Gone), a receipt with the report's SHA-256 in the audit log",
        "deletion is real and receipted; a later upload or event cannot bring the data back",
    );
    Ok(())
}
