//! The model registry through the API: versions bound to a trusted signature, promotions the
//! policies gate on distinct approvals, the lineage gate of the risk tier, the immutable
//! stage history, deployments of the approved digest only.

use crate::common::*;
use custody_provenance::slsa::{TrainingRun, sign_provenance};
use custody_provenance::{HashAlgorithm, KeyAlgorithm, Serialization, SigningKey, Silent, StatementSigner, Subject};
use serde_json::{Value, json};

pub fn signed_model(key: &SigningKey, content: &[u8]) -> (tempfile::TempDir, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("weights.bin"), content).unwrap();
    std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
    let s = Serialization::files(HashAlgorithm::Sha256);
    let (manifest, bundle) = custody_provenance::sign_model(dir.path(), &s, key, &Silent).unwrap();
    let root = hex::encode(manifest.root_digest());
    (dir, serde_json::from_str(&bundle.to_json()).unwrap(), root)
}

fn provenance(key: &SigningKey, root: &str, dataset_digest: &str) -> Value {
    let run = TrainingRun {
        job: "train".into(),
        run_id: "run-7".into(),
        datasets: vec![("custody://p/datasets/cards/versions/v1".into(), dataset_digest.into())],
        code: Some(("git+https://example.com/fraud".into(), "a".repeat(40))),
        builder_id: "https://ci.example.com/runner".into(),
        ..TrainingRun::default()
    };
    let subject = Subject { name: "fraud".into(), digest: [("sha256".to_owned(), root.to_owned())].into() };
    let bundle = sign_provenance(vec![subject], &run.provenance(), key).unwrap();
    serde_json::from_str(&bundle.to_json()).unwrap()
}

