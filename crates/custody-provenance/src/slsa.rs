//! SLSA provenance v1 for a training run: what was built (the model), from what (dataset
//! versions, base model, code commit, container image), how (job and parameters) and by
//! whom (the builder), signed into the same kind of bundle as a model signature.

use crate::ProvenanceError;
use crate::bundle::{Bundle, IN_TOTO_STATEMENT_TYPE, Statement, Subject};
use crate::keys::{PublicKey, StatementSigner};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The SLSA provenance v1 predicate type.
pub const SLSA_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The build type of a Custody training run.
pub const TRAINING_BUILD_TYPE: &str = "https://custody.dev/provenance/training-run/v1";

/// The SLSA provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// Inputs of the build.
    pub build_definition: BuildDefinition,
    /// The build as it ran.
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// What kind of build this is (how to read the parameters).
    pub build_type: String,
    /// Parameters under the control of whoever started the build (job, hyper-parameters).
    pub external_parameters: serde_json::Value,
    /// Parameters the platform set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<serde_json::Value>,
    /// Every artifact the build read: dataset versions, base model, code, image.
    #[serde(default)]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// An in-toto resource descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// What it is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Algorithm → hex digest (`gitCommit` for a commit).
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
}

/// `runDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetails {
    /// Who ran the build.
    pub builder: Builder,
    /// When and under which id.
    pub metadata: BuildMetadata,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    /// The builder's identity (URI).
    pub id: String,
}

/// `runDetails.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// The run's id.
    pub invocation_id: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

/// A training run, described in the terms Custody records it in.
#[derive(Debug, Clone, Default)]
pub struct TrainingRun {
    /// The training job's name.
    pub job: String,
    /// The run's id.
    pub run_id: String,
    /// Hyper-parameters and other settings.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Dataset versions read: (uri, hex SHA-256).
    pub datasets: Vec<(String, String)>,
    /// The base model: (uri, hex SHA-256 of its manifest root).
    pub base_model: Option<(String, String)>,
    /// Code: (repository uri, commit id).
    pub code: Option<(String, String)>,
    /// Container image: (reference, hex SHA-256 digest).
    pub image: Option<(String, String)>,
    /// The builder's identity.
    pub builder_id: String,
    /// RFC 3339 start.
    pub started_on: Option<String>,
    /// RFC 3339 end.
    pub finished_on: Option<String>,
}

fn sha256(hex: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_owned(), hex.to_ascii_lowercase())])
}

impl TrainingRun {
    /// The SLSA predicate for this run.
    pub fn provenance(&self) -> Provenance {
        let mut deps: Vec<ResourceDescriptor> = self
            .datasets
            .iter()
            .map(|(uri, digest)| ResourceDescriptor { uri: Some(uri.clone()), name: None, digest: sha256(digest) })
            .collect();
        if let Some((uri, digest)) = &self.base_model {
            deps.push(ResourceDescriptor {
                uri: Some(uri.clone()),
                name: Some("base-model".into()),
                digest: sha256(digest),
            });
        }
        if let Some((uri, commit)) = &self.code {
            let digest = BTreeMap::from([("gitCommit".to_owned(), commit.clone())]);
            deps.push(ResourceDescriptor { uri: Some(uri.clone()), name: Some("code".into()), digest });
        }
        if let Some((reference, digest)) = &self.image {
            deps.push(ResourceDescriptor {
                uri: Some(reference.clone()),
                name: Some("image".into()),
                digest: sha256(digest),
            });
        }
        Provenance {
            build_definition: BuildDefinition {
                build_type: TRAINING_BUILD_TYPE.to_owned(),
                external_parameters: serde_json::json!({ "job": self.job, "parameters": self.parameters }),
                internal_parameters: None,
                resolved_dependencies: deps,
            },
            run_details: RunDetails {
                builder: Builder { id: self.builder_id.clone() },
                metadata: BuildMetadata {
                    invocation_id: self.run_id.clone(),
                    started_on: self.started_on.clone(),
                    finished_on: self.finished_on.clone(),
                },
            },
        }
    }
}

/// Signs `provenance` about `subjects` (the models the run produced, by manifest root).
pub fn sign_provenance(
    subjects: Vec<Subject>,
    provenance: &Provenance,
    signer: &dyn StatementSigner,
) -> Result<Bundle, ProvenanceError> {
    let statement = Statement {
        statement_type: IN_TOTO_STATEMENT_TYPE.to_owned(),
        subject: subjects,
        predicate_type: SLSA_PREDICATE_TYPE.to_owned(),
        predicate: provenance,
    };
    let bytes = serde_json::to_vec(&statement).map_err(|e| ProvenanceError::bundle("statement", e.to_string()))?;
    Bundle::sign(&bytes, signer)
}

/// Verifies a provenance bundle with `key` and returns its statement.
pub fn open_provenance(bundle: &Bundle, key: &PublicKey) -> Result<Statement<Provenance>, ProvenanceError> {
    let bytes = bundle.open(key)?;
    let head: Statement<serde_json::Value> = Statement::parse(&bytes)?;
    if head.predicate_type != SLSA_PREDICATE_TYPE {
        return Err(ProvenanceError::bundle(
            "statement.predicateType",
            format!("`{}` is not `{SLSA_PREDICATE_TYPE}`", head.predicate_type),
        ));
    }
    if head.subject.is_empty() {
        return Err(ProvenanceError::bundle("statement.subject", "is empty"));
    }
    Statement::parse(&bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::{KeyAlgorithm, SigningKey};

    #[test]
    fn training_provenance_round_trips() {
        let run = TrainingRun {
            job: "train-fraud".into(),
            run_id: "run-42".into(),
            parameters: serde_json::json!({"epochs": 3}).as_object().cloned().unwrap(),
            datasets: vec![("custody://p/datasets/cards/versions/v1".into(), "ab".repeat(32))],
            code: Some(("git+https://example.com/repo".into(), "0123abcd".into())),
            image: Some(("registry.example.com/train".into(), "cd".repeat(32))),
            builder_id: "https://custody.example.com/runners/gpu-1".into(),
            ..TrainingRun::default()
        };
        let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = Subject { name: "fraud-model".into(), digest: sha256(&"ef".repeat(32)) };
        let bundle = sign_provenance(vec![subject], &run.provenance(), &key).unwrap();
        let statement = open_provenance(&bundle, key.public_key()).unwrap();
        assert_eq!(statement.predicate, run.provenance());
        assert_eq!(statement.predicate.build_definition.resolved_dependencies.len(), 3);
        assert_eq!(statement.predicate.run_details.metadata.invocation_id, "run-42");
    }
}
