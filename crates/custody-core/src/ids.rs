/// Defines a UUIDv7 id type.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// Parses the canonical hyphenated form.
            pub fn parse(s: &str) -> Result<Self, $crate::CoreError> {
                uuid::Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|_| $crate::CoreError::invalid($field, format!("`{}` is not a UUID", crate::name::truncate(s, 40))))
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::CoreError;
            fn from_str(s: &str) -> Result<Self, $crate::CoreError> {
                Self::parse(s)
            }
        }
    };
}

typed_id!(
    /// Identifies a [`crate::Project`].
    ProjectId, "project_id");
typed_id!(
    /// Identifies a [`crate::Dataset`].
    DatasetId, "dataset_id");
typed_id!(
    /// Identifies a [`crate::DatasetVersion`].
    DatasetVersionId, "version_id");
typed_id!(
    /// Identifies an API token (the public part of the token string).
    TokenId, "token_id");
typed_id!(
    /// Identifies an [`crate::Approval`].
    ApprovalId, "approval_id");
typed_id!(
    /// Identifies one HTTP request; it appears in logs, audit records and 5xx responses.
    RequestId, "request_id");

pub(crate) use typed_id;
