//! Merkle tree hashing, inclusion and consistency proofs (RFC 6962 §2.1, RFC 9162 §2.1).
//!
//! Trees are built over leaf hashes ([`leaf_hash`] of the entry bytes). Proof generation
//! ([`inclusion_proof`], [`consistency_proof`]) follows the recursive definitions of RFC 6962
//! (PATH and SUBPROOF); verification ([`verify_inclusion`], [`verify_consistency`]) follows the
//! iterative algorithms of RFC 9162, after checking that the proof has exactly the length the
//! sizes imply (as transparency-dev/merkle does).

use crate::tree::NodeId;
use aws_lc_rs::digest;

/// Length in bytes of a [`Hash`](tyalias@Hash).
pub const HASH_LEN: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; HASH_LEN];

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Domain-separation prefix of leaf hashes.
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes.
const NODE_PREFIX: u8 = 0x01;

/// Why a proof could not be generated or did not verify.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The size of the tree.
        size: u64,
    },
    /// The old tree is larger than the new tree.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder {
        /// The old (first) tree size.
        old: u64,
        /// The new (second) tree size.
        new: u64,
    },
    /// A consistency proof from the empty tree was asked for; it proves nothing.
    #[error("consistency with the empty tree is meaningless")]
    EmptyOldTree,
    /// The proof does not have the number of hashes the sizes (and index) imply.
    #[error("wrong proof length: expected {expected} hashes, got {got}")]
    WrongProofLength {
        /// The number of hashes a valid proof has.
        expected: u64,
        /// The number of hashes given.
        got: u64,
    },
    /// The root computed from the proof is not the expected root.
    #[error("computed root does not match the expected root")]
    RootMismatch,
    /// The root computed from a consistency proof does not match the old root.
    #[error("computed old root does not match the given old root")]
    OldRootMismatch,
    /// A byte string meant to be a hash does not have [`HASH_LEN`] bytes.
    #[error("a hash must be {HASH_LEN} bytes, got {got}")]
    WrongHashLength {
        /// The length of the byte string.
        got: usize,
    },
    /// A stored subtree hash a proof needs is not available.
    #[error("the hash of subtree (level {level}, index {index}) is missing")]
    MissingNode {
        /// Its level.
        level: u32,
        /// Its index.
        index: u64,
    },
}

/// Converts untrusted bytes into a [`Hash`](tyalias@Hash), refusing anything that is not exactly 32 bytes.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash, ProofError> {
    Hash::try_from(bytes).map_err(|_| ProofError::WrongHashLength { got: bytes.len() })
}

/// Formats a hash as lower-case hex.
pub fn hash_to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let digest = ctx.finish();
    let mut out = [0u8; HASH_LEN];
    for (o, i) in out.iter_mut().zip(digest.as_ref()) {
        *o = *i;
    }
    out
}

/// The hash of a leaf holding `data`: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[LEAF_PREFIX], data])
}

/// The hash of an interior node with children `left` and `right`: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[NODE_PREFIX], left, right])
}

/// The largest power of two strictly smaller than `n` (for `n >= 2`).
fn split_point(n: usize) -> usize {
    let mut k: usize = 1;
    while k.saturating_mul(2) < n {
        k *= 2;
    }
    k
}

/// The Merkle Tree Hash (MTH, RFC 6962 §2.1) of a list of leaf hashes; [`EMPTY_ROOT`] if empty.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// The audit path (PATH, RFC 6962 §2.1.1) of leaf `index` in the tree of `leaves`, from the leaf
/// upward.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let out_of_range = ProofError::IndexOutOfRange { index, size };
    let m = usize::try_from(index).map_err(|_| out_of_range.clone())?;
    if m >= leaves.len() {
        return Err(out_of_range);
    }
    let mut proof = Vec::new();
    path(m, leaves, &mut proof);
    Ok(proof)
}

/// PATH(m, D[n]) for `m < n`, appended to `out` bottom-up.
fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m < k {
        path(m, left, out);
        out.push(root(right));
    } else {
        path(m - k, right, out);
        out.push(root(left));
    }
}

/// The consistency proof (PROOF, RFC 6962 §2.1.2) between the tree of the first `old_size`
/// leaves and the tree of all `leaves`.
///
/// A proof from the empty tree is refused ([`ProofError::EmptyOldTree`]); the proof between
/// equal sizes is empty.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let new = leaves.len() as u64;
    if old_size > new {
        return Err(ProofError::SizeOrder { old: old_size, new });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    let m = usize::try_from(old_size).map_err(|_| ProofError::SizeOrder { old: old_size, new })?;
    let mut proof = Vec::new();
    subproof(m, leaves, true, &mut proof);
    Ok(proof)
}

/// SUBPROOF(m, D[n], b) for `0 < m <= n`, appended to `out` bottom-up.
fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    if m == leaves.len() {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, complete, out);
        out.push(root(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(root(left));
    }
}

