use custody_core::CoreError;
use thiserror::Error;

/// What went wrong in the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{what} `{key}` not found")]
    NotFound {
        /// What kind of thing (`project`, `dataset`, …).
        what: &'static str,
        /// The key it was looked up by.
        key: String,
    },
    /// The change conflicts with existing state (a duplicate name, a decided approval).
    #[error("conflict on `{field}`: {reason}")]
    Conflict {
        /// The input field that conflicts.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A position or size asked for is not in the log (an index beyond the size, a size
    /// beyond the log, a consistency proof from size 0).
    #[error("`{field}`: {reason}")]
    OutOfRange {
        /// The input field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The input is invalid.
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// A stored row could not be read back (a bug or a hand-edited database).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which table or value.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The URL names no supported database.
    #[error("unsupported database URL `{0}`: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    /// The migrations in the database do not match this build's.
    #[error("migration {version} in the database differs from this build's: {reason}")]
    Migration {
        /// The migration version.
        version: i64,
        /// Why.
        reason: String,
    },
    /// Another process has the SQLite database open (see `owner.rs`).
    #[error(
        "the SQLite database `{path}` is open in another process (it holds `{lock}`): SQLite serves one \
         server at a time; run several on PostgreSQL"
    )]
    InUse {
        /// The database file.
        path: String,
        /// The lock file the other process holds.
        lock: String,
    },
    /// The SQLite database's lock file could not be opened or locked.
    #[error("cannot lock `{path}`: {reason}")]
    Lock {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The writer task has stopped (the store is closing).
    #[error("the store is closed for writes")]
    WriterStopped,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether this error is the caller's (bad input, conflict, missing thing) rather than the
    /// store's. Audit records of caller errors have outcome `rejected`, others `error`.
    pub fn is_caller_error(&self) -> bool {
        matches!(self, Self::NotFound { .. } | Self::Conflict { .. } | Self::Invalid(_) | Self::OutOfRange { .. })
    }

    pub(crate) fn not_found(what: &'static str, key: impl std::fmt::Display) -> Self {
        Self::NotFound { what, key: key.to_string() }
    }

    pub(crate) fn conflict(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Conflict { field, reason: reason.into() }
    }
}
