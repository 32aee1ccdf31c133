//! Cedar authorization of every Custody action.
//!
//! A [`PolicyEngine`] holds a validated Cedar policy set: the built-in default policies
//! ([`PolicyEngine::builtin`]) or the `*.cedar` files of a directory
//! ([`PolicyEngine::from_dir`]), each checked in strict mode against the Custody schema
//! ([`PolicyEngine::schema_text`]). [`PolicyEngine::authorize`] turns an [`AuthzRequest`] —
//! the [`Principal`](custody_core::Principal), the [`Action`](custody_core::Action), the
//! [`ResourceFacts`] and the [`RequestContext`] — into Cedar entities and returns an
//! [`AuthzDecision`]: allow or deny, the `@id`s of the policies that decided, and the hash of
//! the policy set, which the audit record keeps.
//!
//! Deny is the default. Roles are not ranked: each action lists the roles that get it.
//! Guards (`forbid` policies) override every permit, administrators included: restricted data
//! needs an explicit grant, region-limited principals stay in their regions, lowering a
//! classification needs a change ticket, and nobody decides their own approval request.
//!
//! ```
//! use custody_core::{Action, Grant, Name, Principal, PrincipalKind, ProjectScope, Role};
//! use custody_policy::{AuthzRequest, PolicyEngine, RequestContext, ResourceFacts};
//!
//! let engine = PolicyEngine::builtin()?;
//! let project = Name::new("fraud")?;
//! let alice = Principal {
//!     id: "oidc:alice".into(),
//!     kind: PrincipalKind::User,
//!     grants: vec![Grant { scope: ProjectScope::Project(project.clone()), role: Role::Viewer }],
//!     restricted_access: vec![],
//!     allowed_regions: None,
//! };
//! let resource = ResourceFacts::Project { name: project };
//! let context = RequestContext::at(time::OffsetDateTime::UNIX_EPOCH);
//! let read = AuthzRequest { principal: &alice, action: Action::ProjectRead, resource: &resource, context: &context };
//! assert!(engine.authorize(&read).is_allowed());
//! let register = AuthzRequest { action: Action::DatasetRegister, ..read };
//! assert!(!engine.authorize(&register).is_allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod entities;
mod error;
mod request;

pub use engine::PolicyEngine;
pub use error::{PolicyDiagnostic, PolicyError};
pub use request::{AuthzDecision, AuthzRequest, RequestContext, ResourceFacts};
