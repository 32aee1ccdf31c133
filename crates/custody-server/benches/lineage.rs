//! Lineage, beside the peers that bound it, in the same run:
//!
//! - **impact**: the in-memory downstream impact of ~200 source dataset versions of the
//!   generated 1M-node / 3M-edge graph (`GraphSpec::million()`), against the same graph exported
//!   to PostgreSQL as a Marquez-style node and edge table and walked by a recursive CTE. Every
//!   source's reach is checked to be the same node count on both sides.
//! - **ingest**: OpenLineage RunEvents per second over HTTP into a server on SQLite, against
//!   SQLite's rate of durable single-row commits of the same bodies (and the bare HTTP + one
//!   commit route of `api_writes`).
//! - **parse**: `parse_event` alone, on one thread, over the ingest part's bodies, against
//!   reading the same bodies into a `serde_json::Value` (a generic tree, with no checks, no
//!   typed facets and no event id), in the same run.
//!
//! ```text
//! cargo bench -p custody-server --bench lineage -- [impact|ingest|parse] [--small]
//!     [--sources K] [--rounds R] [--events N] [--concurrency C] [--api-only]
//! ```
//!
//! `--api-only` leaves out the ingest peers (for profiling the API alone).
//!
//! The PostgreSQL side of `impact` needs CUSTODY_TEST_PG_URL (scripts/bench-lineage.sh runs the
//! bench under scripts/with-postgres.sh); without it, it is skipped and says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

/// The allocator `custody` itself runs on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use custody_lineage::testing::{GraphSpec, Prng, generate};
use custody_lineage::{Facts, Graph, NodeKey, Query};
use custody_store::testing::{self, TestDb};
use serde_json::{Value, json};
use sqlx::Connection;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    impact: bool,
    ingest: bool,
    parse: bool,
    small: bool,
    sources: usize,
    rounds: usize,
    events: usize,
    concurrency: usize,
    api_only: bool,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let value =
        |name: &str| argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).map(|v| v.parse().unwrap());
    let small = argv.iter().any(|a| a == "--small");
    let named = |part: &str| argv.iter().any(|a| a == part);
    let (impact, ingest, parse) = (named("impact"), named("ingest"), named("parse"));
    let none = !(impact || ingest || parse);
    Args {
        // None named: all.
        impact: impact || none,
        ingest: ingest || none,
        parse: parse || none,
        small,
        sources: value("--sources").unwrap_or(200),
        rounds: value("--rounds").unwrap_or(5),
        events: value("--events").unwrap_or(if small { 2_000 } else { 20_000 }),
        concurrency: value("--concurrency").unwrap_or(64),
        api_only: argv.iter().any(|a| a == "--api-only"),
    }
}

fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[(((sorted.len() as f64 - 1.0) * p).round() as usize).min(sorted.len() - 1)]
}

