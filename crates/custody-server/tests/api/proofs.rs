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
