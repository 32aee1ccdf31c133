//! Merkle root and proofs over the API, checked with the offline verifiers.

use crate::common::*;

fn hash(v: &serde_json::Value) -> custody_audit::Hash {
    custody_audit::hash_from_slice(&hex::decode(v.as_str().unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_verify() {
    each_backend(|s| async move {
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        for i in 0..7 {
            s.dataset(&ds, "p", &format!("d{i}"), "internal").await;
        }
        let events = s.audit().await;
        let first = s.get(&s.admin, "/api/v1/audit/root").await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let size = first.body["size"].as_u64().unwrap();
        assert!(size as usize >= events.len());
        for e in events.iter().take(12) {
            let seq = e["seq"].as_u64().unwrap();
            let a = s.get(&s.admin, &format!("/api/v1/audit/proofs/inclusion?seq={seq}&size={size}")).await;
            assert_eq!(a.status, 200, "{:?}", a.body);
            assert_eq!(a.body["leaf_hash"], e["leaf_hash"], "the proof is about the record as served");
            let proof: Vec<_> = a.body["proof"].as_array().unwrap().iter().map(hash).collect();
            custody_audit::verify_inclusion(&hash(&e["leaf_hash"]), seq, size, &proof, &hash(&first.body["root"]))
                .unwrap();
            let mut tampered = hash(&e["leaf_hash"]);
            tampered[0] ^= 1;
            assert!(custody_audit::verify_inclusion(&tampered, seq, size, &proof, &hash(&first.body["root"])).is_err());
        }
        // The log grew (every read is recorded); the old root is a prefix of the new one.
        let later = s.get(&s.admin, "/api/v1/audit/root").await;
        let new_size = later.body["size"].as_u64().unwrap();
        assert!(new_size > size);
        for from in [1, size / 2, size] {
            let a = s.get(&s.admin, &format!("/api/v1/audit/proofs/consistency?from={from}&to={new_size}")).await;
            assert_eq!(a.status, 200, "{:?}", a.body);
            let proof: Vec<_> = a.body["proof"].as_array().unwrap().iter().map(hash).collect();
            custody_audit::verify_consistency(
                from,
                new_size,
                &hash(&a.body["from_root"]),
                &hash(&a.body["to_root"]),
                &proof,
            )
            .unwrap();
            if from == size {
                assert_eq!(a.body["from_root"], first.body["root"]);
            }
        }
        for bad in [
            "/api/v1/audit/proofs/inclusion?seq=999999",
            "/api/v1/audit/proofs/inclusion?seq=x",
            "/api/v1/audit/proofs/consistency?from=0",
            "/api/v1/audit/proofs/consistency?from=5&to=2",
        ] {
            assert_eq!(s.get(&s.admin, bad).await.status, 400, "{bad}");
        }
        let project_auditor = s.token("aud", "p", "auditor").await;
        assert_eq!(
            s.get(&project_auditor, "/api/v1/audit/root").await.status,
            403,
            "the whole log is for platform auditors"
        );
        let platform_auditor = s.token("pa", "*", "auditor").await;
        assert_eq!(s.get(&platform_auditor, "/api/v1/audit/root").await.status, 200);
        s
    })
    .await;
}

#[tokio::test]
async fn the_auditors_question_is_one_query_with_proofs_and_the_log_is_signed() {
    each_backend(|s| async move {
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        let secret = s.dataset(&ds, "p", "secret", "restricted").await;
        let open = s.dataset(&ds, "p", "open", "internal").await;
        let id = secret["id"].as_str().unwrap();
        for _ in 0..3 {
            assert_eq!(s.get(&ds, &format!("/api/v1/datasets/{id}")).await.status, 200);
        }
        assert_eq!(s.get(&ds, &format!("/api/v1/datasets/{}", open["id"].as_str().unwrap())).await.status, 200);
        let viewer = s.token("vic", "p", "viewer").await;
        assert_eq!(s.get(&viewer, &format!("/api/v1/datasets/{id}")).await.status, 403);
        let today = time::OffsetDateTime::now_utc().date();
        let q = format!(
            "/api/v1/audit?resource=dataset:{id}&action=dataset.read&since={today}&until={}&with_proofs=true",
            today.next_day().unwrap()
        );
        let a = s.get(&s.admin, &q).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let entries = a.body.as_array().unwrap();
        assert_eq!(entries.len(), 4, "three reads and one refusal of that dataset: {entries:?}");
        let outcomes: Vec<&str> = entries.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["success", "success", "success", "denied"]);
        let key = s.get(&s.admin, "/api/v1/audit/key").await.body;
        let key = custody_audit::Verifier::parse(key["verifier_key"].as_str().unwrap()).unwrap();
        for e in entries {
            let seq = e["seq"].as_u64().unwrap();
            let inc = &e["inclusion"];
            let size = inc["size"].as_u64().unwrap();
            let proof: Vec<_> = inc["proof"].as_array().unwrap().iter().map(hash).collect();
            custody_audit::verify_inclusion(&hash(&e["leaf_hash"]), seq, size, &proof, &hash(&inc["root"])).unwrap();
            // The root is one the log signed.
            let cps = s.get(&s.admin, &format!("/api/v1/audit/checkpoints?from_size={size}&limit=1")).await.body;
            let signed =
                custody_audit::Checkpoint::open(cps[0]["note"].as_str().unwrap(), std::slice::from_ref(&key)).unwrap();
            assert_eq!((signed.size, signed.root), (size, hash(&inc["root"])));
        }
        let denied = s.get(&s.admin, "/api/v1/audit?outcome=denied&region=eu-west-1&resource_kind=dataset").await;
        assert_eq!(denied.body.as_array().unwrap().len(), 1, "{:?}", denied.body);
        let none = s.get(&s.admin, &format!("/api/v1/audit?resource_kind=dataset&until={today}")).await;
        assert_eq!(none.body.as_array().unwrap().len(), 0, "nothing happened before today");
        for bad in ["/api/v1/audit?since=yesterday", "/api/v1/audit?outcome=maybe", "/api/v1/audit?with_proofs=perhaps"]
        {
            assert_eq!(s.get(&s.admin, bad).await.status, 400, "{bad}");
        }
        let latest = s.get(&s.admin, "/api/v1/audit/checkpoint").await;
        assert_eq!(latest.status, 200);
        custody_audit::Checkpoint::open(latest.body["note"].as_str().unwrap(), &[key]).unwrap();
        let frontier = s.get(&s.admin, "/api/v1/audit/frontier?size=5").await;
        assert_eq!(frontier.body["nodes"].as_array().unwrap().len(), 2, "5 = 4 + 1");
        assert_eq!(s.get(&s.admin, "/api/v1/audit/frontier?size=999999").await.status, 400);
        let export = s.get(&s.admin, "/api/v1/audit/export?from=2&to=99999999").await;
        assert_eq!(export.status, 400);
        s
    })
    .await;
}
