//! `TestDatabase` on both backends, driven through `backend_tests!` exactly as other crates use it.
//!
//! The PostgreSQL half needs `ENIGM_TEST_POSTGRES_URL`; run it with `scripts/test`.

use anyhow::Context as _;
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

backend_tests!(
    fresh_database_is_empty,
    database_keeps_schema_and_rows,
    databases_are_isolated_from_each_other,
    url_names_the_backend,
);

async fn fresh_database_is_empty(backend: Backend) -> anyhow::Result<()> {
    let db = TestDatabase::new(backend).await?;
    let pool = connect(&db).await?;
    assert_eq!(table_count(&pool, backend).await?, 0);
    pool.close().await;
    Ok(())
}

async fn database_keeps_schema_and_rows(backend: Backend) -> anyhow::Result<()> {
    let db = TestDatabase::new(backend).await?;
    let pool = connect(&db).await?;
    sqlx::query("CREATE TABLE device (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO device (id, name) VALUES (1, 'gateway-1'), (2, 'sensor-7')")
        .execute(&pool)
        .await?;
    pool.close().await;

    // A second connection pool sees what the first one committed.
    let pool = connect(&db).await?;
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM device ORDER BY id")
        .fetch_all(&pool)
        .await?;
    assert_eq!(
        rows,
        [(1, "gateway-1".to_owned()), (2, "sensor-7".to_owned())]
    );
    assert_eq!(table_count(&pool, backend).await?, 1);
    pool.close().await;
    Ok(())
}

async fn databases_are_isolated_from_each_other(backend: Backend) -> anyhow::Result<()> {
    let first = TestDatabase::new(backend).await?;
    let second = TestDatabase::new(backend).await?;
    assert_ne!(first.url(), second.url());

    let pool = connect(&first).await?;
    sqlx::query("CREATE TABLE only_in_first (id BIGINT)")
        .execute(&pool)
        .await?;
    assert_eq!(table_count(&pool, backend).await?, 1);
    pool.close().await;

    let pool = connect(&second).await?;
    assert_eq!(table_count(&pool, backend).await?, 0);
    pool.close().await;
    Ok(())
}

async fn url_names_the_backend(backend: Backend) -> anyhow::Result<()> {
    let db = TestDatabase::new(backend).await?;
    assert_eq!(db.backend(), backend);
    match backend {
        Backend::Sqlite => {
            assert!(db.url().starts_with("sqlite:///"), "{}", db.url());
            assert!(db.url().ends_with("/test.db?mode=rwc"), "{}", db.url());
        }
        Backend::Postgres => {
            let database = db.url().rsplit('/').next().unwrap_or_default();
            assert!(database.starts_with("enigm_test_"), "{}", db.url());
            assert_eq!(database.len(), "enigm_test_".len() + 32, "{}", db.url());
        }
    }
    Ok(())
}

async fn connect(db: &TestDatabase) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(2)
        .connect(db.url())
        .await
        .with_context(|| format!("could not connect to the {} test database", db.backend()))
}

/// Number of user tables in the database.
async fn table_count(pool: &AnyPool, backend: Backend) -> anyhow::Result<i64> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        }
    };
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}
