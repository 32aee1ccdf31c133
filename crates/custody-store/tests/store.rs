//! The store's behaviour, run against every backend (SQLite, and PostgreSQL under scripts/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use custody_core::*;
use custody_store::{AuditQuery, Backend, DatasetQuery, Store, StoreError, StoreOptions, testing};

fn draft(actor: &str, action: Action) -> AuditDraft {
    AuditDraft {
        actor: actor.into(),
        action,
        resource: ResourceRef::new("test", "x"),
        project: None,
        region: None,
        decision: Decision::Allow,
        policy_hash: "p".into(),
        request_id: RequestId::new(),
        outcome: Outcome::Success,
        details: serde_json::json!({}),
    }
}

fn new_dataset(name: &str, c: Classification) -> NewDataset {
    NewDataset {
        name: Name::new(name).unwrap(),
        owner: None,
        licence: "CC-BY-4.0".into(),
        source_uri: "s3://bucket/data".into(),
        classification: c,
        region: Region::new("eu-west-1").unwrap(),
        retention: RetentionPeriod::parse("365d").unwrap(),
        intended_use: UseList::new(vec!["fraud scoring".into()]).unwrap(),
        prohibited_use: UseList::default(),
    }
}

fn version(label: &str, byte: u8) -> NewDatasetVersion {
    NewDatasetVersion {
        label: VersionLabel::new(label).unwrap(),
        digest: Sha256Digest::from_bytes([byte; 32]),
        size_bytes: 1024,
        location: Some("s3://bucket/data/v".into()),
    }
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in testing::all().await {
        let store = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        assert_eq!(store.backend(), db.backend);
        f(store.clone()).await;
        store.close().await;
    }
}

async fn project(store: &Store, name: &str) -> Project {
    let new = NewProject { name: Name::new(name).unwrap(), description: "d".into() };
    store.create_project(draft("admin", Action::ProjectCreate), new, "admin".into()).await.unwrap().0
}

#[tokio::test]
async fn migrations_are_idempotent_and_reopen_keeps_data() {
    for db in testing::all().await {
        let store = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        project(&store, "p1").await;
        store.close().await;
        let again = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        assert_eq!(again.projects().await.unwrap().len(), 1);
        assert_eq!(again.audit_len().await.unwrap(), 1);
        again.close().await;
    }
}

#[tokio::test]
async fn a_failed_write_changes_nothing_but_its_audit_record() {
    each_backend(|store| async move {
        project(&store, "p1").await;
        let dup = NewProject { name: Name::new("p1").unwrap(), description: String::new() };
        let err = store.create_project(draft("admin", Action::ProjectCreate), dup, "admin".into()).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { field: "name", .. }), "{err}");
        assert_eq!(store.projects().await.unwrap().len(), 1);
        let events = store.audit_events(&AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].outcome, Outcome::Success);
        assert_eq!(events[1].outcome, Outcome::Rejected);
        assert!(events[1].details["error"].as_str().unwrap().contains("p1"));
    })
    .await;
}