struct Stats {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    Stats {
        p50: percentile(&samples, 0.5),
        p90: percentile(&samples, 0.9),
        p99: percentile(&samples, 0.99),
        max: samples[samples.len() - 1],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_stats(name: &str, n: usize, s: &Stats) {
    println!(
        "{name:<58} n={n:<5} p50 {:9.3} ms  p90 {:9.3} ms  p99 {:9.3} ms  max {:9.3} ms",
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.max)
    );
}

// ---- impact: in memory vs a PostgreSQL recursive CTE -------------------------------------

/// Reach of a source in a Marquez-style edge table. UNION (not UNION ALL): a node already
/// reached is not expanded again, so cycles terminate. The start is not counted (the
/// in-memory impact does not list its own source either).
const CTE: &str = "WITH RECURSIVE reach(id) AS ( \
      SELECT dst FROM lineage_edges WHERE src = $1 \
      UNION \
      SELECT e.dst FROM lineage_edges e JOIN reach r ON e.src = r.id \
    ) SELECT count(*) FROM reach WHERE id <> $1";

/// Text-format COPY escaping.
fn copy_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

async fn copy_in(conn: &mut sqlx::PgConnection, statement: &str, rows: impl Iterator<Item = String>) -> u64 {
    let mut copy = conn.copy_in_raw(statement).await.unwrap();
    let mut buf = String::with_capacity(1 << 20);
    for row in rows {
        buf.push_str(&row);
        if buf.len() >= 1 << 20 {
            copy.send(std::mem::take(&mut buf).into_bytes()).await.unwrap();
            buf.reserve(1 << 20);
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await.unwrap();
    }
    copy.finish().await.unwrap()
}

fn kind_label(k: &NodeKey) -> &'static str {
    match k {
        NodeKey::DatasetVersion { .. } => "dataset_version",
        NodeKey::Job(_) => "job",
        NodeKey::Run { .. } => "run",
    }
}

/// Exports the graph's snapshot (nodes; edges with floating inputs shown resolved, exactly
/// the edges the in-memory walk follows) into `lineage_nodes` / `lineage_edges`, indexes and
/// analyzes them. Returns the id of every node key.
async fn export(pool: &sqlx::PgPool, g: &Graph) -> HashMap<NodeKey, i64> {
    let t = Instant::now();
    let snap = g.snapshot(None);
    println!("snapshot: {} nodes, {} edges in {:.2?}", snap.nodes.len(), snap.edges.len(), t.elapsed());
    let ids: HashMap<NodeKey, i64> = snap.nodes.keys().enumerate().map(|(i, k)| (k.clone(), i as i64)).collect();
    let mut conn = pool.acquire().await.unwrap();
    for stmt in [
        "CREATE TABLE lineage_nodes (id bigint PRIMARY KEY, kind text NOT NULL, key text NOT NULL)",
        "CREATE TABLE lineage_edges (src bigint NOT NULL, dst bigint NOT NULL, kind text NOT NULL, created_at bigint NOT NULL)",
    ] {
        sqlx::query(stmt).execute(&mut *conn).await.unwrap();
    }
    let t = Instant::now();
    let nodes = copy_in(
        &mut conn,
        "COPY lineage_nodes (id, kind, key) FROM STDIN",
        snap.nodes.keys().enumerate().map(|(i, k)| {
            let mut row = format!("{i}\t{}\t", kind_label(k));
            copy_text(&k.to_string(), &mut row);
            row.push('\n');
            row
        }),
    )
    .await;
    let mut missing = 0usize;
    let edges = copy_in(
        &mut conn,
        "COPY lineage_edges (src, dst, kind, created_at) FROM STDIN",
        snap.edges.iter().filter_map(|e| match (ids.get(&e.from), ids.get(&e.to)) {
            (Some(s), Some(d)) => Some(format!("{s}\t{d}\t{:?}\t{}\n", e.kind, e.time)),
            _ => {
                missing += 1;
                None
            }
        }),
    )
    .await;
    assert_eq!(missing, 0, "snapshot edges whose ends are not snapshot nodes");
    let copied = t.elapsed();
    let t = Instant::now();
    for stmt in [
        "CREATE INDEX lineage_edges_src ON lineage_edges (src)",
        "CREATE INDEX lineage_edges_dst ON lineage_edges (dst)",
        "ANALYZE lineage_nodes",
        "ANALYZE lineage_edges",
    ] {
        sqlx::query(stmt).execute(&mut *conn).await.unwrap();
    }
    let indexed = t.elapsed();
    let size: i64 =
        sqlx::query_scalar("SELECT pg_total_relation_size('lineage_edges') + pg_total_relation_size('lineage_nodes')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    println!(
        "postgres load: COPY {nodes} nodes + {edges} edges in {copied:.2?}; indexes (src), (dst) + ANALYZE in {indexed:.2?}; {:.0} MiB on disk",
        size as f64 / 1048576.0
    );
    // Warm the caches the way a running server's would be (pg_prewarm is in PostgreSQL's
    // contrib; without it the warm-up pass below does the same, more slowly).
    let prewarm = async {
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_prewarm").execute(&mut *conn).await?;
        for rel in ["lineage_edges", "lineage_edges_src", "lineage_edges_dst"] {
            sqlx::query("SELECT pg_prewarm($1)").bind(rel).execute(&mut *conn).await?;
        }
        Ok::<_, sqlx::Error>(())
    };
    match prewarm.await {
        Ok(()) => println!("postgres: tables and indexes prewarmed (pg_prewarm)"),
        Err(e) => println!("postgres: pg_prewarm unavailable ({e}); relying on the warm-up pass"),
    }
    ids
}

/// The same walk returning every reached node's kind and key, as an API answer needs them.
const CTE_KEYS: &str = "WITH RECURSIVE reach(id) AS ( \
      SELECT dst FROM lineage_edges WHERE src = $1 \
      UNION \
      SELECT e.dst FROM lineage_edges e JOIN reach r ON e.src = r.id \
    ) SELECT n.kind, n.key FROM reach JOIN lineage_nodes n ON n.id = reach.id WHERE reach.id <> $1";

async fn postgres_side(g: &Graph, first: &NodeKey) -> Option<(sqlx::PgPool, HashMap<NodeKey, i64>)> {
    let Some(db) = testing::postgres().await else {
        println!(
            "postgres: CUSTODY_TEST_PG_URL is not set: the recursive-CTE side was SKIPPED (run scripts/bench-lineage.sh)"
        );
        return None;
    };
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&db.url).await.unwrap();
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&pool).await.unwrap();
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'effective_cache_size', 'jit') ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    println!("postgres {version}: {}", settings.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" "));
    let ids = export(&pool, g).await;
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", CTE.replace("$1", &ids[first].to_string())))
        .fetch_all(&pool)
        .await
        .unwrap();
    println!("postgres plan (count):\n  {}", plan.join("\n  "));
    Some((pool, ids))
}

