//! Authentication with API tokens: valid, expired, revoked, wrong project, malformed.

use crate::common::*;
use custody_core::*;
use serde_json::json;

async fn store_token(s: &TestServer, expires_at: Option<Timestamp>) -> String {
    let issued = custody_server::auth::issue_token().unwrap();
    let store = &s.server.as_ref().unwrap().store;
    let draft = AuditDraft {
        actor: "test".into(),
        action: Action::TokenCreate,
        resource: ResourceRef::new("token", issued.id),
        project: None,
        region: None,
        decision: Decision::Allow,
        policy_hash: "test".into(),
        request_id: RequestId::new(),
        outcome: Outcome::Success,
        details: json!({}),
    };
    let new = custody_store::NewToken {
        id: issued.id,
        name: "t".into(),
        principal: "temp".into(),
        kind: PrincipalKind::User,
        grant: Grant { scope: ProjectScope::parse("p1").unwrap(), role: Role::Viewer },
        secret_hash: issued.secret_hash.clone(),
        allowed_regions: None,
        expires_at,
        created_by: "test".into(),
    };
    store.create_token(draft, new).await.unwrap();
    issued.token
}

#[tokio::test]
async fn api_tokens() {
    each_backend(|s| async move {
        s.project("p1").await;
        s.project("p2").await;
        let viewer = s.token("vera", "p1", "viewer").await;

        let me = s.get(&viewer, "/api/v1/whoami").await;
        assert_eq!(me.status, 200);
        assert_eq!(me.body["id"], "vera");

        // Wrong project: authenticated, but the policies deny.
        assert_eq!(s.get(&viewer, "/api/v1/projects/p1").await.status, 200);
        let other = s.get(&viewer, "/api/v1/projects/p2").await;
        assert_eq!(other.status, 403, "{:?}", other.body);
        assert_eq!(other.body["error"]["code"], "forbidden");

        // Expired.
        let expired = store_token(&s, Some(now() - time::Duration::seconds(1))).await;
        let a = s.get(&expired, "/api/v1/whoami").await;
        assert_eq!(a.status, 401);
        assert!(a.body["error"]["message"].as_str().unwrap().contains("expired"));
        let later = store_token(&s, Some(now() + time::Duration::hours(1))).await;
        assert_eq!(s.get(&later, "/api/v1/whoami").await.status, 200);

        // Tampered secret: same id, different secret.
        let mut tampered = viewer.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let a = s.get(&tampered, "/api/v1/whoami").await;
        assert_eq!(a.status, 401);
        assert!(!a.body.to_string().contains(&tampered), "the credential is never echoed");

        // Malformed.
        for bad in ["", "cust_", "Basic dXNlcjpwdw==", "cust_zz", "x.y.z"] {
            let a = s.get(bad, "/api/v1/whoami").await;
            assert_eq!(a.status, 401, "{bad}");
        }
        let raw = s
            .http
            .get(format!("{}/api/v1/whoami", s.url))
            .header("authorization", format!("Basic {viewer}"))
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 401);
        assert_eq!(raw.headers()["www-authenticate"], "Bearer");

        // Revoked: takes effect on the next request.
        let list = s.get(&s.admin, "/api/v1/tokens?project=p1").await;
        let id = list.body.as_array().unwrap().iter().find(|t| t["principal"] == "vera").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(list.body.to_string().find("secret").is_none(), "listing never returns secrets");
        let r = s.call(Some(&s.admin), reqwest::Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let a = s.get(&viewer, "/api/v1/whoami").await;
        assert_eq!(a.status, 401);
        assert!(a.body["error"]["message"].as_str().unwrap().contains("revoked"));
        s
    })
    .await;
}

#[tokio::test]
async fn token_issuance_is_authorized() {
    each_backend(|s| async move {
        s.project("p1").await;
        s.project("p2").await;
        let admin1 = s.token("pat", "p1", "admin").await;
        let body = |project: &str| json!({ "name": "x", "principal": "x", "kind": "workload", "project": project, "role": "viewer" });
        assert_eq!(s.post(&admin1, "/api/v1/tokens", body("p1")).await.status, 201);
        assert_eq!(s.post(&admin1, "/api/v1/tokens", body("p2")).await.status, 403, "a project admin issues only for its project");
        assert_eq!(s.post(&admin1, "/api/v1/tokens", body("*")).await.status, 403, "only platform admins issue global tokens");
        let ds = s.token("dee", "p1", "data-scientist").await;
        assert_eq!(s.post(&ds, "/api/v1/tokens", body("p1")).await.status, 403);
        let a = s.post(&admin1, "/api/v1/tokens", body("nope")).await;
        assert_eq!(a.status, 404);
        assert_eq!(a.body["error"]["field"], "project");
        s
    })
    .await;
}
