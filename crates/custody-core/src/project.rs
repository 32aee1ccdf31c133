use crate::{Name, ProjectId, Timestamp};
use serde::{Deserialize, Serialize};

/// An isolation boundary: datasets, models and roles belong to exactly one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// Its unique name.
    pub name: Name,
    /// What it is for.
    pub description: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The fields of a new project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// Its unique name.
    pub name: Name,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}
