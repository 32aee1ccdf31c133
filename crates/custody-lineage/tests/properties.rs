//! Properties: order independence, idempotence, as-of equivalence, termination on cycles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use custody_lineage::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const TYPES: [&str; 7] = ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER", ""];
const LEVELS: [&str; 4] = ["public", "internal", "confidential", "restricted"];

/// One dataset mention: name index, version choice (0 = none, 1..=2 = declared), level.
fn mention() -> impl Strategy<Value = (u8, u8, Option<u8>)> {
    (0u8..4, 0u8..3, proptest::option::of(0u8..4))
}

fn dataset(m: &(u8, u8, Option<u8>)) -> Value {
    let version = match m.1 {
        0 => None,
        1 => Some("v1".to_owned()),
        _ => Some("v2".to_owned()),
    };
    let custody = m.2.map(|l| json!({"classification": LEVELS[l as usize]}));
    ds(&format!("d{}", m.0), version.as_deref(), custody)
}

/// A random RunEvent over a tiny universe (so that nodes, versions and cycles collide).
fn event() -> impl Strategy<Value = Value> {
    (0u32..5, 0u8..7, 0i64..12, proptest::collection::vec(mention(), 0..3), proptest::collection::vec(mention(), 0..3))
        .prop_map(|(run, ty, t, inputs, outputs)| {
            let mut e = run_event(
                run,
                &format!("job{}", run % 3),
                TYPES[ty as usize],
                t,
                inputs.iter().map(dataset).collect(),
                outputs.iter().map(dataset).collect(),
            );
            if ty == 6 {
                e.as_object_mut().unwrap().remove("eventType");
            }
            e
        })
}

/// Events, plus a permutation with duplicates of the same events.
fn events_and_shuffle() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    proptest::collection::vec(event(), 1..14).prop_flat_map(|evs| {
        let n = evs.len();
        (Just(evs), proptest::collection::vec(0..n, n..n * 2 + 1), Just(n)).prop_map(|(evs, dups, n)| {
            // Every event at least once, some twice, in a scrambled order.
            let mut order: Vec<usize> = (0..n).chain(dups).collect();
            let len = order.len();
            for i in 0..len {
                order.swap(i, (i * 7 + 3) % len);
            }
            order.reverse();
            let shuffled = order.into_iter().map(|i| evs[i].clone()).collect();
            (evs, shuffled)
        })
    })
}

fn build(events: &[Value]) -> Graph {
    let mut g = Graph::new();
    for e in events {
        g.apply(&facts(e));
    }
    g
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_order_with_duplicates_gives_the_same_graph((events, shuffled) in events_and_shuffle()) {
        let a = build(&events);
        let b = build(&shuffled);
        prop_assert_eq!(a.snapshot(None), b.snapshot(None));
        // Batch load (one propagation at the end) equals incremental propagation.
        let all: Vec<Facts> = shuffled.iter().map(facts).collect();
        let mut c = Graph::new();
        c.apply_all(&all);
        prop_assert_eq!(a.snapshot(None), c.snapshot(None));
    }

    #[test]
    fn as_of_equals_the_graph_of_earlier_events(events in proptest::collection::vec(event(), 1..14), cut in 0i64..12) {
        let full = build(&events);
        let earlier: Vec<Value> = events
            .iter()
            .filter(|e| e["eventTime"].as_str().unwrap() <= at(cut).as_str())
            .cloned()
            .collect();
        let partial = build(&earlier);
        let t = time_at(cut);
        let mut expected = partial.snapshot(None);
        expected.effective.clear();
        prop_assert_eq!(full.snapshot(Some(t)), expected);
        // Traversals agree too.
        for key in partial.snapshot(None).nodes.keys() {
            let q = Query::as_of(t);
            let mut x: Vec<NodeKey> = full.downstream(key, &q).unwrap().reached.into_iter().map(|r| r.node.key).collect();
            let mut y: Vec<NodeKey> = partial.downstream(key, &Query::all()).unwrap().reached.into_iter().map(|r| r.node.key).collect();
            x.sort();
            y.sort();
            prop_assert_eq!(x, y);
        }
    }

    #[test]
    fn traversals_terminate_on_cyclic_graphs(events in proptest::collection::vec(event(), 1..20)) {
        let g = build(&events);
        let n = g.node_count();
        let _ = g.cycles();
        for key in g.snapshot(None).nodes.keys() {
            let d = g.downstream(key, &Query::all()).unwrap();
            let u = g.upstream(key, &Query::all()).unwrap();
            prop_assert!(d.reached.len() < n && u.reached.len() < n);
            let _ = g.erasure_report(key, &Query::all()).unwrap();
            let _ = g.effective_classification(key).unwrap();
        }
    }
}

#[test]
fn generated_graph_has_cycles_and_answers() {
    let generated = custody_lineage::testing::generate(custody_lineage::testing::GraphSpec::small());
    let facts: Vec<Facts> = generated.facts().collect();
    let mut g = Graph::new();
    g.apply_all(&facts);
    for (name, level) in generated.registrations() {
        g.register_dataset(&name, level);
    }
    assert!(!g.cycles().is_empty());
    let src = generated.sources().next().unwrap();
    let impact = g.impact(&src, &Query::all()).unwrap();
    let counts = g.impact_counts(&src, &Query::all()).unwrap();
    assert_eq!(impact.datasets.len(), counts.datasets);
    let model = generated.model_versions().next().unwrap();
    assert!(!g.what_trained(&model, &Query::all()).unwrap().inputs.is_empty());
    let k = g.completeness(&Query::all());
    assert_eq!(k.model_versions, 40);
    // Incremental ingest in reverse order gives the same graph.
    let mut h = Graph::new();
    for f in facts.iter().rev() {
        h.apply(f);
    }
    for (name, level) in generated.registrations() {
        h.register_dataset(&name, level);
    }
    assert_eq!(g.snapshot(None), h.snapshot(None));
}
