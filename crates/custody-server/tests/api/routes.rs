//! Every route except /healthz and /readyz requires authentication: walk the route table.

use crate::common::*;
use reqwest::Method;
use utoipa::OpenApi;

fn concrete(path: &str) -> String {
    path.replace("{project}", "p").replace("{id}", "01a201b5-977d-72b9-8fc4-304f838a6169").replace("{principal}", "x")
}

#[tokio::test]
async fn every_route_but_health_requires_authentication() {
    let s = TestServer::start(custody_store::testing::sqlite()).await;
    let table = custody_server::route_table();
    assert!(table.len() >= 20, "the table lists the whole API");
    let public: Vec<_> = table.iter().filter(|r| r.public).map(|r| r.path).collect();
    assert_eq!(public, ["/healthz", "/readyz"]);
    for r in &table {
        let method = Method::from_bytes(r.method.to_uppercase().as_bytes()).unwrap();
        let path = concrete(r.path);
        if r.public {
            let a = s.call(None, method, &path, None).await;
            assert_eq!(a.status, 200, "{} {}", r.method, r.path);
            continue;
        }
        for token in [None, Some("garbage"), Some("cust_0123"), Some("a.b.c")] {
            let a = s.call(token, method.clone(), &path, None).await;
            assert_eq!(a.status, 401, "{} {} with {token:?}: {:?}", r.method, r.path, a.body);
            assert_eq!(a.body["error"]["code"], "unauthenticated");
            assert!(a.request_id.is_some());
        }
        // With a valid token the route exists (not 404/405 from the router).
        let a = s.call(Some(&s.admin), method, &path, None).await;
        assert!(
            a.status != 405 && !(a.status == 404 && a.body["error"]["field"] == "path"),
            "{} {}: {}",
            r.method,
            r.path,
            a.status
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_covers_the_api() {
    let s = TestServer::start(custody_store::testing::sqlite()).await;
    let a = s.get(&s.admin, "/api/v1/openapi.json").await;
    assert_eq!(a.status, 200);
    let paths = a.body["paths"].as_object().unwrap();
    for r in custody_server::route_table() {
        if r.path.starts_with("/api/v1/") && r.path != "/api/v1/openapi.json" {
            let ops = paths.get(r.path).unwrap_or_else(|| panic!("{} missing from OpenAPI", r.path));
            assert!(ops.get(r.method).is_some(), "{} {} missing from OpenAPI", r.method, r.path);
        }
    }
    assert_eq!(a.body, serde_json::to_value(custody_server::ApiDoc::openapi()).unwrap());
    assert!(a.body["components"]["securitySchemes"]["bearer"].is_object());
    s.stop().await;
}

#[tokio::test]
async fn metrics_and_health() {
    let s = TestServer::start(custody_store::testing::sqlite()).await;
    assert_eq!(s.call(None, Method::GET, "/healthz", None).await.status, 200);
    assert_eq!(s.call(None, Method::GET, "/readyz", None).await.status, 200);
    s.get(&s.admin, "/api/v1/whoami").await;
    let a = s.get(&s.admin, "/metrics").await;
    assert_eq!(a.status, 200);
    let text = a.body.as_str().unwrap();
    assert!(text.contains("custody_http_requests_total"), "{text}");
    assert!(!text.contains(&s.admin), "metrics never contain tokens");
    s.stop().await;
}

#[tokio::test]
async fn the_server_validates_its_policy_directory_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for (name, text) in custody_policy::PolicyEngine::builtin_files() {
        std::fs::write(policies.join(name), text).unwrap();
    }
    let config = |db: &custody_store::testing::TestDb| custody_server::Config {
        data_dir: dir.path().join("data"),
        database_url: Some(db.url.clone()),
        bind: "127.0.0.1:0".parse().unwrap(),
        policy_dir: Some(policies.clone()),
        ..custody_server::Config::default()
    };
    let db = custody_store::testing::sqlite();
    let ok = custody_server::start(config(&db)).await.unwrap();
    ok.shutdown().await;
    std::fs::write(policies.join("zz.cedar"), "permit(principal, action, resource) when { resource.colour == 1 };")
        .unwrap();
    let err = custody_server::start(config(&db)).await.err().expect("invalid policies refuse the start");
    let text = err.to_string();
    assert!(text.contains("zz.cedar:1:"), "{text}");
}
