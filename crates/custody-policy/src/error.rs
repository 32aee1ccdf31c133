use miette::Diagnostic;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a policy set could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A policy file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The directory holds no `*.cedar` file. Loading it would deny everything, which is
    /// almost certainly a mistake (a wrong path), so it is refused.
    #[error("{}: no `*.cedar` policy files; refusing to load an empty policy set", dir.display())]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
    /// One or more policies do not parse or do not validate against the schema. Every problem
    /// found is listed, one per line, as `path:line:column: message`.
    #[error("{}", join_lines(errors))]
    Invalid {
        /// The problems, in file order.
        errors: Vec<PolicyDiagnostic>,
    },
    /// The built-in schema or the engine's own vocabulary is broken. This is a bug in
    /// Custody, not in the policies.
    #[error("internal error in the policy engine: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

/// One problem in one policy file, with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiagnostic {
    /// The file (for the built-in policies, `policies/<file>`).
    pub path: PathBuf,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// The `@id` of the policy with the problem, when known (validation errors).
    pub policy: Option<String>,
    /// Cedar's message, followed by its hint if it has one.
    pub message: String,
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.path.display(), self.line, self.column, self.message)
    }
}

fn join_lines(errors: &[PolicyDiagnostic]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl PolicyDiagnostic {
    /// A diagnostic at byte `offset` of `text`.
    pub(crate) fn at(path: &Path, text: &str, offset: usize, policy: Option<String>, message: String) -> Self {
        let (line, column) = line_col(text, offset);
        Self { path: path.to_path_buf(), line, column, policy, message }
    }

    /// A diagnostic for each error Cedar reports in `diagnostic` (its first labelled span
    /// gives the location; without one, the start of the file).
    pub(crate) fn from_cedar(path: &Path, text: &str, policy: Option<String>, diagnostic: &dyn Diagnostic) -> Self {
        let offset = diagnostic.labels().and_then(|mut labels| labels.next()).map_or(0, |label| label.offset());
        let mut message = diagnostic.to_string();
        if let Some(help) = diagnostic.help() {
            message.push_str("; help: ");
            message.push_str(&help.to_string());
        }
        Self::at(path, text, offset, policy, message)
    }
}

/// The 1-based line and column (counted in characters) of byte `offset` in `text`. An offset
/// past the end points just after the last character; one inside a character points at it.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else if i + c.len_utf8() <= offset {
            column += 1;
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 1), (1, 2));
        assert_eq!(line_col(text, 2), (1, 3));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 5), (2, 3));
        assert_eq!(line_col(text, 6), (2, 3), "inside `é`");
        assert_eq!(line_col(text, 7), (2, 4));
        assert_eq!(line_col(text, 8), (3, 1));
        assert_eq!(line_col(text, 100), (3, 2));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn display() {
        let d = PolicyDiagnostic {
            path: PathBuf::from("policies/roles.cedar"),
            line: 12,
            column: 5,
            policy: None,
            message: "unexpected token `permitt`".into(),
        };
        assert_eq!(d.to_string(), "policies/roles.cedar:12:5: unexpected token `permitt`");
        let e = PolicyError::Invalid { errors: vec![d.clone(), d] };
        assert_eq!(e.to_string().lines().count(), 2);
    }
}
