//! Scan results through the API: bound to the version's own digest and, for a model, to
//! exactly its signed files; the latest scan gates promotions into staging and production,
//! also when it arrives while a promotion waits for approvals.

use crate::common::*;
use crate::registry::signed_model;
use custody_provenance::{KeyAlgorithm, SigningKey, StatementSigner as _};
use custody_store::testing;
use serde_json::{Value, json};

/// A scan report of `digest` (hex) whose files have the given verdicts; a file that is not
/// clean carries a finding severe enough for its verdict.
pub fn scan(digest: &str, verdict: &str, files: &[(&str, &str)]) -> Value {
    let files: Vec<Value> = files
        .iter()
        .map(|(path, v)| {
            let findings = match *v {
                "malicious" => json!([{ "rule": "pickle.dangerous-import", "severity": "critical",
                                        "message": "imports `os.system`", "location": "byte 2" }]),
                "suspicious" => {
                    json!([{ "rule": "pickle.unknown-import", "severity": "medium", "message": "imports `x.y`" }])
                }
                _ => json!([{ "rule": "safetensors.info", "severity": "info", "message": "2 tensors" }]),
            };
            json!({ "path": path, "format": "pickle", "verdict": v, "findings": findings })
        })
        .collect();
    json!({ "tool": "custody-scan", "tool_version": "0.1.0", "rules_version": "2026.12.1",
            "scanned_digest": format!("sha256:{digest}"), "verdict": verdict, "files": files })
}

const BOTH: &[(&str, &str)] = &[("config.json", "clean"), ("weights.bin", "clean")];

/// Model `churn` (low risk) with version v1 signed by a key the project trusts: its id, the
/// version's root digest (hex), and the model's directory.
async fn churn_v1(s: &TestServer, admin: &str, eng: &str) -> (String, String, tempfile::TempDir) {
    let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let signer = json!({ "name": "ci", "public_key": key.public_key().to_pem() });
    assert_eq!(s.post(admin, "/api/v1/projects/p/signers", signer).await.status, 201);
    let m = s.post(eng, "/api/v1/projects/p/models", json!({ "name": "churn", "risk_tier": "low" })).await;
    let id = m.body["id"].as_str().unwrap().to_owned();
    let (dir, bundle, root) = signed_model(&key, b"weights");
    let r =
        s.post(eng, &format!("/api/v1/models/{id}/versions"), json!({ "version": "v1", "signature": bundle })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (id, root, dir)
}

#[tokio::test]
async fn scans_bind_to_the_signed_files_and_gate_promotions() {
    each_backend(|s| async move {
        s.project("p").await;
        let admin = s.token("ada", "p", "admin").await;
        let eng = s.token("eve", "p", "ml-engineer").await;
        let sci = s.token("sam", "p", "data-scientist").await;
        let ap1 = s.token("al", "p", "approver").await;
        let ap2 = s.token("bo", "p", "approver").await;
        let viewer = s.token("vi", "p", "viewer").await;
        let (id, root, _dir) = churn_v1(&s, &admin, &eng).await;
        let scans = format!("/api/v1/models/{id}/versions/v1/scans");

        // Who may attach, and what is refused.
        assert_eq!(s.post(&viewer, &scans, scan(&root, "clean", BOTH)).await.status, 403);
        assert_eq!(s.post(&sci, &scans, scan(&root, "clean", BOTH)).await.status, 403);
        let r = s.post(&eng, &scans, scan(&"00".repeat(32), "clean", BOTH)).await;
        assert_eq!((r.status.as_u16(), r.body["error"]["field"].as_str()), (422, Some("scanned_digest")), "{}", r.body);
        let r = s.post(&eng, &scans, scan(&root, "clean", &[("weights.bin", "clean")])).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("leaves out signed files: config.json"),
            "{}",
            r.body
        );
        let r = s.post(&eng, &scans, scan(&root, "clean", &[BOTH[0], BOTH[1], ("extra.pkl", "clean")])).await;
        assert!(r.body["error"]["message"].as_str().unwrap().contains("extra.pkl"), "{}", r.body);
        let r =
            s.post(&eng, &scans, scan(&root, "clean", &[("config.json", "clean"), ("weights.bin", "malicious")])).await;
        assert_eq!(r.status, 400, "a clean verdict over a malicious file: {}", r.body);
        let mut lying = scan(&root, "clean", BOTH);
        lying["files"][1]["verdict"] = json!("clean");
        lying["files"][1]["findings"] = json!([{ "rule": "r", "severity": "high", "message": "m" }]);
        let r = s.post(&eng, &scans, lying).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("files[1]: findings[0]"), "{}", r.body);
        let mut unknown = scan(&root, "clean", BOTH);
        unknown["signed_off_by"] = json!("me");
        assert_eq!(s.post(&eng, &scans, unknown).await.status, 400);
        assert_eq!(s.get(&viewer, &scans).await.body, json!([]), "nothing refused was stored");

        // No scan, then a malicious one: the request is refused.
        let promotions = format!("/api/v1/models/{id}/versions/v1/promotions");
        let promote = || s.post(&eng, &promotions, json!({ "to": "staging", "reason": "eval" }));
        let r = promote().await;
        assert_eq!((r.status.as_u16(), r.body["error"]["field"].as_str()), (409, Some("scan")), "{}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("no scan"), "{}", r.body);
        let bad = scan(&root, "malicious", &[("config.json", "clean"), ("weights.bin", "malicious")]);
        let r = s.post(&eng, &scans, bad.clone()).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(
            (r.body["verdict"].as_str(), r.body["max_severity"].as_str()),
            (Some("malicious"), Some("critical"))
        );
        let r = promote().await;
        assert!(r.body["error"]["message"].as_str().unwrap().contains("malicious"), "{}", r.body);

        // Clean now: the request waits for approval. A malicious scan arriving meanwhile stops
        // the completion; a clean one after it lets the next approval complete it.
        let clean = s.post(&eng, &scans, scan(&root, "clean", BOTH)).await;
        assert_eq!(clean.status, 201, "{}", clean.body);
        let listed = s.get(&viewer, &scans).await.body;
        assert_eq!(listed.as_array().unwrap().len(), 2);
        assert_eq!(listed[0]["id"], clean.body["id"], "newest first");
        let r = promote().await;
        assert_eq!(r.status, 201, "{}", r.body);
        let pid = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(s.post(&eng, &scans, bad).await.status, 201);
        let r = s.post(&ap1, &format!("/api/v1/promotions/{pid}/approvals"), json!({ "comment": "ok" })).await;
        assert_eq!((r.status.as_u16(), r.body["error"]["field"].as_str()), (409, Some("scan")), "{}", r.body);
        assert_eq!(s.get(&viewer, &format!("/api/v1/models/{id}/versions/v1")).await.body["stage"], "development");
        let rescanned = s.post(&eng, &scans, scan(&root, "clean", BOTH)).await;
        let r = s.post(&ap2, &format!("/api/v1/promotions/{pid}/approvals"), json!({ "comment": "rescanned" })).await;
        assert_eq!(r.body["status"], "completed", "{}", r.body);

        // The approval's record names the scan it rested on; every attach is audited.
        let audit = s.audit().await;
        let done =
            audit.iter().find(|e| e["action"] == "model.promotion.complete" && e["outcome"] == "success").unwrap();
        assert_eq!(done["details"]["scan"], rescanned.body["id"]);
        let attached = audit.iter().filter(|e| e["action"] == "model.scan.attach").collect::<Vec<_>>();
        assert!(attached.iter().any(|e| e["outcome"] == "success" && e["details"]["verdict"] == "malicious"));
        assert!(attached.iter().any(|e| e["decision"] == "deny"), "the viewer's attempt is recorded");
        s
    })
    .await;
}

