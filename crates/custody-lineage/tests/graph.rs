//! Behaviour of the lineage index on small hand-written scenarios.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use custody_core::Classification;
use custody_lineage::*;
use serde_json::json;

fn v(name: &str, version: VersionRef) -> NodeKey {
    NodeKey::version("s3://lake", name, version)
}

fn graph_of(events: &[serde_json::Value]) -> Graph {
    let mut g = Graph::new();
    for e in events {
        g.apply(&facts(e));
    }
    g
}

fn keys(l: &Lineage) -> Vec<NodeKey> {
    l.reached.iter().map(|r| r.node.key.clone()).collect()
}

#[test]
fn version_rule_and_latest_resolution_are_order_independent() {
    let events = vec![
        run_event(1, "w", "COMPLETE", 10, vec![], vec![ds("a", None, None)]),
        run_event(2, "w", "COMPLETE", 20, vec![], vec![ds("a", None, None)]),
        run_event(3, "r", "COMPLETE", 15, vec![ds("a", None, None)], vec![ds("b", None, None)]),
        run_event(4, "r", "COMPLETE", 25, vec![ds("a", None, None)], vec![ds("c", None, None)]),
        // Reads and appends to `a`: reads run 2's version, not its own.
        run_event(5, "append", "COMPLETE", 30, vec![ds("a", None, None)], vec![ds("a", None, None)]),
        run_event(6, "r", "COMPLETE", 5, vec![ds("a", Some("v0"), None)], vec![]),
    ];
    let g = graph_of(&events);
    let a1 = v("a", VersionRef::Run(run_id(1)));
    let a2 = v("a", VersionRef::Run(run_id(2)));
    let down1 = keys(&g.downstream(&a1, &Query::depth(1)).unwrap());
    assert_eq!(down1, vec![NodeKey::run(run_id(3))]);
    let down2 = keys(&g.downstream(&a2, &Query::depth(1)).unwrap());
    assert!(down2.contains(&NodeKey::run(run_id(4))) && down2.contains(&NodeKey::run(run_id(5))), "{down2:?}");
    let up5 = keys(&g.upstream(&NodeKey::run(run_id(5)), &Query::depth(1)).unwrap());
    assert!(up5.contains(&a2) && !up5.contains(&v("a", VersionRef::Run(run_id(5)))), "{up5:?}");
    assert!(g.downstream(&v("a", VersionRef::Declared("v0".into())), &Query::all()).is_ok());
    let mut reversed = events.clone();
    reversed.reverse();
    assert_eq!(graph_of(&reversed).snapshot(None), g.snapshot(None));
    // Before run 1 existed, a read of `a` resolves to the base version.
    let early = graph_of(&[run_event(7, "r", "COMPLETE", 1, vec![ds("a", None, None)], vec![])]);
    assert!(early.lookup_for_test(&v("a", VersionRef::Base)));
}

trait LookupForTest {
    fn lookup_for_test(&self, k: &NodeKey) -> bool;
}
impl LookupForTest for Graph {
    fn lookup_for_test(&self, k: &NodeKey) -> bool {
        self.downstream(k, &Query::depth(0)).is_ok()
    }
}

#[test]
fn run_state_is_the_latest_event_time_not_the_last_received() {
    let mk = |t: &str, s: i64| run_event(1, "j", t, s, vec![], vec![]);
    let g = graph_of(&[mk("START", 10), mk("COMPLETE", 20), mk("RUNNING", 15), mk("OTHER", 30)]);
    assert_eq!(g.run_info(run_id(1), &Query::all()).unwrap().state, Some(EventType::Complete));
    assert_eq!(g.run_info(run_id(1), &Query::as_of(time_at(12))).unwrap().state, Some(EventType::Start));
    // Same instant: the more final, more pessimistic state wins, whatever the order.
    let a = graph_of(&[mk("COMPLETE", 20), mk("FAIL", 20)]);
    let b = graph_of(&[mk("FAIL", 20), mk("COMPLETE", 20)]);
    assert_eq!(a.run_info(run_id(1), &Query::all()).unwrap().state, Some(EventType::Fail));
    assert_eq!(b.run_info(run_id(1), &Query::all()).unwrap().state, Some(EventType::Fail));
    let mut g = Graph::new();
    let f = facts(&mk("START", 1));
    assert!(!g.apply(&f).duplicate);
    assert!(g.apply(&f).duplicate);
}

