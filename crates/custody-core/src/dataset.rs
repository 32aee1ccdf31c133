use crate::{
    Classification, CoreError, DatasetId, DatasetVersionId, Name, ProjectId, Region, RetentionPeriod, Sha256Digest,
    Timestamp, VersionLabel,
};
use serde::{Deserialize, Serialize};

/// A list of uses (intended or prohibited): each 1 to 200 characters, at most 32 entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
#[schema(value_type = Vec<String>)]
pub struct UseList(Vec<String>);

impl UseList {
    /// Validates a list of uses.
    pub fn new(items: Vec<String>) -> Result<Self, CoreError> {
        if items.len() > 32 {
            return Err(CoreError::invalid("uses", "has more than 32 entries"));
        }
        for (i, s) in items.iter().enumerate() {
            if s.trim().is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
                return Err(CoreError::invalid("uses", format!("entry {i} must be 1 to 200 printable characters")));
            }
        }
        Ok(Self(items))
    }

    /// The entries.
    pub fn items(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for UseList {
    type Error = CoreError;
    fn try_from(v: Vec<String>) -> Result<Self, CoreError> {
        Self::new(v)
    }
}

impl From<UseList> for Vec<String> {
    fn from(u: UseList) -> Vec<String> {
        u.0
    }
}

/// A registered dataset: what it is, who owns it, how sensitive it is, where it lives and
/// how long it may be kept. Its bytes are described by immutable [`DatasetVersion`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dataset {
    /// Its id.
    pub id: DatasetId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// The project's name.
    pub project: Name,
    /// Unique within the project.
    pub name: Name,
    /// The accountable owner (a person or team principal id).
    pub owner: String,
    /// The licence it is used under (SPDX id or free text).
    pub licence: String,
    /// Where it comes from.
    pub source_uri: String,
    /// How sensitive it is.
    pub classification: Classification,
    /// Where it lives.
    pub region: Region,
    /// How long it may be kept.
    pub retention: RetentionPeriod,
    /// What it may be used for.
    pub intended_use: UseList,
    /// What it must not be used for.
    pub prohibited_use: UseList,
    /// Who registered it.
    pub created_by: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When its metadata last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// The fields of a new dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    /// Unique within the project.
    pub name: Name,
    /// The accountable owner; defaults to the caller.
    #[serde(default)]
    pub owner: Option<String>,
    /// Licence (SPDX id or free text).
    pub licence: String,
    /// Where it comes from (URI).
    pub source_uri: String,
    /// How sensitive it is.
    pub classification: Classification,
    /// Where it lives.
    pub region: Region,
    /// How long it may be kept (`90d`, `6w`, `7y`).
    pub retention: RetentionPeriod,
    /// What it may be used for.
    #[serde(default)]
    pub intended_use: UseList,
    /// What it must not be used for.
    #[serde(default)]
    pub prohibited_use: UseList,
}

impl NewDataset {
    /// Checks the free-text fields (the typed ones validated themselves when parsed).
    pub fn validate(&self) -> Result<(), CoreError> {
        check_text("licence", &self.licence, 1, 200)?;
        check_text("source_uri", &self.source_uri, 1, 2048)?;
        if !self.source_uri.contains(':') {
            return Err(CoreError::invalid("source_uri", format!("`{}` is not a URI (scheme:…)", self.source_uri)));
        }
        if let Some(owner) = &self.owner {
            check_text("owner", owner, 1, 200)?;
        }
        Ok(())
    }
}

/// Checks that `value` has between `min` and `max` characters and no control characters.
pub(crate) fn check_text(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), CoreError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(CoreError::invalid(field, format!("must be {min} to {max} characters, got {n}")));
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// One immutable state of a dataset's bytes, identified by their SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetVersion {
    /// Its id.
    pub id: DatasetVersionId,
    /// The dataset it belongs to.
    pub dataset_id: DatasetId,
    /// A human label, unique within the dataset.
    pub label: VersionLabel,
    /// SHA-256 of the bytes; unique within the dataset.
    pub digest: Sha256Digest,
    /// Size of the bytes.
    pub size_bytes: u64,
    /// Where the bytes are (URI), if recorded.
    pub location: Option<String>,
    /// Who registered it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The fields of a new dataset version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDatasetVersion {
    /// A human label, unique within the dataset.
    pub label: VersionLabel,
    /// SHA-256 of the bytes.
    pub digest: Sha256Digest,
    /// Size of the bytes.
    pub size_bytes: u64,
    /// Where the bytes are (URI).
    #[serde(default)]
    pub location: Option<String>,
}

impl NewDatasetVersion {
    /// Checks the free-text fields.
    pub fn validate(&self) -> Result<(), CoreError> {
        if let Some(loc) = &self.location {
            check_text("location", loc, 1, 2048)?;
        }
        if self.size_bytes > i64::MAX as u64 {
            return Err(CoreError::invalid("size_bytes", "is larger than 2^63-1"));
        }
        Ok(())
    }
}
