//! The OMS v1.0 statement (`https://model_signing/signature/v1.0`) and the legacy v0.1 form
//! verifiers still accept; signing and verifying a model.

use crate::ProvenanceError;
use crate::bundle::{Bundle, IN_TOTO_STATEMENT_TYPE, Statement, Subject};
use crate::hashing::{Progress, compute_manifest};
use crate::keys::{PublicKey, StatementSigner};
use crate::manifest::{
    HashAlgorithm, Manifest, ManifestDiff, Method, Resource, ResourceName, Serialization, SerializationRecord,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The OMS v1.0 predicate type.
pub const OMS_PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The pre-1.0 predicate type, still accepted when verifying.
pub const OMS_LEGACY_PREDICATE_TYPE: &str = "https://model_signing/Digests/v0.1";

#[derive(Debug, Serialize, Deserialize)]
struct Predicate {
    serialization: SerializationRecord,
    resources: Vec<ResourceRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ResourceRecord {
    name: String,
    digest: String,
    algorithm: String,
}

/// The statement bytes that sign `manifest`.
pub fn statement_bytes(manifest: &Manifest) -> Vec<u8> {
    let statement = Statement {
        statement_type: IN_TOTO_STATEMENT_TYPE.to_owned(),
        subject: vec![Subject {
            name: manifest.model_name.clone(),
            digest: BTreeMap::from([("sha256".to_owned(), hex::encode(manifest.root_digest()))]),
        }],
        predicate_type: OMS_PREDICATE_TYPE.to_owned(),
        predicate: Predicate {
            serialization: SerializationRecord::from(&manifest.serialization),
            resources: manifest
                .resources
                .iter()
                .map(|r| ResourceRecord {
                    name: r.name.to_string(),
                    digest: hex::encode(r.digest),
                    algorithm: manifest.serialization.resource_algorithm(),
                })
                .collect(),
        },
    };
    serde_json::to_vec(&statement).unwrap_or_default()
}

/// A manifest read back from a verified statement.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    /// The manifest as signed.
    pub manifest: Manifest,
    /// The subject's root digest (hex).
    pub root_digest: String,
    /// True for a v0.1 statement (no serialization record, no root digest).
    pub legacy: bool,
}

/// Reads an OMS statement (v1.0 or legacy v0.1), checking that the root digest covers the
/// resources exactly as listed.
pub fn manifest_from_statement(bytes: &[u8]) -> Result<SignedManifest, ProvenanceError> {
    let head: Statement<serde_json::Value> = Statement::parse(bytes)?;
    match head.predicate_type.as_str() {
        OMS_PREDICATE_TYPE => v1_manifest(head),
        OMS_LEGACY_PREDICATE_TYPE => legacy_manifest(head),
        other => {
            Err(ProvenanceError::bundle("statement.predicateType", format!("`{other}` is not `{OMS_PREDICATE_TYPE}`")))
        }
    }
}

fn v1_manifest(head: Statement<serde_json::Value>) -> Result<SignedManifest, ProvenanceError> {
    let [subject] = &head.subject[..] else {
        return Err(ProvenanceError::bundle("statement.subject", format!("has {} entries, not 1", head.subject.len())));
    };
    let stated = subject
        .digest
        .get("sha256")
        .ok_or_else(|| ProvenanceError::bundle("statement.subject[0].digest", "has no sha256"))?
        .to_ascii_lowercase();
    let predicate: Predicate = serde_path_to_error::deserialize(head.predicate)
        .map_err(|e| ProvenanceError::bundle(format!("statement.predicate.{}", e.path()), e.inner().to_string()))?;
    let serialization = Serialization::try_from(predicate.serialization)?;
    let mut resources = Vec::with_capacity(predicate.resources.len());
    let mut names = HashSet::new();
    let algorithm_name = serialization.resource_algorithm();
    for (i, r) in predicate.resources.into_iter().enumerate() {
        let field = format!("statement.predicate.resources[{i}]");
        let name = ResourceName::parse(&r.name, serialization.method)
            .map_err(|reason| ProvenanceError::bundle(format!("{field}.name"), reason))?;
        if !names.insert(name.clone()) {
            return Err(ProvenanceError::bundle(format!("{field}.name"), format!("`{name}` appears twice")));
        }
        // Older signers wrote the bare hash name in shard mode too.
        if r.algorithm != algorithm_name && r.algorithm != serialization.hash.as_str() {
            return Err(ProvenanceError::bundle(
                format!("{field}.algorithm"),
                format!("`{}` does not match the serialization (`{algorithm_name}`)", r.algorithm),
            ));
        }
        let digest = parse_digest(&r.digest, &format!("{field}.digest"))?;
        resources.push(Resource { name, algorithm: serialization.hash, digest });
    }
    let manifest = Manifest { model_name: subject.name.clone(), serialization, resources };
    let computed = hex::encode(manifest.root_digest());
    if computed != stated {
        return Err(ProvenanceError::RootMismatch { stated, computed });
    }
    let manifest = Manifest::new(manifest.model_name, manifest.serialization, manifest.resources);
    Ok(SignedManifest { manifest, root_digest: computed, legacy: false })
}

fn legacy_manifest(head: Statement<serde_json::Value>) -> Result<SignedManifest, ProvenanceError> {
    let mut serialization = Serialization::files(HashAlgorithm::Sha256);
    serialization.ignore_paths.clear();
    let mut resources = Vec::with_capacity(head.subject.len());
    for (i, s) in head.subject.iter().enumerate() {
        let field = format!("statement.subject[{i}]");
        let name = ResourceName::parse(&s.name, Method::Files)
            .map_err(|reason| ProvenanceError::bundle(format!("{field}.name"), reason))?;
        let hex_digest = s
            .digest
            .get("sha256")
            .ok_or_else(|| ProvenanceError::bundle(format!("{field}.digest"), "has no sha256"))?;
        let digest = parse_digest(hex_digest, &format!("{field}.digest.sha256"))?;
        resources.push(Resource { name, algorithm: HashAlgorithm::Sha256, digest });
    }
    let manifest = Manifest::new("compat-undefined-not-present".to_owned(), serialization, resources);
    let root_digest = hex::encode(manifest.root_digest());
    Ok(SignedManifest { manifest, root_digest, legacy: true })
}

fn parse_digest(text: &str, field: &str) -> Result<[u8; 32], ProvenanceError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| ProvenanceError::bundle(field, format!("`{text}` is not 64 hex digits")))?;
    Ok(out)
}

