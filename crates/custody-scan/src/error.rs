//! Errors of the public API. Problems *inside* scanned files are findings, not errors.

use std::path::PathBuf;

/// Errors returned by [`crate::scan_path`].
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
}
