//! Test support: a fresh, empty database on every backend the tests must cover.
//!
//! SQLite always; PostgreSQL through the server named by `CUSTODY_TEST_PG_URL` (which
//! `scripts/with-postgres.sh` starts), with one new database per call. When that variable is
//! missing, PostgreSQL is skipped with a warning, except under `CI=true`, where it is an error.

#![allow(clippy::print_stderr, clippy::expect_used, clippy::panic)]

use crate::Backend;
use sqlx::Connection;

/// A database for one test. Dropping it leaves PostgreSQL databases behind for the server's
/// own cleanup (the test server is removed with its directory).
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// Its backend.
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// The same database reached through another URL (e.g. with connection options added).
    pub fn with_url(mut self, url: impl FnOnce(&str) -> String) -> Self {
        self.url = url(&self.url);
        self
    }
}

/// A new SQLite database in a temporary directory.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("custody.db").display());
    TestDb { url, backend: Backend::Sqlite, _dir: Some(dir) }
}

/// A new PostgreSQL database, or `None` (with a warning) when no test server is configured
/// outside CI.
pub async fn postgres() -> Option<TestDb> {
    let Ok(base) = std::env::var("CUSTODY_TEST_PG_URL") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CUSTODY_TEST_PG_URL is not set: run the tests through scripts/test.sh");
        }
        eprintln!("warning: CUSTODY_TEST_PG_URL is not set; PostgreSQL tests skipped (use scripts/test.sh)");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid_like());
    let mut conn = sqlx::AnyConnection::connect(&base).await.expect("connect to the test PostgreSQL");
    crate::exec(&mut conn, &format!("CREATE DATABASE {name}")).await.expect("create test database");
    let _ = conn.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
    Some(TestDb { url: format!("{prefix}/{name}"), backend: Backend::Postgres, _dir: None })
}

/// Every backend: SQLite, and PostgreSQL when available.
pub async fn all() -> Vec<TestDb> {
    let mut dbs = vec![sqlite()];
    dbs.extend(postgres().await);
    dbs
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}_{:x}", nanos, std::process::id())
}
