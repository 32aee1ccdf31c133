//! Benchmark of the lineage index on a generated 1M-node / 3M-edge graph.
//!
//! `cargo bench -p custody-lineage --bench impact` (add `-- --small` for a quick run).
//! A plain harness rather than criterion: the figure that matters is the p99 latency of one
//! query over many different sources, which criterion does not report.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use custody_lineage::testing::{GraphSpec, Prng, generate};
use custody_lineage::{Facts, Graph, Query};
use std::time::{Duration, Instant};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<34} n={:<5} p50={:>9.3?} p90={:>9.3?} p99={:>9.3?} max={:>9.3?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

fn main() {
    let small = std::env::args().any(|a| a == "--small");
    let spec = if small { GraphSpec::small() } else { GraphSpec::million() };
    let t = Instant::now();
    let generated = generate(spec);
    let facts: Vec<Facts> = generated.facts().collect();
    println!("generate: {} events in {:.2?}", facts.len(), t.elapsed());
    let rss_before = rss_kib("VmRSS:");

    let t = Instant::now();
    let mut g = Graph::new();
    g.apply_all(&facts);
    let build = t.elapsed();
    drop(facts);
    let t = Instant::now();
    g.register_datasets(generated.registrations());
    let reg = t.elapsed();
    println!(
        "build (apply_all + full propagation): {} nodes, {} edges in {:.2?}; {} registrations in {:.2?}",
        g.node_count(),
        g.edge_count(),
        build,
        generated.spec().sources,
        reg
    );
    println!(
        "memory: index estimate {:.0} MiB; RSS growth {:.0} MiB (peak RSS {:.0} MiB incl. generator)",
        g.memory_bytes() as f64 / 1048576.0,
        (rss_kib("VmRSS:").saturating_sub(rss_before)) as f64 / 1024.0,
        rss_kib("VmHWM:") as f64 / 1024.0
    );

    let sources: Vec<_> = generated.sources().collect();
    let mut rng = Prng::new(42);
    let picks: Vec<_> = (0..1000).map(|_| sources[rng.below(sources.len() as u32) as usize].clone()).collect();
    let q = Query::all();
    let mut sizes = Vec::new();
    let mut samples = Vec::new();
    for s in &picks {
        let t = Instant::now();
        let c = g.impact_counts(s, &q).unwrap();
        samples.push(t.elapsed());
        sizes.push(c.datasets + c.model_versions + c.live_deployments + c.retired_deployments + c.runs);
    }
    report("impact_counts (ids only)", samples);
    let mut samples = Vec::new();
    for s in &picks {
        let t = Instant::now();
        let i = g.impact(s, &q).unwrap();
        samples.push(t.elapsed());
        std::hint::black_box(i);
    }
    report("impact (keys materialised)", samples);
    let as_of = Query::as_of(time::macros::datetime!(2024-01-05 00:00 UTC));
    let mut samples = Vec::new();
    for s in picks.iter().take(300) {
        let t = Instant::now();
        std::hint::black_box(g.impact_counts(s, &as_of).unwrap());
        samples.push(t.elapsed());
    }
    report("impact_counts as of day 4", samples);
    sizes.sort();
    println!(
        "impact size (nodes reached): p50={} p99={} max={}",
        sizes[sizes.len() / 2],
        sizes[sizes.len() * 99 / 100],
        sizes[sizes.len() - 1]
    );
    let models: Vec<_> = generated.model_versions().take(200).collect();
    let mut samples = Vec::new();
    for m in &models {
        let t = Instant::now();
        std::hint::black_box(g.what_trained(m, &q).unwrap());
        samples.push(t.elapsed());
    }
    report("what_trained", samples);
    let mut samples = Vec::new();
    for s in picks.iter().take(200) {
        let t = Instant::now();
        std::hint::black_box(g.erasure_report(s, &q).unwrap());
        samples.push(t.elapsed());
    }
    report("erasure_report", samples);
    // Incremental ingest on the big graph: new runs reading three random sources (so
    // propagation walks their downstream), the way the server applies each event.
    let mut samples = Vec::new();
    for i in 0..1000u32 {
        let run = custody_lineage::NodeKey::run(uuid::Uuid::from_u64_pair(u64::MAX, u64::from(i)));
        let out = custody_lineage::NodeKey::version("gen://lake", format!("new{i}"), custody_lineage::VersionRef::Base);
        let mut edges: Vec<custody_lineage::EdgeFact> = (0..3)
            .map(|_| custody_lineage::EdgeFact {
                kind: custody_lineage::EdgeKind::Consumed,
                from: custody_lineage::Source::Node(sources[rng.below(sources.len() as u32) as usize].clone()),
                to: run.clone(),
            })
            .collect();
        edges.push(custody_lineage::EdgeFact {
            kind: custody_lineage::EdgeKind::Produced,
            from: custody_lineage::Source::Node(run.clone()),
            to: out,
        });
        let mut id = [0xEEu8; 32];
        id[..4].copy_from_slice(&i.to_be_bytes());
        let facts = Facts {
            event_id: custody_lineage::EventId::from_bytes(id),
            time: 1_800_000_000_000_000,
            nodes: Vec::new(),
            edges,
            run: None,
            columns: Vec::new(),
        };
        let t = Instant::now();
        std::hint::black_box(g.apply(&facts));
        samples.push(t.elapsed());
    }
    report("apply one event (incremental)", samples);
    let t = Instant::now();
    let cycles = g.cycles();
    println!("cycles(): {} strongly connected sets in {:.2?}", cycles.len(), t.elapsed());
}
