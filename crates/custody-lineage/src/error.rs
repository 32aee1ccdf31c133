use thiserror::Error;

/// Why an OpenLineage event body was refused. Every variant names the JSON path at fault
/// (`run.runId`, `inputs[2].namespace`, …) so the HTTP layer can answer 400 with it verbatim.
/// A refused event asserts nothing: the caller stores nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The body is not JSON at all (or not a JSON object).
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// A field the OpenLineage spec requires is absent (or `null`).
    #[error("missing required field `{path}`")]
    Missing {
        /// Path of the missing field.
        path: String,
    },
    /// A field is present but has the wrong JSON type.
    #[error("`{path}` must be {expected}")]
    WrongType {
        /// Path of the field.
        path: String,
        /// The JSON type it must have, e.g. `a string`.
        expected: &'static str,
    },
    /// A field has the right type but an unacceptable value.
    #[error("invalid `{path}`: {reason}")]
    Invalid {
        /// Path of the field.
        path: String,
        /// Why the value is refused, with the offending input in backticks.
        reason: String,
    },
    /// The body matches none (or more than one) of RunEvent, DatasetEvent and JobEvent.
    #[error("not an OpenLineage event: {reason}")]
    Shape {
        /// Which of the three event shapes was expected and why none fits.
        reason: String,
    },
}

impl EventError {
    /// The JSON path the error is about (empty for syntax errors and shape errors).
    pub fn path(&self) -> &str {
        match self {
            Self::Missing { path } | Self::WrongType { path, .. } | Self::Invalid { path, .. } => path,
            Self::Json { .. } | Self::Shape { .. } => "",
        }
    }
}

/// A known facet that did not match its schema. The event is still accepted and the facet is
/// kept as received; only its typed reading is missing. (The spec asks consumers to be
/// tolerant of facets; the core envelope stays strict.)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FacetWarning {
    /// Path of the facet or of the field inside it that is malformed.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why a graph operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The node the query starts from is not in the graph.
    #[error("unknown node `{0}`")]
    UnknownNode(String),
    /// The node exists but is not of the kind the query needs (e.g. "what trained" on a run).
    #[error("node `{node}` is a {actual}, expected a {expected}")]
    WrongKind {
        /// The node, as text.
        node: String,
        /// Its kind.
        actual: &'static str,
        /// The kind the query needs.
        expected: &'static str,
    },
}
