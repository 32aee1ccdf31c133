//! Authorized dataset-version registrations per second through the HTTP API, beside the
//! peer that bounds them: the same database's rate of durable single-row commits.
//!
//!     cargo bench -p custody-server --bench api_writes -- [--requests N] [--concurrency C]
//!
//! SQLite always; PostgreSQL when CUSTODY_TEST_PG_URL names a server (scripts/with-postgres.sh
//! starts one). Prints one line per backend and measurement, and the ratio.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use custody_store::testing::{self, TestDb};
use serde_json::json;
use sqlx::Connection;
use std::time::{Duration, Instant};

struct Args {
    requests: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args { requests: 20_000, concurrency: 64 };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "--requests" => a.requests = argv[i + 1].parse().unwrap(),
            "--concurrency" => a.concurrency = argv[i + 1].parse().unwrap(),
            _ => {}
        }
        i += if argv[i].starts_with("--requests") || argv[i].starts_with("--concurrency") { 2 } else { 1 };
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn api_writes(db: &TestDb, a: &Args) -> (f64, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = custody_server::Config {
        data_dir: dir.path().join("data"),
        database_url: Some(db.url.clone()),
        bind: "127.0.0.1:0".parse().unwrap(),
        ..custody_server::Config::default()
    };
    let server = custody_server::start(config).await.unwrap();
    let base = server.url();
    let admin = server.bootstrap_token.clone().unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().unwrap();
    let post = |token: &str, path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}")).bearer_auth(token).json(&body).send()
    };
    assert!(post(&admin, "/api/v1/projects", json!({ "name": "bench" })).await.unwrap().status().is_success());
    let issued: serde_json::Value = post(&admin, "/api/v1/tokens", json!({ "name": "bench", "principal": "loader", "kind": "workload", "project": "bench", "role": "data-scientist" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["secret"].as_str().unwrap().to_owned();
    let mut datasets = Vec::new();
    for i in 0..16 {
        let d: serde_json::Value = post(&token, "/api/v1/projects/bench/datasets", json!({ "name": format!("d{i}"), "licence": "x", "source_uri": "s3://b/x", "classification": "internal", "region": "eu-west-1", "retention": "30d" }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        datasets.push(d["id"].as_str().unwrap().to_owned());
    }
    let result = drive(a, &http, &token, move |i| {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let url = format!("{base}/api/v1/datasets/{}/versions", datasets[i % datasets.len()]);
        (url, json!({ "label": format!("v{i}"), "digest": format!("sha256:{}", hex::encode(digest)), "size_bytes": i }))
    })
    .await;
    server.shutdown().await;
    result
}

/// Sends `a.requests` POSTs from `a.concurrency` clients; returns the rate and latencies.
async fn drive<F>(a: &Args, http: &reqwest::Client, token: &str, request: F) -> (f64, Duration, Duration)
where
    F: Fn(usize) -> (String, serde_json::Value) + Send + Sync + 'static,
{
    let request = std::sync::Arc::new(request);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (http, token, request, next) = (http.clone(), token.to_owned(), request.clone(), next.clone());
        let total = a.requests;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break lat;
                }
                let (url, body) = request(i);
                let t = Instant::now();
                let resp = http.post(url).bearer_auth(&token).json(&body).send().await.unwrap();
                let status = resp.status();
                if status != 201 {
                    panic!("{status}: {}", resp.text().await.unwrap_or_default());
                }
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    (a.requests as f64 / elapsed.as_secs_f64(), percentile(&lat, 0.5), percentile(&lat, 0.99))
}

/// The second peer: the least an HTTP write can do. An axum route that parses a JSON body and
/// INSERTs one row in its own durable commit (no authentication, policy or audit), driven by
/// the same clients; it shows what HTTP plus the commit cost on this machine.
async fn http_commits(db: &TestDb, a: &Args) -> f64 {
    use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
    sqlx::any::install_default_drivers();
    let sqlite = db.url.starts_with("sqlite");
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(if sqlite { 1 } else { a.concurrency as u32 })
        .after_connect(move |c, _| {
            Box::pin(async move {
                if sqlite {
                    for p in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 10000"] {
                        sqlx::query(p).execute(&mut *c).await?;
                    }
                }
                Ok(())
            })
        })
        .connect(&db.url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    async fn insert(State(pool): State<sqlx::AnyPool>, Json(row): Json<serde_json::Value>) -> StatusCode {
        let (Some(id), Some(body)) = (row["id"].as_i64(), row["body"].as_str()) else { return StatusCode::BAD_REQUEST };
        match sqlx::query("INSERT INTO bench_rows (id, body) VALUES ($1, $2)").bind(id).bind(body).execute(&pool).await
        {
            Ok(_) => StatusCode::CREATED,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    let app = Router::new().route("/rows", post(insert)).with_state(pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().unwrap();
    let (rps, _, _) =
        drive(a, &http, "unused", move |i| (format!("{base}/rows"), json!({ "id": i, "body": "x".repeat(200) }))).await;
    server.abort();
    rps
}

/// The peer: the same number of rows, each INSERTed and COMMITted on its own (autocommit),
/// from the same number of concurrent connections, with the store's durability settings.
async fn raw_commits(db: &TestDb, a: &Args) -> f64 {
    sqlx::any::install_default_drivers();
    let mut setup = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut setup)
        .await
        .unwrap();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sqlite = db.url.starts_with("sqlite");
    let workers = if sqlite { 1 } else { a.concurrency };
    let mut conns = Vec::new();
    for _ in 0..workers {
        let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        if sqlite {
            for p in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 10000"] {
                sqlx::query(p).execute(&mut c).await.unwrap();
            }
        }
        conns.push(c);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut c in conns {
        let next = next.clone();
        let total = a.requests;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                sqlx::query("INSERT INTO bench_rows (id, body) VALUES ($1, $2)")
                    .bind(i as i64)
                    .bind("x".repeat(200))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    a.requests as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    if let Ok(filter) = std::env::var("CUSTODY_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let a = args();
    println!("api_writes: {} requests, {} concurrent clients", a.requests, a.concurrency);
    // CUSTODY_BENCH_PG_SYNC=off runs PostgreSQL (API and peer alike) with
    // synchronous_commit=off, to show how much of each rate the commit is.
    let pg_sync = std::env::var("CUSTODY_BENCH_PG_SYNC").unwrap_or_else(|_| "on".into());
    let pg = |db: TestDb| db.with_url(|u| format!("{u}?options=-c%20synchronous_commit%3D{pg_sync}"));
    println!("postgres synchronous_commit={pg_sync}");
    // CUSTODY_BENCH_ONLY=sqlite|postgres measures one backend (for profiling).
    let only = std::env::var("CUSTODY_BENCH_ONLY").unwrap_or_default();
    let mut backends = Vec::new();
    if only != "postgres" {
        backends.push(("sqlite", testing::sqlite()));
    }
    if only != "sqlite" {
        backends.extend(testing::postgres().await.map(pg).map(|db| ("postgres", db)));
    }
    for (name, db) in &backends {
        let (rps, p50, p99) = api_writes(db, &a).await;
        let peer_db = if *name == "sqlite" { testing::sqlite() } else { pg(testing::postgres().await.unwrap()) };
        let raw = raw_commits(&peer_db, &a).await;
        let http_db = if *name == "sqlite" { testing::sqlite() } else { pg(testing::postgres().await.unwrap()) };
        let http = http_commits(&http_db, &a).await;
        println!(
            "{name:9} API authorized version registrations: {rps:7.0}/s  p50 {:6.2} ms  p99 {:6.2} ms | raw commits {raw:7.0}/s (API/raw {:.2}) | HTTP + one commit {http:7.0}/s (API/HTTP {:.2})",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            rps / raw,
            rps / http
        );
    }
}
