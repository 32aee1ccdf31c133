//! Lineage governed: classification fed from the dataset registry and cut only by approved
//! anonymizing transforms, runs recorded natively, erasures carried out with real deletion and
//! a receipt, and replicas that see each other's writes.

use crate::common::*;
use serde_json::{Value, json};

const SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const P: &str = "https://example.com/pipeline";

fn run_event(time: &str, run: &str, job: &str, inputs: Value, outputs: Value) -> Value {
    json!({
        "eventType": "COMPLETE", "eventTime": time, "producer": P, "schemaURL": SCHEMA,
        "run": { "runId": run }, "job": { "namespace": "etl", "name": job }, "inputs": inputs, "outputs": outputs,
    })
}

fn ds(ns: &str, name: &str, version: Option<&str>) -> Value {
    match version {
        Some(v) => json!({ "namespace": ns, "name": name, "facets": { "version": {
            "_producer": P, "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
            "datasetVersion": v } } }),
        None => json!({ "namespace": ns, "name": name }),
    }
}

fn kind(ns: &str, name: &str, kind: &str, live: Option<bool>) -> Value {
    let mut facet = json!({ "_producer": P, "_schemaURL": "https://custody.dev/facets/custody.json", "kind": kind });
    if let Some(l) = live {
        facet["live"] = json!(l);
    }
    json!({ "namespace": ns, "name": name, "facets": { "custody": facet } })
}

const R_CLEAN: &str = "0190c3a4-1b2c-7d3e-8f40-00000000a001";
const R_TRAIN: &str = "0190c3a4-1b2c-7d3e-8f40-00000000a002";
const R_DEPLOY: &str = "0190c3a4-1b2c-7d3e-8f40-00000000a003";
const R_JOIN: &str = "0190c3a4-1b2c-7d3e-8f40-00000000a004";
const R_ANON: &str = "0190c3a4-1b2c-7d3e-8f40-00000000a005";

/// users v1 (s3://lake) → clean → churn model → live endpoint; clean + ref → joined;
/// users v1 → (anon) → stats.
fn pipeline() -> Vec<Value> {
    let users = ds("s3://lake", "users", Some("1"));
    vec![
        run_event("2024-05-01T10:00:00Z", R_CLEAN, "clean", json!([users]), json!([ds("s3://lake", "clean", None)])),
        run_event(
            "2024-05-01T11:00:00Z",
            R_TRAIN,
            "train",
            json!([ds("s3://lake", "clean", None)]),
            json!([kind("custody://p", "models/churn", "modelVersion", None)]),
        ),
        run_event(
            "2024-05-01T12:00:00Z",
            R_DEPLOY,
            "deploy",
            json!([kind("custody://p", "models/churn", "modelVersion", None)]),
            json!([kind("https://serve.example", "churn", "deployment", Some(true))]),
        ),
        run_event(
            "2024-05-01T13:00:00Z",
            R_JOIN,
            "join",
            json!([ds("s3://lake", "clean", None), ds("s3://lake", "ref", Some("1"))]),
            json!([ds("s3://lake", "joined", None)]),
        ),
        run_event("2024-05-01T14:00:00Z", R_ANON, "anon", json!([users]), json!([ds("s3://lake", "stats", None)])),
    ]
}

