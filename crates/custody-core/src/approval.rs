use crate::{ApprovalId, CoreError, Name, ProjectId, ResourceRef, Timestamp};
use serde::{Deserialize, Serialize};

/// What an approval request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApprovalKind {
    /// Lower a dataset's classification.
    LowerClassification {
        /// The level it has now.
        from: crate::Classification,
        /// The level asked for.
        to: crate::Classification,
    },
}

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved and applied.
    Approved,
    /// Rejected.
    Rejected,
}

impl ApprovalStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

impl std::str::FromStr for ApprovalStatus {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "rejected" => Ok(Self::Rejected),
            _ => Err(CoreError::invalid("status", format!("`{s}` is not pending, approved or rejected"))),
        }
    }
}

/// A request for a change that policy says needs someone else's approval. The requester can
/// never decide their own request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// Its id.
    pub id: ApprovalId,
    /// The project of the subject.
    pub project_id: ProjectId,
    /// The project's name.
    pub project: Name,
    /// What it is about.
    #[schema(value_type = String)]
    pub subject: ResourceRef,
    /// What it asks for.
    pub kind: ApprovalKind,
    /// Why (free text).
    pub reason: String,
    /// The change ticket it refers to, if any.
    pub ticket: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
    /// The decider's comment.
    pub decision_comment: Option<String>,
}
