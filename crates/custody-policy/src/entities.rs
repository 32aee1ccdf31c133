//! Turning an [`AuthzRequest`] into a Cedar request and its entities.
//!
//! This is the hot path of every decision, so it avoids the generic route through
//! `cedar_policy::Entity::new` and `Entities::from_entities`, which evaluate every attribute
//! as an expression and compute the transitive closure of the hierarchy; together they cost
//! more than the decision itself. Instead the entities are built with `cedar-policy-core`
//! (the crate under `cedar-policy`, pinned to the same version) from values directly, and the
//! hierarchy is given complete: it is one level deep by construction (a principal's parents
//! are role groups and access grants, which have no parents; a resource's parent is its
//! project, which has none), so every entity's parents are already all its ancestors.
//!
//! Names that never change (entity types, action uids) are prepared once per engine.

use crate::request::{AuthzRequest, ResourceFacts};
use cedar_policy::{Context, Entities, EntityTypeName, EntityUid, Request};
use cedar_policy_core::ast::{self, Eid, EntityType, EntityUID, PartialValue, Value};
use cedar_policy_core::entities::{NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use custody_core::{Action, ProjectScope, Role};
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

/// The id of the pseudo-project standing for the whole platform.
const GLOBAL: &str = "*";

/// The attribute of `Project` holding each role's group.
fn role_attr(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::DataScientist => "data_scientist",
        Role::MlEngineer => "ml_engineer",
        Role::Approver => "approver",
        Role::Auditor => "auditor",
        Role::Admin => "admin",
    }
}

/// Which resource kind (Cedar entity type, without namespace) each action applies to; the
/// schema says the same (a test checks).
pub(crate) fn resource_kind_of(action: Action) -> &'static str {
    match action {
        Action::ProjectCreate | Action::KeyManage => "Platform",
        Action::ProjectRead
        | Action::DatasetRegister
        | Action::KeyUseRead
        | Action::ModelRegister
        | Action::ModelSignerManage
        | Action::LineageWrite
        | Action::LineageRead
        | Action::LineageTransformDeclare
        | Action::LineageTransformApprove
        | Action::LineageErase => "Project",
        Action::ModelRead
        | Action::ModelVersionCreate
        | Action::ModelPromotionRequest
        | Action::DeploymentRecord
        | Action::ModelScanAttach => "Model",
        Action::ModelPromotionApprove | Action::ModelPromotionComplete => "Promotion",
        Action::DatasetRead
        | Action::DatasetUpdate
        | Action::DatasetClassificationRaise
        | Action::DatasetClassificationLower
        | Action::DatasetVersionCreate
        | Action::DatasetGrantManage
        | Action::DatasetScanAttach
        | Action::DatasetDataWrite
        | Action::DatasetDataRead
        | Action::DatasetDataShred => "Dataset",
        Action::ApprovalRead | Action::ApprovalDecide => "Approval",
        Action::TokenCreate | Action::TokenRead | Action::TokenRevoke => "Token",
        Action::AuditRead => "AuditLog",
    }
}

/// The names prepared once per engine.
#[derive(Debug)]
pub(crate) struct Vocabulary {
    principal: EntityType,
    role: EntityType,
    access: EntityType,
    project: EntityType,
    dataset: EntityType,
    approval: EntityType,
    token: EntityType,
    audit_log: EntityType,
    model: EntityType,
    promotion: EntityType,
    platform_uid: EntityUID,
    /// The uid of each action, in the order of [`Action::ALL`].
    actions: Vec<EntityUid>,
}

fn type_name(name: &str) -> Result<EntityTypeName, String> {
    EntityTypeName::from_str(name).map_err(|e| format!("entity type `{name}`: {e}"))
}

fn core_type(name: &str) -> Result<EntityType, String> {
    type_name(name).map(|t| t.as_ref().clone())
}

fn uid(ty: &EntityType, id: &str) -> EntityUID {
    EntityUID::from_components(ty.clone(), Eid::new(id), None)
}

fn string(s: &str) -> PartialValue {
    PartialValue::from(s)
}

