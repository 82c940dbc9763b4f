//! Test support for the Enigm workspace: a fresh database per test on SQLite and PostgreSQL, and
//! the location of the shared third-party test vectors.
//!
//! # Databases
//!
//! [`TestDatabase::new`] hands out one fresh, empty database:
//!
//! - SQLite: a file in a temporary directory that is deleted when the [`TestDatabase`] is dropped.
//! - PostgreSQL: a new database named `enigm_test_<uuid>` on the server whose *admin* URL is in
//!   `ENIGM_TEST_POSTGRES_URL`. `scripts/test` starts a throwaway cluster and sets that variable.
//!   Test databases are not dropped: the cluster started by `scripts/test` is deleted as a whole
//!   when the run ends, and the random names keep concurrent tests apart. If you point
//!   `ENIGM_TEST_POSTGRES_URL` at a long-lived server, expect `enigm_test_*` databases to pile up.
//!
//! PostgreSQL is not optional: without `ENIGM_TEST_POSTGRES_URL`, the PostgreSQL half of every
//! database test fails with a message that says how to run it. The only way to leave it out is
//! to say so with `ENIGM_SKIP_POSTGRES=1`, and then each skipped test prints `SKIPPED`.
//!
//! [`backend_tests!`] turns one `async fn name(backend: Backend)` into a test per backend:
//!
//! ```no_run
//! use enigm_test_support::{Backend, TestDatabase, backend_tests};
//!
//! async fn creates_user(backend: Backend) -> anyhow::Result<()> {
//!     let db = TestDatabase::new(backend).await?;
//!     assert_eq!(db.backend(), backend);
//!     // ... connect to db.url(), run migrations, assert ...
//!     Ok(())
//! }
//!
//! // Expands to `mod sqlite { fn creates_user() }` and `mod postgres { fn creates_user() }`.
//! backend_tests!(creates_user);
//! # fn main() {}
//! ```
//!
//! # Shared vectors
//!
//! Third-party test vectors live next to the repository in `../shared/vectors` and are never
//! copied into it. [`require_shared_vectors`] finds them or fails the test loudly.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sqlx::Connection as _;
use tempfile::TempDir;

/// Environment variable holding the admin URL of the PostgreSQL server used by tests.
pub const POSTGRES_URL_VAR: &str = "ENIGM_TEST_POSTGRES_URL";

/// Environment variable that, set to `1`, skips the PostgreSQL half of the database tests.
pub const SKIP_POSTGRES_VAR: &str = "ENIGM_SKIP_POSTGRES";

/// A database engine that Command can store its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, the default for a single Command instance.
    Sqlite,
    /// PostgreSQL, for deployments that outgrow one file.
    Postgres,
}

impl Backend {
    /// Every backend, in the order tests report them.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// Lowercase name, as used in test module names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A fresh, empty database for one test.
///
/// Keep it alive for as long as the test uses [`TestDatabase::url`]: dropping it deletes a SQLite
/// database's directory.
pub struct TestDatabase {
    url: String,
    backend: Backend,
    // Held only so that the SQLite file is deleted when the test ends.
    _dir: Option<TempDir>,
}

impl TestDatabase {
    /// Creates a new, empty database on `backend`.
    ///
    /// For PostgreSQL this needs `ENIGM_TEST_POSTGRES_URL` (see the crate documentation) and fails
    /// with an explanation when it is not set.
    pub async fn new(backend: Backend) -> anyhow::Result<TestDatabase> {
        match backend {
            Backend::Sqlite => Self::new_sqlite().await,
            Backend::Postgres => Self::new_postgres().await,
        }
    }

    /// Connection URL of the database: `sqlite://<tmpdir>/test.db?mode=rwc` or
    /// `postgres://<user>@<host>:<port>/enigm_test_<uuid>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The engine this database runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn new_sqlite() -> anyhow::Result<TestDatabase> {
        let dir = tempfile::Builder::new()
            .prefix("enigm-test-sqlite.")
            .tempdir()
            .context("could not create a temporary directory for the SQLite test database")?;
        let path = dir.path().join("test.db");
        let path = path
            .to_str()
            .with_context(|| format!("temporary path `{}` is not UTF-8", path.display()))?;
        let url = format!("sqlite://{path}?mode=rwc");
        // Connect once so the file exists and a broken SQLite setup fails here, not in the test.
        let conn = sqlx::SqliteConnection::connect(&url)
            .await
            .with_context(|| format!("could not create the SQLite test database `{url}`"))?;
        conn.close()
            .await
            .context("could not close the SQLite test database")?;
        Ok(TestDatabase {
            url,
            backend: Backend::Sqlite,
            _dir: Some(dir),
        })
    }

    async fn new_postgres() -> anyhow::Result<TestDatabase> {
        let admin_url = admin_url_from(std::env::var(POSTGRES_URL_VAR).ok())?;
        let name = format!("enigm_test_{}", uuid::Uuid::new_v4().simple());
        let url = database_url(&admin_url, &name)?;

        // The admin URL may carry a password, so it never appears in error messages.
        let mut conn = sqlx::postgres::PgConnection::connect(&admin_url)
            .await
            .with_context(|| {
                format!("could not connect to the PostgreSQL server named by {POSTGRES_URL_VAR}")
            })?;
        // INVARIANT: `name` is `enigm_test_` followed by 32 hex digits, so quoting it is enough.
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .with_context(|| format!("could not create PostgreSQL test database `{name}`"))?;
        conn.close()
            .await
            .context("could not close the PostgreSQL admin connection")?;
        Ok(TestDatabase {
            url,
            backend: Backend::Postgres,
            _dir: None,
        })
    }
}

