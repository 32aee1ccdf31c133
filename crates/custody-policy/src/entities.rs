//! Turning an [`AuthzRequest`] into a Cedar request and its entities.
//!
//! Everything that can be prepared once (entity type names, action uids) is, so building a
//! request costs only the entities themselves.

use crate::request::{AuthzRequest, ResourceFacts};
use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression};
use custody_core::{Action, Role};
use std::str::FromStr;

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
/// schema says the same.
fn resource_kind_of(action: Action) -> &'static str {
    match action {
        Action::ProjectCreate => "Platform",
        Action::ProjectRead | Action::DatasetRegister => "Project",
        Action::DatasetRead
        | Action::DatasetUpdate
        | Action::DatasetClassificationRaise
        | Action::DatasetClassificationLower
        | Action::DatasetVersionCreate
        | Action::DatasetGrantManage => "Dataset",
        Action::ApprovalRead | Action::ApprovalDecide => "Approval",
        Action::TokenCreate | Action::TokenRead | Action::TokenRevoke => "Token",
        Action::AuditRead => "AuditLog",
    }
}

/// The names prepared once per engine.
#[derive(Debug)]
pub(crate) struct Vocabulary {
    principal: EntityTypeName,
    role: EntityTypeName,
    access: EntityTypeName,
    project: EntityTypeName,
    dataset: EntityTypeName,
    approval: EntityTypeName,
    token: EntityTypeName,
    audit_log: EntityTypeName,
    platform_uid: EntityUid,
    /// The uid of each action, in the order of [`Action::ALL`].
    actions: Vec<EntityUid>,
}