fn pipeline() -> Vec<serde_json::Value> {
    let digest = "sha256:".to_owned() + &"ab".repeat(32);
    let image = "sha256:".to_owned() + &"cd".repeat(32);
    let mut train = run_event(
        2,
        "train",
        "COMPLETE",
        20,
        vec![ds("clean", None, None)],
        vec![ds("model", Some("3"), Some(json!({"kind": "modelVersion"})))],
    );
    train["run"]["facets"]["custody"] = json!({"containerImageDigest": image, "parameters": {"lr": 0.01}});
    train["job"]["facets"]["sourceCodeLocation"] =
        json!({"type": "git", "url": "https://git.example/ml", "version": "abc123"});
    vec![
        run_event(
            1,
            "clean",
            "COMPLETE",
            10,
            vec![ds("raw", Some("1"), Some(json!({"classification": "restricted", "contentDigest": digest})))],
            vec![ds("clean", None, None)],
        ),
        train,
        run_event(
            3,
            "deploy",
            "COMPLETE",
            30,
            vec![ds("model", Some("3"), None)],
            vec![ds("endpoint", Some("prod"), Some(json!({"kind": "deployment", "live": true})))],
        ),
        run_event(
            4,
            "deploy",
            "COMPLETE",
            31,
            vec![ds("model", Some("3"), None)],
            vec![ds("endpoint", Some("canary"), Some(json!({"kind": "deployment", "live": false})))],
        ),
        run_event(5, "anon", "COMPLETE", 40, vec![ds("raw", Some("1"), None)], vec![ds("stats", None, None)]),
        run_event(
            6,
            "warm",
            "COMPLETE",
            41,
            vec![ds("clean", None, None)],
            vec![ds("cache", None, Some(json!({"kind": "cache"})))],
        ),
        run_event(
            7,
            "join",
            "COMPLETE",
            42,
            vec![ds("clean", None, None), ds("ref", Some("1"), None)],
            vec![ds("joined", None, None)],
        ),
    ]
}

#[test]
fn impact_and_what_trained() {
    let g = graph_of(&pipeline());
    let raw = v("raw", VersionRef::Declared("1".into()));
    let impact = g.impact(&raw, &Query::all()).unwrap();
    assert_eq!(impact.model_versions, vec![v("model", VersionRef::Declared("3".into()))]);
    assert_eq!(impact.live_deployments, vec![v("endpoint", VersionRef::Declared("prod".into()))]);
    assert_eq!(impact.retired_deployments, vec![v("endpoint", VersionRef::Declared("canary".into()))]);
    assert_eq!(impact.caches.len(), 1);
    assert_eq!(impact.datasets.len(), 3, "{:?}", impact.datasets); // clean, stats, joined
    // As of before training, no model.
    let before = g.impact(&raw, &Query::as_of(time_at(15))).unwrap();
    assert!(before.model_versions.is_empty() && before.datasets.len() == 1);
    let t = g.what_trained(&v("model", VersionRef::Declared("3".into())), &Query::all()).unwrap();
    let inputs: Vec<&NodeKey> = t.inputs.iter().map(|i| &i.node.key).collect();
    assert!(inputs.contains(&&raw) && inputs.len() == 2, "{inputs:?}");
    let src = t.inputs.iter().find(|i| i.node.key == raw).unwrap();
    assert!(src.source && src.digest.is_some());
    assert!(t.code_commits.contains("abc123"));
    assert_eq!(t.image_digests.len(), 1);
    assert_eq!(t.runs[0].parameters.get("lr").map(String::as_str), Some("0.01"));
    assert!(t.jobs.contains(&JobName::new("etl", "clean")));
    let up = g.upstream(&v("model", VersionRef::Declared("3".into())), &Query::all()).unwrap();
    let trained = up.reached.iter().find(|r| r.node.kind == NodeKind::Run).unwrap();
    assert_eq!(trained.via.kind, EdgeKind::TrainedOn);
    let path = up.path_to(&raw).unwrap();
    assert_eq!(path.len(), 4);
}

