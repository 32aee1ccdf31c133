use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Everything a principal can ask Custody to do. Each is a Cedar action
        /// `Custody::Action::"<name>"`, and each request is authorized for exactly one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum Action {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl Action {
            /// Every action.
            pub const ALL: &'static [Action] = &[$(Self::$variant,)*];

            /// The dotted name, as used in Cedar and the audit log.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }
        }
    };
}

actions! {
    /// Create a project.
    ProjectCreate = "project.create",
    /// Read a project.
    ProjectRead = "project.read",
    /// Register a dataset in a project.
    DatasetRegister = "dataset.register",
    /// Read a dataset's metadata and versions.
    DatasetRead = "dataset.read",
    /// Change a dataset's descriptive metadata.
    DatasetUpdate = "dataset.update",
    /// Raise a dataset's classification.
    DatasetClassificationRaise = "dataset.classification.raise",
    /// Ask for a dataset's classification to be lowered.
    DatasetClassificationLower = "dataset.classification.lower",
    /// Add a version to a dataset.
    DatasetVersionCreate = "dataset.version.create",
    /// Grant or revoke explicit access to a restricted dataset.
    DatasetGrantManage = "dataset.grant.manage",
    /// Store a dataset version's data (encrypted, in the blob store).
    DatasetDataWrite = "dataset.data.write",
    /// Register a model in a project.
    ModelRegister = "model.register",
    /// Add or remove the signing keys a project trusts for its models.
    ModelSignerManage = "model.signer.manage",
    /// Read a model, its versions, signatures, promotions, history and deployments.
    ModelRead = "model.read",
    /// Register a signed version of a model.
    ModelVersionCreate = "model.version.create",
    /// Ask for a model version to move to another stage.
    ModelPromotionRequest = "model.promotion.request",
    /// Approve a promotion.
    ModelPromotionApprove = "model.promotion.approve",
    /// Carry out a promotion (the policies count its approvals).
    ModelPromotionComplete = "model.promotion.complete",
    /// Record a deployment of a model version.
    DeploymentRecord = "deployment.record",
    /// Attach a scan result to a model version.
    ModelScanAttach = "model.scan.attach",
    /// Attach a scan result to a dataset version.
    DatasetScanAttach = "dataset.scan.attach",
    /// Send OpenLineage events into a project's lineage.
    LineageWrite = "lineage.write",
    /// Query a project's lineage (upstream, downstream, impact, erasure reports).
    LineageRead = "lineage.read",
    /// Declare (or withdraw) that a job anonymises or aggregates the data it reads.
    LineageTransformDeclare = "lineage.transform.declare",
    /// Approve a job's anonymizing/aggregating declaration, which then stops classification
    /// inheritance through it.
    LineageTransformApprove = "lineage.transform.approve",
    /// Carry out an erasure (DSAR): record what was done about every item the data reached,
    /// deleting the data Custody holds.
    LineageErase = "lineage.erase",
    /// Read (decrypt) a dataset version's data.
    DatasetDataRead = "dataset.data.read",
    /// Crypto-shred a dataset version's data: destroy the key that protects it.
    DatasetDataShred = "dataset.data.shred",
    /// Read the key-use ledger of a project (which key protected what, for whom, when).
    KeyUseRead = "key.use.read",
    /// Manage key-encryption keys: rotate one, rewrap stored data keys (platform-wide).
    KeyManage = "key.manage",
    /// Read approval requests.
    ApprovalRead = "approval.read",
    /// Approve or reject an approval request.
    ApprovalDecide = "approval.decide",
    /// Create an API token.
    TokenCreate = "token.create",
    /// List API tokens.
    TokenRead = "token.read",
    /// Revoke an API token.
    TokenRevoke = "token.revoke",
    /// Read the audit log.
    AuditRead = "audit.read",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
