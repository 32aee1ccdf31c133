//! The tamper-evident audit log of Custody.
//!
//! This crate holds the Merkle tree core of the log, as specified by
//! [RFC 6962 §2.1](https://www.rfc-editor.org/rfc/rfc6962#section-2.1) (building trees and
//! proofs) and [RFC 9162 §2.1](https://www.rfc-editor.org/rfc/rfc9162#section-2.1) (verifying
//! them). All hashes are SHA-256 ([`Hash`](tyalias@Hash)), with domain separation between leaves and nodes.
//!
//! - [`leaf_hash`] and [`node_hash`]: the two hash functions of the tree; [`EMPTY_ROOT`] is the
//!   root of the empty tree.
//! - [`root`]: the Merkle Tree Hash (MTH) of a list of leaf hashes.
//! - [`inclusion_proof`] / [`verify_inclusion`]: prove and check that a leaf sits at an index of
//!   a tree of a given size.
//! - [`consistency_proof`] / [`verify_consistency`]: prove and check that a tree of an older size
//!   is a prefix of a tree of a newer size (the log is append-only).
//! - [`MerkleFrontier`]: appends leaves keeping only O(log n) hashes, and yields the same root.
//! - [`tree`]: the same proofs from stored perfect-subtree hashes ([`NodeId`], [`Span`]), so a
//!   log of any size answers with O(log n) reads.
//! - [`export`]: offline verification of an exported segment of the log (records as JSON
//!   lines or as a record archive, signed checkpoints, the starting frontier), naming the
//!   first record or checkpoint that is wrong and how.
//! - [`archive`]: the record archive, a segment stored as the canonical bytes its leaf hashes
//!   cover, so verifying it is hashing, and its JSON view is derived from verified bytes.
//! - [`hash_from_slice`]: turns untrusted bytes (for example decoded from a checkpoint or proof)
//!   into a [`Hash`](tyalias@Hash), refusing anything that is not exactly 32 bytes.
//!
//! Verification failures are reported as [`ProofError`]; no function of this crate panics.
//!
//! It also holds the signed formats of the log, after [C2SP](https://c2sp.org):
//!
//! - [`note`]: [signed notes](https://c2sp.org/signed-note) with Ed25519 keys: [`Signer`],
//!   [`Verifier`] (parsed from a verifier key string), [`Note`] (strict parsing, byte-exact
//!   formatting), [`sign`] and [`verify`]; errors are [`NoteError`].
//! - [`checkpoint`]: [tlog checkpoints](https://c2sp.org/tlog-checkpoint), the signed tree heads
//!   of the log: [`Checkpoint`], with errors [`CheckpointError`].
//!
//! # Example
//!
//! ```
//! use custody_audit::{consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion};
//!
//! # fn main() -> Result<(), custody_audit::ProofError> {
//! let leaves: Vec<_> = ["a", "b", "c", "d", "e"].iter().map(|s| leaf_hash(s.as_bytes())).collect();
//! let new_root = root(&leaves);
//!
//! // Leaf 2 ("c") is in the tree of size 5.
//! let proof = inclusion_proof(&leaves, 2)?;
//! verify_inclusion(&leaf_hash(b"c"), 2, 5, &proof, &new_root)?;
//! assert!(verify_inclusion(&leaf_hash(b"x"), 2, 5, &proof, &new_root).is_err());
//!
//! // The tree of size 3 is a prefix of the tree of size 5.
//! let old_root = root(&leaves[..3]);
//! let proof = consistency_proof(&leaves, 3)?;
//! verify_consistency(3, 5, &old_root, &new_root, &proof)?;
//! # Ok(())
//! # }
//! ```
//!
//! Signing and opening a checkpoint:
//!
//! ```
//! use custody_audit::{Checkpoint, Signer, leaf_hash, root};
//!
//! # fn main() -> Result<(), custody_audit::CheckpointError> {
//! let signer = Signer::generate("example.com/log")?;
//! let leaves: Vec<_> = ["a", "b"].iter().map(|s| leaf_hash(s.as_bytes())).collect();
//! let checkpoint = Checkpoint::new("example.com/log", 2, root(&leaves))?;
//! let signed = checkpoint.sign(&[&signer])?.to_string();
//!
//! let verifier = custody_audit::Verifier::parse(&signer.verifier_key())?;
//! assert_eq!(Checkpoint::open(&signed, &[verifier])?, checkpoint);
//! # Ok(())
//! # }
//! ```

pub mod archive;
pub mod checkpoint;
pub mod export;
pub mod merkle;
pub mod note;
pub mod record;
pub mod tree;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use export::{
    RecordsFormat, SegmentFailure, SegmentReport, SegmentStart, read_checkpoints, verify_archive, verify_segment,
};

pub use merkle::{
    EMPTY_ROOT, HASH_LEN, Hash, MerkleFrontier, ProofError, consistency_proof, hash_from_slice, hash_to_hex,
    inclusion_proof, leaf_hash, node_hash, root, verify_consistency, verify_inclusion,
};
pub use note::{MAX_SIGNATURES, Note, NoteError, NoteSignature, Signer, Verifier, ed25519_key_id, open, sign, verify};
pub use record::{RECORD_FORMAT_VERSION, RecordDecodeError, RecordFields};
pub use tree::{NodeId, Span, consistency_spans, frontier_nodes, inclusion_spans, span_hashes};
