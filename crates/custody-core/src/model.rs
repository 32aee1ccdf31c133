//! Training runs, model versions, stages and deployments: the types the lineage and registry
//! issues build on. Their rules that need no storage live here.

use crate::{CoreError, DatasetVersionId, Name, Region, Sha256Digest, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

crate::ids::typed_id!(
    /// Identifies a [`Run`].
    RunId, "run_id");
crate::ids::typed_id!(
    /// Identifies a [`crate::ModelVersion`].
    ModelVersionId, "model_version_id");
crate::ids::typed_id!(
    /// Identifies a [`crate::Deployment`].
    DeploymentId, "deployment_id");

/// Where a model version stands in its life. Promotion goes one step forward at a time;
/// any stage may be archived; nothing leaves `Archived`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Being built and evaluated.
    Development,
    /// Approved for pre-production testing.
    Staging,
    /// Approved to serve.
    Production,
    /// Retired; kept for the record.
    Archived,
}

impl Stage {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
            Self::Archived => "archived",
        }
    }

    /// Whether a version may move from `self` to `to` (approvals are checked elsewhere).
    pub fn can_move_to(self, to: Stage) -> bool {
        matches!(
            (self, to),
            (Self::Development, Self::Staging)
                | (Self::Staging, Self::Production)
                | (Self::Development | Self::Staging | Self::Production, Self::Archived)
        )
    }

    /// Checks a move, with an error that names both stages.
    pub fn check_move(self, to: Stage) -> Result<(), CoreError> {
        if self.can_move_to(to) {
            Ok(())
        } else {
            Err(CoreError::invalid("stage", format!("cannot move from `{self}` to `{to}`")))
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Stage {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        [Self::Development, Self::Staging, Self::Production, Self::Archived]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                CoreError::invalid("stage", format!("`{s}` is not development, staging, production or archived"))
            })
    }
}

/// An OCI image digest or a source commit, as runs and deployments record them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "3f9c2b1e0a7d4c6b8e5f1a2d3c4b5a6978695a4b")]
pub struct CommitId(String);

impl CommitId {
    /// A git commit: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits.
    pub fn new(s: &str) -> Result<Self, CoreError> {
        if !(s.len() == 40 || s.len() == 64) || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(CoreError::invalid(
                "commit",
                format!("`{s}` is not a 40- or 64-digit lower-case hex commit id"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::string_conversions!(CommitId, CommitId::new);

/// A training (or transformation) run: what went in, with which code and image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The project.
    pub project: Name,
    /// The job it is a run of.
    pub job: Name,
    /// The dataset versions it read.
    pub inputs: Vec<DatasetVersionId>,
    /// The code it ran.
    pub code_commit: Option<CommitId>,
    /// The container image it ran in.
    pub image_digest: Option<Sha256Digest>,
    /// Where it ran.
    pub region: Region,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it ended, if it has.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_moves() {
        use Stage::*;
        let all = [Development, Staging, Production, Archived];
        let allowed: Vec<_> =
            all.iter().flat_map(|a| all.iter().map(move |b| (*a, *b))).filter(|(a, b)| a.can_move_to(*b)).collect();
        assert_eq!(
            allowed,
            [
                (Development, Staging),
                (Development, Archived),
                (Staging, Production),
                (Staging, Archived),
                (Production, Archived)
            ]
        );
        assert!(Production.check_move(Development).unwrap_err().reason.contains("`production` to `development`"));
        assert_eq!("staging".parse::<Stage>().unwrap(), Staging);
        assert!("prod".parse::<Stage>().is_err());
    }

    #[test]
    fn commit_ids() {
        assert!(CommitId::new(&"a".repeat(40)).is_ok());
        assert!(CommitId::new(&"0".repeat(64)).is_ok());
        for bad in ["", "abc", &"A".repeat(40), &"g".repeat(40), &"a".repeat(41)] {
            assert!(CommitId::new(bad).is_err(), "{bad}");
        }
    }
}
