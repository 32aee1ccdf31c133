//! Bad input: a 4xx with a JSON error naming the field, nothing written but the audit record
//! of the refusal. Store failures: a 5xx with a request id, never a panic.

use crate::common::*;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    path: &'static str,
    body: Body,
    status: u16,
    field: &'static str,
}

enum Body {
    Json(Value),
    Raw(&'static str, String),
}

fn cases() -> Vec<Case> {
    let mut unknown = dataset_body("ok-name", "public");
    unknown["colour"] = json!("blue");
    let mut bad_class = dataset_body("ok-name", "public");
    bad_class["classification"] = json!("secret");
    let mut bad_region = dataset_body("ok-name", "public");
    bad_region["region"] = json!("EU West");
    let mut bad_retention = dataset_body("ok-name", "public");
    bad_retention["retention"] = json!("forever");
    let mut missing = dataset_body("ok-name", "public");
    missing.as_object_mut().unwrap().remove("licence");
    let mut bad_uri = dataset_body("ok-name", "public");
    bad_uri["source_uri"] = json!("no scheme");
    vec![
        Case {
            name: "malformed JSON",
            path: "/api/v1/projects/p/datasets",
            body: Body::Raw("application/json", "{\"name\": ".into()),
            status: 400,
            field: "name",
        },
        Case {
            name: "trailing garbage",
            path: "/api/v1/projects/p/datasets",
            body: Body::Raw("application/json", format!("{} x", dataset_body("a", "public"))),
            status: 400,
            field: "body",
        },
        Case {
            name: "not JSON content type",
            path: "/api/v1/projects/p/datasets",
            body: Body::Raw("text/plain", "hi".into()),
            status: 415,
            field: "",
        },
        Case {
            name: "oversize body",
            path: "/api/v1/projects/p/datasets",
            body: Body::Raw("application/json", format!("{{\"name\": \"{}\"}}", "a".repeat(20_000))),
            status: 413,
            field: "",
        },
        Case {
            name: "unknown field",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(unknown),
            status: 400,
            field: "colour",
        },
        Case {
            name: "invalid name",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(dataset_body("Bad Name", "public")),
            status: 400,
            field: "name",
        },
        Case {
            name: "wrong classification",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(bad_class),
            status: 400,
            field: "classification",
        },
        Case {
            name: "invalid region",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(bad_region),
            status: 400,
            field: "region",
        },
        Case {
            name: "invalid retention",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(bad_retention),
            status: 400,
            field: "retention",
        },
        Case {
            name: "missing field",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(missing),
            status: 400,
            field: "body",
        },
        Case {
            name: "source not a URI",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(bad_uri),
            status: 400,
            field: "source_uri",
        },
        Case {
            name: "unknown project",
            path: "/api/v1/projects/nope/datasets",
            body: Body::Json(dataset_body("x", "public")),
            status: 404,
            field: "project",
        },
        Case {
            name: "invalid project name",
            path: "/api/v1/projects/NOPE/datasets",
            body: Body::Json(dataset_body("x", "public")),
            status: 400,
            field: "project",
        },
        Case {
            name: "duplicate dataset",
            path: "/api/v1/projects/p/datasets",
            body: Body::Json(dataset_body("existing", "public")),
            status: 409,
            field: "name",
        },
    ]
}

#[tokio::test]
async fn bad_input_is_refused_and_audited() {
    each_backend(|s| async move {
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        s.dataset(&ds, "p", "existing", "public").await;
        let before = s.audit().await.len();
        for (i, case) in cases().into_iter().enumerate() {
            let req = s.http.post(format!("{}{}", s.url, case.path)).bearer_auth(&ds);
            let req = match &case.body {
                Body::Json(v) => req.json(v),
                Body::Raw(ct, text) => req.header("content-type", *ct).body(text.clone()),
            };
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), case.status, "{}", case.name);
            let body: Value = resp.json().await.unwrap();
            let err = &body["error"];
            assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: {body}", case.name);
            if !case.field.is_empty() {
                assert_eq!(err["field"], case.field, "{}: {body}", case.name);
            }
            // One refusal record per case (plus the audit read of the previous iteration).
            let events = s.audit().await;
            let last = events.iter().rev().find(|e| e["action"] != "audit.read").unwrap();
            assert_eq!(last["outcome"], "rejected", "{}: {last}", case.name);
            assert_eq!(last["actor"], "dora");
            assert!(events.len() > before + i);
        }
        let list = s.get(&ds, "/api/v1/projects/p/datasets").await;
        assert_eq!(list.body.as_array().unwrap().len(), 1, "nothing was written: {:?}", list.body);
        s
    })
    .await;
}

