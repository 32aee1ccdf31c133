use crate::{Action, Name, Region, RequestId, Timestamp};
use serde::{Deserialize, Serialize};

/// What an authorization decision said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The policies permitted the action.
    Allow,
    /// The policies did not permit it (no permit matched, or a forbid matched).
    Deny,
    /// The request was refused before it could be authorized (malformed input, unknown
    /// resource).
    #[serde(rename = "not_evaluated")]
    NotEvaluated,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The change was made.
    Success,
    /// Authorization refused it.
    Denied,
    /// The input was invalid or conflicted with existing state; nothing changed.
    Rejected,
    /// An internal error; nothing changed.
    Error,
}

impl Outcome {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Rejected => "rejected",
            Self::Error => "error",
        }
    }
}

impl Decision {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::NotEvaluated => "not_evaluated",
        }
    }
}

/// The resource an event is about, as `<type>:<id>` (e.g. `dataset:0190…`, `project:fraud`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ResourceRef(pub String);

impl ResourceRef {
    /// A reference to a resource of `kind` with `id`.
    pub fn new(kind: &str, id: impl std::fmt::Display) -> Self {
        Self(format!("{kind}:{id}"))
    }
}

/// An audit event before it is sequenced: everything but its sequence number and time,
/// which the store assigns when the transaction that carries it commits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// Who asked.
    pub actor: String,
    /// What was asked.
    pub action: Action,
    /// What it was about.
    pub resource: ResourceRef,
    /// The project it happened in, if any.
    pub project: Option<Name>,
    /// The region of the resource, if any.
    pub region: Option<Region>,
    /// The authorization decision.
    pub decision: Decision,
    /// SHA-256 (hex) of the policy set that made the decision.
    pub policy_hash: String,
    /// The request that caused it.
    pub request_id: RequestId,
    /// How it ended; the store sets `Rejected` or `Error` when the change fails.
    pub outcome: Outcome,
    /// Event-specific facts (what changed, why it was refused). Never secrets.
    pub details: serde_json::Value,
}

/// A sequenced, committed audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// Position in the log, from 0, without gaps.
    pub seq: u64,
    /// When the transaction that recorded it committed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub time: Timestamp,
    /// Who asked.
    pub actor: String,
    /// What was asked.
    pub action: Action,
    /// What it was about.
    #[schema(value_type = String)]
    pub resource: ResourceRef,
    /// The project it happened in.
    #[schema(value_type = Option<String>)]
    pub project: Option<Name>,
    /// The resource's region.
    #[schema(value_type = Option<String>)]
    pub region: Option<Region>,
    /// The authorization decision.
    pub decision: Decision,
    /// SHA-256 (hex) of the policy set that decided.
    pub policy_hash: String,
    /// The request that caused it.
    #[schema(value_type = String)]
    pub request_id: RequestId,
    /// How it ended.
    pub outcome: Outcome,
    /// Event-specific facts.
    pub details: serde_json::Value,
    /// Hex SHA-256 Merkle leaf hash of the record's canonical serialization (see
    /// `custody_audit::RecordFields`).
    pub leaf_hash: String,
}