#[tokio::test]
async fn datasets_versions_and_search() {
    each_backend(|store| async move {
        let p = project(&store, "fraud").await;
        let (d, ev) = store
            .register_dataset(
                draft("alice", Action::DatasetRegister),
                &p,
                new_dataset("transactions", Classification::Confidential),
                "alice".into(),
            )
            .await
            .unwrap();
        assert_eq!(d.owner, "alice");
        assert_eq!(ev.resource, ResourceRef::new("dataset", d.id));
        let got = store.dataset(d.id).await.unwrap();
        assert_eq!(got, d);
        assert_eq!(store.dataset_by_name(&p.name, &d.name).await.unwrap().id, d.id);

        let dup = store
            .register_dataset(
                draft("alice", Action::DatasetRegister),
                &p,
                new_dataset("transactions", Classification::Public),
                "alice".into(),
            )
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict { field: "name", .. }));

        let v1 = store
            .add_dataset_version(draft("alice", Action::DatasetVersionCreate), d.id, version("v1", 1), "alice".into())
            .await
            .unwrap()
            .0;
        let same_label = store
            .add_dataset_version(draft("alice", Action::DatasetVersionCreate), d.id, version("v1", 2), "alice".into())
            .await
            .unwrap_err();
        assert!(matches!(same_label, StoreError::Conflict { field: "label", .. }), "{same_label}");
        let same_digest = store
            .add_dataset_version(draft("alice", Action::DatasetVersionCreate), d.id, version("v2", 1), "alice".into())
            .await
            .unwrap_err();
        assert!(matches!(same_digest, StoreError::Conflict { field: "digest", .. }), "{same_digest}");
        store
            .add_dataset_version(draft("alice", Action::DatasetVersionCreate), d.id, version("v2", 2), "alice".into())
            .await
            .unwrap();
        let versions = store.dataset_versions(d.id).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0], v1);

        store
            .register_dataset(
                draft("bob", Action::DatasetRegister),
                &p,
                new_dataset("clicks", Classification::Public),
                "bob".into(),
            )
            .await
            .unwrap();
        let all = store.datasets(&p, &DatasetQuery { limit: 100, ..Default::default() }).await.unwrap();
        assert_eq!(all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["clicks", "transactions"]);
        let public = store
            .datasets(
                &p,
                &DatasetQuery { classification: Some(Classification::Public), limit: 100, ..Default::default() },
            )
            .await
            .unwrap();
        assert_eq!(public.len(), 1);
        let like = store
            .datasets(&p, &DatasetQuery { name_contains: Some("trans".into()), limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(like.len(), 1);
        let wildcard = store
            .datasets(&p, &DatasetQuery { name_contains: Some("%".into()), limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert!(wildcard.is_empty(), "LIKE wildcards in the search text are literal");
        let page = store
            .datasets(&p, &DatasetQuery { after: Some(Name::new("clicks").unwrap()), limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn classification_raise_lower_and_approval() {
    each_backend(|store| async move {
        let p = project(&store, "fraud").await;
        let d = store
            .register_dataset(
                draft("alice", Action::DatasetRegister),
                &p,
                new_dataset("tx", Classification::Internal),
                "alice".into(),
            )
            .await
            .unwrap()
            .0;
        let not_raise = store
            .raise_classification(
                draft("alice", Action::DatasetClassificationRaise),
                d.id,
                Classification::Public,
                "alice".into(),
            )
            .await
            .unwrap_err();
        assert!(matches!(not_raise, StoreError::Conflict { .. }));
        let raised = store
            .raise_classification(
                draft("alice", Action::DatasetClassificationRaise),
                d.id,
                Classification::Restricted,
                "alice".into(),
            )
            .await
            .unwrap()
            .0;
        assert_eq!(raised.classification, Classification::Restricted);
        assert_eq!(store.access_of("alice").await.unwrap(), vec![d.id]);

        let (a, _) = store
            .request_lower_classification(
                draft("alice", Action::DatasetClassificationLower),
                d.id,
                Classification::Internal,
                "anonymised".into(),
                Some("CHG-1".into()),
                "alice".into(),
            )
            .await
            .unwrap();
        assert_eq!(a.status, ApprovalStatus::Pending);
        assert_eq!(
            store.dataset(d.id).await.unwrap().classification,
            Classification::Restricted,
            "nothing changes before approval"
        );
        let twice = store
            .request_lower_classification(
                draft("alice", Action::DatasetClassificationLower),
                d.id,
                Classification::Public,
                "x".into(),
                None,
                "alice".into(),
            )
            .await
            .unwrap_err();
        assert!(matches!(twice, StoreError::Conflict { .. }));
        let own = store
            .decide_approval(draft("alice", Action::ApprovalDecide), a.id, true, "alice".into(), None)
            .await
            .unwrap_err();
        assert!(own.to_string().contains("own request"), "{own}");
        let done = store
            .decide_approval(draft("carol", Action::ApprovalDecide), a.id, true, "carol".into(), Some("ok".into()))
            .await
            .unwrap()
            .0;
        assert_eq!(done.status, ApprovalStatus::Approved);
        assert_eq!(done.decided_by.as_deref(), Some("carol"));
        assert_eq!(store.dataset(d.id).await.unwrap().classification, Classification::Internal);
        let again = store
            .decide_approval(draft("carol", Action::ApprovalDecide), a.id, false, "carol".into(), None)
            .await
            .unwrap_err();
        assert!(matches!(again, StoreError::Conflict { .. }));
        assert_eq!(store.approvals(&p, Some(ApprovalStatus::Approved)).await.unwrap().len(), 1);
        assert_eq!(store.approval(a.id).await.unwrap(), done);
    })
    .await;
}

fn new_token(project: &str, allowed_regions: Option<Vec<Region>>) -> custody_store::NewToken {
    custody_store::NewToken {
        id: TokenId::new(),
        name: "ci".into(),
        principal: "pipeline".into(),
        kind: PrincipalKind::Workload,
        grant: Grant { scope: ProjectScope::parse(project).unwrap(), role: Role::DataScientist },
        secret_hash: "ab".repeat(32),
        allowed_regions,
        expires_at: None,
        created_by: "admin".into(),
    }
}

#[tokio::test]
async fn tokens_create_list_revoke() {
    each_backend(|store| async move {
        let new = new_token("fraud", Some(vec![Region::new("eu-west-1").unwrap()]));
        let id = new.id;
        assert!(!store.has_tokens().await.unwrap());
        let (t, _) = store.create_token(draft("admin", Action::TokenCreate), new).await.unwrap();
        let rec = store.token(id).await.unwrap().unwrap();
        assert_eq!(rec.token, t);
        assert_eq!(rec.secret_hash, "ab".repeat(32));
        assert_eq!(store.tokens(Some(&ProjectScope::parse("fraud").unwrap())).await.unwrap().len(), 1);
        assert!(store.tokens(Some(&ProjectScope::All)).await.unwrap().is_empty());
        let revoked = store.revoke_token(draft("admin", Action::TokenRevoke), id).await.unwrap().0;
        assert!(revoked.revoked_at.is_some());
        assert!(store.revoke_token(draft("admin", Action::TokenRevoke), id).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn concurrent_writes_get_gapless_sequence_numbers() {
    each_backend(|store| async move {
        let p = project(&store, "p").await;
        let mut tasks = Vec::new();
        for i in 0..300 {
            let store = store.clone();
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                // Every third write fails on a duplicate name: its audit record must still land.
                let name = if i % 3 == 0 { "dup".to_owned() } else { format!("d{i}") };
                let r = store
                    .register_dataset(
                        draft("w", Action::DatasetRegister),
                        &p,
                        new_dataset(&name, Classification::Public),
                        "w".into(),
                    )
                    .await;
                (r.is_ok(), i)
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap().0);
        }
        let n = store.audit_len().await.unwrap();
        assert_eq!(n, 301);
        let mut seqs = Vec::new();
        let mut from = 0;
        loop {
            let page =
                store.audit_events(&AuditQuery { from_seq: from, limit: 1000, ..Default::default() }).await.unwrap();
            if page.is_empty() {
                break;
            }
            from = page.last().unwrap().seq + 1;
            seqs.extend(page.iter().map(|e| e.seq));
        }
        assert_eq!(seqs, (0..301).collect::<Vec<_>>());
        let datasets = store.datasets(&p, &DatasetQuery { limit: 500, ..Default::default() }).await.unwrap();
        assert_eq!(datasets.len(), ok);
        assert_eq!(ok, 201, "99 of the 100 writes of `dup` were refused");
    })
    .await;
}

#[tokio::test]
async fn two_stores_on_one_database_share_one_sequence() {
    // Several server replicas on one PostgreSQL (and, for SQLite, two processes' worth of
    // connections on one file) must never hand out a sequence number twice.
    for db in testing::all().await {
        let a = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        let b = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move { s.record(draft("r", Action::AuditRead)).await.unwrap().seq }));
        }
        let mut seqs: Vec<u64> = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (0..200).collect::<Vec<_>>(), "{:?}", db.backend);
        a.close().await;
        b.close().await;
    }
}

/// Recomputes every leaf hash from the records as read back (an independent path through
/// the canonical serialization) and the root over them, and compares with what the store keeps.
async fn assert_log_verifies(store: &Store) {
    let (size, root) = store.audit_root().await.unwrap();
    let mut leaves = Vec::new();
    let mut from = 0;
    loop {
        let page = store.audit_events(&AuditQuery { from_seq: from, limit: 1000, ..Default::default() }).await.unwrap();
        if page.is_empty() {
            break;
        }
        let texts = store.audit_details_texts(from, 1000).await.unwrap();
        for (e, (seq, details)) in page.iter().zip(&texts) {
            assert_eq!(e.seq, *seq);
            assert_eq!(serde_json::from_str::<serde_json::Value>(details).unwrap(), e.details);
            let leaf = custody_audit::leaf_hash(&custody_store::canonical_record(e, details));
            assert_eq!(hex::encode(leaf), e.leaf_hash, "record {}", e.seq);
            leaves.push(leaf);
        }
        from = page.last().unwrap().seq + 1;
    }
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(hex::encode(custody_audit::root(&leaves)), root);
    assert_proofs_match(store, &leaves).await;
}

/// Proofs, past roots and frontiers read from the stored subtrees equal those computed from
/// all the leaves.
async fn assert_proofs_match(store: &Store, leaves: &[custody_audit::Hash]) {
    let n = leaves.len() as u64;
    for size in [1, 2, 3, n / 3, n / 2 + 1, n - 1, n].into_iter().filter(|s| (1..=n).contains(s)) {
        let prefix = &leaves[..size as usize];
        assert_eq!(store.audit_root_at(size).await.unwrap(), custody_audit::root(prefix));
        let mut frontier = custody_audit::MerkleFrontier::new();
        prefix.iter().for_each(|l| frontier.push(*l));
        assert_eq!(store.audit_frontier(size).await.unwrap(), frontier.nodes());
        for seq in [0, size / 2, size - 1] {
            let p = store.audit_inclusion(seq, size).await.unwrap();
            assert_eq!(p.proof, custody_audit::inclusion_proof(prefix, seq).unwrap(), "seq {seq} size {size}");
            assert_eq!((p.leaf_hash, p.root), (leaves[seq as usize], custody_audit::root(prefix)));
        }
        for from in [1, size / 2 + 1, size] {
            let c = store.audit_consistency(from, size).await.unwrap();
            assert_eq!(c.proof, custody_audit::consistency_proof(prefix, from).unwrap(), "{from}..{size}");
            assert_eq!(c.from_root, custody_audit::root(&leaves[..from as usize]));
        }
    }
    assert!(matches!(store.audit_inclusion(n, n).await, Err(StoreError::OutOfRange { .. })));
    assert!(matches!(store.audit_inclusion(0, n + 1).await, Err(StoreError::OutOfRange { .. })));
    assert!(matches!(store.audit_consistency(0, n).await, Err(StoreError::OutOfRange { .. })));
}

/// Every stored checkpoint is signed by `key`, and its root is the root of its prefix of
/// `leaves`: the log never signed two inconsistent trees.
async fn assert_checkpoints_match(store: &Store, key: &custody_audit::Verifier, leaves: &[custody_audit::Hash]) {
    let checkpoints = store.audit_checkpoints(0, 10_000).await.unwrap();
    assert!(!checkpoints.is_empty());
    let mut last = 0;
    for c in &checkpoints {
        let opened = custody_audit::Checkpoint::open(&c.note, std::slice::from_ref(key)).unwrap();
        assert_eq!((opened.size, hex::encode(opened.root)), (c.size, c.root.clone()));
        assert_eq!(opened.root, custody_audit::root(&leaves[..c.size as usize]), "checkpoint at {}", c.size);
        assert!(c.size > last);
        last = c.size;
    }
    assert_eq!(store.audit_latest_checkpoint().await.unwrap().unwrap().size, leaves.len() as u64);
}

/// Options that sign a checkpoint in every batch, with a signer new to any log (it remembers
/// what it signed of one log only).
fn signing_every_batch(key: &std::sync::Arc<custody_audit::Signer>) -> StoreOptions {
    let signer = std::sync::Arc::new(custody_store::LogSigner::new(key.clone(), None));
    let signing = custody_store::CheckpointSigning { signer, interval: std::time::Duration::ZERO };
    StoreOptions { checkpoints: Some(signing), ..StoreOptions::default() }
}

/// A batch of more audit records than one INSERT takes (315 rows on SQLite, 100 on PostgreSQL) is
/// stored whole: on SQLite its statements go as one query whose positional parameters run on
/// from statement to statement.
#[tokio::test]
async fn a_batch_larger_than_one_insert_is_stored_whole() {
    let signer = std::sync::Arc::new(custody_audit::Signer::generate("custody.test/audit").unwrap());
    for db in testing::all().await {
        let options = StoreOptions { max_batch: 4096, ..signing_every_batch(&signer) };
        let store = Store::open(&db.url, options).await.unwrap();
        let tasks: Vec<_> = (0..3000)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut d = draft(&format!("actor-{i}"), Action::AuditRead);
                    d.details = serde_json::json!({ "i": i, "text": "x".repeat(i % 50) });
                    store.record(d).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.audit_len().await.unwrap(), 3000);
        assert_log_verifies(&store).await;
        let leaves = store.audit_leaf_hashes(3000).await.unwrap();
        assert_checkpoints_match(&store, &signer.verifier(), &leaves).await;
        // Each batch signs a checkpoint, so their sizes tell the batches apart.
        let sizes: Vec<u64> = store.audit_checkpoints(0, 10_000).await.unwrap().iter().map(|c| c.size).collect();
        let largest =
            std::iter::once(0).chain(sizes.iter().copied()).collect::<Vec<_>>().windows(2).map(|w| w[1] - w[0]).max();
        assert!(largest > Some(315), "{:?}: no batch needed two audit INSERTs ({sizes:?})", db.backend);
        store.close().await;
    }
}

#[tokio::test]
async fn the_merkle_root_covers_every_record_under_concurrency() {
    let signer = std::sync::Arc::new(custody_audit::Signer::generate("custody.test/audit").unwrap());
    for db in testing::all().await {
        // Each database is another log: a signer remembers what it signed of one log only.
        let options = signing_every_batch(&signer);
        let a = Store::open(&db.url, options.clone()).await.unwrap();
        let b = Store::open(&db.url, options.clone()).await.unwrap();
        assert_eq!(a.audit_root().await.unwrap(), (0, hex::encode(custody_audit::EMPTY_ROOT)));
        let p = project(&a, "p").await;
        let mut tasks = Vec::new();
        for i in 0..240 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                if i % 4 == 0 {
                    s.record(draft("r", Action::AuditRead)).await.map(|_| ())
                } else {
                    let name = if i % 5 == 0 { "dup".to_owned() } else { format!("d{i}") };
                    s.register_dataset(
                        draft("w", Action::DatasetRegister),
                        &p,
                        new_dataset(&name, Classification::Public),
                        "w".into(),
                    )
                    .await
                    .map(|_| ())
                }
            }));
        }
        for t in tasks {
            let _ = t.await.unwrap();
        }
        assert_eq!(a.audit_len().await.unwrap(), 241);
        assert_log_verifies(&a).await;
        let leaves = a.audit_leaf_hashes(241).await.unwrap();
        assert_checkpoints_match(&a, &signer.verifier(), &leaves).await;
        a.close().await;
        b.close().await;
        // A log whose subtree hashes are lost (or that predates them) gets them back on open.
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
        sqlx::query("DELETE FROM audit_nodes WHERE node > 3").execute(&mut conn).await.unwrap();
        let reopened = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        assert_proofs_match(&reopened, &leaves).await;
        reopened.close().await;
    }
}

