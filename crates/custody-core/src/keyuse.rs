//! The key-use ledger's entries: which key-encryption key protected which object's data key,
//! for whom, during which run.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// What was done with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyOperation {
    /// A data key was wrapped (an object was sealed).
    Wrap,
    /// A data key was unwrapped (an object was read).
    Unwrap,
    /// A data key was moved to the KEK's current version.
    Rewrap,
    /// The KEK (or a version of it) was destroyed: crypto-shredding.
    Destroy,
}

impl KeyOperation {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOperation::Wrap => "wrap",
            KeyOperation::Unwrap => "unwrap",
            KeyOperation::Rewrap => "rewrap",
            KeyOperation::Destroy => "destroy",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Wrap, Self::Unwrap, Self::Rewrap, Self::Destroy].into_iter().find(|o| o.as_str() == text)
    }
}

/// One use of a key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyUse {
    /// When.
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// What.
    pub operation: KeyOperation,
    /// The key provider (`local`, `openbao`, `aws-kms`).
    pub provider: String,
    /// The KEK.
    pub key_id: String,
    /// The KEK version used (for a destruction, the highest destroyed).
    pub key_version: u32,
    /// The object (its id in the encryption context; for a destruction, the KEK).
    pub object: String,
    /// The project.
    pub project: String,
    /// The dataset, when the object is a dataset version's data.
    pub dataset_id: Option<String>,
    /// The dataset version's label.
    pub dataset_version: Option<String>,
    /// The data's region.
    pub region: Option<String>,
    /// The data's classification.
    pub classification: Option<String>,
    /// Who asked.
    pub principal: String,
    /// The job or training run the use was for, when the caller named one.
    pub run_id: Option<String>,
    /// The request (and audit record) it belongs to.
    pub request_id: String,
}
