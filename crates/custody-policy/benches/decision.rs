//! Latency of one authorization decision, entity building included.
//!
//! Runs `ITERATIONS` decisions for a realistic request (a principal with three grants and two
//! restricted-access grants reading a restricted dataset), timing each with [`Instant`], and
//! prints the percentiles and the throughput. Run with
//! `cargo bench -p custody-policy --bench decision`.

#![allow(clippy::print_stdout, reason = "a benchmark reports its figures")]

use custody_core::{
    Action, Classification, DatasetId, Decision, Grant, Name, Principal, PrincipalKind, ProjectScope, Region, Role,
};
use custody_policy::{AuthzRequest, PolicyEngine, RequestContext, ResourceFacts};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const WARMUP: usize = 20_000;
const ITERATIONS: usize = 250_000;

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // `cargo test --benches` runs this too; keep that quick.
    let iterations = if std::env::args().any(|a| a == "--bench") { ITERATIONS } else { 1_000 };
    let engine = PolicyEngine::builtin()?;
    let fraud = Name::new("fraud-detection")?;
    let dataset = DatasetId::new();
    let principal = Principal {
        id: "oidc:alice@example.com".into(),
        kind: PrincipalKind::User,
        grants: vec![
            Grant { scope: ProjectScope::Project(fraud.clone()), role: Role::DataScientist },
            Grant { scope: ProjectScope::Project(fraud.clone()), role: Role::Viewer },
            Grant { scope: ProjectScope::Project(Name::new("churn")?), role: Role::MlEngineer },
        ],
        restricted_access: vec![DatasetId::new(), dataset],
        allowed_regions: Some(vec![Region::new("eu-west-1")?, Region::new("eu-central-1")?]),
    };
    let resource = ResourceFacts::Dataset {
        id: dataset,
        project: fraud,
        classification: Classification::Restricted,
        region: Region::new("eu-west-1")?,
        owner: "oidc:bob@example.com".into(),
    };
    let context = RequestContext {
        time: time::OffsetDateTime::now_utc(),
        ticket: Some("CHG-1234".into()),
        source_region: Some(Region::new("eu-west-1")?),
    };
    let request =
        AuthzRequest { principal: &principal, action: Action::DatasetRead, resource: &resource, context: &context };
    let first = engine.authorize(&request);
    if first.decision != Decision::Allow || !first.errors.is_empty() {
        println!("unexpected decision: {first:?}");
        return Ok(ExitCode::FAILURE);
    }

    for _ in 0..WARMUP.min(iterations) {
        black_box(engine.authorize(black_box(&request)));
    }
    let mut samples = Vec::with_capacity(iterations);
    let start = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        let decision = engine.authorize(black_box(&request));
        samples.push(t.elapsed());
        black_box(decision);
    }
    let total = start.elapsed();
    samples.sort_unstable();
    let pct = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("decision (dataset.read on a restricted dataset, entity building included), {iterations} runs:");
    println!(
        "  p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs",
        us(pct(0.50)),
        us(pct(0.90)),
        us(pct(0.99)),
        us(pct(0.999)),
        us(pct(1.0)),
    );
    println!("  {:.0} decisions/s (single thread)", iterations as f64 / total.as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
