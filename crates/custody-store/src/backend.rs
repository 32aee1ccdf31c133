use crate::StoreError;

/// The database behind a [`crate::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a local file: the embedded default.
    Sqlite,
    /// PostgreSQL: for several stateless servers.
    Postgres,
}

impl Backend {
    pub(crate) fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StoreError::UnsupportedUrl(format!("{scheme}:…")))
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// Starts a write transaction. SQLite takes the write lock at once so that a batch never
    /// fails half-way on a lock upgrade.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// Reads the audit head, locking it until the transaction ends.
    pub(crate) fn lock_audit_head(self) -> &'static str {
        match self {
            Self::Sqlite => "SELECT next_seq, last_time, frontier, root FROM audit_head WHERE id = 1",
            Self::Postgres => "SELECT next_seq, last_time, frontier, root FROM audit_head WHERE id = 1 FOR UPDATE",
        }
    }

    /// Starts a multi-row INSERT on the writer's path. On SQLite `OR FAIL`: a statement that
    /// writes several rows and may stop on a constraint half-way otherwise keeps a statement
    /// journal, a copy of every page it changes, to undo itself alone; the writer never needs
    /// that, since it answers any failed statement by rolling back the write's savepoint or the
    /// whole batch. (A fifth fewer `pwrite` calls per lineage event.)
    pub(crate) fn insert_rows(self) -> &'static str {
        match self {
            Self::Sqlite => "INSERT OR FAIL INTO",
            Self::Postgres => "INSERT INTO",
        }
    }

    /// `FOR UPDATE` where the database has it: rows read to be changed stay locked.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE",
        }
    }
}
