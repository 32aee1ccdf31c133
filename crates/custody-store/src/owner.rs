//! Which process owns a SQLite database file, so that authorization facts can be cached there.
//!
//! The facts cache (`cache.rs`) is sound only if every write that changes a cached fact clears
//! it. On PostgreSQL, replicas hear each other's writes through `NOTIFY`. SQLite has no such
//! channel, so instead one process at a time owns the file: it holds an exclusive lock on
//! `<database>-custody.lock` for as long as any of its stores on that database is open, and
//! every store of the process on that database shares one cache. All the writes that could
//! change a cached fact then go through a store that clears that cache. A second process that
//! opens the database is refused with an error saying so, rather than serving stale facts in
//! the first: SQLite serves one server; several servers need PostgreSQL.

use crate::StoreError;
use crate::cache::FactsCache;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

/// This process's hold on one SQLite database.
pub(crate) struct SqliteOwner {
    /// Held (locked) until the last store of this process on the database is gone.
    _lock: File,
    /// The cache every store of this process on the database shares.
    pub(crate) facts: Arc<FactsCache>,
}

/// The databases this process owns, by canonical path.
static OWNED: Mutex<Vec<(PathBuf, Weak<SqliteOwner>)>> = Mutex::new(Vec::new());

/// Takes (or shares, within this process) the ownership of the database file at `db`, before
/// anything opens it.
pub(crate) fn own(db: &Path) -> Result<Arc<SqliteOwner>, StoreError> {
    let path = canonical(db).map_err(|e| lock_error(db, &e))?;
    // A poisoned lock only means a panic while the list was edited; the entries are whole.
    let mut owned = OWNED.lock().unwrap_or_else(|p| p.into_inner());
    owned.retain(|(_, owner)| owner.strong_count() > 0);
    if let Some(owner) = owned.iter().find(|(p, _)| *p == path).and_then(|(_, o)| o.upgrade()) {
        return Ok(owner);
    }
    let lock_path = lock_path(&path);
    let lock = open_lock_file(&lock_path).map_err(|e| lock_error(&lock_path, &e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StoreError::InUse { path: path.display().to_string(), lock: lock_path.display().to_string() });
        }
        Err(TryLockError::Error(e)) => return Err(lock_error(&lock_path, &e)),
    }
    let owner = Arc::new(SqliteOwner { _lock: lock, facts: Arc::new(FactsCache::new(true)) });
    owned.push((path, Arc::downgrade(&owner)));
    Ok(owner)
}

/// One name per file: the file's own canonical path if it exists, else its directory's with
/// its name (SQLite is about to create it).
fn canonical(db: &Path) -> std::io::Result<PathBuf> {
    if db.exists() {
        return std::fs::canonicalize(db);
    }
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = db.file_name().ok_or_else(|| std::io::Error::other("the database path names no file"))?;
    Ok(std::fs::canonicalize(dir)?.join(name))
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push("-custody.lock");
    db.with_file_name(name)
}

/// Opens (creating it owner-only) the lock file. It holds nothing and is never removed:
/// removing it would let a process lock a new file while another still holds the old one.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn lock_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Lock { path: path.display().to_string(), reason: e.to_string() }
}

/// The file a `sqlite:` URL names, or `None` for an in-memory database.
pub(crate) fn database_file(url: &str) -> Result<Option<PathBuf>, StoreError> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let file = options.get_filename();
    let name = file.to_string_lossy();
    // sqlx names `sqlite::memory:` `file:sqlx-in-memory-<n>`.
    let in_memory = name.is_empty()
        || name == ":memory:"
        || name.starts_with("file::memory:")
        || name.starts_with("file:sqlx-in-memory-")
        || url.contains("mode=memory");
    if in_memory {
        return Ok(None);
    }
    Ok(Some(file.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_shares_a_database_and_a_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let a = own(&db).unwrap();
        // The same file once it exists, by another name.
        std::fs::write(&db, b"").unwrap();
        let b = own(&dir.path().join(".").join("c.db")).unwrap();
        assert!(Arc::ptr_eq(&a.facts, &b.facts));
        assert!(Arc::ptr_eq(&a.facts, &own(&db).unwrap().facts), "stores of one process share the cache");
        // Another process would hold the lock through its own open file: so does this one.
        let other = open_lock_file(&lock_path(&std::fs::canonicalize(&db).unwrap())).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop((a, b));
        other.try_lock().unwrap();
        drop(other);
        let c = own(&db).unwrap();
        assert!(c.facts.is_on());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let lock = std::fs::metadata(dir.path().join("c.db-custody.lock")).unwrap();
            assert_eq!(lock.permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn in_memory_databases_have_no_file() {
        assert_eq!(database_file("sqlite::memory:").unwrap(), None);
        assert_eq!(database_file("sqlite://x.db?mode=rwc").unwrap(), Some(PathBuf::from("x.db")));
    }
}