#[test]
fn classification_propagates_unless_an_approved_anonymizer_intervenes() {
    let mut g = graph_of(&pipeline());
    let model = v("model", VersionRef::Declared("3".into()));
    let stats = v("stats", VersionRef::Run(run_id(5)));
    let e = g.effective_classification(&model).unwrap();
    assert_eq!(e.level, Classification::Restricted);
    assert_eq!(e.origin, Origin::Inherited { from: v("raw", VersionRef::Declared("1".into())) });
    assert_eq!(e.chain.len(), 4);
    assert_eq!(e.chain[0].from, v("raw", VersionRef::Declared("1".into())));
    assert_eq!(g.effective_classification(&stats).unwrap().level, Classification::Restricted);
    let decl = TransformDeclaration {
        kind: TransformKind::Aggregating,
        approval: None,
        approved: false,
        justification: "k ≥ 50 aggregates".into(),
    };
    g.set_transform(&JobName::new("etl", "anon"), Some(decl.clone()));
    assert_eq!(g.effective_classification(&stats).unwrap().level, Classification::Restricted, "not approved yet");
    g.set_transform(&JobName::new("etl", "anon"), Some(TransformDeclaration { approved: true, ..decl }));
    let e = g.effective_classification(&stats).unwrap();
    assert_eq!((e.level, e.origin.clone()), (Classification::Internal, Origin::Default));
    assert_eq!(e.blocked_by, vec![JobName::new("etl", "anon")]);
    // A registry classification of the output applies.
    g.register_dataset(&DatasetName::new("s3://lake", "stats"), Classification::Confidential);
    assert_eq!(g.effective_classification(&stats).unwrap().level, Classification::Confidential);
    assert_eq!(g.effective_classification(&stats).unwrap().origin, Origin::Declared);
    // Registering the source lower than its facet does not lower it (max of the two).
    g.register_dataset(&DatasetName::new("s3://lake", "raw"), Classification::Public);
    assert_eq!(g.effective_classification(&model).unwrap().level, Classification::Restricted);
    // An undeclared source is Internal by default.
    let r = g.effective_classification(&v("ref", VersionRef::Declared("1".into()))).unwrap();
    assert_eq!((r.level, r.origin), (Classification::Internal, Origin::Default));
}