fn type_name(name: &str) -> Result<EntityTypeName, String> {
    EntityTypeName::from_str(name).map_err(|e| format!("entity type `{name}`: {e}"))
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

impl Vocabulary {
    pub(crate) fn new() -> Result<Self, String> {
        let action = type_name("Custody::Action")?;
        let platform = type_name("Custody::Platform")?;
        Ok(Self {
            principal: type_name("Custody::Principal")?,
            role: type_name("Custody::Role")?,
            access: type_name("Custody::Access")?,
            project: type_name("Custody::Project")?,
            dataset: type_name("Custody::Dataset")?,
            approval: type_name("Custody::Approval")?,
            token: type_name("Custody::Token")?,
            audit_log: type_name("Custody::AuditLog")?,
            platform_uid: uid(&platform, "custody"),
            actions: Action::ALL.iter().map(|a| uid(&action, a.as_str())).collect(),
        })
    }

    fn action_uid(&self, action: Action) -> Result<EntityUid, String> {
        Action::ALL
            .iter()
            .position(|a| *a == action)
            .and_then(|i| self.actions.get(i))
            .cloned()
            .ok_or_else(|| format!("action `{action}` is unknown to the policy engine"))
    }

    fn role_group(&self, project: &str, role: Role) -> EntityUid {
        let mut id = String::with_capacity(project.len() + 1 + role.as_str().len());
        id.push_str(project);
        id.push('/');
        id.push_str(role.as_str());
        uid(&self.role, &id)
    }

    /// The `Project` entity for `name` (or for the pseudo-project `*`).
    fn project_entity(&self, name: &str) -> Result<(EntityUid, Entity), String> {
        let me = uid(&self.project, name);
        let attrs = [
            ("name".to_owned(), string(name)),
            ("global".to_owned(), RestrictedExpression::new_bool(name == GLOBAL)),
            ("project".to_owned(), RestrictedExpression::new_entity_uid(me.clone())),
        ]
        .into_iter()
        .chain(Role::ALL.iter().map(|&role| {
            (role_attr(role).to_owned(), RestrictedExpression::new_entity_uid(self.role_group(name, role)))
        }));
        let entity = Entity::new_with_tags(me.clone(), attrs, [], []).map_err(|e| format!("project `{name}`: {e}"))?;
        Ok((me, entity))
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
        let mut entities = Vec::with_capacity(6);

        // The project the resource belongs to (`*` for platform-wide tokens and audit log).
        let project_name = match req.resource {
            ResourceFacts::Platform => None,
            ResourceFacts::Token { project, .. } | ResourceFacts::AuditLog { project } => {
                Some(project.as_ref().map_or(GLOBAL, |p| p.as_str()))
            }
            other => other.project().map(|p| p.as_str()),
        };
        let project_uid = match project_name {
            Some(name) => {
                let (project_uid, entity) = self.project_entity(name)?;
                entities.push(entity);
                Some(project_uid)
            }
            None => None,
        };

        let resource_uid = self.resource(req.resource, project_uid, &mut entities)?;
        let principal_uid = self.principal(req, project_name, &mut entities)?;
        let context = context(req)?;
        let action = self.action_uid(req.action)?;
        let request = Request::new(principal_uid, action, resource_uid, context, None)
            .map_err(|e| format!("could not build the request: {e}"))?;
        let entities =
            Entities::from_entities(entities, None).map_err(|e| format!("could not build the entities: {e}"))?;
        Ok((request, entities))
    }

    /// Adds the principal (and the membership of its global roles in the resource's project)
    /// to `entities`.
    fn principal(
        &self,
        req: &AuthzRequest<'_>,
        project: Option<&str>,
        entities: &mut Vec<Entity>,
    ) -> Result<EntityUid, String> {
        let p = req.principal;
        let me = uid(&self.principal, &p.id);
        let mut parents = Vec::with_capacity(p.grants.len() + p.restricted_access.len());
        // Roles held in every project, each once.
        let mut global_roles = [false; Role::ALL.len()];
        for grant in &p.grants {
            match &grant.scope {
                custody_core::ProjectScope::All => {
                    parents.push(self.role_group(GLOBAL, grant.role));
                    if let Some(i) = Role::ALL.iter().position(|r| *r == grant.role)
                        && let Some(seen) = global_roles.get_mut(i)
                    {
                        *seen = true;
                    }
                }
                custody_core::ProjectScope::Project(name) => parents.push(self.role_group(name.as_str(), grant.role)),
            }
        }
        for dataset in &p.restricted_access {
            parents.push(uid(&self.access, &dataset.to_string()));
        }
        // A role held everywhere is also that role in this project: `*/<role>` in `<project>/<role>`.
        if let Some(project) = project.filter(|p| *p != GLOBAL) {
            for (role, _) in Role::ALL.iter().zip(global_roles).filter(|(_, held)| *held) {
                let group =
                    Entity::new_no_attrs(self.role_group(GLOBAL, *role), [self.role_group(project, *role)].into());
                entities.push(group);
            }
        }
        let regions = p.allowed_regions.as_deref().unwrap_or_default();
        let attrs = [
            ("id".to_owned(), string(&p.id)),
            ("kind".to_owned(), string(p.kind.as_str())),
            ("region_limited".to_owned(), RestrictedExpression::new_bool(p.allowed_regions.is_some())),
            ("allowed_regions".to_owned(), RestrictedExpression::new_set(regions.iter().map(|r| string(r.as_str())))),
        ];
        let entity =
            Entity::new_with_tags(me.clone(), attrs, parents, []).map_err(|e| format!("principal `{}`: {e}", p.id))?;
        entities.push(entity);
        Ok(me)
    }

    /// Adds the resource entity to `entities` (a `Project` resource is already there).
    fn resource(
        &self,
        resource: &ResourceFacts,
        project: Option<EntityUid>,
        entities: &mut Vec<Entity>,
    ) -> Result<EntityUid, String> {
        let project = match (resource, project) {
            (ResourceFacts::Platform, _) => return Ok(self.platform_uid.clone()),
            (ResourceFacts::Project { .. }, Some(project)) => return Ok(project),
            (_, Some(project)) => project,
            (other, None) => return Err(format!("a `{}` resource needs a project", other.kind())),
        };
        let in_project = ("project".to_owned(), RestrictedExpression::new_entity_uid(project.clone()));
        let (me, attrs) = match resource {
            ResourceFacts::Dataset { id, classification, region, owner, .. } => {
                let id = id.to_string();
                let attrs = vec![
                    in_project,
                    ("classification".to_owned(), string(classification.as_str())),
                    ("level".to_owned(), RestrictedExpression::new_long(classification.level())),
                    ("region".to_owned(), string(region.as_str())),
                    ("owner".to_owned(), string(owner)),
                    ("restricted_access".to_owned(), RestrictedExpression::new_entity_uid(uid(&self.access, &id))),
                ];
                (uid(&self.dataset, &id), attrs)
            }
            ResourceFacts::Approval { id, requested_by, .. } => {
                let attrs = vec![in_project, ("requested_by".to_owned(), string(requested_by))];
                (uid(&self.approval, &id.to_string()), attrs)
            }
            ResourceFacts::Token { id, project: name } => {
                let attrs = vec![in_project, ("global".to_owned(), RestrictedExpression::new_bool(name.is_none()))];
                let id = id.map_or_else(|| GLOBAL.to_owned(), |id| id.to_string());
                (uid(&self.token, &id), attrs)
            }
            ResourceFacts::AuditLog { project: name } => {
                let attrs = vec![in_project, ("global".to_owned(), RestrictedExpression::new_bool(name.is_none()))];
                (uid(&self.audit_log, name.as_ref().map_or(GLOBAL, |n| n.as_str())), attrs)
            }
            ResourceFacts::Platform | ResourceFacts::Project { .. } => {
                return Err(format!("unexpected `{}` resource", resource.kind()));
            }
        };
        let entity = Entity::new_with_tags(me.clone(), attrs, [project], []).map_err(|e| format!("resource: {e}"))?;
        entities.push(entity);
        Ok(me)
    }
}

/// The Cedar `context` record.
fn context(req: &AuthzRequest<'_>) -> Result<Context, String> {
    let ctx = req.context;
    let time = ctx.time.unix_timestamp();
    let days = time.div_euclid(86_400);
    let hour = time.rem_euclid(86_400) / 3_600;
    // 1970-01-01 was a Thursday (3, counting from Monday = 0).
    let weekday = (days + 3).rem_euclid(7);
    // A blank ticket is no ticket.
    let ticket = ctx.ticket.as_deref().map_or("", str::trim);
    let pairs = [
        ("time".to_owned(), RestrictedExpression::new_long(time)),
        ("hour_utc".to_owned(), RestrictedExpression::new_long(hour)),
        ("weekday".to_owned(), RestrictedExpression::new_long(weekday)),
        ("has_ticket".to_owned(), RestrictedExpression::new_bool(!ticket.is_empty())),
        ("ticket".to_owned(), string(ticket)),
        ("source_region".to_owned(), string(ctx.source_region.as_ref().map_or("", |r| r.as_str()))),
    ];
    Context::from_pairs(pairs).map_err(|e| format!("could not build the context: {e}"))
}