/// True only when `ENIGM_SKIP_POSTGRES=1`: the PostgreSQL half of the database tests was
/// explicitly switched off.
pub fn postgres_skipped() -> bool {
    skip_flag(std::env::var(SKIP_POSTGRES_VAR).ok().as_deref())
}

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // This crate lives at `<root>/crates/enigm-test-support`.
    manifest_dir
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest_dir.join("../.."), Path::to_path_buf)
}

/// Where the shared third-party test vectors are expected: `<workspace root>/../shared/vectors`.
///
/// The folder may be absent; tests that need it call [`require_shared_vectors`].
pub fn shared_vectors_dir() -> PathBuf {
    let root = workspace_root();
    match root.parent() {
        Some(parent) => parent.join("shared").join("vectors"),
        None => root.join("../shared/vectors"),
    }
}

/// [`shared_vectors_dir`], or a loud test failure when the folder is missing.
///
/// # Panics
///
/// When `../shared/vectors` does not exist next to the workspace: tests that need third-party
/// vectors must not pass silently without them.
#[expect(clippy::panic, reason = "test support: failing loudly is the point")]
pub fn require_shared_vectors() -> PathBuf {
    match check_shared_vectors(shared_vectors_dir()) {
        Ok(dir) => dir,
        Err(message) => panic!("{message}"),
    }
}

/// Generates one test per backend for each listed `async fn NAME(backend: Backend)`.
///
/// `backend_tests!(a, b)` expands, in the calling module, to `mod sqlite` and `mod postgres`,
/// each holding `#[tokio::test] async fn a()` and `async fn b()` that call `super::a` with the
/// matching [`Backend`]. The test functions may return `()` or `Result<(), E>` with
/// `E: Debug` (an `Err` fails the test and prints the error).
///
/// The PostgreSQL variant returns early, printing `SKIPPED (ENIGM_SKIP_POSTGRES=1): ...`, when
/// [`postgres_skipped`] is true. The calling module must not already have items named `sqlite`
/// or `postgres`, and the calling crate does not need its own `tokio` dependency.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            // Lets `#[tokio::test]` expand in crates that do not depend on tokio themselves.
            use $crate::__private::tokio;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::__private::TestOutcome::finish(
                        super::$name($crate::Backend::Sqlite).await,
                    );
                }
            )*
        }
        mod postgres {
            use $crate::__private::tokio;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::postgres_skipped() {
                        ::std::eprintln!(
                            "SKIPPED (ENIGM_SKIP_POSTGRES=1): `{}` did not run against PostgreSQL",
                            ::std::stringify!($name),
                        );
                        return;
                    }
                    $crate::__private::TestOutcome::finish(
                        super::$name($crate::Backend::Postgres).await,
                    );
                }
            )*
        }
    };
}

pub mod device;
/// A throwaway SoftHSM2 token for PKCS#11 tests.
pub mod softhsm;
/// A real software TPM (swtpm) for tests.
pub mod swtpm;

/// Items used by [`backend_tests!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use tokio;

    /// What a backend test function may return.
    pub trait TestOutcome {
        /// Fails the test (by panicking) when the outcome is an error.
        fn finish(self);
    }

    impl TestOutcome for () {
        fn finish(self) {}
    }

    impl<E: std::fmt::Debug> TestOutcome for Result<(), E> {
        #[expect(
            clippy::panic,
            reason = "test support: a failed test is reported by panicking"
        )]
        fn finish(self) {
            if let Err(error) = self {
                panic!("test failed: {error:?}");
            }
        }
    }
}

fn admin_url_from(value: Option<String>) -> anyhow::Result<String> {
    match value {
        Some(url) if !url.trim().is_empty() => Ok(url),
        _ => anyhow::bail!(
            "{POSTGRES_URL_VAR} is not set: run the suite with scripts/test, which starts \
             PostgreSQL (or set {SKIP_POSTGRES_VAR}=1 to skip the PostgreSQL half explicitly)"
        ),
    }
}

fn skip_flag(value: Option<&str>) -> bool {
    value == Some("1")
}

/// Replaces the database of a `postgres://` URL, keeping credentials, host, port and parameters.
fn database_url(admin_url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let Some((scheme, rest)) = base.split_once("://") else {
        anyhow::bail!("{POSTGRES_URL_VAR} is not a `postgres://` URL");
    };
    if scheme != "postgres" && scheme != "postgresql" {
        anyhow::bail!("{POSTGRES_URL_VAR} has scheme `{scheme}`, expected `postgres`");
    }
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    let mut url = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

fn check_shared_vectors(dir: PathBuf) -> Result<PathBuf, String> {
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "SHARED TEST VECTORS MISSING: `{}` does not exist. These tests use third-party \
             vectors that are kept next to the repository (../shared/vectors) and never copied \
             into it; check them out there and run the tests again",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests;