fn boolean(b: bool) -> PartialValue {
    PartialValue::from(b)
}

fn entity(uid: EntityUID) -> PartialValue {
    PartialValue::from(uid)
}

impl Vocabulary {
    pub(crate) fn new() -> Result<Self, String> {
        let action = type_name("Custody::Action")?;
        Ok(Self {
            principal: core_type("Custody::Principal")?,
            role: core_type("Custody::Role")?,
            access: core_type("Custody::Access")?,
            project: core_type("Custody::Project")?,
            dataset: core_type("Custody::Dataset")?,
            approval: core_type("Custody::Approval")?,
            token: core_type("Custody::Token")?,
            audit_log: core_type("Custody::AuditLog")?,
            model: core_type("Custody::Model")?,
            promotion: core_type("Custody::Promotion")?,
            platform_uid: uid(&core_type("Custody::Platform")?, "custody"),
            actions: Action::ALL
                .iter()
                .map(|a| EntityUid::from_type_name_and_id(action.clone(), cedar_policy::EntityId::new(a.as_str())))
                .collect(),
        })
    }

    pub(crate) fn action_uid(&self, action: Action) -> Result<EntityUid, String> {
        Action::ALL
            .iter()
            .position(|a| *a == action)
            .and_then(|i| self.actions.get(i))
            .cloned()
            .ok_or_else(|| format!("action `{action}` is unknown to the policy engine"))
    }

    fn role_group(&self, project: &str, role: Role) -> EntityUID {
        let mut id = String::with_capacity(project.len() + 1 + role.as_str().len());
        id.push_str(project);
        id.push('/');
        id.push_str(role.as_str());
        uid(&self.role, &id)
    }

    /// The `Project` entity for `name` (or for the pseudo-project `*`).
    fn project_entity(&self, name: &str) -> (EntityUID, ast::Entity) {
        let me = uid(&self.project, name);
        let attrs = [
            ("name".into(), string(name)),
            ("global".into(), boolean(name == GLOBAL)),
            ("project".into(), entity(me.clone())),
        ]
        .into_iter()
        .chain(Role::ALL.iter().map(|&role| (role_attr(role).into(), entity(self.role_group(name, role)))));
        let project = ast::Entity::new_with_attr_partial_value(me.clone(), attrs, HashSet::new(), HashSet::new(), []);
        (me, project)
    }