async fn impact(a: &Args) {
    let spec = if a.small { GraphSpec::small() } else { GraphSpec::million() };
    println!("load average before: {}", loadavg());
    let t = Instant::now();
    let generated = generate(spec);
    let facts: Vec<Facts> = generated.facts().collect();
    let mut g = Graph::new();
    g.apply_all(&facts);
    drop(facts);
    println!(
        "impact: graph of {} nodes, {} edges built in {:.2?} ({} source dataset versions)",
        g.node_count(),
        g.edge_count(),
        t.elapsed(),
        spec.sources
    );
    let sources: Vec<NodeKey> = generated.sources().collect();
    let mut rng = Prng::new(0x1A7E_0001);
    let mut picks: Vec<NodeKey> = Vec::new();
    while picks.len() < a.sources.min(sources.len()) {
        let s = &sources[rng.below(sources.len() as u32) as usize];
        if !picks.contains(s) {
            picks.push(s.clone());
        }
    }
    let q = Query::all();
    // What the API's /lineage/impact answers: every derived dataset, cache, model version,
    // deployment (keys) and the number of runs (jobs are never reached downstream of a
    // dataset: RunOf is followed only from a start job), as the JSON bytes the route sends.
    let answer = |g: &Graph, s: &NodeKey| {
        let v = g.impact_view(s, &q).unwrap();
        let json = serde_json::to_vec(&v).unwrap();
        let c = v.counts();
        std::hint::black_box(json);
        c.datasets + c.caches + c.model_versions + c.live_deployments + c.retired_deployments + c.runs
    };
    // The owned answer (a `NodeKey` per node), what the route serialized before.
    let keys = |g: &Graph, s: &NodeKey| {
        let i = g.impact(s, &q).unwrap();
        i.datasets.len()
            + i.caches.len()
            + i.model_versions.len()
            + i.live_deployments.len()
            + i.retired_deployments.len()
            + i.runs
    };
    // The same walk, counted without building keys.
    let counts = |g: &Graph, s: &NodeKey| {
        let c = g.impact_counts(s, &q).unwrap();
        c.datasets + c.caches + c.model_versions + c.live_deployments + c.retired_deployments + c.runs
    };
    let pg = postgres_side(&g, &picks[0]).await;
    let cte_count = |id: i64| {
        let pool = pg.as_ref().map(|p| p.0.clone());
        async move { sqlx::query_scalar::<_, i64>(CTE).bind(id).fetch_one(&pool.unwrap()).await.unwrap() as usize }
    };
    let cte_keys = |id: i64| {
        let pool = pg.as_ref().map(|p| p.0.clone());
        async move { sqlx::query_as::<_, (String, String)>(CTE_KEYS).bind(id).fetch_all(&pool.unwrap()).await.unwrap() }
    };
    // Warm-up pass, unmeasured, then `rounds` measured passes with the four queries of a
    // source back to back, so that the machine's noise falls on all of them alike. The first
    // measured pass also checks that both sides reach the same nodes.
    for s in &picks {
        std::hint::black_box((answer(&g, s), keys(&g, s), counts(&g, s)));
        if let Some((_, ids)) = &pg {
            std::hint::black_box((cte_count(ids[s]).await, cte_keys(ids[s]).await));
        }
    }
    let n = picks.len();
    // [query][round][source]
    let mut times: [Vec<Vec<Duration>>; 5] = Default::default();
    let mut sizes = Vec::new();
    for round in 0..a.rounds.max(1) {
        let mut this_round: [Vec<Duration>; 5] = Default::default();
        for s in &picks {
            let t = Instant::now();
            let r = answer(&g, s);
            this_round[0].push(t.elapsed());
            let t = Instant::now();
            let c = counts(&g, s);
            this_round[1].push(t.elapsed());
            assert_eq!(c, r);
            let t = Instant::now();
            let k = keys(&g, s);
            this_round[4].push(t.elapsed());
            assert_eq!(k, r);
            if round == 0 {
                sizes.push(r);
            }
            if let Some((_, ids)) = &pg {
                let t = Instant::now();
                let count = cte_count(ids[s]).await;
                this_round[2].push(t.elapsed());
                let t = Instant::now();
                let rows = cte_keys(ids[s]).await;
                this_round[3].push(t.elapsed());
                assert_eq!(count, r, "reach of {s}: recursive CTE {count}, in memory {r}");
                if round == 0 {
                    // Not only as many: the same nodes (the downstream walk lists every node
                    // it reached).
                    let mut ours: Vec<String> =
                        g.downstream(s, &q).unwrap().reached.iter().map(|r| r.node.key.to_string()).collect();
                    let mut theirs: Vec<String> = rows.into_iter().map(|r| r.1).collect();
                    ours.sort_unstable();
                    theirs.sort_unstable();
                    assert!(ours == theirs, "reach of {s}: different nodes in memory and in PostgreSQL");
                }
            }
        }
        for (all, t) in times.iter_mut().zip(this_round) {
            all.push(t);
        }
    }
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    println!(
        "reach per source (nodes downstream): min {} p50 {} p90 {} p99 {} max {} (total {})",
        sorted[0],
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.9),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1],
        sorted.iter().sum::<usize>()
    );
    let rounds = a.rounds.max(1);
    println!("{n} sources x {rounds} rounds; all samples, and each source's best of its {rounds} rounds:");
    // Every sample; and per source the fastest of its rounds (what the query costs without
    // the other work of this shared machine preempting it).
    let all = |q: usize| stats(times[q].iter().flatten().copied().collect());
    let best = |q: usize| stats((0..n).map(|i| times[q].iter().map(|r| r[i]).min().unwrap()).collect());
    let names = [
        "in-memory impact_view -> JSON bytes (API answer)",
        "in-memory Graph::impact_counts (ids only)",
        "postgres recursive CTE, count(*)",
        "postgres recursive CTE, kind + key rows",
        "in-memory Graph::impact (owned keys)",
    ];
    let measured: Vec<usize> = if pg.is_some() { vec![0, 1, 2, 3, 4] } else { vec![0, 1, 4] };
    let mut summary = Vec::new();
    for (label, f) in [("all samples", &all as &dyn Fn(usize) -> Stats), ("best of rounds", &best)] {
        let st: Vec<Option<Stats>> = (0..names.len()).map(|i| measured.contains(&i).then(|| f(i))).collect();
        for (name, x) in names.iter().zip(&st) {
            if let Some(x) = x {
                print_stats(&format!("{name} [{label}]"), if label == "all samples" { n * rounds } else { n }, x);
            }
        }
        summary.push((label, st));
    }
    println!("load average after: {}", loadavg());
    let worst_p99 = summary.iter().filter_map(|(_, st)| st[0].as_ref().map(|s| s.p99)).max().unwrap();
    println!(
        "target in-memory impact p99 < 100 ms: {} (worst p99 {:.3} ms)",
        if worst_p99 < Duration::from_millis(100) { "met" } else { "MISSED" },
        ms(worst_p99)
    );
    if pg.is_none() {
        return;
    }
    println!("check: every one of {n} sources reaches the same nodes in memory and in PostgreSQL (count and key set)");
    for (label, st) in &summary {
        let ratio = |name: &str, pg: &Option<Stats>, mem: &Option<Stats>| {
            let (Some(pg), Some(mem)) = (pg, mem) else { return };
            let (r50, r99) =
                (pg.p50.as_secs_f64() / mem.p50.as_secs_f64(), pg.p99.as_secs_f64() / mem.p99.as_secs_f64());
            println!(
                "ratio {name:<40} [{label}] p50 {r50:6.1}x  p99 {r99:6.1}x  (>= 10x: {})",
                if r50 >= 10.0 && r99 >= 10.0 { "met" } else { "MISSED" }
            );
        };
        ratio("CTE count / impact_counts (both count)", &st[2], &st[1]);
        ratio("CTE keys / impact JSON (both return keys)", &st[3], &st[0]);
        ratio("CTE count / impact JSON (the API's answer)", &st[2], &st[0]);
        ratio("CTE keys / impact, owned keys", &st[3], &st[4]);
    }
}