#[test]
fn erasure_report_suggests_actions() {
    let mut g = graph_of(&pipeline());
    g.set_transform(
        &JobName::new("etl", "anon"),
        Some(TransformDeclaration {
            kind: TransformKind::Anonymizing,
            approval: None,
            approved: true,
            justification: "salted hashes".into(),
        }),
    );
    let r = g.erasure_report(&v("raw", VersionRef::Declared("1".into())), &Query::all()).unwrap();
    let action = |name: &str| {
        r.items.iter().find(|i| matches!(&i.node.key, NodeKey::DatasetVersion { dataset, version } if dataset.name == name && !matches!(version, VersionRef::Declared(v) if v == "canary"))).map(|i| i.action.clone()).unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(action("clean"), SuggestedAction::Delete);
    assert_eq!(action("joined"), SuggestedAction::ReDerive);
    assert_eq!(action("cache"), SuggestedAction::Delete);
    assert_eq!(action("model"), SuggestedAction::Retrain);
    assert_eq!(action("endpoint"), SuggestedAction::RetireOrReplace);
    assert!(
        matches!(action("stats"), SuggestedAction::AcceptWithJustification { justification, .. } if justification == "salted hashes")
    );
    let model = r.items.iter().find(|i| i.node.kind == NodeKind::ModelVersion).unwrap();
    assert_eq!(model.path.len(), 4);
    assert!(serde_json::to_string(&r).is_ok());
}

#[test]
fn erasing_every_input_of_a_join_deletes_it_rather_than_re_deriving() {
    let g = graph_of(&pipeline());
    let raw = v("raw", VersionRef::Declared("1".into()));
    let reference = v("ref", VersionRef::Declared("1".into()));
    let joined = |r: &custody_lineage::ErasureReport| {
        r.items
            .iter()
            .find(|i| matches!(&i.node.key, NodeKey::DatasetVersion { dataset, .. } if dataset.name == "joined"))
            .map(|i| i.action.clone())
    };
    let alone = g.erasure_report(&raw, &Query::all()).unwrap();
    assert_eq!(joined(&alone), Some(SuggestedAction::ReDerive));
    let both = g.erasure_report_of(&[raw.clone(), reference.clone()], &Query::all()).unwrap();
    assert_eq!(joined(&both), Some(SuggestedAction::Delete));
    assert_eq!(both.sources.len(), 2);
    // Every item once, and neither source listed as an item.
    let mut keys: Vec<_> = both.items.iter().map(|i| i.node.key.clone()).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    assert!(!keys.contains(&raw) && !keys.contains(&reference));
    assert!(g.erasure_report_of(&[], &Query::all()).is_err());
}

#[test]
fn column_lineage_is_followed_transitively() {
    let mut mid = ds("mid", None, None);
    mid["facets"]["columnLineage"] = json!({"fields": {
        "full_name": {"inputFields": [
            {"namespace": "s3://lake", "name": "users", "field": "first", "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION"}]},
            {"namespace": "s3://lake", "name": "users", "field": "last", "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": true}]},
            {"namespace": "s3://lake", "name": "ids", "field": "id", "transformations": [{"type": "INDIRECT", "subtype": "JOIN"}]}
        ]}
    }});
    let mut out = ds("out", None, None);
    out["facets"]["columnLineage"] = json!({"fields": {
        "who": {"inputFields": [{"namespace": "s3://lake", "name": "mid", "field": "full_name"}]}
    }});
    let g = graph_of(&[
        run_event(1, "a", "COMPLETE", 10, vec![ds("users", Some("1"), None), ds("ids", Some("1"), None)], vec![mid]),
        run_event(2, "b", "COMPLETE", 20, vec![ds("mid", None, None)], vec![out]),
    ]);
    let cols = g.column_upstream(&v("out", VersionRef::Run(run_id(2))), "who", &Query::all()).unwrap();
    assert_eq!(cols.len(), 4, "{cols:?}");
    assert!(cols.iter().any(|c| c.input_field == "last" && c.masking && c.direct));
    assert!(cols.iter().any(|c| c.input_field == "id" && c.indirect && !c.direct));
    assert!(cols.iter().all(|c| c.input != v("mid", VersionRef::Base)));
    let down = g.downstream(&v("users", VersionRef::Declared("1".into())), &Query::all()).unwrap();
    assert_eq!(down.columns.len(), 3, "{:?}", down.columns);
}

#[test]
fn cycles_are_stored_reported_and_never_loop() {
    let g = graph_of(&[
        run_event(1, "ab", "COMPLETE", 10, vec![ds("a", Some("1"), None)], vec![ds("b", Some("1"), None)]),
        run_event(2, "ba", "COMPLETE", 20, vec![ds("b", Some("1"), None)], vec![ds("a", Some("1"), None)]),
    ]);
    let a = v("a", VersionRef::Declared("1".into()));
    let down = g.downstream(&a, &Query::all()).unwrap();
    assert_eq!(down.reached.len(), 3);
    assert_eq!(down.cycles.len(), 1);
    assert_eq!(g.cycles().len(), 1);
    assert_eq!(g.cycles()[0].len(), 4);
    assert!(g.effective_classification(&a).is_ok());
    assert_eq!(g.erasure_report(&a, &Query::all()).unwrap().items.len(), 1);
}

