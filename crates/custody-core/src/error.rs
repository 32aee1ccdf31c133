use thiserror::Error;

/// A value failed validation. `field` names the input, `reason` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid `{field}`: {reason}")]
#[non_exhaustive]
pub struct CoreError {
    /// The name of the field or value that was rejected.
    pub field: &'static str,
    /// Why it was rejected, in lower case, with the offending input in backticks.
    pub reason: String,
}

impl CoreError {
    /// A validation error for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }

    /// The same error reported under another field name (e.g. `classification` in a request body).
    pub fn for_field(mut self, field: &'static str) -> Self {
        self.field = field;
        self
    }
}