// ---- ingest: OpenLineage events over HTTP on SQLite ---------------------------------------

const TABLES: usize = 500;

/// The i-th RunEvent: a COMPLETE event of one of 200 jobs, with a new run id, reading a
/// versioned raw table (of 500) and a versioned dimension table (of 50), each with its schema,
/// and writing the job's output table (a new version per run) with its schema and column
/// lineage, as openlineage-python's Spark and Airflow integrations send them.
fn run_event(i: usize) -> Value {
    const P: &str = "https://github.com/OpenLineage/OpenLineage/tree/1.24.2/integration/spark";
    let facet = |url: &str| json!({ "_producer": P, "_schemaURL": url });
    let with = |mut base: Value, extra: Value| {
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        base
    };
    let schema = |fields: &[(&str, &str)]| {
        with(
            facet("https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"),
            json!({ "fields": fields.iter().map(|(n, t)| json!({ "name": n, "type": t })).collect::<Vec<_>>() }),
        )
    };
    let version = |v: String| {
        with(
            facet(
                "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
            ),
            json!({ "datasetVersion": v }),
        )
    };
    let (table, dim, job) = (i % TABLES, i % 50, i % 200);
    let time = time::OffsetDateTime::from_unix_timestamp(1_714_521_600 + i as i64)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let raw_name = format!("raw/events_{table}");
    let dim_name = format!("dim/customers_{dim}");
    let field = |name: &str, f: &str, t: &str, sub: &str| {
        json!({ "namespace": "s3://lake", "name": name, "field": f,
                "transformations": [{ "type": t, "subtype": sub, "description": "", "masking": false }] })
    };
    json!({
        "eventType": "COMPLETE",
        "eventTime": time,
        "producer": P,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": { "runId": uuid::Uuid::now_v7().to_string() },
        "job": { "namespace": "spark://etl", "name": format!("sessionize_{job}") },
        "inputs": [
            { "namespace": "s3://lake", "name": raw_name, "facets": {
                "schema": schema(&[("event_id", "string"), ("user_id", "long"), ("ts", "timestamp"), ("url", "string"), ("amount", "decimal(12,2)"), ("country", "string")]),
                "version": version(format!("2024-05-{:02}", 1 + table % 28)),
            } },
            { "namespace": "s3://lake", "name": dim_name, "facets": {
                "schema": schema(&[("user_id", "long"), ("segment", "string"), ("signup", "date"), ("email", "string")]),
                "version": version("17".into()),
            } },
        ],
        "outputs": [
            { "namespace": "s3://lake", "name": format!("clean/sessions_{job}"), "facets": {
                "schema": schema(&[("user_id", "long"), ("session_start", "timestamp"), ("pages", "int"), ("revenue", "decimal(12,2)"), ("segment", "string")]),
                "columnLineage": with(
                    facet("https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"),
                    json!({
                        "fields": {
                            "user_id": { "inputFields": [field(&raw_name, "user_id", "DIRECT", "IDENTITY")] },
                            "session_start": { "inputFields": [field(&raw_name, "ts", "DIRECT", "AGGREGATION")] },
                            "pages": { "inputFields": [field(&raw_name, "url", "DIRECT", "AGGREGATION")] },
                            "revenue": { "inputFields": [field(&raw_name, "amount", "DIRECT", "AGGREGATION")] },
                            "segment": { "inputFields": [field(&dim_name, "segment", "DIRECT", "IDENTITY")] },
                        },
                        "dataset": [field(&raw_name, "user_id", "INDIRECT", "JOIN"), field(&dim_name, "user_id", "INDIRECT", "JOIN")],
                    }),
                ),
            } },
        ],
    })
}

