#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Property tests: generated proofs verify, tampered ones do not, and the frontier agrees with
//! `root`.

use custody_audit::{
    EMPTY_ROOT, Hash, MerkleFrontier, NodeId, ProofError, Span, consistency_proof, consistency_spans, frontier_nodes,
    inclusion_proof, inclusion_spans, leaf_hash, node_hash, root, span_hashes, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

fn leaves_strategy() -> impl Strategy<Value = Vec<Hash>> {
    prop::collection::vec(any::<[u8; 32]>(), 1..300)
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut h = *hash;
    h[(bit / 8) % 32] ^= 1 << (bit % 8);
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_inclusion_and_consistency_proof_verifies(leaves in leaves_strategy()) {
        let n = leaves.len();
        let r = root(&leaves);
        for i in 0..n {
            let proof = inclusion_proof(&leaves, i as u64).unwrap();
            prop_assert_eq!(verify_inclusion(&leaves[i], i as u64, n as u64, &proof, &r), Ok(()));
        }
        for m in 1..=n {
            let proof = consistency_proof(&leaves, m as u64).unwrap();
            prop_assert_eq!(verify_consistency(m as u64, n as u64, &root(&leaves[..m]), &r, &proof), Ok(()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frontier_matches_root(leaves in prop::collection::vec(any::<[u8; 32]>(), 0..300)) {
        let mut frontier = MerkleFrontier::new();
        prop_assert_eq!(frontier.root(), EMPTY_ROOT);
        for (i, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf);
            prop_assert_eq!(frontier.len(), i as u64 + 1);
            prop_assert_eq!(frontier.nodes().len(), (i + 1).count_ones() as usize);
            prop_assert_eq!(frontier.root(), root(&leaves[..=i]));
        }
    }

    #[test]
    fn tampered_inclusion_fails(leaves in leaves_strategy(), index in any::<prop::sample::Index>(), bit in 0usize..256) {
        let n = leaves.len();
        let i = index.index(n);
        let r = root(&leaves);
        let proof = inclusion_proof(&leaves, i as u64).unwrap();
        let (i64_, n64) = (i as u64, n as u64);

        // Any bit of any proof element.
        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_inclusion(&leaves[i], i64_, n64, &bad, &r).is_err());
        }
        // The root, the leaf.
        prop_assert_eq!(verify_inclusion(&leaves[i], i64_, n64, &proof, &flip(&r, bit)), Err(ProofError::RootMismatch));
        prop_assert!(verify_inclusion(&flip(&leaves[i], bit), i64_, n64, &proof, &r).is_err());
        // Another index in the same tree.
        for j in [i.wrapping_sub(1), i + 1, i ^ 2, n] {
            if j != i && j <= n {
                prop_assert!(verify_inclusion(&leaves[i], j as u64, n64, &proof, &r).is_err(), "index {j}");
            }
        }
        // Another tree size, against that tree's own root and against this root.
        for m in [i + 1, n - 1, n + 1, n / 2, n * 2] {
            if m != n && m > i {
                let other_root = if m <= n { root(&leaves[..m]) } else { node_hash(&r, &r) };
                prop_assert!(verify_inclusion(&leaves[i], i64_, m as u64, &proof, &other_root).is_err(), "size {m}");
            }
        }
        // A proof element removed or added.
        if !proof.is_empty() {
            prop_assert!(verify_inclusion(&leaves[i], i64_, n64, &proof[1..], &r).is_err());
        }
        let mut longer = proof.clone();
        longer.push(r);
        prop_assert!(verify_inclusion(&leaves[i], i64_, n64, &longer, &r).is_err());
    }

    #[test]
    fn tampered_consistency_fails(leaves in leaves_strategy(), old in any::<prop::sample::Index>(), bit in 0usize..256) {
        let n = leaves.len();
        let m = old.index(n) + 1;
        let new_root = root(&leaves);
        let old_root = root(&leaves[..m]);
        let proof = consistency_proof(&leaves, m as u64).unwrap();
        let (m64, n64) = (m as u64, n as u64);

        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_consistency(m64, n64, &old_root, &new_root, &bad).is_err(), "element {k}");
        }
        prop_assert!(verify_consistency(m64, n64, &flip(&old_root, bit), &new_root, &proof).is_err());
        prop_assert!(verify_consistency(m64, n64, &old_root, &flip(&new_root, bit), &proof).is_err());
        // Other old sizes, each with its own (genuine) root.
        for other in [m - 1, m + 1, m / 2, m * 2] {
            if other != m && (1..=n).contains(&other) {
                let other_root = root(&leaves[..other]);
                prop_assert!(
                    verify_consistency(other as u64, n64, &other_root, &new_root, &proof).is_err(),
                    "old size {other}"
                );
            }
        }
        // Other new sizes, each with its own (genuine) root.
        for other in [n - 1, n / 2, m] {
            if other != n && other >= m {
                let other_root = root(&leaves[..other]);
                prop_assert!(
                    verify_consistency(m64, other as u64, &old_root, &other_root, &proof).is_err(),
                    "new size {other}"
                );
            }
        }
        prop_assert_eq!(verify_consistency(0, n64, &EMPTY_ROOT, &new_root, &proof), Err(ProofError::EmptyOldTree));
        prop_assert_eq!(
            verify_consistency(n64 + 1, n64, &old_root, &new_root, &proof),
            Err(ProofError::SizeOrder { old: n64 + 1, new: n64 })
        );
    }
}

