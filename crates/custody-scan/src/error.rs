//! Errors of the public API. Problems *inside* scanned files are findings, not errors.

use std::path::PathBuf;

/// Errors returned by [`crate::scan_path`] and [`crate::deps::OsvDatabase::open`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A directory is not a usable OSV database.
    #[error("`{path}` is not an OSV database: {reason}")]
    OsvDatabase {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
