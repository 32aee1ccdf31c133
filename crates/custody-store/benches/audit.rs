//! The audit log's durable append rate and its inclusion-proof latency, each beside a peer
//! measured in the same run.
//!
//!     cargo bench -p custody-store --bench audit -- [--appends N] [--concurrency C] [--proof-records N] [--lineage-events N]
//!
//! Each part is skipped when its count is 0.
//!
//! Appends: `C` tasks record audit events (each a realistic dataset-version record) until `N`
//! are durable; every batch is one transaction that sequences the records, computes their
//! leaf hashes, extends the Merkle tree, stores the completed subtree hashes and signs a
//! checkpoint. Peer: the same rows INSERTed in durable transactions of 512 rows (the writer's
//! largest batch) from one connection, in statements of the writer's size, with no hashing,
//! tree or signature — the database's bulk append rate through sqlx.
//!
//! Proofs: a log of `--proof-records` records (built through the same append path) answers
//! inclusion proofs for random records against its full size; p50/p99 over 2,000 proofs, each
//! checked, after 200 unmeasured ones (the upper subtrees a running server keeps in memory). Peer: the proof computed the way the server did before subtree hashes were
//! stored — read all leaf hashes, then `custody_audit::inclusion_proof` over them.
//!
//! Lineage events (`--lineage-events N`, 0 to skip): `C` tasks keep `N` distinct OpenLineage
//! event bodies of 3.7 KB (the size the HTTP ingest bench posts), each with its audit record,
//! through `Store::record_lineage_event`: the writer's path of an ingest without HTTP,
//! parsing or policy. Peer: the same rows INSERTed in durable transactions of `C` rows (the
//! most a batch can hold) from one connection, nothing else.
//!
//! SQLite always; PostgreSQL too when `CUSTODY_TEST_PG_URL` is set (scripts/with-postgres.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use custody_core::*;
use custody_store::testing::{self, TestDb};
use custody_store::{CheckpointSigning, Store, StoreOptions};
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).map(|i| argv[i + 1].parse().unwrap()).unwrap_or(default)
}

fn draft(i: u64) -> AuditDraft {
    AuditDraft {
        actor: "loader".into(),
        action: Action::DatasetVersionCreate,
        resource: ResourceRef::new("dataset", format!("01a2023f-355b-7685-8c5e-{:012x}", i % 5000)),
        project: Some(Name::new("fraud").unwrap()),
        region: Some(Region::new("eu-west-1").unwrap()),
        decision: Decision::Allow,
        policy_hash: "6e295efa3d6bea6d8e4d48cf50020903670140c7a1ffdb95a5136eee7afbd789".into(),
        request_id: RequestId::new(),
        outcome: Outcome::Success,
        details: serde_json::json!({
            "authz": { "decision": "allow", "policies": ["project-data-scientist"], "errors": [] },
            "version_id": format!("01a2023f-{i:08x}"), "label": format!("v{i}"),
        }),
    }
}

fn options() -> StoreOptions {
    let signer = std::sync::Arc::new(custody_audit::Signer::generate("custody.bench/audit").unwrap());
    StoreOptions {
        checkpoints: Some(CheckpointSigning {
            signer: std::sync::Arc::new(custody_store::LogSigner::new(signer, None)),
            interval: Duration::ZERO,
        }),
        ..StoreOptions::default()
    }
}

