//! Helpers for tests that need a real database: a fresh PostgreSQL database per test.

use uuid::Uuid;

/// The server tests create their databases on (`TEST_PG_URL`, default the local one).
pub fn admin_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_postgres_url() -> String {
    use sqlx::Executor;
    let admin = admin_url();
    let name = format!("pscaler_test_{}", Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed by this test (scripts/test starts it): {e}"));
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    pool.close().await;
    match admin.rfind('/') {
        Some(i) => format!("{}/{name}", &admin[..i]),
        None => panic!("TEST_PG_URL `{admin}` has no database part"),
    }
}
