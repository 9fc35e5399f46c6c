//! What the PostgreSQL tests share: the database from `DATABASE_URL` and a schema of each test's own.
//!
//! Without `DATABASE_URL`, a test prints why it is skipped and passes on a developer machine, and
//! fails in CI (`CI=true`), where `.ci/run` starts a throwaway cluster and sets the variable.

#![allow(dead_code)] // each test binary uses a part

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use oncall_sync::postgres::PostgresStateStore;

/// The database URL, or `None` (after saying so) where tests that need one are skipped.
pub fn database_url(test: &str) -> Option<String> {
    required_env(test, "DATABASE_URL", "postgres://…")
}

/// The folder of the test cluster's throwaway CA (`ca.crt`, and `other-ca.crt` that signed
/// nothing there), or `None` (after saying so) where the TLS tests are skipped.
pub fn tls_dir(test: &str) -> Option<std::path::PathBuf> {
    required_env(
        test,
        "ONCALL_TEST_PG_TLS_DIR",
        "the folder .ci/postgres.sh makes",
    )
    .map(Into::into)
}

/// An environment variable a test needs: missing, the test is skipped (saying so on the
/// terminal, past the test harness's capture) on a developer's machine, and fails in CI
/// (`CI=true`), where `.ci/run` starts a cluster and sets it.
fn required_env(test: &str, name: &str, what: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{test}: {name} is not set, and CI must run the PostgreSQL tests (.ci/run starts a cluster and sets it)"
            );
            // Straight to the terminal: the harness captures eprintln! of a passing test.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {test}: set {name}={what} to run it against PostgreSQL \
                 (`bash .ci/run` starts a throwaway cluster and does)"
            );
            None
        }
    }
}

/// A destination with this id, on an Opsgenie connection's vendor schedule of the same name
/// (what the lease tests enrol).
pub fn destination(id: &oncall_sync::DestinationId) -> oncall_sync::Destination {
    oncall_sync::Destination {
        id: id.clone(),
        connection: oncall_sync::ConnectionId("og".into()),
        schedule: oncall_sync::VendorScheduleId(id.0.clone()),
        role: oncall_sync::RoleIndex::PRIMARY,
        mode: oncall_sync::DestinationMode::Protect,
    }
}

/// A schema name no other test (or test run) uses.
pub fn unique_schema(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    format!("t_{name}_{}_{nanos}_{n}", std::process::id())
}

/// A migrated store in a fresh schema of its own, or `None` where the test is skipped.
pub async fn fresh_store(test: &str) -> Option<PostgresStateStore> {
    let url = database_url(test)?;
    Some(store_in(&url, &unique_schema(test)).await)
}

/// A store (its own pool) in `schema`, migrated.
pub async fn store_in(url: &str, schema: &str) -> PostgresStateStore {
    let store = PostgresStateStore::connect(url)
        .await
        .expect("connect to DATABASE_URL")
        .with_schema(schema)
        .expect("valid schema name");
    store.migrate().await.expect("migrate");
    store
}

/// Runs one SQL statement (test set-up and inspection).
pub async fn execute(store: &PostgresStateStore, sql: &str) {
    let client = store.pool().get().await.expect("connection");
    client.batch_execute(sql).await.expect(sql);
}

/// Drops a test's schema (best effort: a leftover schema in a throwaway cluster harms nothing).
pub async fn drop_schema(store: &PostgresStateStore) {
    if let Ok(client) = store.pool().get().await {
        let _ = client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                store.schema()
            ))
            .await;
    }
}