/// Runs `write(i)` for every `i` below `n` from `concurrency` tasks; returns writes per second.
async fn from_tasks<F, Fut>(n: u64, concurrency: u64, write: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (write, next) = (write.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    write(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Appends `n` records from `concurrency` tasks; returns records per second.
async fn append(store: &Store, n: u64, concurrency: u64) -> f64 {
    let store = store.clone();
    from_tasks(n, concurrency, move |i| {
        let store = store.clone();
        async move {
            store.record(draft(i)).await.unwrap();
        }
    })
    .await
}

/// The peer: the same rows in durable 512-row transactions, nothing else.
async fn raw_append(db: &TestDb, n: u64) -> f64 {
    use sqlx::{Connection, Executor};
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    if db.url.starts_with("sqlite") {
        for p in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"] {
            c.execute(p).await.unwrap();
        }
    }
    c.execute("CREATE TABLE bench_log (seq BIGINT PRIMARY KEY, time BIGINT, actor TEXT, action TEXT, resource TEXT, project TEXT, region TEXT, decision TEXT, policy_hash TEXT, request_id TEXT, outcome TEXT, details TEXT, leaf_hash TEXT)").await.unwrap();
    let start = Instant::now();
    let mut seq = 0u64;
    // Statements of the writer's size (4,096 parameters on SQLite, 1,300 on PostgreSQL).
    let sqlite = db.url.starts_with("sqlite");
    let per_statement = if sqlite { 315 } else { 100 };
    while seq < n {
        let rows = 512.min(n - seq);
        let mut tx = c.begin().await.unwrap();
        let mut done = 0;
        while done < rows {
            let k = per_statement.min(rows - done);
            let sql = format!("INSERT INTO bench_log VALUES {}", values(sqlite, k as usize, 13));
            let mut q = sqlx::query(&sql);
            for r in 0..k {
                let i = seq + done + r;
                let d = draft(i);
                q = q
                    .bind(i as i64)
                    .bind(0i64)
                    .bind(d.actor)
                    .bind(d.action.as_str())
                    .bind(d.resource.0)
                    .bind(d.project.map(|p| p.to_string()))
                    .bind(d.region.map(|p| p.to_string()))
                    .bind("allow")
                    .bind(d.policy_hash)
                    .bind(d.request_id.to_string())
                    .bind("success")
                    .bind(d.details.to_string())
                    .bind("0".repeat(64));
            }
            q.execute(&mut *tx).await.unwrap();
            done += k;
        }
        tx.commit().await.unwrap();
        seq += rows;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A stored event of about the size the HTTP ingest bench posts.
fn lineage_event(project: ProjectId, i: u64) -> custody_store::LineageEventRecord {
    let padding = "x".repeat(3600);
    custody_store::LineageEventRecord {
        project_id: project,
        event_id: format!("{:064x}", i),
        event_type: "COMPLETE".into(),
        event_time: 1_700_000_000_000_000 + i as i64,
        run_id: Some(format!("01a2023f-355b-7685-8c5e-{i:012x}")),
        job: Some(format!("bench/job-{}", i % 200)),
        producer: "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/client/python".into(),
        body: format!("{{\"eventType\":\"COMPLETE\",\"run\":{{\"runId\":\"{i}\"}},\"padding\":\"{padding}\"}}"),
    }
}

fn lineage_draft(i: u64) -> AuditDraft {
    AuditDraft { action: Action::LineageWrite, resource: ResourceRef::new("lineage_event", "pending"), ..draft(i) }
}

/// Keeps `n` distinct lineage events from `concurrency` tasks; returns events per second.
async fn lineage_append(store: &Store, n: u64, concurrency: u64) -> f64 {
    let new = NewProject { name: Name::new("fraud").unwrap(), description: "bench".into() };
    let project = store.create_project(draft(0), new, "bench".into()).await.unwrap().0.id;
    let store = store.clone();
    from_tasks(n, concurrency, move |i| {
        let store = store.clone();
        async move {
            let e = lineage_event(project, i);
            let (stored, _) = store.record_lineage_event(lineage_draft(i), e, "bench".into()).await.unwrap();
            assert!(stored.new);
        }
    })
    .await
}

/// The lineage peer: the same event rows in durable transactions of `per_commit` rows.
async fn raw_lineage_append(db: &TestDb, n: u64, per_commit: u64) -> f64 {
    use sqlx::{Connection, Executor};
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    if db.url.starts_with("sqlite") {
        for p in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"] {
            c.execute(p).await.unwrap();
        }
    }
    let sqlite = db.url.starts_with("sqlite");
    c.execute("CREATE TABLE bench_events (project_id TEXT, event_id TEXT, event_type TEXT, event_time BIGINT, run_id TEXT, job TEXT, producer TEXT, body TEXT, received_by TEXT, received_at BIGINT, generation BIGINT, PRIMARY KEY (project_id, event_id))").await.unwrap();
    let project = ProjectId::new();
    let start = Instant::now();
    let mut i = 0u64;
    while i < n {
        let rows = per_commit.min(n - i);
        let mut tx = c.begin().await.unwrap();
        // Statements of the writer's size on SQLite; 100 rows (1,100 parameters) on PostgreSQL.
        let per_statement = if sqlite { 256 } else { 100 };
        for chunk_start in (i..i + rows).step_by(per_statement as usize) {
            let k = per_statement.min(i + rows - chunk_start);
            let sql = format!("INSERT INTO bench_events VALUES {}", values(sqlite, k as usize, 11));
            let mut q = sqlx::query(&sql);
            for j in chunk_start..chunk_start + k {
                let e = lineage_event(project, j);
                q = q
                    .bind(e.project_id.to_string())
                    .bind(e.event_id)
                    .bind(e.event_type)
                    .bind(e.event_time)
                    .bind(e.run_id)
                    .bind(e.job)
                    .bind(e.producer)
                    .bind(e.body)
                    .bind("bench")
                    .bind(0i64)
                    .bind(j as i64 + 1);
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        i += rows;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The VALUES list of `rows` rows of `columns` parameters: positional on SQLite, where sqlx
/// looks a named one up by name at a cost quadratic in their number; numbered on PostgreSQL.
fn values(sqlite: bool, rows: usize, columns: usize) -> String {
    let row = |r: usize| {
        let params: Vec<String> =
            (1..=columns).map(|c| if sqlite { "?".to_owned() } else { format!("${}", r * columns + c) }).collect();
        format!("({})", params.join(","))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(",")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn proofs(store: &Store, size: u64) -> (Duration, Duration, Duration) {
    let mut lat = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let root = store.audit_root_at(size).await.unwrap();
    // 200 unmeasured proofs first: a running server has the upper subtrees in memory.
    for i in 0..2200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let seq = x % size;
        let t = Instant::now();
        let p = store.audit_inclusion(seq, size).await.unwrap();
        if i >= 200 {
            lat.push(t.elapsed());
        }
        custody_audit::verify_inclusion(&p.leaf_hash, seq, size, &p.proof, &root).unwrap();
    }
    lat.sort_unstable();
    // The peer, a few times: it reads every leaf.
    let mut peer = Duration::MAX;
    for seq in [0, size / 2, size - 1] {
        let t = Instant::now();
        let leaves = store.audit_leaf_hashes(size).await.unwrap();
        let proof = custody_audit::inclusion_proof(&leaves, seq).unwrap();
        peer = peer.min(t.elapsed());
        std::hint::black_box(proof);
    }
    (percentile(&lat, 0.5), percentile(&lat, 0.99), peer)
}

#[tokio::main]
async fn main() {
    let appends = arg("--appends", 200_000);
    let skip_appends = appends == 0;
    let concurrency = arg("--concurrency", 512);
    let proof_records = arg("--proof-records", 1_000_000);
    let lineage_events = arg("--lineage-events", 20_000);
    println!("audit: {appends} appends from {concurrency} tasks; proofs over {proof_records} records");
    // CUSTODY_BENCH_ONLY=sqlite|postgres measures one backend.
    let only = std::env::var("CUSTODY_BENCH_ONLY").unwrap_or_default();
    let mut backends = Vec::new();
    if only != "postgres" {
        backends.push(("sqlite", testing::sqlite()));
    }
    if only != "sqlite" {
        backends.extend(testing::postgres().await.map(|db| ("postgres", db)));
    }
    for (name, db) in backends.iter().filter(|_| !skip_appends) {
        let store = Store::open(&db.url, options()).await.unwrap();
        let ours = append(&store, appends, concurrency).await;
        store.close().await;
        let peer_db = if *name == "sqlite" { testing::sqlite() } else { testing::postgres().await.unwrap() };
        let peer = raw_append(&peer_db, appends).await;
        println!(
            "{name:9} durable audit appends {ours:9.0}/s | peer: plain 512-row durable transactions {peer:9.0}/s | ratio {:.2}",
            ours / peer
        );
    }
    for (name, _) in backends.iter().filter(|_| lineage_events > 0) {
        let db = if *name == "sqlite" { testing::sqlite() } else { testing::postgres().await.unwrap() };
        let store = Store::open(&db.url, options()).await.unwrap();
        let ours = lineage_append(&store, lineage_events, concurrency).await;
        store.close().await;
        let peer_db = if *name == "sqlite" { testing::sqlite() } else { testing::postgres().await.unwrap() };
        let peer = raw_lineage_append(&peer_db, lineage_events, concurrency).await;
        println!(
            "{name:9} durable lineage events {ours:9.0}/s | peer: plain {concurrency}-row durable transactions {peer:9.0}/s | ratio {:.2}",
            ours / peer
        );
    }
    // CUSTODY_BENCH_PROOF_DB=<dir> keeps the SQLite proof log there and reuses it when it
    // already holds the records (building 10 million takes a quarter of an hour).
    let keep = std::env::var("CUSTODY_BENCH_PROOF_DB").ok();
    for (name, _) in backends.iter().filter(|_| proof_records > 0) {
        let db = match (&keep, *name) {
            (Some(dir), "sqlite") => {
                testing::TestDb::with_url(testing::sqlite(), |_| format!("sqlite://{dir}/custody.db?mode=rwc"))
            }
            (_, "sqlite") => testing::sqlite(),
            _ => testing::postgres().await.unwrap(),
        };
        if let Some(dir) = &keep {
            std::fs::create_dir_all(dir).unwrap();
        }
        let store = Store::open(&db.url, StoreOptions { max_batch: 4096, ..options() }).await.unwrap();
        let built = Instant::now();
        let have = store.audit_len().await.unwrap();
        if have < proof_records {
            append(&store, proof_records - have, 8192).await;
        }
        let built = built.elapsed();
        let (p50, p99, peer) = proofs(&store, proof_records).await;
        println!(
            "{name:9} inclusion proof at {proof_records} records: p50 {:7.3} ms p99 {:7.3} ms | peer: from all leaves {:9.1} ms | p99/peer {:.4} (log built in {:.0} s)",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            peer.as_secs_f64() * 1e3,
            p99.as_secs_f64() / peer.as_secs_f64(),
            built.as_secs_f64()
        );
        store.close().await;
    }
}