    /// The Cedar request and the entities it needs.
    pub(crate) fn build(&self, req: &AuthzRequest<'_>) -> Result<(Request, Entities), String> {
        let expected = resource_kind_of(req.action);
        if req.resource.kind() != expected {
            return Err(format!(
                "action `{}` applies to a `{expected}` resource, not to a `{}`",
                req.action,
                req.resource.kind()
            ));
        }
        let action = self.action_uid(req.action)?;
        let mut entities = Vec::with_capacity(3);

        // The project the resource belongs to (`*` for platform-wide tokens and audit log).
        let project_name = match req.resource {
            ResourceFacts::Platform => None,
            ResourceFacts::Token { project, .. } | ResourceFacts::AuditLog { project } => {
                Some(project.as_ref().map_or(GLOBAL, |p| p.as_str()))
            }
            other => other.project().map(|p| p.as_str()),
        };
        let project_uid = project_name.map(|name| {
            let (project_uid, project) = self.project_entity(name);
            entities.push(project);
            project_uid
        });

        let resource_uid = self.resource(req.resource, project_uid, &mut entities)?;
        let principal_uid = self.principal(req, project_name, &mut entities);
        let request =
            Request::new(EntityUid::from(principal_uid), action, EntityUid::from(resource_uid), context(req), None)
                .map_err(|e| format!("could not build the request: {e}"))?;
        // Every entity's parents are all its ancestors (see the module docs), so the closure
        // is already computed.
        let entities = cedar_policy_core::entities::Entities::from_entities(
            entities,
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map_err(|e| format!("could not build the entities: {e}"))?;
        Ok((request, Entities::from(entities)))
    }

    /// Adds the principal to `entities`.
    fn principal(&self, req: &AuthzRequest<'_>, project: Option<&str>, entities: &mut Vec<ast::Entity>) -> EntityUID {
        let p = req.principal;
        let me = uid(&self.principal, &p.id);
        // Role groups: `<project>/<role>` for roles in one project; `*/<role>` for roles in every
        // project, which also count as `<project>/<role>` in the resource's project.
        let local = project.filter(|p| *p != GLOBAL);
        let mut parents = HashSet::with_capacity(2 * p.grants.len() + p.restricted_access.len());
        for grant in &p.grants {
            match &grant.scope {
                ProjectScope::All => {
                    parents.insert(self.role_group(GLOBAL, grant.role));
                    if let Some(project) = local {
                        parents.insert(self.role_group(project, grant.role));
                    }
                }
                ProjectScope::Project(name) => {
                    parents.insert(self.role_group(name.as_str(), grant.role));
                }
            }
        }
        for dataset in &p.restricted_access {
            parents.insert(uid(&self.access, &dataset.to_string()));
        }
        let regions = p.allowed_regions.as_deref().unwrap_or_default();
        let allowed_regions = Value::set(regions.iter().map(|r| Value::from(r.as_str())), None);
        let attrs = [
            ("id".into(), string(&p.id)),
            ("kind".into(), string(p.kind.as_str())),
            ("region_limited".into(), boolean(p.allowed_regions.is_some())),
            ("allowed_regions".into(), PartialValue::from(allowed_regions)),
        ];
        entities.push(ast::Entity::new_with_attr_partial_value(me.clone(), attrs, HashSet::new(), parents, []));
        me
    }

    /// Adds the resource entity to `entities` (a `Project` resource is already there).
    fn resource(
        &self,
        resource: &ResourceFacts,
        project: Option<EntityUID>,
        entities: &mut Vec<ast::Entity>,
    ) -> Result<EntityUID, String> {
        let project = match (resource, project) {
            (ResourceFacts::Platform, _) => return Ok(self.platform_uid.clone()),
            (ResourceFacts::Project { .. }, Some(project)) => return Ok(project),
            (_, Some(project)) => project,
            (other, None) => return Err(format!("a `{}` resource needs a project", other.kind())),
        };
        let in_project = ("project".into(), entity(project.clone()));
        let (me, attrs) = match resource {
            ResourceFacts::Dataset { id, classification, region, owner, .. } => {
                let id = id.to_string();
                let attrs = vec![
                    in_project,
                    ("classification".into(), string(classification.as_str())),
                    ("level".into(), PartialValue::from(classification.level())),
                    ("region".into(), string(region.as_str())),
                    ("owner".into(), string(owner)),
                    ("restricted_access".into(), entity(uid(&self.access, &id))),
                ];
                (uid(&self.dataset, &id), attrs)
            }
            ResourceFacts::Model { id, risk_tier, owner, .. } => {
                let attrs =
                    vec![in_project, ("risk_tier".into(), string(risk_tier.as_str())), ("owner".into(), string(owner))];
                (uid(&self.model, &id.to_string()), attrs)
            }
            ResourceFacts::Promotion { id, risk_tier, to, approvals, requested_by, .. } => {
                let attrs = vec![
                    in_project,
                    ("risk_tier".into(), string(risk_tier.as_str())),
                    ("to_stage".into(), string(to.as_str())),
                    ("approvals".into(), PartialValue::from(i64::from(*approvals))),
                    ("requested_by".into(), string(requested_by)),
                ];
                (uid(&self.promotion, &id.to_string()), attrs)
            }
            ResourceFacts::Approval { id, requested_by, .. } => {
                let attrs = vec![in_project, ("requested_by".into(), string(requested_by))];
                (uid(&self.approval, &id.to_string()), attrs)
            }
            ResourceFacts::Token { id, project: name } => {
                let attrs = vec![in_project, ("global".into(), boolean(name.is_none()))];
                let id = id.map_or_else(|| GLOBAL.to_owned(), |id| id.to_string());
                (uid(&self.token, &id), attrs)
            }
            ResourceFacts::AuditLog { project: name } => {
                let attrs = vec![in_project, ("global".into(), boolean(name.is_none()))];
                (uid(&self.audit_log, name.as_ref().map_or(GLOBAL, |n| n.as_str())), attrs)
            }
            ResourceFacts::Platform | ResourceFacts::Project { .. } => {
                return Err(format!("unexpected `{}` resource", resource.kind()));
            }
        };
        let parents = HashSet::from([project]);
        entities.push(ast::Entity::new_with_attr_partial_value(me.clone(), attrs, HashSet::new(), parents, []));
        Ok(me)
    }
}

/// The Cedar `context` record.
fn context(req: &AuthzRequest<'_>) -> Context {
    let ctx = req.context;
    let time = ctx.time.unix_timestamp();
    let days = time.div_euclid(86_400);
    let hour = time.rem_euclid(86_400) / 3_600;
    // 1970-01-01 was a Thursday (3, counting from Monday = 0).
    let weekday = (days + 3).rem_euclid(7);
    // A blank ticket is no ticket.
    let ticket = ctx.ticket.as_deref().map_or("", str::trim);
    let record = BTreeMap::from([
        ("time".into(), Value::from(time)),
        ("hour_utc".into(), Value::from(hour)),
        ("weekday".into(), Value::from(weekday)),
        ("has_ticket".into(), Value::from(!ticket.is_empty())),
        ("ticket".into(), Value::from(ticket)),
        ("source_region".into(), Value::from(ctx.source_region.as_ref().map_or("", |r| r.as_str()))),
    ]);
    Context::from(ast::Context::Value(Arc::new(record)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resource kinds the engine accepts are exactly those the schema declares, and the
    /// schema declares no action the engine does not know.
    #[test]
    fn resource_kinds_match_the_schema() {
        let (schema, _) = cedar_policy::Schema::from_cedarschema_str(crate::PolicyEngine::schema_text()).unwrap();
        let vocabulary = Vocabulary::new().unwrap();
        for &action in Action::ALL {
            let uid = vocabulary.action_uid(action).unwrap();
            let kinds: Vec<&str> = schema.resources_for_action(&uid).unwrap().map(|t| t.basename()).collect();
            assert_eq!(kinds, [resource_kind_of(action)], "{action}");
            let principals: Vec<&str> = schema.principals_for_action(&uid).unwrap().map(|t| t.basename()).collect();
            assert_eq!(principals, ["Principal"], "{action}");
        }
        // No action groups: the engine's per-action policy subsets rely on it.
        assert_eq!(schema.actions().count(), Action::ALL.len());
    }

    #[test]
    fn weekday_and_hour() {
        use custody_core::{Principal, PrincipalKind};
        let principal = Principal {
            id: "p".into(),
            kind: PrincipalKind::User,
            grants: vec![],
            restricted_access: vec![],
            allowed_regions: None,
        };
        let resource = ResourceFacts::Platform;
        for (time, hour, weekday) in [
            (time::macros::datetime!(1970-01-01 00:00 UTC), 0, 3),
            (time::macros::datetime!(2024-06-03 10:59 UTC), 10, 0),
            (time::macros::datetime!(2024-06-09 23:00 UTC), 23, 6),
            (time::macros::datetime!(1969-12-31 23:30 UTC), 23, 2),
            (time::macros::datetime!(2024-06-03 12:00 +02:00), 10, 0),
        ] {
            let context = crate::RequestContext::at(time);
            let req = AuthzRequest {
                principal: &principal,
                action: Action::ProjectCreate,
                resource: &resource,
                context: &context,
            };
            let ctx = super::context(&req);
            let ast::Context::Value(record) = ctx.as_ref() else { panic!("not a value") };
            assert_eq!(record.get("hour_utc"), Some(&Value::from(hour)), "{time}");
            assert_eq!(record.get("weekday"), Some(&Value::from(weekday)), "{time}");
            assert_eq!(record.get("time"), Some(&Value::from(time.unix_timestamp())));
            assert_eq!(record.get("has_ticket"), Some(&Value::from(false)));
        }
    }
}