async fn send_pipeline(s: &TestServer, token: &str) {
    for e in pipeline() {
        let r = s.post(token, "/api/v1/projects/p/lineage", e).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// Registers `users` (confidential, at s3://lake/users) with version 1 of `bytes`; its id.
async fn register_users(s: &TestServer, token: &str, bytes: &[u8]) -> String {
    let mut body = dataset_body("users", "confidential");
    body["source_uri"] = json!("s3://lake/users");
    let d = s.post(token, "/api/v1/projects/p/datasets", body).await;
    assert_eq!(d.status, 201, "{}", d.body);
    let id = d.body["id"].as_str().unwrap().to_owned();
    let v = json!({ "label": "1", "digest": format!("sha256:{}", sha256(bytes)), "size_bytes": bytes.len() });
    assert_eq!(s.post(token, &format!("/api/v1/datasets/{id}/versions"), v).await.status, 201);
    id
}

async fn level(s: &TestServer, token: &str, query: &str) -> (String, Value) {
    let r = s.get(token, &format!("/api/v1/projects/p/lineage/classification?{query}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (r.body["level"].as_str().unwrap().to_owned(), r.body.clone())
}

const STATS: &str = "namespace=s3://lake&name=stats&run=0190c3a4-1b2c-7d3e-8f40-00000000a005";
const CLEAN: &str = "namespace=s3://lake&name=clean&run=0190c3a4-1b2c-7d3e-8f40-00000000a001";

#[tokio::test]
async fn the_registry_classifies_and_only_an_approved_anonymizer_cuts_inheritance() {
    each_backend(|s| async move {
        s.project("p").await;
        let eng = s.token("eve", "p", "ml-engineer").await;
        let approver = s.token("ann", "p", "approver").await;
        let viewer = s.token("vi", "p", "viewer").await;
        send_pipeline(&s, &eng).await;
        // Before the registry knows `users`: the default level everywhere.
        assert_eq!(level(&s, &viewer, STATS).await.0, "internal");

        // Registered as confidential: everything derived inherits it, the chain says why.
        register_users(&s, &s.admin, b"user rows").await;
        let (l, body) = level(&s, &viewer, STATS).await;
        assert_eq!(l, "confidential", "{body}");
        assert_eq!(body["origin"]["from"]["dataset"]["name"], "users", "{body}");
        assert_eq!(level(&s, &viewer, CLEAN).await.0, "confidential");

        // Declared anonymizing: not in force until approved, and not by its declarer.
        let decl = json!({ "job": "etl/anon", "kind": "anonymizing", "justification": "k-anonymity k=20, ids hashed" });
        let put = s.call(Some(&eng), reqwest::Method::PUT, "/api/v1/projects/p/lineage/transforms", Some(decl.clone()));
        let put = put.await;
        assert_eq!(put.status, 201, "{}", put.body);
        assert_eq!(put.body["approved"], false);
        assert_eq!(level(&s, &viewer, STATS).await.0, "confidential", "a declaration alone changes nothing");
        let approve = json!({ "job": "etl/anon" });
        let path = "/api/v1/projects/p/lineage/transforms/approve";
        assert_eq!(s.post(&eng, path, approve.clone()).await.status, 403, "engineers do not approve");
        assert_eq!(
            s.post(&viewer, "/api/v1/projects/p/lineage/transforms/withdraw", approve.clone()).await.status,
            403
        );
        let bad = s.post(&approver, path, json!({ "job": "no-slash" })).await;
        assert_eq!((bad.status.as_u16(), bad.body["error"]["field"].as_str()), (400, Some("job")), "{}", bad.body);
        let ok = s.post(&approver, path, approve.clone()).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!((ok.body["approved"].as_bool(), ok.body["approved_by"].as_str()), (Some(true), Some("ann")));
        assert_eq!(s.post(&approver, path, approve.clone()).await.status, 409, "approved already");
        // Nobody approves their own declaration, admins included.
        let adm = s.token("ada", "p", "admin").await;
        let own = json!({ "job": "etl/clean", "kind": "aggregating", "justification": "daily totals" });
        let own = s.call(Some(&adm), reqwest::Method::PUT, "/api/v1/projects/p/lineage/transforms", Some(own));
        assert_eq!(own.await.status, 201);
        let selfie = s.post(&adm, path, json!({ "job": "etl/clean" })).await;
        assert_eq!(selfie.status, 409, "{}", selfie.body);
        assert_eq!(
            s.post(&adm, "/api/v1/projects/p/lineage/transforms/withdraw", json!({ "job": "etl/clean" })).await.status,
            200
        );

        // In force: the anonymizer's output drops to the default, the rest keeps the level.
        let (l, body) = level(&s, &viewer, STATS).await;
        assert_eq!(l, "internal", "{body}");
        assert_eq!(body["blocked_by"][0]["name"], "anon", "{body}");
        assert_eq!(level(&s, &viewer, CLEAN).await.0, "confidential");

        // Declaring again clears the approval; so does withdrawing.
        let again = s.call(Some(&eng), reqwest::Method::PUT, "/api/v1/projects/p/lineage/transforms", Some(decl));
        assert_eq!(again.await.body["approved"], false);
        assert_eq!(level(&s, &viewer, STATS).await.0, "confidential");
        assert_eq!(s.post(&approver, path, approve.clone()).await.status, 200);
        assert_eq!(level(&s, &viewer, STATS).await.0, "internal");
        let w = s.post(&eng, "/api/v1/projects/p/lineage/transforms/withdraw", approve.clone()).await;
        assert_eq!(w.status, 200, "{}", w.body);
        assert_eq!(level(&s, &viewer, STATS).await.0, "confidential");
        assert_eq!(s.get(&viewer, "/api/v1/projects/p/lineage/transforms").await.body, json!([]));

        // A registry change reaches the graph at once: raised to restricted.
        let id = s.get(&s.admin, "/api/v1/projects/p/datasets").await.body[0]["id"].as_str().unwrap().to_owned();
        let raise = json!({ "classification": "restricted", "reason": "holds health data" });
        let r = s.post(&s.admin, &format!("/api/v1/datasets/{id}/classification/raise"), raise).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(level(&s, &viewer, CLEAN).await.0, "restricted");

        // Every step is in the audit log.
        let actions: Vec<String> =
            s.audit().await.iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect();
        for a in ["lineage.transform.declare", "lineage.transform.approve"] {
            assert!(actions.iter().any(|x| x == a), "{a} missing from {actions:?}");
        }
        s
    })
    .await;
}

#[tokio::test]
async fn native_runs_record_code_image_and_parameters_like_openlineage_events() {
    each_backend(|s| async move {
        s.project("p").await;
        let eng = s.token("eve", "p", "ml-engineer").await;
        let image = format!("sha256:{}", "ab".repeat(32));
        let data = format!("sha256:{}", "cd".repeat(32));
        let run = json!({
            "run_id": "0190c3a4-1b2c-7d3e-8f40-00000000b001",
            "job": { "namespace": "kubeflow", "name": "train-churn" },
            "event_time": "2024-06-01T09:00:00Z",
            "inputs": [{ "namespace": "s3://lake", "name": "features", "digest": data }],
            "outputs": [{ "namespace": "custody://p", "name": "models/churn", "version": "4", "kind": "modelVersion" }],
            "code_commit": "9f1c2e7", "code_url": "https://git.example/ml/churn",
            "image_digest": image, "parameters": { "lr": "0.01", "epochs": "20" },
        });
        let path = "/api/v1/projects/p/lineage/runs";
        let first = s.post(&eng, path, run.clone()).await;
        assert_eq!(first.status, 201, "{}", first.body);
        let again = s.post(&eng, path, run.clone()).await;
        assert_eq!((again.status.as_u16(), &again.body["event_id"]), (200, &first.body["event_id"]));

        let t =
            s.get(&eng, "/api/v1/projects/p/lineage/training?namespace=custody://p&name=models/churn&version=4").await;
        assert_eq!(t.status, 200, "{}", t.body);
        let text = t.body.to_string();
        for want in ["9f1c2e7", image.as_str(), data.as_str(), "epochs", "train-churn"] {
            assert!(text.contains(want), "{want} missing from {text}");
        }

        // Bad input names the native field and stores nothing.
        let mut bad = run.clone();
        bad["state"] = json!("FINISHED");
        let r = s.post(&eng, path, bad).await;
        assert_eq!((r.status.as_u16(), r.body["error"]["field"].as_str()), (400, Some("state")), "{}", r.body);
        let mut bad = run.clone();
        bad["run_id"] = json!("not-a-uuid");
        assert_eq!(s.post(&eng, path, bad).await.status, 400);
        let mut bad = run.clone();
        bad["inputs"][0]["digest"] = json!("md5:00");
        let r = s.post(&eng, path, bad).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body["error"]["field"].as_str().unwrap_or_default().starts_with("inputs[0]"), "{}", r.body);
        let viewer = s.token("vi", "p", "viewer").await;
        assert_eq!(s.post(&viewer, path, run).await.status, 403);
        s
    })
    .await;
}

async fn erase(s: &TestServer, token: &str, ticket: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = s.http.post(format!("{}/api/v1/projects/p/lineage/erasures", s.url)).bearer_auth(token).json(body);
    if let Some(t) = ticket {
        req = req.header("custody-ticket", t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn data(s: &TestServer, method: reqwest::Method, path: &str, body: Vec<u8>) -> u16 {
    let resp =
        s.http.request(method, format!("{}{path}", s.url)).bearer_auth(&s.admin).body(body).send().await.unwrap();
    resp.status().as_u16()
}

fn action_for(report: &Value, name: &str) -> (Value, String) {
    let item = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["node"]["key"]["dataset"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"));
    (item["node"]["key"].clone(), item["action"]["action"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_erasure_reaches_every_hop_deletes_the_held_data_and_leaves_a_receipt() {
    each_backend(|s| async move {
        s.project("p").await;
        let eng = s.token("eve", "p", "ml-engineer").await;
        let approver = s.token("ann", "p", "approver").await;
        let admin = s.token("ada", "p", "admin").await;
        let bytes = b"user rows, subject 42 among them".to_vec();
        let id = register_users(&s, &s.admin, &bytes).await;
        let data_path = format!("/api/v1/datasets/{id}/versions/1/data");
        assert_eq!(data(&s, reqwest::Method::PUT, &data_path, bytes.clone()).await, 201);
        send_pipeline(&s, &eng).await;
        let decl = json!({ "job": "etl/anon", "kind": "aggregating", "justification": "counts over >= 1000 users" });
        let put = s.call(Some(&eng), reqwest::Method::PUT, "/api/v1/projects/p/lineage/transforms", Some(decl));
        assert_eq!(put.await.status, 201);
        let approve = json!({ "job": "etl/anon" });
        assert_eq!(s.post(&approver, "/api/v1/projects/p/lineage/transforms/approve", approve).await.status, 200);

        // The report: every hop, with what to do.
        let q = "/api/v1/projects/p/lineage/erasure?namespace=s3://lake&name=users&version=1";
        let report = s.get(&eng, q).await;
        assert_eq!(report.status, 200, "{}", report.body);
        let report = report.body;
        let (clean, a) = action_for(&report, "clean");
        assert_eq!(a, "delete");
        let (joined, a) = action_for(&report, "joined");
        assert_eq!(a, "reDerive", "it also holds `ref`");
        let (model, a) = action_for(&report, "models/churn");
        assert_eq!(a, "retrain");
        let (endpoint, a) = action_for(&report, "churn");
        assert_eq!(a, "retireOrReplace");
        let (stats, a) = action_for(&report, "stats");
        assert_eq!(a, "acceptWithJustification");
        let source = report["source"]["key"].clone();

        // A record key's report: the versions holding the subject's records, together.
        let many = json!({ "sources": [
            { "namespace": "s3://lake", "name": "users", "version": "1" },
            { "namespace": "s3://lake", "name": "ref", "version": "1" }] });
        let r = s.post(&eng, "/api/v1/projects/p/lineage/erasure/report", many).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(action_for(&r.body, "joined").1, "delete", "both its inputs are erased");

        let actions = |model_done: &str| {
            json!([
                { "node": source, "done": "deleted" },
                { "node": clean, "done": "deleted" },
                { "node": joined, "done": "rederived", "note": "re-joined without subject 42" },
                { "node": model, "done": model_done },
                { "node": endpoint, "done": "replaced", "note": "churn v5 deployed" },
                { "node": stats, "done": "accepted" },
            ])
        };
        let request = |actions: Value| {
            json!({ "sources": [{ "namespace": "s3://lake", "name": "users", "version": "1" }],
                    "record_key": "subject-42", "reason": "DSAR-2024-0042", "actions": actions })
        };
        assert_eq!(erase(&s, &eng, Some("DSAR-1"), &request(actions("retrained"))).await.0, 403, "admins only");
        assert_eq!(erase(&s, &admin, None, &request(actions("retrained"))).await.0, 403, "needs a ticket");
        let (status, body) = erase(&s, &admin, Some("DSAR-1"), &request(actions("retired"))).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("actions[3].done")), "{body}");
        let mut short = actions("retrained");
        short.as_array_mut().unwrap().remove(1);
        let (status, body) = erase(&s, &admin, Some("DSAR-1"), &request(short)).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("actions")), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("clean"), "{body}");
        assert_eq!(data(&s, reqwest::Method::GET, &data_path, vec![]).await, 200, "refusals delete nothing");

        let (status, receipt) = erase(&s, &admin, Some("DSAR-1"), &request(actions("retrained"))).await;
        assert_eq!(status, 201, "{receipt}");
        assert_eq!(receipt["deleted"][0]["blobs_deleted"], 1, "{receipt}");
        assert_eq!(receipt["deleted"].as_array().unwrap().len(), 1, "only `users` v1 is held by Custody");
        // The record key is kept only as a commitment the requester can open with the salt.
        let salt = hex::decode(receipt["record_key_salt"].as_str().unwrap()).unwrap();
        let mut opened = b"custody-erasure-key/1".to_vec();
        opened.extend(&salt);
        opened.extend(b"subject-42");
        assert_eq!(receipt["key_commitment"].as_str().unwrap(), sha256(&opened));
        assert!(!receipt.to_string().contains("subject-42"));

        // Deleted for real: gone now, not storable again, and a restart changes nothing.
        assert_eq!(data(&s, reqwest::Method::GET, &data_path, vec![]).await, 410);
        assert_eq!(data(&s, reqwest::Method::PUT, &data_path, bytes.clone()).await, 410);
        let receipts = s.get(&eng, "/api/v1/projects/p/lineage/erasures").await.body;
        assert_eq!(receipts.as_array().unwrap().len(), 1);
        assert_eq!(receipts[0]["report_sha256"], receipt["report_sha256"]);
        let audited = s.audit().await;
        let rec = audited.iter().find(|e| e["action"] == "lineage.erase" && e["outcome"] == "success").unwrap();
        assert_eq!(rec["resource"], format!("erasure_receipt:{}", receipt["id"].as_str().unwrap()), "{rec}");
        assert!(!rec.to_string().contains("subject-42"));
        let s = s.restart().await;
        send_pipeline_again(&s, &eng).await;
        assert_eq!(data(&s, reqwest::Method::GET, &data_path, vec![]).await, 410);
        s
    })
    .await;
}

/// The same events again (all duplicates): nothing a later event says revives erased data.
async fn send_pipeline_again(s: &TestServer, token: &str) {
    for e in pipeline() {
        let r = s.post(token, "/api/v1/projects/p/lineage", e).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn replicas_on_one_postgresql_see_each_others_lineage_writes() {
    let Some(db) = custody_store::testing::postgres().await else { return };
    // Both servers share the data directory (log key, keyring), as replicas share secrets.
    let a = TestServer::start(db).await;
    let b_server = custody_server::start(a.replica_config()).await.unwrap();
    let b = b_server.url();
    a.project("p").await;
    let eng = a.token("eve", "p", "ml-engineer").await;
    let approver = a.token("ann", "p", "approver").await;
    let on_b = |path: &str| {
        let (http, url, token) = (a.http.clone(), format!("{b}{path}"), eng.clone());
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    // B has built its (empty) graph; A writes; B answers with A's writes.
    assert_eq!(on_b("/api/v1/projects/p/lineage/completeness").await["model_versions"], 0);
    send_pipeline(&a, &eng).await;
    let impact = on_b("/api/v1/projects/p/lineage/impact?namespace=s3://lake&name=users&version=1").await;
    assert!(impact.to_string().contains("models/churn"), "{impact}");
    register_users(&a, &a.admin, b"rows").await;
    let level = on_b(&format!("/api/v1/projects/p/lineage/classification?{STATS}")).await;
    assert_eq!(level["level"], "confidential", "{level}");
    let decl = json!({ "job": "etl/anon", "kind": "anonymizing", "justification": "hashed ids" });
    assert_eq!(
        a.call(Some(&eng), reqwest::Method::PUT, "/api/v1/projects/p/lineage/transforms", Some(decl)).await.status,
        201
    );
    assert_eq!(
        a.post(&approver, "/api/v1/projects/p/lineage/transforms/approve", json!({ "job": "etl/anon" })).await.status,
        200
    );
    let level = on_b(&format!("/api/v1/projects/p/lineage/classification?{STATS}")).await;
    assert_eq!(level["level"], "internal", "{level}");
    b_server.shutdown().await;
    a.stop().await;
}
