//! Dataset versions' data through the API: stored encrypted under the policy's KEK, read back
//! (whole or a range), the key-use ledger, crypto-shredding.

use crate::common::*;
use serde_json::{Value, json};

fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref()))
}

async fn put(s: &TestServer, token: &str, path: &str, body: Vec<u8>, run: Option<&str>) -> (u16, Value) {
    let mut req = s.http.put(format!("{}{path}", s.url)).bearer_auth(token).body(body);
    if let Some(r) = run {
        req = req.header("custody-run", r);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(
    s: &TestServer,
    token: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = s.http.get(format!("{}{path}", s.url)).bearer_auth(token);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

/// A dataset with version v1 of `bytes`; returns the data path.
async fn version_with(s: &TestServer, token: &str, name: &str, label: &str, bytes: &[u8]) -> (String, String) {
    let d = s.dataset(token, "p", name, "internal").await;
    let id = d["id"].as_str().unwrap().to_owned();
    let v = json!({ "label": label, "digest": sha256(bytes), "size_bytes": bytes.len() });
    assert_eq!(s.post(token, &format!("/api/v1/datasets/{id}/versions"), v).await.status, 201);
    let path = format!("/api/v1/datasets/{id}/versions/{label}/data");
    (id, path)
}

#[tokio::test]
async fn data_is_stored_encrypted_read_back_ledgered_and_shredded() {
    each_backend(|s| async move {
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        let viewer = s.token("vic", "p", "viewer").await;
        let auditor = s.token("aud", "p", "auditor").await;
        let admin = s.token("ada", "p", "admin").await;
        let bytes = content(100_000);
        let (id, path) = version_with(&s, &ds, "claims", "v1", &bytes).await;

        // Content that is not the version's: refused, nothing stored.
        let (status, body) = put(&s, &ds, &path, content(99_999), None).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("not the version's digest"), "{body}");
        assert_eq!(get(&s, &ds, &path, &[]).await.0, 404);
        assert_eq!(put(&s, &viewer, &path, bytes.clone(), None).await.0, 403);

        let (status, stored) = put(&s, &ds, &path, bytes.clone(), Some("ingest-1")).await;
        assert_eq!(status, 201, "{stored}");
        let kek = stored["kek"]["key_id"].as_str().unwrap().to_owned();
        assert_eq!(kek, format!("custody-p-{id}-v1"), "the default policy: one KEK per dataset version");
        assert_eq!((stored["kek"]["provider"].as_str(), stored["kek"]["version"].as_u64()), (Some("local"), Some(1)));
        let (status, again) = put(&s, &ds, &path, bytes.clone(), None).await;
        assert_eq!((status, again["created"].as_bool()), (200, Some(false)), "stored once");

        // Reading: whole, a range; viewers read metadata only.
        let (status, headers, got) = get(&s, &ds, &path, &[("custody-run", "train-7")]).await;
        assert_eq!(status, 200);
        assert_eq!(got, bytes);
        assert_eq!(headers["custody-digest"].to_str().unwrap(), sha256(&bytes));
        let (status, headers, part) = get(&s, &ds, &path, &[("range", "bytes=50000-50009")]).await;
        assert_eq!(status, 206);
        assert_eq!(part, bytes[50_000..50_010]);
        assert_eq!(headers["content-range"].to_str().unwrap(), "bytes 50000-50009/100000");
        assert_eq!(get(&s, &viewer, &path, &[]).await.0, 403);
        assert_eq!(get(&s, &ds, &path, &[("range", "bytes=9-3")]).await.0, 400);

        // The ledger: which key protected this dataset during run train-7.
        let q = format!("/api/v1/projects/p/key-uses?dataset={id}&run=train-7");
        let uses = s.get(&auditor, &q).await;
        assert_eq!(uses.status, 200, "{:?}", uses.body);
        let uses = uses.body.as_array().unwrap().clone();
        assert_eq!(uses.len(), 1, "{uses:?}");
        assert_eq!(uses[0]["operation"], "unwrap");
        assert_eq!(uses[0]["key_id"], kek.as_str());
        assert_eq!(uses[0]["key_version"], 1);
        assert_eq!(uses[0]["principal"], "dora");
        assert_eq!(uses[0]["dataset_version"], "v1");
        assert_eq!(uses[0]["region"], "eu-west-1");
        let all = s.get(&auditor, &format!("/api/v1/projects/p/key-uses?dataset={id}")).await.body;
        let ops: Vec<_> = all.as_array().unwrap().iter().map(|u| u["operation"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ops, ["wrap", "unwrap", "unwrap"], "one wrap (the second put wrote nothing), two reads");
        assert_eq!(s.get(&ds, "/api/v1/projects/p/key-uses").await.status, 403);
        assert_eq!(s.get(&auditor, "/api/v1/projects/p/key-uses?operation=burn").await.status, 400);

        // Crypto-shredding: admins, with a ticket; afterwards the data is gone for good.
        let shred = format!("{path}/shred");
        assert_eq!(s.post(&ds, &shred, json!({ "reason": "erasure request" })).await.status, 403);
        assert_eq!(s.post(&admin, &shred, json!({ "reason": "erasure request" })).await.status, 403, "no ticket");
        let resp = s
            .http
            .post(format!("{}{shred}", s.url))
            .bearer_auth(&admin)
            .header("custody-ticket", "DSAR-77")
            .json(&json!({ "reason": "erasure request" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let report: Value = resp.json().await.unwrap();
        assert_eq!(report["receipts"][0]["key_id"], kek.as_str());
        assert_eq!(report["blobs"], 1);
        let (status, _, body) = get(&s, &ds, &path, &[]).await;
        assert_eq!(status, 410, "{}", String::from_utf8_lossy(&body));
        let destroyed = s.get(&auditor, "/api/v1/projects/p/key-uses?operation=destroy").await.body;
        assert_eq!(destroyed.as_array().unwrap().len(), 1);
        assert_eq!(destroyed[0]["principal"], "ada");

        // The audit log holds the shred with its receipt.
        let events = s.audit().await;
        let shredded =
            events.iter().find(|e| e["action"] == "dataset.data.shred" && e["outcome"] == "success").unwrap();
        assert_eq!(shredded["details"]["receipts"][0]["key_id"], kek.as_str());
        assert_eq!(shredded["details"]["reason"], "erasure request");
        s
    })
    .await;
}

#[tokio::test]
async fn a_shared_kek_is_not_shredded_for_one_version() {
    for db in custody_store::testing::all().await {
        let s = TestServer::start_with(db, |c| c.keys.kek = "shared-{project}".into()).await;
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        let admin = s.token("ada", "p", "admin").await;
        let (_, a) = version_with(&s, &ds, "a", "v1", &content(10)).await;
        let (_, b) = version_with(&s, &ds, "b", "v1", &content(20)).await;
        assert_eq!(put(&s, &ds, &a, content(10), None).await.0, 201);
        assert_eq!(put(&s, &ds, &b, content(20), None).await.0, 201);
        let resp = s
            .http
            .post(format!("{}{a}/shred", s.url))
            .bearer_auth(&admin)
            .header("custody-ticket", "DSAR-1")
            .json(&json!({ "reason": "erasure" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 409);
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("also protects other data"), "{body}");
        assert_eq!(get(&s, &ds, &b, &[]).await.2, content(20), "nothing was destroyed");
        s.stop().await;
    }
}

#[tokio::test]
async fn rotation_and_a_background_rewrap_keep_data_readable() {
    each_backend(|s| async move {
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        let admin = s.token("ada", "p", "admin").await;
        let auditor = s.token("aud", "p", "auditor").await;
        let (id, a) = version_with(&s, &ds, "a", "v1", &content(70_000)).await;
        let (_, b) = version_with(&s, &ds, "b", "v1", &content(30)).await;
        let (_, stored) = put(&s, &ds, &a, content(70_000), None).await;
        assert_eq!(put(&s, &ds, &b, content(30), None).await.0, 201);
        let kek = stored["kek"]["key_id"].as_str().unwrap().to_owned();

        let rotate = format!("/api/v1/keys/{kek}/rotate");
        assert_eq!(s.post(&admin, &rotate, json!({})).await.status, 403, "platform-wide: global admins only");
        let rotated = s.post(&s.admin, &rotate, json!({})).await;
        assert_eq!((rotated.status.as_u16(), rotated.body["current"].as_u64()), (200, Some(2)), "{:?}", rotated.body);
        assert_eq!(s.post(&s.admin, "/api/v1/keys/nope/rotate", json!({})).await.status, 404);

        for expected in [1, 0] {
            let started = s.post(&s.admin, "/api/v1/keys/rewrap", json!({})).await;
            assert_eq!(started.status, 202, "{:?}", started.body);
            let mut status = json!(null);
            for _ in 0..200 {
                status = s.get(&s.admin, "/api/v1/keys/rewrap").await.body;
                if status["state"] != "running" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            assert_eq!(status["state"], "finished", "{status}");
            assert_eq!((status["blobs"].as_u64(), status["scanned"].as_u64()), (Some(2), Some(2)), "{status}");
            assert_eq!(status["rewrapped"].as_u64(), Some(expected), "a second run finds everything current: {status}");
            assert_eq!(status["failed"].as_u64(), Some(0), "{status}");
        }
        assert_eq!(get(&s, &ds, &a, &[]).await.2, content(70_000), "the data still reads, now under v2");
        let uses = s.get(&auditor, &format!("/api/v1/projects/p/key-uses?dataset={id}&operation=rewrap")).await.body;
        assert_eq!(uses.as_array().unwrap().len(), 1, "{uses}");
        assert_eq!((uses[0]["key_id"].as_str(), uses[0]["key_version"].as_u64()), (Some(kek.as_str()), Some(2)));
        s
    })
    .await;
}