#[tokio::test]
async fn interval_checkpoints_cover_the_committed_log() {
    let signer = std::sync::Arc::new(custody_audit::Signer::generate("custody.test/audit").unwrap());
    let interval = std::time::Duration::from_millis(20);
    for db in testing::all().await {
        let signing = custody_store::CheckpointSigning {
            signer: std::sync::Arc::new(custody_store::LogSigner::new(signer.clone(), None)),
            interval,
        };
        let store = Store::open(&db.url, StoreOptions { checkpoints: Some(signing.clone()), ..Default::default() })
            .await
            .unwrap();
        for _ in 0..50 {
            store.record(draft("r", Action::AuditRead)).await.unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.audit_latest_checkpoint().await.unwrap().map(|c| c.size) != Some(50) {
            assert!(std::time::Instant::now() < deadline, "no checkpoint of the whole log");
            tokio::time::sleep(interval).await;
        }
        let leaves = store.audit_leaf_hashes(50).await.unwrap();
        assert_checkpoints_match(&store, &signer.verifier(), &leaves).await;
        store.close().await;
    }
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_the_cache_of_the_others() {
    // PostgreSQL replicas cache tokens and datasets; a revocation, a grant or a classification
    // change made through one replica must stop being served stale by the others.
    let Some(db) = testing::postgres().await else { return };
    let a = Store::open(&db.url, StoreOptions::default()).await.unwrap();
    let b = Store::open(&db.url, StoreOptions::default()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(a.caches_facts() && b.caches_facts()) {
        assert!(std::time::Instant::now() < deadline, "the invalidation listeners never came up");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let p = project(&a, "p").await;
    let (d, _) = a
        .register_dataset(
            draft("o", Action::DatasetRegister),
            &p,
            new_dataset("d", Classification::Internal),
            "o".into(),
        )
        .await
        .unwrap();
    let new = new_token("p", None);
    let id = new.id;
    a.create_token(draft("admin", Action::TokenCreate), new).await.unwrap();
    // Warm a's cache twice, so the second answer comes from it.
    for _ in 0..2 {
        assert!(a.token_with_access(id).await.unwrap().unwrap().0.token.revoked_at.is_none());
        assert_eq!(a.dataset(d.id).await.unwrap().classification, Classification::Internal);
    }
    b.revoke_token(draft("admin", Action::TokenRevoke), id).await.unwrap();
    b.raise_classification(
        draft("o", Action::DatasetClassificationRaise),
        d.id,
        Classification::Restricted,
        "o".into(),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let revoked = a.token_with_access(id).await.unwrap().unwrap().0.token.revoked_at.is_some();
        let raised = a.dataset(d.id).await.unwrap().classification == Classification::Restricted;
        if revoked && raised {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "replica a still serves the old facts");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // The replica that made the change never serves the old value, not even once.
    assert!(b.token_with_access(id).await.unwrap().unwrap().0.token.revoked_at.is_some());
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn stores_of_one_process_share_the_sqlite_cache_and_never_serve_a_revoked_token() {
    // On a SQLite file the process owns, tokens are cached; every store of the process on the
    // file shares the cache, so a revocation through any of them is seen at once by all.
    let db = testing::sqlite();
    let a = Store::open(&db.url, StoreOptions::default()).await.unwrap();
    let b = Store::open(&db.url, StoreOptions::default()).await.unwrap();
    assert!(a.caches_facts() && b.caches_facts());
    project(&a, "p").await;
    let new = new_token("p", None);
    let id = new.id;
    a.create_token(draft("admin", Action::TokenCreate), new).await.unwrap();
    for s in [&a, &b, &a, &b] {
        assert!(s.token_with_access(id).await.unwrap().unwrap().0.token.revoked_at.is_none());
    }
    b.revoke_token(draft("admin", Action::TokenRevoke), id).await.unwrap();
    for s in [&a, &b] {
        assert!(s.token_with_access(id).await.unwrap().unwrap().0.token.revoked_at.is_some());
    }
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_sqlite_database_another_process_owns_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custody.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    // Another process's hold on the file: a lock through an open file of its own.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join("custody.db-custody.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let err = Store::open(&url, StoreOptions::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("custody.db") && message.contains("PostgreSQL"), "{message}");
    assert!(!path.exists(), "nothing opened (or created) a database another process owns");
    // Once the other process is gone, the database opens.
    drop(lock);
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    assert!(store.caches_facts());
    store.close().await;
}

#[tokio::test]
async fn a_database_that_went_back_in_time_is_not_signed_into_a_fork() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("audit-log.head");
    let key = std::sync::Arc::new(custody_audit::Signer::generate("custody.test/audit").unwrap());
    let options = || StoreOptions {
        checkpoints: Some(custody_store::CheckpointSigning {
            signer: std::sync::Arc::new(custody_store::LogSigner::new(key.clone(), Some(head.clone()))),
            interval: std::time::Duration::ZERO,
        }),
        ..StoreOptions::default()
    };
    let db = dir.path().join("custody.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let store = Store::open(&url, options()).await.unwrap();
    for _ in 0..5 {
        store.record(draft("r", Action::AuditRead)).await.unwrap();
    }
    store.close().await;
    // A backup taken now, at 5 records.
    let backup = dir.path().join("backup.db");
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("VACUUM INTO '{}'", backup.display())).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let store = Store::open(&url, options()).await.unwrap();
    for _ in 0..5 {
        store.record(draft("r", Action::AuditRead)).await.unwrap();
    }
    store.close().await;
    let remembered = custody_store::LogSigner::new(key.clone(), Some(head.clone())).last_signed();
    assert_eq!(remembered.map(|(size, _)| size), Some(10), "the last signature is remembered");
    // The database is restored from the backup: the log is back at 5 records.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&backup, &db).unwrap();
    let store = Store::open(&url, options()).await.unwrap();
    let refused = store.record(draft("r", Action::AuditRead)).await;
    assert!(refused.is_err(), "a write that would be signed as a fork is refused");
    let reason = format!("{refused:?}");
    assert!(reason.contains("went back in time"), "{reason}");
    assert_eq!(store.audit_len().await.unwrap(), 5, "nothing was appended");
    assert_eq!(store.audit_latest_checkpoint().await.unwrap().unwrap().size, 5, "nothing was signed");
    store.close().await;
}

fn lineage_event(project: ProjectId, id: &str) -> custody_store::LineageEventRecord {
    custody_store::LineageEventRecord {
        project_id: project,
        event_id: id.into(),
        event_type: "COMPLETE".into(),
        event_time: 1,
        run_id: None,
        job: Some("ns/job".into()),
        producer: "test".into(),
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

#[tokio::test]
async fn lineage_event_counts_order_every_stored_event_and_readers_catch_up_by_them() {
    let event = |p: &Project, id: &str| lineage_event(p.id, id);
    for db in testing::all().await {
        let a = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        let b = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        let p = project(&a, "p").await;
        assert_eq!(a.lineage_head(p.id).await.unwrap().events, 0);
        let mut taken = Vec::new();
        for (store, id) in [(&a, "e1"), (&b, "e2"), (&a, "e1"), (&b, "e3"), (&a, "e4")] {
            let (stored, _) =
                store.record_lineage_event(draft("w", Action::LineageWrite), event(&p, id), "w".into()).await.unwrap();
            assert_eq!(stored.new, id != "e1" || taken.is_empty(), "{id}");
            if stored.new {
                taken.push(stored.generation.unwrap());
            }
        }
        assert!(taken.windows(2).all(|w| w[0] < w[1]), "{taken:?}");
        // Whichever store wrote them, both read the same count: that of the last event.
        let last = *taken.last().unwrap();
        for s in [&a, &b] {
            assert_eq!(s.lineage_head(p.id).await.unwrap().events, last);
        }
        // A reader that has everything up to e1's count catches up with exactly the rest.
        let rest = a.lineage_events_between(p.id, taken[0], last).await.unwrap();
        assert_eq!(rest, ["{\"id\":\"e2\"}", "{\"id\":\"e3\"}", "{\"id\":\"e4\"}"]);
        a.close().await;
        b.close().await;
    }
}

#[tokio::test]
async fn lineage_events_written_together_take_gapless_counts_once_each() {
    each_backend(|store| async move {
        let (p, q) = (project(&store, "p").await, project(&store, "q").await);
        let nowhere = ProjectId::new();
        let mut tasks = Vec::new();
        // 410 writes at once, so that the writer groups them: 150 distinct events in p, 100 in
        // q, most sent two or three times, and 10 to a project that does not exist.
        let mut writes = Vec::new();
        for j in 0..400usize {
            writes.push(match j % 2 {
                0 => (p.id, format!("e{}", (j / 2) % 150)),
                _ => (q.id, format!("e{}", (j / 2) % 100)),
            });
            if j % 40 == 0 {
                writes.push((nowhere, format!("x{j}")));
            }
        }
        for (project, id) in writes {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let r = store
                    .record_lineage_event(draft("w", Action::LineageWrite), lineage_event(project, &id), "w".into())
                    .await;
                (project, id, r.map(|(stored, _)| stored))
            }));
        }
        let mut new = std::collections::BTreeMap::<(ProjectId, String), usize>::new();
        let mut counts = std::collections::BTreeMap::<ProjectId, Vec<i64>>::new();
        let mut failed = 0;
        for t in tasks {
            let (project, id, r) = t.await.unwrap();
            match r {
                Ok(stored) => {
                    *new.entry((project, id)).or_default() += usize::from(stored.new);
                    // On PostgreSQL a duplicate takes a count too; on SQLite only a new event.
                    if let Some(g) = stored.generation {
                        counts.entry(project).or_default().push(g);
                    }
                    assert_eq!(stored.generation.is_some(), stored.new || store.backend() == Backend::Postgres);
                }
                Err(_) => {
                    assert_eq!(project, nowhere, "only the writes to a missing project fail");
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 10);
        assert!(new.values().all(|&n| n == 1), "each distinct event is new exactly once: {new:?}");
        assert_eq!(new.len(), 250);
        for (project, mut taken) in counts {
            taken.sort_unstable();
            let expected: Vec<i64> = (1..=taken.len() as i64).collect();
            assert_eq!(taken, expected, "the counts of {project} have no gap and no repeat");
            assert_eq!(store.lineage_head(project).await.unwrap().events, taken.len() as i64);
            let stored = store.lineage_events(project).await.unwrap();
            assert_eq!(stored.len(), if project == p.id { 150 } else { 100 });
        }
        assert_eq!(store.audit_len().await.unwrap(), 412, "every write is recorded, the failed ones too");
        assert_log_verifies(&store).await;
    })
    .await;
}

/// A SQLite file's log is copied into the database file beside the writer (`wal.rs`), long
/// before it reaches the size at which the writer's own COMMIT would checkpoint.
#[tokio::test]
async fn a_sqlite_log_is_checkpointed_in_the_background() {
    let db = testing::sqlite();
    let store = Store::open(&db.url, StoreOptions::default()).await.unwrap();
    let path = db.url.strip_prefix("sqlite://").unwrap().split('?').next().unwrap().to_owned();
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut d = draft("w", Action::AuditRead);
            d.details = serde_json::json!({ "i": i, "padding": "x".repeat(2048) });
            store.record(d).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 400 records of over 2 KiB: some 200 pages, far below the writer's 10,000.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + 800 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file grew from {before} to only {} bytes: nothing checkpointed the log",
            size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.audit_len().await.unwrap(), 400);
    store.close().await;
}

/// Projects are remembered by name once read (`projects.rs`): a name not found is asked again,
/// so a project another replica creates afterwards is found, and the one remembered is the row.
#[tokio::test]
async fn a_project_created_by_another_store_is_found_after_a_miss() {
    for db in testing::all().await {
        let a = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        let b = Store::open(&db.url, StoreOptions::default()).await.unwrap();
        let name = Name::new("late").unwrap();
        let err = a.project(&name).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        let created = project(&b, "late").await;
        let found = a.project(&name).await.unwrap();
        assert_eq!((found.id, &found.name), (created.id, &created.name));
        assert_eq!(a.project(&name).await.unwrap(), found);
        assert!(matches!(a.project(&Name::new("other").unwrap()).await, Err(StoreError::NotFound { .. })));
        a.close().await;
        b.close().await;
    }
}
