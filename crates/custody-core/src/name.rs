use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A resource name: 1 to 63 characters of lower-case ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit. Names appear in URLs, Cedar entity ids and file names, so
/// they exclude anything that needs escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "fraud-features")]
pub struct Name(String);

impl Name {
    /// Validates `s` as a name.
    pub fn new(s: &str) -> Result<Self, CoreError> {
        validate_slug("name", s, 63)?;
        Ok(Self(s.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn validate_slug(field: &'static str, s: &str, max: usize) -> Result<(), CoreError> {
    if s.is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    if s.len() > max {
        return Err(CoreError::invalid(field, format!("`{}…` is longer than {max} characters", truncate(s, 16))));
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(CoreError::invalid(field, format!("`{s}` must start with a lower-case letter or a digit")));
    }
    if let Some(bad) =
        s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        return Err(CoreError::invalid(
            field,
            format!("`{s}` contains `{bad}`; allowed are a-z, 0-9, `-`, `_` and `.`"),
        ));
    }
    Ok(())
}

pub(crate) fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A human label for a dataset version (`v1`, `2024-06-01`, `1.2.0-rc.1`): 1 to 64 characters,
/// letters of either case, digits, `-`, `_`, `.` and `+`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "v3")]
pub struct VersionLabel(String);

impl VersionLabel {
    /// Validates `s` as a version label.
    pub fn new(s: &str) -> Result<Self, CoreError> {
        let field = "label";
        if s.is_empty() || s.len() > 64 {
            return Err(CoreError::invalid(field, "must be 1 to 64 characters"));
        }
        if !s.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(CoreError::invalid(field, format!("`{s}` must start with a letter or a digit")));
        }
        if let Some(bad) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))) {
            return Err(CoreError::invalid(field, format!("`{s}` contains `{bad}`")));
        }
        Ok(Self(s.to_owned()))
    }

    /// The label as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VersionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::string_conversions!(Name, Name::new);

crate::string_conversions!(VersionLabel, VersionLabel::new);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_rejects() {
        for ok in ["a", "fraud-features", "v1.2_x", "0abc"] {
            assert!(Name::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a b", "a/b", "é", &"a".repeat(64)] {
            assert!(Name::new(bad).is_err(), "{bad}");
        }
        let e = Name::new("a/b").unwrap_err();
        assert_eq!(e.field, "name");
        assert!(e.reason.contains("`/`"), "{}", e.reason);
    }

    proptest! {
        #[test]
        fn valid_names_roundtrip(s in "[a-z0-9][a-z0-9._-]{0,62}") {
            let n = Name::new(&s).unwrap();
            let json = serde_json::to_string(&n).unwrap();
            let back: Name = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, n);
        }

        #[test]
        fn never_panics(s in ".*") {
            let _ = Name::new(&s);
            let _ = VersionLabel::new(&s);
        }
    }
}
