//! Authorization through the API: roles, restricted grants, regions, approvals, audit.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn roles_restricted_data_and_approvals() {
    each_backend(|s| async move {
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        let viewer = s.token("vic", "p", "viewer").await;
        let approver = s.token("abe", "p", "approver").await;
        let auditor = s.token("aud", "p", "auditor").await;
        let eng = s.token("eng", "p", "ml-engineer").await;
        let eu_only = s
            .token_with("bot", "p", "data-scientist", json!({ "kind": "workload", "allowed_regions": ["us-east-1"] }))
            .await;

        // Registration by role.
        assert_eq!(s.post(&viewer, "/api/v1/projects/p/datasets", dataset_body("v", "public")).await.status, 403);
        assert_eq!(s.post(&approver, "/api/v1/projects/p/datasets", dataset_body("a", "public")).await.status, 403);
        assert_eq!(s.post(&auditor, "/api/v1/projects/p/datasets", dataset_body("b", "public")).await.status, 403);
        assert_eq!(s.post(&eng, "/api/v1/projects/p/datasets", dataset_body("e", "public")).await.status, 201);
        let open = s.dataset(&ds, "p", "open", "internal").await;
        let secret = s.dataset(&ds, "p", "secret", "restricted").await;
        let (open_id, secret_id) = (open["id"].as_str().unwrap(), secret["id"].as_str().unwrap());

        // Reads: every project role reads ordinary data; restricted data needs a grant.
        for t in [&viewer, &approver, &auditor, &eng] {
            assert_eq!(s.get(t, &format!("/api/v1/datasets/{open_id}")).await.status, 200);
            assert_eq!(s.get(t, &format!("/api/v1/datasets/{secret_id}")).await.status, 403);
        }
        assert_eq!(s.get(&ds, &format!("/api/v1/datasets/{secret_id}")).await.status, 200, "the registrant is granted");
        let listed = s.get(&viewer, "/api/v1/projects/p/datasets").await;
        let names: Vec<_> =
            listed.body.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(names, ["e", "open"], "lists hide what the caller may not read");
        assert_eq!(
            s.get(&s.admin, &format!("/api/v1/datasets/{secret_id}")).await.status,
            403,
            "even admins need a grant"
        );
        assert_eq!(
            s.post(&s.admin, &format!("/api/v1/datasets/{secret_id}/grants"), json!({ "principal": "vic" }))
                .await
                .status,
            204
        );
        assert_eq!(s.get(&viewer, &format!("/api/v1/datasets/{secret_id}")).await.status, 200);
        let r = s
            .call(Some(&s.admin), reqwest::Method::DELETE, &format!("/api/v1/datasets/{secret_id}/grants/vic"), None)
            .await;
        assert_eq!(r.status, 204);
        assert_eq!(s.get(&viewer, &format!("/api/v1/datasets/{secret_id}")).await.status, 403);

        // Regions.
        assert_eq!(s.get(&eu_only, &format!("/api/v1/datasets/{open_id}")).await.status, 403);

        // Versions: data scientists yes, viewers no.
        let v = json!({ "label": "v1", "digest": format!("sha256:{}", "11".repeat(32)), "size_bytes": 1 });
        assert_eq!(s.post(&viewer, &format!("/api/v1/datasets/{open_id}/versions"), v.clone()).await.status, 403);
        assert_eq!(s.post(&ds, &format!("/api/v1/datasets/{open_id}/versions"), v).await.status, 201);

        // Classification: the owner raises; lowering needs a ticket and another approver.
        let raise = json!({ "classification": "confidential", "reason": "contains emails" });
        assert_eq!(
            s.post(&viewer, &format!("/api/v1/datasets/{open_id}/classification/raise"), raise.clone()).await.status,
            403
        );
        let raised = s.post(&ds, &format!("/api/v1/datasets/{open_id}/classification/raise"), raise).await;
        assert_eq!(raised.status, 200);
        assert_eq!(raised.body["classification"], "confidential");
        let lower = json!({ "classification": "public", "reason": "anonymised" });
        assert_eq!(
            s.post(&ds, &format!("/api/v1/datasets/{open_id}/classification/lower"), lower.clone()).await.status,
            403
        );
        let mut with_ticket = lower.clone();
        with_ticket["ticket"] = json!("CHG-1");
        let req = s.post(&ds, &format!("/api/v1/datasets/{open_id}/classification/lower"), with_ticket).await;
        assert_eq!(req.status, 202, "{:?}", req.body);
        let approval = req.body["id"].as_str().unwrap().to_owned();
        assert_eq!(s.get(&ds, &format!("/api/v1/datasets/{open_id}")).await.body["classification"], "confidential");
        let decide = |approve: bool| json!({ "approve": approve });
        assert_eq!(
            s.post(&ds, &format!("/api/v1/approvals/{approval}/decision"), decide(true)).await.status,
            403,
            "own request"
        );
        assert_eq!(s.post(&viewer, &format!("/api/v1/approvals/{approval}/decision"), decide(true)).await.status, 403);
        let ok = s.post(&approver, &format!("/api/v1/approvals/{approval}/decision"), decide(true)).await;
        assert_eq!(ok.status, 200, "{:?}", ok.body);
        assert_eq!(ok.body["status"], "approved");
        assert_eq!(s.get(&ds, &format!("/api/v1/datasets/{open_id}")).await.body["classification"], "public");
        assert_eq!(
            s.post(&approver, &format!("/api/v1/approvals/{approval}/decision"), decide(false)).await.status,
            409
        );
        let pending = s.get(&viewer, "/api/v1/projects/p/approvals?status=approved").await;
        assert_eq!(pending.body.as_array().unwrap().len(), 1);

        // Audit: auditors read their project's log, viewers do not, and denials carry the policy hash.
        assert_eq!(s.get(&viewer, "/api/v1/audit?project=p").await.status, 403);
        assert_eq!(s.get(&auditor, "/api/v1/audit").await.status, 403, "the whole log is for platform auditors");
        let log = s.get(&auditor, "/api/v1/audit?project=p&limit=1000").await;
        assert_eq!(log.status, 200);
        let events = log.body.as_array().unwrap();
        let denied: Vec<_> = events.iter().filter(|e| e["decision"] == "deny").collect();
        assert!(denied.len() >= 10, "{}", denied.len());
        assert!(denied.iter().all(|e| e["policy_hash"].as_str().is_some_and(|h| h.len() == 64)));
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        let by_actor = s.get(&auditor, "/api/v1/audit?project=p&actor=vic&action=dataset.read").await;
        assert!(by_actor.body.as_array().unwrap().iter().all(|e| e["actor"] == "vic" && e["action"] == "dataset.read"));
        s
    })
    .await;
}