#[test]
fn errors_of_generation() {
    let leaves: Vec<Hash> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
    assert_eq!(inclusion_proof(&leaves, 5), Err(ProofError::IndexOutOfRange { index: 5, size: 5 }));
    assert_eq!(inclusion_proof(&[], 0), Err(ProofError::IndexOutOfRange { index: 0, size: 0 }));
    assert_eq!(consistency_proof(&leaves, 0), Err(ProofError::EmptyOldTree));
    assert_eq!(consistency_proof(&leaves, 6), Err(ProofError::SizeOrder { old: 6, new: 5 }));
    assert_eq!(consistency_proof(&leaves, 5), Ok(vec![]));
    assert_eq!(inclusion_proof(&leaves[..1], 0), Ok(vec![]));
}

#[test]
fn errors_of_verification() {
    let leaves: Vec<Hash> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
    let r = root(&leaves);
    assert_eq!(verify_inclusion(&leaves[0], 0, 5, &[], &r), Err(ProofError::WrongProofLength { expected: 3, got: 0 }));
    assert_eq!(verify_inclusion(&leaves[0], 5, 5, &[], &r), Err(ProofError::IndexOutOfRange { index: 5, size: 5 }));
    assert_eq!(verify_consistency(5, 5, &r, &r, &[]), Ok(()));
    assert_eq!(verify_consistency(5, 5, &r, &r, &[r]), Err(ProofError::WrongProofLength { expected: 0, got: 1 }));
    assert_eq!(verify_consistency(5, 5, &r, &leaves[0], &[]), Err(ProofError::RootMismatch));
    assert_eq!(verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]), Err(ProofError::EmptyOldTree));
    // Huge sizes do not overflow or panic.
    assert!(verify_inclusion(&leaves[0], u64::MAX - 1, u64::MAX, &[r; 64], &r).is_err());
    assert!(verify_consistency(u64::MAX - 1, u64::MAX, &r, &r, &[r; 64]).is_err());
    assert!(verify_consistency(1 << 63, u64::MAX, &r, &r, &[r; 64]).is_err());
    assert_eq!(
        ProofError::WrongProofLength { expected: 3, got: 0 }.to_string(),
        "wrong proof length: expected 3 hashes, got 0"
    );
}

/// Every perfect subtree hash of `leaves`, as a log storing them would hold: the leaves at
/// level 0 and what `push_reporting` reports above them.
fn stored_nodes(leaves: &[Hash]) -> std::collections::HashMap<NodeId, Hash> {
    let mut nodes = std::collections::HashMap::new();
    let mut frontier = MerkleFrontier::new();
    for (i, leaf) in leaves.iter().enumerate() {
        nodes.insert(NodeId { level: 0, index: i as u64 }, *leaf);
        frontier.push_reporting(*leaf, |id, h| {
            assert!(nodes.insert(id, *h).is_none(), "{id:?} reported twice");
        });
    }
    nodes
}

