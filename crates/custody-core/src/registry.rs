//! The model registry's vocabulary: models with a risk tier, signed immutable versions, the
//! signing keys a project trusts, promotions with their approvals, the stage history and
//! deployments with their runtime attestation.

use crate::{
    CoreError, DeploymentId, ModelVersionId, Name, ProjectId, Region, Sha256Digest, Stage, Timestamp, VersionLabel,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

crate::ids::typed_id!(
    /// Identifies a [`Model`].
    ModelId, "model_id");
crate::ids::typed_id!(
    /// Identifies a [`Promotion`].
    PromotionId, "promotion_id");

/// How much harm a model can do, which sets how much evidence and how many approvals its
/// promotions need (the policies decide the approvals; the lineage gate is in the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    /// No provenance needed.
    Low,
    /// A signed training provenance is needed before staging.
    Medium,
    /// Provenance whose every dataset resolves to a registered, digested version.
    High,
}

impl RiskTier {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RiskTier {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        [Self::Low, Self::Medium, Self::High]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| CoreError::invalid("risk_tier", format!("`{s}` is not low, medium or high")))
    }
}

fn text(field: &'static str, s: &str, max: usize) -> Result<(), CoreError> {
    if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CoreError::invalid(field, format!("must be at most {max} printable characters")));
    }
    Ok(())
}

/// A model registered in a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Model {
    /// Its id.
    pub id: ModelId,
    /// The project's id.
    pub project_id: ProjectId,
    /// The project's name.
    pub project: Name,
    /// Unique within the project.
    pub name: Name,
    /// Its risk tier.
    pub risk_tier: RiskTier,
    /// The accountable owner.
    pub owner: String,
    /// What it is for.
    pub description: String,
    /// Who registered it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The body that registers a model.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    /// Unique within the project.
    pub name: Name,
    /// Its risk tier.
    pub risk_tier: RiskTier,
    /// The accountable owner [default: the caller].
    #[serde(default)]
    pub owner: Option<String>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

impl NewModel {
    /// Checks the free-text fields.
    pub fn validate(&self) -> Result<(), CoreError> {
        text("description", &self.description, 2000)?;
        if let Some(o) = &self.owner {
            if o.trim().is_empty() {
                return Err(CoreError::invalid("owner", "must not be empty"));
            }
            text("owner", o, 200)?;
        }
        Ok(())
    }
}

/// A public key a project trusts to sign its model versions and their provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustedSigner {
    /// The project.
    pub project: Name,
    /// Its name (a team, a CI pipeline).
    pub name: Name,
    /// The OMS key hint: hex SHA-256 of the PEM.
    pub hint: String,
    /// The PEM public key.
    pub public_key: String,
    /// Who added it.
    pub added_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: Timestamp,
}

/// The body that adds a trusted signer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustedSigner {
    /// Its name.
    pub name: Name,
    /// The PEM public key (ECDSA P-256/P-384/P-521 or Ed25519).
    pub public_key: String,
}

/// What a named component of a model version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// The base model it was fine-tuned from.
    BaseModel,
    /// An adapter (LoRA and the like).
    Adapter,
    /// The tokenizer.
    Tokenizer,
    /// A prompt template.
    PromptTemplate,
    /// The evaluation results it was approved on.
    EvaluationBaseline,
}

/// A named component of a model version, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// What it is.
    pub kind: ComponentKind,
    /// Its name.
    pub name: String,
    /// Its digest (a manifest root for models).
    pub digest: Sha256Digest,
    /// Where it is.
    #[serde(default)]
    pub uri: Option<String>,
}

/// The training provenance attached to a model version, as the server read it from a signed
/// SLSA provenance v1 statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProvenanceSummary {
    /// The run (`runDetails.metadata.invocationId`).
    pub run_id: String,
    /// Who built it.
    pub builder: String,
    /// The training job.
    pub job: Option<String>,
    /// The code commit, if given.
    pub code_commit: Option<String>,
    /// The container image digest, if given.
    pub image_digest: Option<String>,
    /// Each dataset dependency and the registered version it resolves to, if any.
    pub datasets: Vec<DatasetDependency>,
    /// The hint of the key that signed the provenance.
    pub signer_hint: String,
}

impl ProvenanceSummary {
    /// Every dataset dependency resolves to a registered version with the same digest.
    pub fn fully_traced(&self) -> bool {
        !self.datasets.is_empty() && self.datasets.iter().all(|d| d.dataset_version.is_some())
    }
}

/// A dataset the training run read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetDependency {
    /// As the provenance names it.
    pub uri: String,
    /// Its SHA-256.
    pub digest: Sha256Digest,
    /// The registered dataset version in the project with this digest.
    pub dataset_version: Option<crate::DatasetVersionId>,
}

