use custody_core::{
    Action, ApprovalId, Classification, DatasetId, Decision, ModelId, Name, Principal, PromotionId, Region, RiskTier,
    Stage, TokenId,
};

/// One authorization question: may `principal` do `action` to `resource`, in `context`?
#[derive(Debug, Clone, Copy)]
pub struct AuthzRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// What they ask to do.
    pub action: Action,
    /// What they ask to do it to.
    pub resource: &'a ResourceFacts,
    /// The circumstances of the request.
    pub context: &'a RequestContext,
}

/// What the policies may know about the resource of a request. The server looks these facts
/// up; the engine turns them into Cedar entities.
///
/// Each action applies to one kind of resource (see the schema): `project.create` to
/// [`Platform`](Self::Platform); `project.read` and `dataset.register` to
/// [`Project`](Self::Project); the other `dataset.*` actions to [`Dataset`](Self::Dataset);
/// `approval.*` to [`Approval`](Self::Approval); `model.*` and `deployment.record` to
/// [`Model`](Self::Model), except `model.register` and `model.signer.manage` (on the project)
/// and `model.promotion.approve`/`complete` (on the [`Promotion`](Self::Promotion)); `token.*` to [`Token`](Self::Token);
/// `audit.read` to [`AuditLog`](Self::AuditLog). Any other pairing is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceFacts {
    /// Custody itself, for platform-wide actions (creating projects).
    Platform,
    /// A project.
    Project {
        /// Its name.
        name: Name,
    },
    /// A dataset.
    Dataset {
        /// Its id.
        id: DatasetId,
        /// The project it belongs to.
        project: Name,
        /// Its current classification.
        classification: Classification,
        /// Where its data lives.
        region: Region,
        /// The principal id of its owner.
        owner: String,
    },
    /// A registered model (its versions, signatures and deployments are covered by it).
    Model {
        /// Its id.
        id: ModelId,
        /// The project it belongs to.
        project: Name,
        /// Its risk tier.
        risk_tier: RiskTier,
        /// The principal id of its owner.
        owner: String,
    },
    /// A promotion of a model version, with the approvals it has so far.
    Promotion {
        /// Its id.
        id: PromotionId,
        /// The project it belongs to.
        project: Name,
        /// The model's risk tier.
        risk_tier: RiskTier,
        /// The stage asked for.
        to: Stage,
        /// Distinct approvals so far (never the requester's).
        approvals: u32,
        /// The principal id of whoever asked.
        requested_by: String,
    },
    /// An approval request.
    Approval {
        /// Its id.
        id: ApprovalId,
        /// The project it belongs to.
        project: Name,
        /// The principal id of whoever asked.
        requested_by: String,
    },
    /// An API token, or tokens in general (`id: None`: creating or listing).
    Token {
        /// Its id, if it exists.
        id: Option<TokenId>,
        /// Its project; `None` for a global token.
        project: Option<Name>,
    },
    /// The audit log of a project, or (`None`) the whole log.
    AuditLog {
        /// The project.
        project: Option<Name>,
    },
}

impl ResourceFacts {
    /// The project the resource belongs to; `None` for platform-wide resources (the platform,
    /// global tokens, the whole audit log).
    pub fn project(&self) -> Option<&Name> {
        match self {
            Self::Platform => None,
            Self::Project { name } => Some(name),
            Self::Dataset { project, .. }
            | Self::Approval { project, .. }
            | Self::Model { project, .. }
            | Self::Promotion { project, .. } => Some(project),
            Self::Token { project, .. } | Self::AuditLog { project } => project.as_ref(),
        }
    }

    /// The Cedar entity type of the resource, without namespace (`Dataset`, `Token`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Platform => "Platform",
            Self::Project { .. } => "Project",
            Self::Dataset { .. } => "Dataset",
            Self::Approval { .. } => "Approval",
            Self::Model { .. } => "Model",
            Self::Promotion { .. } => "Promotion",
            Self::Token { .. } => "Token",
            Self::AuditLog { .. } => "AuditLog",
        }
    }
}

/// The circumstances of a request, as policies see them in `context`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// When the request was made (`context.time`, `context.hour_utc`, `context.weekday`).
    pub time: time::OffsetDateTime,
    /// The change ticket given with the request (`context.has_ticket`, `context.ticket`).
    pub ticket: Option<String>,
    /// Where the request came from, if known (`context.source_region`).
    pub source_region: Option<Region>,
}

impl RequestContext {
    /// A context at `time` with no ticket and no known source region.
    pub fn at(time: time::OffsetDateTime) -> Self {
        Self { time, ticket: None, source_region: None }
    }
}

/// The answer to an [`AuthzRequest`], with what the audit record needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Allow or deny. Any evaluation error makes it deny.
    pub decision: Decision,
    /// The `@id`s of the policies that decided: the permits that allowed it, or the forbids
    /// that denied it. Empty when nothing permitted the request.
    pub determining_policies: Vec<String>,
    /// Errors met while deciding (each forces a deny). Empty normally.
    pub errors: Vec<String>,
    /// SHA-256 (hex) of the policy set that decided.
    pub policy_hash: String,
}

impl AuthzDecision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// The decision as JSON, for an audit record's details:
    /// `{"decision", "policies", "errors", "policy_hash"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "decision": self.decision.as_str(),
            "policies": self.determining_policies,
            "errors": self.errors,
            "policy_hash": self.policy_hash,
        })
    }
}