#[tokio::test]
async fn versions_promotions_history_and_deployments() {
    each_backend(|s| async move {
        s.project("p").await;
        let admin = s.token("ada", "p", "admin").await;
        let eng = s.token("eve", "p", "ml-engineer").await;
        let ap1 = s.token("al", "p", "approver").await;
        let ap2 = s.token("bo", "p", "approver").await;
        let viewer = s.token("vi", "p", "viewer").await;
        let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let (stranger, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();

        // Only admins decide which keys sign.
        let signer = json!({ "name": "ci", "public_key": key.public_key().to_pem() });
        assert_eq!(s.post(&eng, "/api/v1/projects/p/signers", signer.clone()).await.status, 403);
        let a = s.post(&admin, "/api/v1/projects/p/signers", signer).await;
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(a.body["hint"], key.public_key().hint());
        let bad = s.post(&admin, "/api/v1/projects/p/signers", json!({ "name": "x", "public_key": "junk" })).await;
        assert_eq!(bad.status, 400);

        let m = s.post(&eng, "/api/v1/projects/p/models", json!({ "name": "fraud", "risk_tier": "high" })).await;
        assert_eq!(m.status, 201, "{}", m.body);
        let id = m.body["id"].as_str().unwrap().to_owned();

        // A version signed by an untrusted key is refused; a trusted one is bound to its root.
        let (_d1, untrusted, _) = signed_model(&stranger, b"weights");
        let r = s.post(&eng, &format!("/api/v1/models/{id}/versions"), json!({ "version": "v1", "signature": untrusted })).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("does not trust"), "{}", r.body);

        // The training data: registered and digested, so the provenance traces fully.
        let d = s.dataset(&admin, "p", "cards", "internal").await;
        let ds_digest = "ab".repeat(32);
        let v = json!({ "label": "v1", "digest": format!("sha256:{ds_digest}"), "size_bytes": 10 });
        assert_eq!(s.post(&admin, &format!("/api/v1/datasets/{}/versions", d["id"].as_str().unwrap()), v).await.status, 201);

        let (_d2, bundle, root) = signed_model(&key, b"weights");
        let body = json!({ "version": "v1", "signature": bundle.clone(), "provenance": provenance(&key, &root, &ds_digest),
                           "components": [{ "kind": "tokenizer", "name": "bpe", "digest": format!("sha256:{}", "cd".repeat(32)) }] });
        let r = s.post(&eng, &format!("/api/v1/models/{id}/versions"), body.clone()).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["root_digest"], format!("sha256:{root}"));
        assert_eq!(r.body["stage"], "development");
        assert!(r.body["provenance"]["datasets"][0]["dataset_version"].is_string(), "{}", r.body);
        // Never overwritten.
        assert_eq!(s.post(&eng, &format!("/api/v1/models/{id}/versions"), body).await.status, 409);

        // A version without provenance cannot leave development at high risk.
        let (_d3, bare, v2_root) = signed_model(&key, b"other weights");
        let r = s.post(&eng, &format!("/api/v1/models/{id}/versions"), json!({ "version": "v2", "signature": bare })).await;
        assert_eq!(r.status, 201);
        let r = s
            .call(Some(&eng), reqwest::Method::POST, &format!("/api/v1/models/{id}/versions/v2/promotions"),
                  Some(json!({ "to": "staging", "reason": "eval passed" })))
            .await;
        assert_eq!(r.status, 403, "high risk needs a ticket: {}", r.body);

        // With a ticket: the promotion waits for an approval.
        let promote = |label: &str, to: &str| {
            let url = format!("{}/api/v1/models/{id}/versions/{label}/promotions", s.url);
            s.http.post(url).bearer_auth(&eng).header("custody-ticket", "CHG-1").json(&json!({ "to": to, "reason": "eval passed" }))
        };
        // Both versions scanned clean, so only the lineage gate stands in v2's way.
        for (label, digest) in [("v1", root.clone()), ("v2", v2_root.clone())] {
            let r = s.post(&eng, &format!("/api/v1/models/{id}/versions/{label}/scans"),
                           crate::scans::scan(&digest, "clean", &[("config.json", "clean"), ("weights.bin", "clean")])).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
        let r = promote("v2", "staging").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 409, "lineage gate");
        let r = promote("v1", "staging").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], "pending");
        let pid = p["id"].as_str().unwrap().to_owned();

        // The requester cannot approve; an engineer cannot; an approver can, and one suffices for staging.
        assert_eq!(s.post(&eng, &format!("/api/v1/promotions/{pid}/approvals"), json!({ "comment": "ok" })).await.status, 403);
        let r = s.post(&ap1, &format!("/api/v1/promotions/{pid}/approvals"), json!({ "comment": "metrics reviewed" })).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], "completed");
        assert_eq!(s.get(&viewer, &format!("/api/v1/models/{id}/versions/v1")).await.body["stage"], "staging");

        // Production at high risk needs two distinct approvers.
        let r = promote("v1", "production").send().await.unwrap();
        let p: Value = r.json().await.unwrap();
        let pid = p["id"].as_str().unwrap().to_owned();
        let r = s.post(&ap1, &format!("/api/v1/promotions/{pid}/approvals"), json!({ "comment": "yes" })).await;
        assert_eq!(r.body["status"], "pending", "{}", r.body);
        assert_eq!(s.post(&ap1, &format!("/api/v1/promotions/{pid}/approvals"), json!({ "comment": "again" })).await.status, 409);
        let r = s.post(&ap2, &format!("/api/v1/promotions/{pid}/approvals"), json!({ "comment": "yes" })).await;
        assert_eq!(r.body["status"], "completed", "{}", r.body);

        let h = s.get(&viewer, &format!("/api/v1/models/{id}/versions/v1/history")).await;
        let moves: Vec<(String, String)> = h.body.as_array().unwrap().iter()
            .map(|c| (c["from"].as_str().unwrap().to_owned(), c["to"].as_str().unwrap().to_owned())).collect();
        assert_eq!(moves, [("development".into(), "staging".into()), ("staging".into(), "production".into())]);
        assert_eq!(h.body[1]["approvers"], json!(["al", "bo"]));

        // Deployments: only the approved digest.
        let dep = |digest: &str| json!({ "environment": "prod-eu", "endpoint": "https://infer.example.com/fraud",
            "region": "eu-west-1", "running_digest": digest, "attestation": { "accelerator": "cpu", "runtime_libraries": { "torch": "2.5.1" } } });
        let r = s.post(&eng, &format!("/api/v1/models/{id}/versions/v1/deployments"), dep(&format!("sha256:{}", "00".repeat(32)))).await;
        assert_eq!(r.status, 409, "{}", r.body);
        let r = s.post(&eng, &format!("/api/v1/models/{id}/versions/v1/deployments"), dep(&format!("sha256:{root}"))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let r = s.post(&eng, &format!("/api/v1/models/{id}/versions/v2/deployments"), dep(&format!("sha256:{root}"))).await;
        assert_eq!(r.status, 409, "development versions are not deployed");
        assert_eq!(s.get(&viewer, &format!("/api/v1/models/{id}/deployments")).await.body.as_array().unwrap().len(), 1);

        // The registry is in the lineage graph: the training data reaches the model version and
        // its live deployment, and the version's inputs are traced to the registered digest.
        let q = "namespace=custody://p&name=cards&version=v1";
        let impact = s.get(&viewer, &format!("/api/v1/projects/p/lineage/impact?{q}")).await;
        assert_eq!(impact.status, 200, "{}", impact.body);
        let text = impact.body.to_string();
        assert!(text.contains("models/fraud") && text.contains("deployments/fraud/prod-eu"), "{text}");
        assert_eq!(impact.body["live_deployments"].as_array().map(Vec::len), Some(1), "{}", impact.body);
        let t = s.get(&viewer, "/api/v1/projects/p/lineage/training?namespace=custody://p&name=models/fraud&version=v1").await;
        assert_eq!(t.status, 200, "{}", t.body);
        assert!(t.body.to_string().contains(&ds_digest), "{}", t.body);
        let k = s.get(&viewer, "/api/v1/projects/p/lineage/completeness").await.body;
        assert!(k["fully_traced"].as_u64().unwrap() >= 1, "{k}");

        // The signature is served for offline verification.
        let sig = s.get(&viewer, &format!("/api/v1/models/{id}/versions/v1/signature")).await;
        assert_eq!(sig.body, bundle);

        // The approval is provable offline by whoever may read the model (a viewer cannot read
        // the audit log itself): its record, an inclusion proof, the signed checkpoint.
        assert_eq!(s.get(&viewer, "/api/v1/audit/checkpoint").await.status, 403);
        let proof = s.get(&viewer, &format!("/api/v1/models/{id}/versions/v1/approval-proof?stage=production")).await;
        assert_eq!(proof.status, 200, "{}", proof.body);
        let record = &proof.body["record"];
        assert_eq!(record["action"], "model.promotion.complete");
        assert_eq!(record["details"]["to"], "production");
        assert_eq!(record["details"]["root_digest"], format!("sha256:{root}"));
        assert_eq!(record["details"]["signer_hint"], key.public_key().hint());
        assert_eq!(record["details"]["approvers"], json!(["al", "bo"]));
        let verifier = custody_audit::Verifier::parse(proof.body["log_key"].as_str().unwrap()).unwrap();
        let checkpoint = custody_audit::Checkpoint::open(proof.body["checkpoint"].as_str().unwrap(), &[verifier]).unwrap();
        assert_eq!(checkpoint.size, proof.body["size"].as_u64().unwrap());
        let text = serde_json::to_string(record).unwrap();
        let exported: custody_audit::export::ExportedRecord<'_> = serde_json::from_str(&text).unwrap();
        let leaf = exported.computed_leaf_hash().unwrap();
        let path: Vec<custody_audit::Hash> = proof.body["inclusion_proof"].as_array().unwrap().iter()
            .map(|h| custody_audit::hash_from_slice(&hex::decode(h.as_str().unwrap()).unwrap()).unwrap()).collect();
        custody_audit::verify_inclusion(&leaf, exported.seq, checkpoint.size, &path, &checkpoint.root).unwrap();
        let staging = s.get(&viewer, &format!("/api/v1/models/{id}/versions/v1/approval-proof?stage=staging")).await;
        assert_eq!(staging.body["record"]["details"]["to"], "staging");
        let never = s.get(&viewer, &format!("/api/v1/models/{id}/versions/v2/approval-proof")).await;
        assert_eq!(never.status, 404, "{}", never.body);
        let bad = s.get(&viewer, &format!("/api/v1/models/{id}/versions/v1/approval-proof?stage=prod")).await;
        assert_eq!(bad.status, 400, "{}", bad.body);

        // Every step is in the audit log.
        let actions: Vec<String> = s.audit().await.iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
        for a in ["model.signer.manage", "model.register", "model.version.create", "model.promotion.request",
                  "model.promotion.approve", "model.promotion.complete", "deployment.record"] {
            assert!(actions.iter().any(|x| x == a), "{a} missing from the audit log");
        }
        s
    })
    .await;
}