/// Number of significant bits of `x` (0 for 0).
fn bit_len(x: u64) -> u64 {
    u64::from(u64::BITS - x.leading_zeros())
}

/// The length of a valid inclusion proof of `index` in a tree of `size` (`index < size`).
fn inclusion_proof_len(index: u64, size: u64) -> u64 {
    let inner = bit_len(index ^ (size - 1));
    let border = u64::from((index >> inner).count_ones());
    inner + border
}

/// The length of a valid consistency proof between `old` and `new` (`0 < old < new`).
fn consistency_proof_len(old: u64, new: u64) -> u64 {
    let level = old.trailing_zeros();
    let index = (old - 1) >> level;
    let size = ((new - 1) >> level) + 1;
    let seed = u64::from(index != 0);
    seed + inclusion_proof_len(index, size)
}

fn check_len(expected: u64, proof: &[Hash]) -> Result<(), ProofError> {
    let got = proof.len() as u64;
    if got == expected { Ok(()) } else { Err(ProofError::WrongProofLength { expected, got }) }
}

/// Checks that `leaf_hash` is the leaf at `index` of the tree of `tree_size` leaves whose root is
/// `root`, using the audit path `proof` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, size: tree_size });
    }
    check_len(inclusion_proof_len(index, tree_size), proof)?;
    let mut f_n = index;
    let mut s_n = tree_size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n == 0 && r == *root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`, using the consistency proof `proof`
/// (RFC 9162 §2.1.4.2).
///
/// `old_size` must not exceed `new_size` and must not be 0 (consistency with the empty tree
/// proves nothing, and is refused as in transparency-dev/merkle). Equal sizes need an empty
/// proof and equal roots.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizeOrder { old: old_size, new: new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size == new_size {
        check_len(0, proof)?;
        return if old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    check_len(consistency_proof_len(old_size, new_size), proof)?;

    // If the old size is a power of two, the old root is the first node of the proof.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest),
            None => return Err(ProofError::WrongProofLength { expected: 1, got: 0 }),
        }
    };
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::RootMismatch);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The right border of a Merkle tree: the roots of its perfect subtrees, largest first.
///
/// Leaves are appended with [`MerkleFrontier::push`]; the frontier keeps one hash per set bit of
/// the size (O(log n) memory) and [`MerkleFrontier::root`] equals [`root`] over all the leaves
/// pushed so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleFrontier {
    size: u64,
    /// Perfect subtree roots, from the leftmost (largest) to the rightmost (smallest).
    nodes: Vec<Hash>,
}

impl MerkleFrontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        self.push_reporting(leaf, |_, _| {});
    }

    /// Appends a leaf hash and reports every perfect subtree above the leaves that it
    /// completes (level ≥ 1, lowest first), for a log that stores them (see [`crate::tree`]).
    pub fn push_reporting(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let mut hash = leaf;
        let mut size = self.size;
        let mut level = 0u32;
        while size & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                None => break,
            }
            size >>= 1;
            level += 1;
            // The new node ends at leaf `self.size` (inclusive).
            completed(NodeId { level, index: ((self.size + 1) >> level) - 1 }, &hash);
        }
        self.nodes.push(hash);
        self.size = self.size.saturating_add(1);
    }

    /// A frontier restored from its stored parts: `size` leaves and one node per set bit of
    /// `size`, largest subtree first (as [`MerkleFrontier::nodes`] returns them).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, ProofError> {
        let expected = u64::from(size.count_ones());
        let got = nodes.len() as u64;
        if got != expected {
            return Err(ProofError::WrongProofLength { expected, got });
        }
        Ok(Self { size, nodes })
    }

    /// The number of leaves pushed.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The roots of the perfect subtrees, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// The Merkle Tree Hash of all leaves pushed so far; [`EMPTY_ROOT`] if none.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        match iter.next() {
            None => EMPTY_ROOT,
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, sha256(&[]));
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(MerkleFrontier::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn hash_from_slice_checks_length() {
        assert_eq!(hash_from_slice(&[0; 31]), Err(ProofError::WrongHashLength { got: 31 }));
        assert_eq!(hash_from_slice(&[7; 32]), Ok([7; 32]));
        assert_eq!(hash_to_hex(&EMPTY_ROOT), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn exhaustive_small_trees() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let r = root(tree);
            for i in 0..n {
                let proof = inclusion_proof(tree, i as u64).unwrap();
                verify_inclusion(&tree[i], i as u64, n as u64, &proof, &r).unwrap();
            }
            for m in 1..=n {
                let proof = consistency_proof(tree, m as u64).unwrap();
                verify_consistency(m as u64, n as u64, &root(&tree[..m]), &r, &proof).unwrap();
            }
        }
    }
}