#[tokio::test]
async fn dataset_versions_take_a_scan_of_their_own_content() {
    each_backend(|s| async move {
        s.project("p").await;
        let admin = s.token("ada", "p", "admin").await;
        let sci = s.token("sam", "p", "data-scientist").await;
        let viewer = s.token("vi", "p", "viewer").await;
        let d = s.dataset(&admin, "p", "notes", "internal").await;
        let did = d["id"].as_str().unwrap();
        let digest = "ab".repeat(32);
        let v = json!({ "label": "v1", "digest": format!("sha256:{digest}"), "size_bytes": 10 });
        assert_eq!(s.post(&admin, &format!("/api/v1/datasets/{did}/versions"), v).await.status, 201);
        let scans = format!("/api/v1/datasets/{did}/versions/v1/scans");
        let one = &[("notes.ipynb", "malicious")];
        assert_eq!(s.post(&viewer, &scans, scan(&digest, "malicious", one)).await.status, 403);
        assert_eq!(s.post(&sci, &scans, scan(&"cd".repeat(32), "malicious", one)).await.status, 422);
        let two = &[("a.ipynb", "clean"), ("b.ipynb", "clean")];
        assert_eq!(s.post(&sci, &scans, scan(&digest, "clean", two)).await.status, 422);
        let r =
            s.post(&sci, &format!("/api/v1/datasets/{did}/versions/v9/scans"), scan(&digest, "malicious", one)).await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = s.post(&sci, &scans, scan(&digest, "malicious", one)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["subject"]["kind"], "dataset_version");
        let listed = s.get(&viewer, &scans).await;
        assert_eq!(listed.body[0]["files"][0]["findings"][0]["message"], "imports `os.system`");

        // Restricted data: even an admin needs the grant to attach.
        let r = s.dataset(&s.admin, "p", "patients", "restricted").await;
        let rid = r["id"].as_str().unwrap();
        let g = s.post(&s.admin, &format!("/api/v1/datasets/{rid}/grants"), json!({ "principal": "sam" })).await;
        assert!(g.status.is_success(), "{}", g.body);
        let v = json!({ "label": "v1", "digest": format!("sha256:{digest}"), "size_bytes": 10 });
        assert_eq!(s.post(&sci, &format!("/api/v1/datasets/{rid}/versions"), v).await.status, 201);
        let rscans = format!("/api/v1/datasets/{rid}/versions/v1/scans");
        assert_eq!(s.post(&admin, &rscans, scan(&digest, "clean", &[("p.csv", "clean")])).await.status, 403);
        assert_eq!(s.post(&sci, &rscans, scan(&digest, "clean", &[("p.csv", "clean")])).await.status, 201);
        s
    })
    .await;
}

#[tokio::test]
async fn the_scan_gate_can_be_turned_off() {
    for db in testing::all().await {
        let s = TestServer::start_with(db, |c| c.registry.require_clean_scan = false).await;
        s.project("p").await;
        let admin = s.token("ada", "p", "admin").await;
        let eng = s.token("eve", "p", "ml-engineer").await;
        let (id, _, _dir) = churn_v1(&s, &admin, &eng).await;
        let r = s
            .post(
                &eng,
                &format!("/api/v1/models/{id}/versions/v1/promotions"),
                json!({ "to": "staging", "reason": "eval" }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        s.stop().await;
    }
}