#[tokio::test]
async fn duplicate_versions_and_bad_ids() {
    each_backend(|s| async move {
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        let d = s.dataset(&ds, "p", "events", "internal").await;
        let id = d["id"].as_str().unwrap();
        let v = json!({ "label": "v1", "digest": format!("sha256:{}", "ab".repeat(32)), "size_bytes": 10 });
        assert_eq!(s.post(&ds, &format!("/api/v1/datasets/{id}/versions"), v.clone()).await.status, 201);
        let again = s.post(&ds, &format!("/api/v1/datasets/{id}/versions"), v).await;
        assert_eq!(again.status, 409);
        assert_eq!(again.body["error"]["field"], "label");
        let bad_digest = s
            .post(
                &ds,
                &format!("/api/v1/datasets/{id}/versions"),
                json!({ "label": "v2", "digest": "md5:abc", "size_bytes": 1 }),
            )
            .await;
        assert_eq!(bad_digest.status, 400);
        assert_eq!(bad_digest.body["error"]["field"], "digest");
        let neg = s
            .post(
                &ds,
                &format!("/api/v1/datasets/{id}/versions"),
                json!({ "label": "v2", "digest": format!("sha256:{}", "cd".repeat(32)), "size_bytes": -1 }),
            )
            .await;
        assert_eq!(neg.status, 400);
        assert_eq!(neg.body["error"]["field"], "size_bytes");
        let bad_id = s.get(&ds, "/api/v1/datasets/not-a-uuid").await;
        assert_eq!(bad_id.status, 400);
        assert_eq!(bad_id.body["error"]["field"], "dataset_id");
        let unknown = s.get(&ds, "/api/v1/datasets/01a201b5-977d-72b9-8fc4-304f838a6169").await;
        assert_eq!(unknown.status, 404);
        let bad_query = s.get(&ds, "/api/v1/projects/p/datasets?classification=secret").await;
        assert_eq!(bad_query.status, 400);
        let versions = s.get(&ds, &format!("/api/v1/datasets/{id}/versions")).await;
        assert_eq!(versions.body.as_array().unwrap().len(), 1);
        s
    })
    .await;
}

#[tokio::test]
async fn store_failures_are_5xx_with_a_request_id() {
    for db in custody_store::testing::all().await {
        let url = db.url.clone();
        let s = TestServer::start(db).await;
        s.project("p").await;
        let ds = s.token("dora", "p", "data-scientist").await;
        // Break the database under the running server.
        sqlx_break(&url).await;
        let a = s.post(&ds, "/api/v1/projects/p/datasets", dataset_body("x", "public")).await;
        assert!(a.status.is_server_error(), "{}: {:?}", a.status, a.body);
        assert_eq!(a.body["error"]["code"], "internal");
        assert_eq!(a.body["error"]["request_id"].as_str(), a.request_id.as_deref());
        assert!(!a.body.to_string().contains("datasets"), "internal details stay in the log");
        // The server is still up.
        assert_eq!(s.get(&s.admin, "/api/v1/whoami").await.status, 200);
        s.stop().await;
    }
}

async fn sqlx_break(url: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query("ALTER TABLE datasets RENAME TO datasets_gone").execute(&mut conn).await.unwrap();
}
