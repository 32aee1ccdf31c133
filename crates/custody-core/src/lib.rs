//! Domain types of Custody, the chain of custody for AI data and models.
//!
//! This crate owns the vocabulary every other crate speaks: [`Project`], [`Dataset`],
//! [`DatasetVersion`], [`Classification`], [`Region`], [`RetentionPeriod`], [`Principal`],
//! [`Role`], [`Action`] and [`AuditEvent`]. It performs no I/O. Every value that comes from
//! outside (a name, a region, a digest) has a constructor that validates it, so a value of
//! these types is valid by construction.
//!
//! ```
//! use custody_core::{Classification, Name};
//! assert!(Classification::Public < Classification::Restricted);
//! assert!(Name::new("fraud-features").is_ok());
//! assert!(Name::new("Bad Name").is_err());
//! ```

/// Implements the OpenAPI schema of a type that serialises as a validated string.
#[macro_export]
#[doc(hidden)]
macro_rules! string_schema {
    ($ty:ty, $desc:literal, $example:literal) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($desc))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}

/// Implements `TryFrom<String>`, `FromStr` and `Into<String>` for a type that serialises as
/// a validated string, through its parser and its `Display`.
macro_rules! string_conversions {
    ($ty:ty, $parse:path) => {
        impl TryFrom<String> for $ty {
            type Error = $crate::CoreError;
            fn try_from(s: String) -> Result<Self, $crate::CoreError> {
                $parse(&s)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.to_string()
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::CoreError;
            fn from_str(s: &str) -> Result<Self, $crate::CoreError> {
                $parse(s)
            }
        }
    };
}
pub(crate) use string_conversions;

mod action;
mod approval;
mod audit;
mod classification;
mod dataset;
mod digest;
mod error;
mod ids;
mod keyuse;
mod model;
mod name;
mod principal;
mod project;
mod region;
mod registry;
mod retention;
mod scan;
mod time_util;

pub use action::Action;
pub use approval::{Approval, ApprovalKind, ApprovalStatus};
pub use audit::{AuditDraft, AuditEvent, Decision, Outcome, ResourceRef};
pub use classification::Classification;
pub use dataset::{Dataset, DatasetVersion, NewDataset, NewDatasetVersion, UseList};
pub use digest::Sha256Digest;
pub use error::CoreError;
pub use ids::{ApprovalId, DatasetId, DatasetVersionId, ProjectId, RequestId, TokenId};
pub use keyuse::{KeyOperation, KeyUse};
pub use model::{CommitId, DeploymentId, ModelVersionId, Run, RunId, Stage};
pub use name::{Name, VersionLabel};
pub use principal::{ApiToken, Grant, Principal, PrincipalKind, ProjectScope, Role};
pub use project::{NewProject, Project};
pub use region::Region;
pub use registry::{
    Component, ComponentKind, DatasetDependency, Deployment, Model, ModelId, ModelVersion, NewDeployment, NewModel,
    NewModelVersion, NewPromotion, NewTrustedSigner, Promotion, PromotionApproval, PromotionId, PromotionStatus,
    ProvenanceSummary, RiskTier, RuntimeAttestation, StageChange, TrustedSigner,
};
pub use retention::RetentionPeriod;
pub use scan::{
    MAX_FINDINGS_PER_FILE, MAX_SCANNED_FILES, NewScanResult, ScanFinding, ScanId, ScanResult, ScanSeverity,
    ScanSubject, ScanVerdict, ScannedFile,
};
pub use time_util::{Timestamp, now};