struct Driven {
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time of this process (server and load clients alike) per request.
    cpu: Duration,
    /// Cores this process kept busy on average.
    cores: f64,
}

/// CPU time (user + system) of this process so far, from /proc (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<u64> = after.split_whitespace().skip(11).take(2).map(|x| x.parse().unwrap_or(0)).collect();
    Duration::from_millis(10 * f.iter().sum::<u64>())
}

/// The load average, to say how busy the shared machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends one POST per body from `concurrency` clients over keep-alive connections.
async fn drive(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    bodies: Arc<Vec<bytes::Bytes>>,
    concurrency: usize,
) -> Driven {
    let next = Arc::new(AtomicUsize::new(0));
    let (start, cpu0) = (Instant::now(), cpu_time());
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, token, bodies, next) =
            (http.clone(), url.to_owned(), token.to_owned(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break lat };
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                if status != 201 {
                    panic!("event {i}: {status}: {}", resp.text().await.unwrap_or_default());
                }
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let (elapsed, cpu) = (start.elapsed(), cpu_time() - cpu0);
    lat.sort_unstable();
    Driven {
        rate: bodies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        cpu: cpu / bodies.len() as u32,
        cores: cpu.as_secs_f64() / elapsed.as_secs_f64(),
    }
}

async fn api_ingest(db: &TestDb, a: &Args, bodies: Arc<Vec<bytes::Bytes>>) -> Driven {
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
    let post =
        |token: &str, path: &str, body: Value| http.post(format!("{base}{path}")).bearer_auth(token).json(&body).send();
    assert!(post(&admin, "/api/v1/projects", json!({ "name": "bench" })).await.unwrap().status().is_success());
    let issued: Value = post(
        &admin,
        "/api/v1/tokens",
        json!({ "name": "pipeline", "principal": "spark", "kind": "workload", "project": "bench", "role": "data-scientist" }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = issued["secret"].as_str().unwrap().to_owned();
    // One event outside the measurement: it must be accepted without facet warnings.
    let probe: Value = http
        .post(format!("{base}/api/v1/lineage"))
        .bearer_auth(&token)
        .json(&run_event(bodies.len()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(probe["warnings"], json!([]), "{probe}");

    let driven = drive(&http, &format!("{base}/api/v1/lineage"), &token, bodies.clone(), a.concurrency).await;

    // Every event is in the graph: the impacts of the raw tables list every run's output once
    // (the probe's too).
    let mut in_graph = 0usize;
    for t in 0..TABLES {
        let url = format!(
            "{base}/api/v1/projects/bench/lineage/impact?namespace=s3://lake&name=raw/events_{t}&version=2024-05-{:02}",
            1 + t % 28
        );
        let r: Value = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        in_graph += r["datasets"].as_array().map_or(0, Vec::len);
    }
    server.shutdown().await;
    // And stored: one row per event (plus the probe).
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM lineage_events").fetch_one(&mut conn).await.unwrap();
    println!(
        "check: {} events posted, {} stored, {} run outputs in the graph's impacts (each + 1 probe)",
        bodies.len(),
        stored - 1,
        in_graph - 1
    );
    assert_eq!(stored as usize, bodies.len() + 1);
    assert_eq!(in_graph, bodies.len() + 1);
    driven
}

async fn sqlite_conn(url: &str) -> sqlx::AnyConnection {
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    for p in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 10000"] {
        sqlx::query(p).execute(&mut c).await.unwrap();
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut c)
        .await
        .unwrap();
    c
}

/// The peer: the same bodies INSERTed one per durable commit (autocommit) from SQLite's one
/// writer connection, with the store's settings (WAL, synchronous=FULL). No HTTP.
async fn raw_commits(bodies: &[bytes::Bytes]) -> f64 {
    sqlx::any::install_default_drivers();
    let db = testing::sqlite();
    let mut c = sqlite_conn(&db.url).await;
    let start = Instant::now();
    for (i, b) in bodies.iter().enumerate() {
        sqlx::query("INSERT INTO bench_rows (id, body) VALUES ($1, $2)")
            .bind(i as i64)
            .bind(std::str::from_utf8(b).unwrap())
            .execute(&mut c)
            .await
            .unwrap();
    }
    bodies.len() as f64 / start.elapsed().as_secs_f64()
}

/// The second peer (as in `api_writes`): the least an HTTP write can do — an axum route that
/// takes the body and INSERTs it in its own durable commit (no parsing, authentication,
/// policy, audit or graph), driven by the same clients.
async fn http_commits(a: &Args, bodies: Arc<Vec<bytes::Bytes>>) -> Driven {
    use axum::{Router, extract::State, http::StatusCode, routing::post};
    sqlx::any::install_default_drivers();
    let db = testing::sqlite();
    drop(sqlite_conn(&db.url).await);
    let url = db.url.clone();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|c, _| {
            Box::pin(async move {
                for p in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 10000"] {
                    sqlx::query(p).execute(&mut *c).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    async fn insert(State((pool, next)): State<(sqlx::AnyPool, Arc<AtomicUsize>)>, body: String) -> StatusCode {
        let id = next.fetch_add(1, Ordering::Relaxed) as i64;
        match sqlx::query("INSERT INTO bench_rows (id, body) VALUES ($1, $2)").bind(id).bind(body).execute(&pool).await
        {
            Ok(_) => StatusCode::CREATED,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    let app = Router::new().route("/rows", post(insert)).with_state((pool, next));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().unwrap();
    let driven = drive(&http, &format!("{base}/rows"), "unused", bodies, a.concurrency).await;
    server.abort();
    drop(db);
    driven
}

/// `parse_event` over the ingest bodies, `a.rounds` times, against `serde_json::Value` on the
/// same bodies in alternating rounds (so a slow spell of the machine hits both alike).
fn parse(a: &Args) {
    let bodies = run_event_bodies(a.events);
    let mean = bodies.iter().map(bytes::Bytes::len).sum::<usize>() / bodies.len();
    println!("parse: {} RunEvents of {mean} bytes on average, {} rounds each, one thread", bodies.len(), a.rounds);
    let per_event = |t: Duration| t.as_secs_f64() * 1e6 / bodies.len() as f64;
    let (mut ours, mut value) = (Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        let t = Instant::now();
        for b in &bodies {
            let parsed = custody_lineage::parse_event(b).unwrap();
            assert!(parsed.event.warnings.is_empty());
            std::hint::black_box(parsed);
        }
        ours.push(per_event(t.elapsed()));
        let t = Instant::now();
        for b in &bodies {
            std::hint::black_box(serde_json::from_slice::<Value>(b).unwrap());
        }
        value.push(per_event(t.elapsed()));
    }
    let report = |name: &str, xs: &mut [f64]| {
        xs.sort_by(f64::total_cmp);
        println!("{name:<46} best {:7.2} us/event  median {:7.2} us/event", xs[0], xs[xs.len() / 2]);
        (xs[0], xs[xs.len() / 2])
    };
    let o = report("parse_event (checks, typed facets, event id)", &mut ours);
    let v = report("peer: serde_json::from_slice::<Value>", &mut value);
    println!("ratio parse_event / Value: best {:.2}, median {:.2}", o.0 / v.0, o.1 / v.1);
}

/// The bodies of the first `n` run events, as the clients send them.
fn run_event_bodies(n: usize) -> Vec<bytes::Bytes> {
    (0..n).map(|i| bytes::Bytes::from(serde_json::to_vec(&run_event(i)).unwrap())).collect()
}

async fn ingest(a: &Args) {
    let t = Instant::now();
    let bodies = run_event_bodies(a.events);
    let total: usize = bodies.iter().map(|b| b.len()).sum();
    println!(
        "ingest: {} RunEvents (COMPLETE; 2 inputs with schema + version, 1 output with schema + columnLineage), mean {} bytes, generated in {:.2?}; {} concurrent clients",
        bodies.len(),
        total / bodies.len(),
        t.elapsed(),
        a.concurrency
    );
    println!("load average before: {}", loadavg());
    let bodies = Arc::new(bodies);
    let api = api_ingest(&testing::sqlite(), a, bodies.clone()).await;
    if a.api_only {
        print_api(&api);
        return;
    }
    let raw = raw_commits(&bodies).await;
    let http = http_commits(a, bodies.clone()).await;
    print_api(&api);
    println!("sqlite    peer: raw durable commits     {raw:7.0} rows/s    (API / raw {:.2})", api.rate / raw);
    println!(
        "sqlite    peer: HTTP + one commit       {:7.0} req/s     p50 {:6.2} ms  p99 {:6.2} ms  CPU {:4.0} us/req,   {:.2} cores busy (API / HTTP + commit {:.2})",
        http.rate,
        ms(http.p50),
        ms(http.p99),
        http.cpu.as_secs_f64() * 1e6,
        http.cores,
        api.rate / http.rate
    );
    println!("load average after: {}", loadavg());
    println!("target >= 5,000 events/s: {}", if api.rate >= 5_000.0 { "met" } else { "MISSED" });
}

fn print_api(api: &Driven) {
    println!(
        "sqlite    API OpenLineage ingest        {:7.0} events/s  p50 {:6.2} ms  p99 {:6.2} ms  CPU {:4.0} us/event, {:.2} cores busy",
        api.rate,
        ms(api.p50),
        ms(api.p99),
        api.cpu.as_secs_f64() * 1e6,
        api.cores
    );
}

/// On the runtime `custody serve` runs on, the server started from its `block_on` thread.
fn main() {
    custody_server::runtime().unwrap().block_on(main_async());
}

async fn main_async() {
    if let Ok(filter) = std::env::var("CUSTODY_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let a = args();
    if a.impact {
        impact(&a).await;
    }
    if a.ingest {
        ingest(&a).await;
    }
    if a.parse {
        parse(&a);
    }
}