#[test]
fn completeness_kpi() {
    let digest = |c: &str| "sha256:".to_owned() + &c.repeat(64);
    let mut g = graph_of(&[
        run_event(
            1,
            "train",
            "COMPLETE",
            10,
            vec![ds("a", None, Some(json!({"contentDigest": digest("a")})))],
            vec![ds("m1", Some("1"), Some(json!({"kind": "modelVersion"})))],
        ),
        run_event(
            2,
            "train",
            "COMPLETE",
            20,
            vec![ds("b", Some("1"), None)],
            vec![ds("m2", Some("1"), Some(json!({"kind": "modelVersion"})))],
        ),
    ]);
    let k = g.completeness(&Query::all());
    assert_eq!((k.model_versions, k.fully_traced), (2, 0));
    g.register_dataset(&DatasetName::new("s3://lake", "a"), Classification::Internal);
    // Registered dataset, but not this version: still untraced.
    g.register_dataset_version(&DatasetName::new("s3://lake", "a"), digest("b").parse().unwrap());
    assert_eq!(g.completeness(&Query::all()).fully_traced, 0);
    g.register_dataset_version(&DatasetName::new("s3://lake", "a"), digest("a").parse().unwrap());
    let k = g.completeness(&Query::all());
    assert_eq!(k.fully_traced, 1);
    assert!((k.share - 0.5).abs() < 1e-9);
    assert_eq!(k.untraced[0].undigested, vec![v("b", VersionRef::Declared("1".into()))]);
    assert_eq!(g.completeness(&Query::as_of(time_at(15))).model_versions, 1);
}

#[test]
fn dataset_and_job_events_assert_static_lineage() {
    let dataset_event = json!({
        "eventTime": at(5), "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "s3://lake", "name": "view", "facets": {"columnLineage": {"fields": {
            "x": {"inputFields": [{"namespace": "s3://lake", "name": "base", "field": "x"}]}}}}}
    });
    let job_event = json!({
        "eventTime": at(6), "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "etl", "name": "designed"},
        "inputs": [{"namespace": "s3://lake", "name": "view"}],
        "outputs": [{"namespace": "s3://lake", "name": "report"}]
    });
    let g = graph_of(&[dataset_event, job_event]);
    let down = g.downstream(&v("base", VersionRef::Base), &Query::all()).unwrap();
    let k = keys(&down);
    assert!(k.contains(&v("view", VersionRef::Base)) && k.contains(&v("report", VersionRef::Base)), "{k:?}");
    assert_eq!(down.reached[0].via.kind, EdgeKind::DerivedFrom);
}

#[test]
fn dataset_names_follow_the_openlineage_naming_conventions() {
    let n = |u: &str| DatasetName::from_uri(u).map(|d| (d.namespace, d.name));
    let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
    assert_eq!(n("s3://bucket/raw/users.parquet"), pair("s3://bucket", "raw/users.parquet"));
    assert_eq!(n("postgres://db:5432/shop.public.orders"), pair("postgres://db:5432", "shop.public.orders"));
    assert_eq!(n("gs://b/x?versionId=3"), pair("gs://b", "x"));
    assert_eq!(n("file:///data/users.csv"), pair("file", "/data/users.csv"));
    assert_eq!(n("file://host/data/users.csv"), pair("file", "/data/users.csv"));
    for none in ["s3://bucket", "s3://bucket/", "urn:isbn:123", "file:///", "://x/y", "1s3://a/b", "nocolon"] {
        assert_eq!(n(none), None, "{none}");
    }
}
