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
//! The Cedar model (namespace `Custody`, see `schema/custody.cedarschema`): a
//! `Principal` is a member of the role groups `Role::"<project>/<role>"` (`*/<role>` for a role
//! in every project, which also counts in the resource's project) and of `Access::"<dataset>"`
//! for each restricted dataset it was granted; every project-scoped resource has
//! `resource.project`, whose attributes `viewer`, `data_scientist`, … are its role groups, so
//! policies say `principal in resource.project.admin`. Global tokens and the whole audit log
//! belong to the pseudo-project `*`, whose groups are the `*/<role>` ones.
//!
//! Deny is the default. Roles are not ranked: each action lists the roles that get it.
//! Guards (`forbid` policies) override every permit, administrators included: restricted data
//! needs an explicit grant, region-limited principals stay in their regions, lowering a
//! classification needs a change ticket, and nobody decides their own approval request. An
//! error while evaluating any policy denies the request (Cedar alone would skip the policy).
//!
//! A decision, entity building included, takes about 15 µs: the entities are built from
//! values with no transitive-closure pass, and each action is decided only by the policies
//! whose scope admits it (`benches/decision.rs` measures it).
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