/// A signed, immutable model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelVersion {
    /// Its id.
    pub id: ModelVersionId,
    /// The model's id.
    pub model_id: ModelId,
    /// The project.
    pub project: Name,
    /// The model.
    pub model: Name,
    /// The version label.
    pub version: VersionLabel,
    /// The OMS manifest's root digest: what any copy of the artifacts must hash to.
    pub root_digest: Sha256Digest,
    /// The hint of the trusted signer's key.
    pub signer_hint: String,
    /// The OMS serialization (`files`/`shards`, hash type).
    pub serialization: serde_json::Value,
    /// How many resources the manifest lists.
    pub resources: u64,
    /// Named components.
    pub components: Vec<Component>,
    /// Training provenance, if attached.
    pub provenance: Option<ProvenanceSummary>,
    /// Where it stands.
    pub stage: Stage,
    /// Who registered it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The body that registers a model version.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModelVersion {
    /// The version label.
    pub version: VersionLabel,
    /// The OMS bundle (Sigstore bundle v0.3 JSON) signed by a trusted signer.
    #[schema(value_type = Object)]
    pub signature: serde_json::Value,
    /// Named components.
    #[serde(default)]
    pub components: Vec<Component>,
    /// A signed SLSA provenance v1 bundle whose subject is this version's root digest.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub provenance: Option<serde_json::Value>,
}

/// Where a promotion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PromotionStatus {
    /// Waiting for approvals (or for its gates).
    Pending,
    /// Done: the version moved.
    Completed,
    /// Withdrawn or overtaken (the version moved another way).
    Cancelled,
}

impl PromotionStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for PromotionStatus {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        [Self::Pending, Self::Completed, Self::Cancelled]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| CoreError::invalid("status", format!("`{s}` is not a promotion status")))
    }
}

/// One approval of a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromotionApproval {
    /// Who approved.
    pub approver: String,
    /// Why.
    pub comment: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub approved_at: Timestamp,
}

/// A request to move a model version to another stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Promotion {
    /// Its id.
    pub id: PromotionId,
    /// The version.
    pub model_version_id: ModelVersionId,
    /// The project.
    pub project: Name,
    /// The model.
    pub model: Name,
    /// The version label.
    pub version: VersionLabel,
    /// The model's risk tier.
    pub risk_tier: RiskTier,
    /// The stage it is leaving.
    pub from: Stage,
    /// The stage asked for.
    pub to: Stage,
    /// Why.
    pub reason: String,
    /// The change ticket, if given.
    pub ticket: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    /// Where it stands.
    pub status: PromotionStatus,
    /// Distinct approvals so far.
    pub approvals: Vec<PromotionApproval>,
    /// When it completed or was cancelled.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
}

/// The body that asks for a promotion.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPromotion {
    /// The stage asked for.
    pub to: Stage,
    /// Why.
    pub reason: String,
}

impl NewPromotion {
    /// Checks the reason.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.reason.trim().is_empty() {
            return Err(CoreError::invalid("reason", "must not be empty"));
        }
        text("reason", &self.reason, 2000)
    }
}

/// One entry of a version's immutable stage history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageChange {
    /// The version.
    pub model_version_id: ModelVersionId,
    /// From.
    pub from: Stage,
    /// To.
    pub to: Stage,
    /// The promotion that caused it.
    pub promotion: PromotionId,
    /// Whose request completed it.
    pub changed_by: String,
    /// Who approved it.
    pub approvers: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub changed_at: Timestamp,
}

/// What a serving runtime attests about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeAttestation {
    /// The serving container image.
    #[serde(default)]
    pub image_digest: Option<Sha256Digest>,
    /// Runtime libraries and their versions (`torch` → `2.5.1`).
    #[serde(default)]
    pub runtime_libraries: BTreeMap<String, String>,
    /// The accelerator (`nvidia-h100`, `cpu`).
    #[serde(default)]
    pub accelerator: Option<String>,
    /// The SHA-256 of the policy set the runtime enforces.
    #[serde(default)]
    pub policy_set_hash: Option<String>,
}

/// A model version serving somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deployment {
    /// Its id.
    pub id: DeploymentId,
    /// What it serves.
    pub model_version_id: ModelVersionId,
    /// The project.
    pub project: Name,
    /// The model.
    pub model: Name,
    /// The version label.
    pub version: VersionLabel,
    /// The environment (`prod-eu`, `edge-store-42`).
    pub environment: Name,
    /// The endpoint serving it.
    pub endpoint: String,
    /// Where.
    pub region: Region,
    /// The root digest of what is actually served (equal to the version's).
    pub running_digest: Sha256Digest,
    /// What the runtime attests.
    pub attestation: RuntimeAttestation,
    /// Who recorded it.
    pub deployed_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deployed_at: Timestamp,
}

/// The body that records a deployment.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// The environment.
    pub environment: Name,
    /// The endpoint.
    pub endpoint: String,
    /// Where.
    pub region: Region,
    /// The root digest of what is served, as `custody deploy verify` computes it.
    pub running_digest: Sha256Digest,
    /// The runtime's attestation.
    #[serde(default)]
    pub attestation: RuntimeAttestation,
}

impl NewDeployment {
    /// Checks the free-text fields.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.endpoint.trim().is_empty() {
            return Err(CoreError::invalid("endpoint", "must not be empty"));
        }
        text("endpoint", &self.endpoint, 500)?;
        if let Some(h) = &self.attestation.policy_set_hash
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(CoreError::invalid("attestation.policy_set_hash", "must be 64 hex digits"));
        }
        Ok(())
    }
}
