use crate::{CoreError, DatasetId, Name, Region};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A role a principal holds in a project. Roles are not ranked: each grants its own actions
/// (see the default Cedar policies), and a principal may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads metadata: projects, datasets, versions.
    Viewer,
    /// Registers datasets and adds versions.
    DataScientist,
    /// Everything a data scientist does, plus changing dataset metadata.
    MlEngineer,
    /// Decides approval requests (e.g. lowering a classification).
    Approver,
    /// Reads metadata and the audit log.
    Auditor,
    /// Administers the project: tokens, grants, everything in it.
    Admin,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 6] =
        [Self::Viewer, Self::DataScientist, Self::MlEngineer, Self::Approver, Self::Auditor, Self::Admin];

    /// The kebab-case name used in JSON, SQL and Cedar.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::DataScientist => "data-scientist",
            Self::MlEngineer => "ml-engineer",
            Self::Approver => "approver",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            CoreError::invalid(
                "role",
                format!("`{s}` is not one of viewer, data-scientist, ml-engineer, approver, auditor, admin"),
            )
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a role applies: one project, or every project (`*`, for platform administrators
/// and auditors).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ProjectScope {
    /// Every project.
    All,
    /// One project, by name.
    Project(Name),
}

impl ProjectScope {
    /// Parses `*` or a project name.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        if s == "*" { Ok(Self::All) } else { Name::new(s).map(Self::Project).map_err(|e| e.for_field("project")) }
    }

    /// Whether this scope covers `project`.
    pub fn covers(&self, project: &Name) -> bool {
        match self {
            Self::All => true,
            Self::Project(p) => p == project,
        }
    }
}

impl fmt::Display for ProjectScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Project(p) => f.write_str(p.as_str()),
        }
    }
}

/// A role held in a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Grant {
    /// Where the role applies.
    pub scope: ProjectScope,
    /// The role.
    pub role: Role,
}

/// Whether a principal is a person or a workload (pipeline, service, job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A pipeline, job or service.
    Workload,
}

impl PrincipalKind {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Workload => "workload",
        }
    }
}

impl std::str::FromStr for PrincipalKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s {
            "user" => Ok(Self::User),
            "workload" => Ok(Self::Workload),
            _ => Err(CoreError::invalid("kind", format!("`{s}` is not `user` or `workload`"))),
        }
    }
}

/// An authenticated caller and everything authorization needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    /// A stable identifier: `token:<name>` for API tokens, `oidc:<subject>` for OIDC users.
    pub id: String,
    /// Person or workload.
    pub kind: PrincipalKind,
    /// The roles it holds.
    pub grants: Vec<Grant>,
    /// Restricted datasets it was explicitly granted access to.
    pub restricted_access: Vec<DatasetId>,
    /// When set, the only regions whose resources it may touch.
    pub allowed_regions: Option<Vec<Region>>,
}

impl Principal {
    /// The roles held in `project` (including roles held in every project).
    pub fn roles_in<'a>(&'a self, project: &'a Name) -> impl Iterator<Item = Role> + 'a {
        self.grants.iter().filter(move |g| g.scope.covers(project)).map(|g| g.role)
    }
}

crate::string_schema!(ProjectScope, "a project name, or `*` for every project", "fraud-detection");

/// An API token's metadata. The secret itself is shown once, at creation, and stored only
/// as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    /// Its id (the public part of the token string).
    #[schema(value_type = String)]
    pub id: crate::TokenId,
    /// A label for people (`ci-pipeline`, `alice-laptop`).
    pub name: String,
    /// The principal it authenticates as.
    pub principal: String,
    /// Person or workload.
    pub kind: PrincipalKind,
    /// The role it carries, and where.
    pub grant: Grant,
    /// When set, the only regions it may touch.
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_regions: Option<Vec<Region>>,
    /// Who created it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: crate::Timestamp,
    /// When it stops working, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<crate::Timestamp>,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<crate::Timestamp>,
}

crate::string_conversions!(ProjectScope, ProjectScope::parse);