proptest! {
    #[test]
    fn proofs_from_stored_subtrees_equal_proofs_from_all_leaves(n in 1usize..300, a in any::<u64>(), b in any::<u64>()) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect();
        let nodes = stored_nodes(&leaves);
        let lookup = |id: NodeId| nodes.get(&id).copied();
        let size = 1 + b % n as u64;
        let index = a % size;
        let prefix = &leaves[..size as usize];
        let spans = inclusion_spans(index, size).unwrap();
        prop_assert_eq!(span_hashes(&spans, &lookup).unwrap(), inclusion_proof(prefix, index).unwrap());
        let old = 1 + a % size;
        let spans = consistency_spans(old, size).unwrap();
        prop_assert_eq!(span_hashes(&spans, &lookup).unwrap(), consistency_proof(prefix, old).unwrap());
        prop_assert_eq!(Span { start: 0, end: size }.hash(&lookup).unwrap(), root(prefix));
        let mut frontier = MerkleFrontier::new();
        prefix.iter().for_each(|l| frontier.push(*l));
        let from_nodes: Vec<Hash> = frontier_nodes(size).into_iter().map(|id| nodes[&id]).collect();
        prop_assert_eq!(from_nodes.as_slice(), frontier.nodes());
        // Every stored node is the root of the leaves it covers.
        for (id, h) in &nodes {
            let start = id.start() as usize;
            prop_assert_eq!(*h, root(&leaves[start..start + (1usize << id.level)]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes as an export never panic the verifier: they are a precise failure.
    #[test]
    fn arbitrary_exports_are_refused_not_panicked_on(records in prop::collection::vec(any::<u8>(), 0..2000), checkpoints in ".{0,400}") {
        let key = custody_audit::Signer::generate("custody.test/fuzz").unwrap().verifier();
        let _ = custody_audit::read_checkpoints(&checkpoints, &key);
        let lines = String::from_utf8_lossy(&records).replace('\n', " ");
        let text = format!("{lines}\n{{\"seq\":0}}\n");
        let r = custody_audit::verify_segment(text.as_bytes(), &[], &custody_audit::SegmentStart::default(), |_| {});
        prop_assert!(r.is_err());
        let r = custody_audit::verify_segment(records.as_slice(), &[], &custody_audit::SegmentStart::default(), |_| {});
        prop_assert!(records.is_empty() || r.is_err());
    }

    /// Arbitrary bytes as a record archive or canonical record never panic its readers.
    #[test]
    fn arbitrary_archives_are_refused_not_panicked_on(frames in prop::collection::vec(any::<u8>(), 0..2000)) {
        use custody_audit::archive::{ARCHIVE_MAGIC, ArchiveReader, whole_frames};
        let mut archive = ARCHIVE_MAGIC.to_vec();
        archive.extend_from_slice(&frames);
        let r = custody_audit::verify_archive(archive.as_slice(), &[], &custody_audit::SegmentStart::default(), |_| {});
        prop_assert!(frames.is_empty() || r.is_err());
        let (_, len) = whole_frames(&frames);
        prop_assert!(len <= frames.len());
        let _ = custody_audit::RecordFields::decode(&frames);
        let mut reader = ArchiveReader::new(archive.as_slice()).unwrap();
        let mut record = Vec::new();
        while let Ok(Some(_)) = reader.next_frame(&mut record) {}
    }

    /// Any record survives the archive: framed, read back, decoded, rendered and parsed again
    /// as an export line, it has the same leaf hash.
    #[test]
    fn records_round_trip_through_the_archive(
        seq in any::<u64>(), micros in -62_000_000_000_000_000i64..253_000_000_000_000_000, texts in prop::collection::vec(".{0,40}", 9),
        project in prop::option::of(".{0,12}"), region in prop::option::of("[a-z0-9-]{0,12}"), n in any::<i64>(),
    ) {
        use custody_audit::archive::{ARCHIVE_MAGIC, ArchiveReader, export_line, push_frame};
        let details = serde_json::json!({ "n": n, "t": texts[8] }).to_string();
        let fields = custody_audit::RecordFields {
            seq, time_micros: micros, actor: &texts[0], action: &texts[1], resource: &texts[2],
            project: project.as_deref(), region: region.as_deref(), decision: &texts[3], policy_hash: &texts[4],
            request_id: &texts[5], outcome: &texts[6], details: &details,
        };
        let leaf = fields.leaf_hash();
        let mut archive = ARCHIVE_MAGIC.to_vec();
        push_frame(&mut archive, &leaf, &fields.canonical_bytes());
        let mut reader = ArchiveReader::new(archive.as_slice()).unwrap();
        let mut record = Vec::new();
        prop_assert_eq!(reader.next_frame(&mut record).unwrap(), Some(leaf));
        prop_assert_eq!(reader.next_frame(&mut record).unwrap(), None);
        let decoded = custody_audit::RecordFields::decode(&record).unwrap();
        prop_assert_eq!(decoded, fields);
        let line = export_line(&decoded, &leaf).unwrap();
        let parsed: custody_audit::export::ExportedRecord<'_> = serde_json::from_str(&line).unwrap();
        prop_assert_eq!(parsed.computed_leaf_hash().unwrap(), leaf);
    }

    /// Arbitrary text as a note, a verifier key, a private key or a checkpoint never panics.
    #[test]
    fn arbitrary_notes_and_keys_are_refused_not_panicked_on(text in "(.|\n){0,300}", bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = custody_audit::Note::parse(&text);
        let _ = custody_audit::Note::parse_bytes(&bytes);
        let _ = custody_audit::Verifier::parse(&text);
        let _ = custody_audit::Signer::parse_private_key(&text);
        let _ = custody_audit::Checkpoint::parse_note_text(&text);
    }
}