/// Computes the manifest of `model` and signs it.
pub fn sign_model(
    model: &Path,
    serialization: &Serialization,
    signer: &dyn StatementSigner,
    progress: &dyn Progress,
) -> Result<(Manifest, Bundle), ProvenanceError> {
    let manifest = compute_manifest(model, serialization, progress)?;
    let bundle = Bundle::sign(&statement_bytes(&manifest), signer)?;
    Ok((manifest, bundle))
}

/// The outcome of checking a model against a valid signature.
#[derive(Debug, Clone)]
pub struct ModelVerification {
    /// What was signed.
    pub signed: SignedManifest,
    /// What differs on disk; empty means verified.
    pub diff: ManifestDiff,
}

impl ModelVerification {
    /// True when the model matches exactly.
    pub fn is_verified(&self) -> bool {
        self.diff.is_empty()
    }
}

/// Verifies `bundle` with `key`, then recomputes the model's manifest the way the bundle says
/// it was made and compares. `extra_ignores` (relative to the model) are left out as well —
/// the signature file when it lies inside the model.
///
/// An `Err` means the signature itself is unusable; a model that differs is an `Ok` whose
/// [`ModelVerification::diff`] names every changed, missing and extra resource.
pub fn verify_model(
    model: &Path,
    bundle: &Bundle,
    key: &PublicKey,
    extra_ignores: &[String],
    progress: &dyn Progress,
) -> Result<ModelVerification, ProvenanceError> {
    let statement = bundle.open(key)?;
    let signed = manifest_from_statement(&statement)?;
    let mut serialization = signed.manifest.serialization.clone();
    for p in extra_ignores {
        serialization.ignore(p.clone());
    }
    let actual = compute_manifest(model, &serialization, progress)?;
    let diff = signed.manifest.diff(&actual);
    Ok(ModelVerification { signed, diff })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hashing::Silent;
    use crate::keys::{KeyAlgorithm, SigningKey};

    fn model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, c) in [("a/b", "hi\n"), ("a-c/f", "x\n"), ("a.txt", "t\n"), ("empty", "")] {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        dir
    }

    #[test]
    fn statement_matches_model_signing_for_the_same_files() {
        // Digests and root as model_signing 1.1.1 computed them for this directory.
        let dir = model();
        let m = compute_manifest(dir.path(), &Serialization::files(HashAlgorithm::Sha256), &Silent).unwrap();
        let names: Vec<String> = m.resources.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["a/b", "a-c/f", "a.txt", "empty"]);
        assert_eq!(hex::encode(m.root_digest()), "615c492be9282418a884e9367893b23827bcd337c120c382d66e6b0a8beac9fd");
    }

    #[test]
    fn sign_then_verify_and_detect_every_change() {
        let dir = model();
        let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let s = Serialization::files(HashAlgorithm::Sha256);
        let (_, bundle) = sign_model(dir.path(), &s, &key, &Silent).unwrap();
        let ok = verify_model(dir.path(), &bundle, key.public_key(), &[], &Silent).unwrap();
        assert!(ok.is_verified());

        std::fs::write(dir.path().join("a.txt"), "changed").unwrap();
        std::fs::remove_file(dir.path().join("empty")).unwrap();
        std::fs::write(dir.path().join("new"), "").unwrap();
        let bad = verify_model(dir.path(), &bundle, key.public_key(), &[], &Silent).unwrap();
        assert_eq!(bad.diff.changed.len(), 1);
        assert_eq!(bad.diff.changed[0].name, "a.txt");
        assert_eq!(bad.diff.missing, ["empty"]);
        assert_eq!(bad.diff.extra, ["new"]);
    }

    #[test]
    fn a_root_that_does_not_cover_the_resources_is_refused() {
        let dir = model();
        let m = compute_manifest(dir.path(), &Serialization::files(HashAlgorithm::Sha256), &Silent).unwrap();
        let text = String::from_utf8(statement_bytes(&m)).unwrap();
        let edited = text.replace(&hex::encode(m.resources[0].digest), &"0".repeat(64));
        let err = manifest_from_statement(edited.as_bytes()).unwrap_err();
        assert!(matches!(err, ProvenanceError::RootMismatch { .. }), "{err}");
    }

    #[test]
    fn a_signed_statement_whose_root_does_not_cover_its_resources_is_refused() {
        let dir = model();
        let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let m = compute_manifest(dir.path(), &Serialization::files(HashAlgorithm::Sha256), &Silent).unwrap();
        let text = String::from_utf8(statement_bytes(&m)).unwrap();
        let edited = text.replace(&hex::encode(m.resources[1].digest), &"1".repeat(64));
        let bundle = Bundle::sign(edited.as_bytes(), &key).unwrap();
        let err = verify_model(dir.path(), &bundle, key.public_key(), &[], &Silent).unwrap_err();
        assert!(matches!(err, ProvenanceError::RootMismatch { .. }), "{err}");
    }

    #[test]
    fn legacy_statements_are_read() {
        let digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let text = format!(
            r#"{{"_type":"{IN_TOTO_STATEMENT_TYPE}","subject":[{{"name":"b","digest":{{"sha256":"{digest}"}}}},{{"name":"a","digest":{{"sha256":"{digest}"}}}}],"predicateType":"{OMS_LEGACY_PREDICATE_TYPE}","predicate":{{}}}}"#
        );
        let signed = manifest_from_statement(text.as_bytes()).unwrap();
        assert!(signed.legacy);
        assert_eq!(signed.manifest.resources[0].name.to_string(), "a");
    }

    #[test]
    fn wrong_predicate_and_bad_resources_are_named() {
        let wrong =
            format!(r#"{{"_type":"{IN_TOTO_STATEMENT_TYPE}","subject":[],"predicateType":"x","predicate":{{}}}}"#);
        assert!(manifest_from_statement(wrong.as_bytes()).unwrap_err().to_string().contains("predicateType"));
        let bad = format!(
            r#"{{"_type":"{IN_TOTO_STATEMENT_TYPE}","subject":[{{"name":"m","digest":{{"sha256":"00"}}}}],"predicateType":"{OMS_PREDICATE_TYPE}","predicate":{{"serialization":{{"method":"files","hash_type":"md5","allow_symlinks":false}},"resources":[]}}}}"#
        );
        let err = manifest_from_statement(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("hash_type") && err.contains("md5"), "{err}");
    }
}
