use crate::{CoreError, name::validate_slug};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where data lives or a workload runs: a cloud region (`eu-west-1`), a private site
/// (`onprem-fra`) or an edge location. 2 to 32 characters of `a-z`, `0-9` and `-`,
/// starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "eu-west-1")]
pub struct Region(String);

impl Region {
    /// Validates `s` as a region.
    pub fn new(s: &str) -> Result<Self, CoreError> {
        validate_slug("region", s, 32)?;
        if s.len() < 2 || !s.as_bytes()[0].is_ascii_lowercase() {
            return Err(CoreError::invalid(
                "region",
                format!("`{s}` must be at least 2 characters and start with a letter"),
            ));
        }
        if s.contains(['.', '_']) {
            return Err(CoreError::invalid("region", format!("`{s}` may contain only a-z, 0-9 and `-`")));
        }
        Ok(Self(s.to_owned()))
    }

    /// The region as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::string_conversions!(Region, Region::new);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in ["eu-west-1", "us-east", "onprem-fra", "edge-42"] {
            assert!(Region::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "e", "EU", "1eu", "eu_west", "eu.west", "eu west"] {
            assert!(Region::new(bad).is_err(), "{bad}");
        }
    }
}
