#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The transparency-dev/merkle proof vectors (`$CUSTODY_SHARED/vectors/merkle/testdata`), every
//! file of them. Missing vectors fail the test, they never skip it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custody_audit::{
    Hash, ProofError, consistency_proof, hash_from_slice, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion,
};
use serde::Deserialize;

/// Number of JSON files in the vectors (98 inclusion + 98 consistency).
const EXPECTED_FILES: usize = 196;

/// Cases the upstream verifier accepts and this crate deliberately rejects: upstream compares
/// the two 12-byte "roots" byte for byte when the sizes are equal; here a root that is not a
/// 32-byte SHA-256 hash is never valid.
const STRICTER_THAN_UPSTREAM: &[&str] = &["consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"];

/// The well-known RFC 6962 test tree used by Certificate Transparency.
const RFC6962_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

fn testdata() -> PathBuf {
    let shared = std::env::var_os("CUSTODY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("vectors/merkle/testdata");
    assert!(
        dir.is_dir(),
        "merkle vectors missing at {} (set CUSTODY_SHARED; these tests never skip{})",
        dir.display(),
        if std::env::var("CI").as_deref() == Ok("true") { ", CI=true" } else { "" }
    );
    dir
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    #[serde(rename = "wantErr")]
    want_err: bool,
}

fn bytes(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).unwrap()
}

/// Decodes the hashes of a case; any hash that is not 32 bytes makes the case an error.
fn hashes(b64: &[&str]) -> Result<Vec<Hash>, ProofError> {
    b64.iter().map(|s| hash_from_slice(&bytes(s))).collect()
}

fn proof_strs(proof: &Option<Vec<String>>) -> Vec<&str> {
    proof.iter().flatten().map(String::as_str).collect()
}

fn check_inclusion(c: &InclusionCase) -> Result<(), ProofError> {
    let fixed = hashes(&[&c.leaf_hash, &c.root])?;
    let proof = hashes(&proof_strs(&c.proof))?;
    verify_inclusion(&fixed[0], c.leaf_idx, c.tree_size, &proof, &fixed[1])
}

fn check_consistency(c: &ConsistencyCase) -> Result<(), ProofError> {
    let fixed = hashes(&[&c.root1, &c.root2])?;
    let proof = hashes(&proof_strs(&c.proof))?;
    verify_consistency(c.size1, c.size2, &fixed[0], &fixed[1], &proof)
}

fn has_short_hash(all: &[&str]) -> bool {
    all.iter().any(|s| bytes(s).len() != 32)
}

#[test]
fn every_vector_file() {
    let dir = testdata();
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    files.sort();
    assert_eq!(files.len(), EXPECTED_FILES, "number of vector files in {}", dir.display());

    let (mut inclusion, mut consistency, mut short_hash_cases, mut stricter, mut accepted) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(file).unwrap();
        let (want_err, result, all_hashes, desc) = if rel.starts_with("inclusion/") {
            inclusion += 1;
            let c: InclusionCase = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let mut all = vec![c.leaf_hash.as_str(), c.root.as_str()];
            all.extend(proof_strs(&c.proof));
            let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
            (c.want_err, check_inclusion(&c), all, c.desc.clone())
        } else if rel.starts_with("consistency/") {
            consistency += 1;
            let c: ConsistencyCase = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let mut all = vec![c.root1.as_str(), c.root2.as_str()];
            all.extend(proof_strs(&c.proof));
            let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
            (c.want_err, check_consistency(&c), all, c.desc.clone())
        } else {
            panic!("unexpected vector file {rel}");
        };

        let all: Vec<&str> = all_hashes.iter().map(String::as_str).collect();
        if has_short_hash(&all) {
            short_hash_cases += 1;
            // A hash that is not exactly 32 bytes is always an error here...
            assert!(matches!(result, Err(ProofError::WrongHashLength { .. })), "{rel}: {result:?}");
            // ...and upstream expects an error too, except for the documented stricter cases.
            if !want_err {
                assert!(STRICTER_THAN_UPSTREAM.contains(&rel.as_str()), "{rel}: upstream accepts a short hash");
                stricter += 1;
                continue;
            }
        }
        accepted += usize::from(result.is_ok());
        if want_err != result.is_err() {
            failures.push(format!("{rel} ({desc}): wantErr={want_err}, got {result:?}"));
        }
    }
    assert!(failures.is_empty(), "{} vector(s) disagree:\n{}", failures.len(), failures.join("\n"));
    assert_eq!((inclusion, consistency), (98, 98));
    assert_eq!(stricter, STRICTER_THAN_UPSTREAM.len());
    // 12 upstream happy cases, less the one rejected for its 12-byte roots; 184 expected errors.
    assert_eq!(accepted, 11);
    assert!(short_hash_cases > 0, "the vectors contain hashes that are not 32 bytes");
}

fn rfc6962_leaves() -> Vec<Hash> {
    RFC6962_LEAVES.iter().map(|d| leaf_hash(d)).collect()
}

#[test]
fn rfc6962_known_root() {
    let leaves = rfc6962_leaves();
    assert_eq!(hex::encode(root(&leaves)), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
}

/// The happy-path vectors are built over the RFC 6962 tree: our generated proofs must be
/// byte-for-byte the upstream ones, and our roots the upstream roots.
#[test]
fn generated_proofs_match_happy_path_vectors() {
    let dir = testdata();
    let leaves = rfc6962_leaves();
    let mut checked = 0;
    for kind in ["inclusion", "consistency"] {
        for entry in std::fs::read_dir(dir.join(kind)).unwrap() {
            let file = entry.unwrap().path().join("happy-path.json");
            if !file.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            if kind == "inclusion" {
                let c: InclusionCase = serde_json::from_str(&text).unwrap();
                let tree = &leaves[..usize::try_from(c.tree_size).unwrap()];
                let want = hashes(&proof_strs(&c.proof)).unwrap();
                assert_eq!(inclusion_proof(tree, c.leaf_idx).unwrap(), want, "{}", file.display());
                assert_eq!(root(tree).to_vec(), bytes(&c.root));
                assert_eq!(tree[usize::try_from(c.leaf_idx).unwrap()].to_vec(), bytes(&c.leaf_hash));
            } else {
                let c: ConsistencyCase = serde_json::from_str(&text).unwrap();
                let tree = &leaves[..usize::try_from(c.size2).unwrap()];
                let want = hashes(&proof_strs(&c.proof)).unwrap();
                assert_eq!(consistency_proof(tree, c.size1).unwrap(), want, "{}", file.display());
                assert_eq!(root(&tree[..usize::try_from(c.size1).unwrap()]).to_vec(), bytes(&c.root1));
                assert_eq!(root(tree).to_vec(), bytes(&c.root2));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 10);
}
