use std::path::PathBuf;

/// Why a manifest could not be computed, a key loaded, a bundle read, or a signature checked.
///
/// Every variant names the file, field or resource it is about; none of them ever means
/// "verified".
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A symbolic link inside the model while symlinks are not allowed.
    #[error("{0}: is a symbolic link (pass --allow-symlinks to follow links)")]
    Symlink(PathBuf),
    /// Something that is neither a regular file nor a directory (socket, device, FIFO,
    /// dangling link).
    #[error("{0}: is neither a regular file nor a directory")]
    NotFileOrDirectory(PathBuf),
    /// A path that cannot be named in a manifest (not UTF-8, or containing `:` in shard mode).
    #[error("{path}: {reason}")]
    UnnameablePath {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key file that could not be used.
    #[error("key {what}: {reason}")]
    Key {
        /// Which key (usually its path).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A bundle, envelope or statement that does not have the required shape.
    #[error("bundle field `{field}`: {reason}")]
    Bundle {
        /// The JSON path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bundle names a different public key than the one given.
    #[error("the bundle was signed with the key whose hint is {bundle_hint}, not with the given key (hint {key_hint})")]
    KeyMismatch {
        /// The hint recorded in the bundle.
        bundle_hint: String,
        /// The hint of the key given for verification.
        key_hint: String,
    },
    /// The signature does not verify under the given key.
    #[error("the signature over the statement does not verify with the given public key")]
    BadSignature,
    /// The statement's subject digest is not the digest of its resources.
    #[error("the statement's root digest is {stated} but its resources hash to {computed}")]
    RootMismatch {
        /// The digest in the subject.
        stated: String,
        /// The digest recomputed from the resources.
        computed: String,
    },
    /// The work was cancelled (Ctrl-C).
    #[error("cancelled")]
    Cancelled,
}

impl ProvenanceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn bundle(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Bundle { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn key(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Key { what: what.into(), reason: reason.into() }
    }
}
