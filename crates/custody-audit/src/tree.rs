//! Proofs from stored subtree hashes, so that a log of any size answers a proof by reading
//! O(log n) hashes instead of all its leaves.
//!
//! A log that keeps every *perfect* subtree hash ([`NodeId`]: level `l`, index `i`, covering
//! leaves `[i·2ˡ, (i+1)·2ˡ)`; level 0 is the leaves) as they complete — which
//! [`MerkleFrontier::push_reporting`](crate::MerkleFrontier::push_reporting) reports — can
//! build any RFC 6962 proof in three steps:
//!
//! 1. [`inclusion_spans`] / [`consistency_spans`] name the leaf ranges ([`Span`]) whose Merkle
//!    Tree Hashes make up the proof, in proof order;
//! 2. [`Span::nodes`] names the perfect subtrees each span is made of (at most two per level);
//!    the caller fetches those hashes, all at once;
//! 3. [`Span::hash`] folds them into the span's hash.
//!
//! The same spans give the root of any earlier tree size (`Span { start: 0, end: size }`) and
//! the frontier of a tree ([`frontier_nodes`]), which is how an archived segment of the log
//! starts.

use crate::merkle::{Hash, ProofError, node_hash};

/// A perfect subtree of the log: leaves `[index << level, (index + 1) << level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0: a leaf).
    pub level: u32,
    /// Position among the subtrees of that level, from 0.
    pub index: u64,
}

impl NodeId {
    /// The first leaf it covers.
    pub fn start(&self) -> u64 {
        self.index << self.level
    }
}

/// The leaves `[start, end)`, whose Merkle Tree Hash a proof needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First leaf.
    pub start: u64,
    /// One past the last leaf.
    pub end: u64,
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

impl Span {
    /// The perfect subtrees whose hashes determine this span's hash, left to right.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<NodeId>) {
        let n = self.end.saturating_sub(self.start);
        if n == 0 {
            return;
        }
        if n.is_power_of_two() && self.start.is_multiple_of(n) {
            let level = n.trailing_zeros();
            out.push(NodeId { level, index: self.start >> level });
            return;
        }
        let k = split(n);
        Span { start: self.start, end: self.start + k }.collect(out);
        Span { start: self.start + k, end: self.end }.collect(out);
    }

    /// The span's Merkle Tree Hash, from the hashes of its [nodes](Span::nodes) as `lookup`
    /// finds them. A node `lookup` does not know is reported as [`ProofError::MissingNode`].
    pub fn hash(&self, lookup: &impl Fn(NodeId) -> Option<Hash>) -> Result<Hash, ProofError> {
        let n = self.end.saturating_sub(self.start);
        if n == 0 {
            return Err(ProofError::EmptyOldTree);
        }
        if n.is_power_of_two() && self.start.is_multiple_of(n) {
            let id = NodeId { level: n.trailing_zeros(), index: self.start >> n.trailing_zeros() };
            return lookup(id).ok_or(ProofError::MissingNode { level: id.level, index: id.index });
        }
        let k = split(n);
        let left = Span { start: self.start, end: self.start + k }.hash(lookup)?;
        let right = Span { start: self.start + k, end: self.end }.hash(lookup)?;
        Ok(node_hash(&left, &right))
    }
}

/// The spans of the inclusion proof of leaf `index` in the tree of `size` leaves, in proof
/// order (from the leaf upward).
pub fn inclusion_spans(index: u64, size: u64) -> Result<Vec<Span>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    path(index, Span { start: 0, end: size }, &mut out);
    Ok(out)
}

/// PATH(m, D[span]) of RFC 6962 §2.1.1, bottom-up.
fn path(m: u64, span: Span, out: &mut Vec<Span>) {
    let n = span.end - span.start;
    if n <= 1 {
        return;
    }
    let k = split(n);
    let (left, right) =
        (Span { start: span.start, end: span.start + k }, Span { start: span.start + k, end: span.end });
    if m < k {
        path(m, left, out);
        out.push(right);
    } else {
        path(m - k, right, out);
        out.push(left);
    }
}

/// The spans of the consistency proof from the tree of `old` leaves to the tree of `new`,
/// in proof order. A proof from the empty tree is refused; equal sizes need none.
pub fn consistency_spans(old: u64, new: u64) -> Result<Vec<Span>, ProofError> {
    if old > new {
        return Err(ProofError::SizeOrder { old, new });
    }
    if old == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    let mut out = Vec::new();
    subproof(old, Span { start: 0, end: new }, true, &mut out);
    Ok(out)
}

/// SUBPROOF(m, D[span], b) of RFC 6962 §2.1.2, bottom-up.
fn subproof(m: u64, span: Span, complete: bool, out: &mut Vec<Span>) {
    let n = span.end - span.start;
    if m == n {
        if !complete {
            out.push(span);
        }
        return;
    }
    let k = split(n);
    let (left, right) =
        (Span { start: span.start, end: span.start + k }, Span { start: span.start + k, end: span.end });
    if m <= k {
        subproof(m, left, complete, out);
        out.push(right);
    } else {
        subproof(m - k, right, false, out);
        out.push(left);
    }
}

/// The nodes of the frontier of a tree of `size` leaves (its perfect subtrees, largest first):
/// with their hashes, [`MerkleFrontier::from_parts`](crate::MerkleFrontier::from_parts)
/// continues the tree from there.
pub fn frontier_nodes(size: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u32).rev() {
        if size & (1u64 << level) != 0 {
            out.push(NodeId { level, index: start >> level });
            start += 1u64 << level;
        }
    }
    out
}

/// Hashes for every span of a proof, in order.
pub fn span_hashes(spans: &[Span], lookup: &impl Fn(NodeId) -> Option<Hash>) -> Result<Vec<Hash>, ProofError> {
    spans.iter().map(|s| s.hash(lookup)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_decompose_into_aligned_perfect_subtrees() {
        assert_eq!(Span { start: 0, end: 8 }.nodes(), vec![NodeId { level: 3, index: 0 }]);
        assert_eq!(
            Span { start: 8, end: 13 }.nodes(),
            vec![NodeId { level: 2, index: 2 }, NodeId { level: 0, index: 12 }]
        );
        assert_eq!(
            frontier_nodes(13),
            vec![NodeId { level: 3, index: 0 }, NodeId { level: 2, index: 2 }, NodeId { level: 0, index: 12 }]
        );
        assert!(frontier_nodes(0).is_empty());
    }

    #[test]
    fn bad_requests_are_errors() {
        assert_eq!(inclusion_spans(5, 5), Err(ProofError::IndexOutOfRange { index: 5, size: 5 }));
        assert_eq!(consistency_spans(0, 5), Err(ProofError::EmptyOldTree));
        assert_eq!(consistency_spans(6, 5), Err(ProofError::SizeOrder { old: 6, new: 5 }));
        assert_eq!(consistency_spans(5, 5), Ok(vec![]));
        let missing = Span { start: 0, end: 2 }.hash(&|_| None);
        assert_eq!(missing, Err(ProofError::MissingNode { level: 1, index: 0 }));
    }
}
