use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How sensitive data is. The order is meaningful: `Public < Internal < Confidential < Restricted`.
/// Raising is always allowed to a dataset's owner; lowering needs a recorded approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// May be published.
    Public,
    /// For people inside the organisation.
    Internal,
    /// For named teams; disclosure causes harm.
    Confidential,
    /// Regulated or highly sensitive; access needs an explicit grant.
    Restricted,
}

impl Classification {
    /// All levels, lowest first.
    pub const ALL: [Classification; 4] = [Self::Public, Self::Internal, Self::Confidential, Self::Restricted];

    /// The lower-case name used in JSON, SQL and Cedar.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Confidential => "confidential",
            Self::Restricted => "restricted",
        }
    }

    /// The level as a number (0 = public … 3 = restricted), as Cedar policies compare it.
    pub fn level(self) -> i64 {
        self as i64
    }
}

impl std::str::FromStr for Classification {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            CoreError::invalid(
                "classification",
                format!("`{s}` is not one of public, internal, confidential, restricted"),
            )
        })
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_parsing() {
        assert!(Classification::Public < Classification::Internal);
        assert!(Classification::Internal < Classification::Confidential);
        assert!(Classification::Confidential < Classification::Restricted);
        for c in Classification::ALL {
            assert_eq!(c.as_str().parse::<Classification>().unwrap(), c);
        }
        assert!("secret".parse::<Classification>().is_err());
        assert!("Public".parse::<Classification>().is_err());
    }
}
