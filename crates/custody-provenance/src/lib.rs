//! Model provenance that works offline: manifests, signatures and attestations in the
//! OpenSSF Model Signing (OMS) v1.0 format.
//!
//! - [`compute_manifest`] hashes a model directory (or a single file) into a [`Manifest`]:
//!   one SHA-256 or BLAKE3 digest per file or per shard, in OMS order, on every core.
//! - [`sign_model`] signs the manifest's in-toto statement into a Sigstore bundle v0.3 with a
//!   DSSE envelope ([`Bundle`]); the key is ECDSA (P-256/P-384/P-521) or Ed25519
//!   ([`SigningKey`]), or anything implementing [`StatementSigner`].
//! - [`verify_model`] checks the bundle's key hint, payload type and signature, the statement's
//!   root digest, then recomputes the manifest and names every changed, missing and extra
//!   resource ([`ManifestDiff`]).
//! - [`slsa`] writes and reads SLSA provenance v1 for training runs, signed the same way.
//!
//! Bundles interoperate with the `model-signing` Python package (1.1.x) in both directions.
//! Nothing here prints or touches the network.

mod bundle;
mod error;
mod hashing;
mod keys;
mod manifest;
mod oms;
pub mod slsa;

pub use bundle::{
    BUNDLE_MEDIA_TYPE, Bundle, Envelope, EnvelopeSignature, IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_TYPE,
    PublicKeyIdentifier, Statement, Subject, VerificationMaterial, pae,
};
pub use error::ProvenanceError;
pub use hashing::{Progress, ResourceHasher, Silent, compute_manifest, model_name};
pub use keys::{KeyAlgorithm, PublicKey, SigningKey, StatementSigner};
pub use manifest::{
    ChangedResource, GIT_PATHS, HashAlgorithm, Manifest, ManifestDiff, Method, Resource, ResourceName, Serialization,
};
pub use oms::{
    ModelVerification, OMS_LEGACY_PREDICATE_TYPE, OMS_PREDICATE_TYPE, SignedManifest, manifest_from_statement,
    sign_model, statement_bytes, verify_model,
};
