//! TLS to PostgreSQL as libpq does it (bug 4 of issue 16), against the test cluster `.ci/run`
//! starts with `ssl=on` and a throwaway CA (`ONCALL_TEST_PG_TLS_DIR`): `verify-full` and
//! `verify-ca` with `sslrootcert`, `require`, the default `prefer` falling back to a plain
//! connection where TLS is refused, and configuration errors that are permanent (never retried)
//! and never show the password.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;

use std::path::{Path, PathBuf};

use oncall_sync::postgres::tokio_postgres;
use oncall_sync::postgres::PostgresStateStore;
use oncall_sync::Error;
use postgres_support::{database_url, tls_dir};

/// The test cluster's port, the CA folder, and the two roles pg_hba steers (`oncall_tls_only`
/// may connect only over TLS, `oncall_plain_only` only without), created if missing.
struct Cluster {
    port: u16,
    tls: PathBuf,
}

async fn cluster(test: &str) -> Option<Cluster> {
    let url = database_url(test)?;
    let tls = tls_dir(test)?;
    let config: tokio_postgres::Config = url.parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    // Set up without the store (NoTls: a plain connection, as the cluster allows postgres).
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for role in ["oncall_tls_only", "oncall_plain_only"] {
        client
            .batch_execute(&format!(
                "DO $$ BEGIN CREATE ROLE {role} LOGIN PASSWORD 'hunter2-secret'; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            ))
            .await
            .unwrap();
    }
    Some(Cluster { port, tls })
}

impl Cluster {
    fn url(&self, user: &str, host: &str, params: &str) -> String {
        format!(
            "postgres://{user}:hunter2-secret@{host}:{}/postgres{params}",
            self.port
        )
    }

    fn ca(&self, name: &str) -> String {
        path_param(&self.tls.join(name))
    }
}

fn path_param(path: &Path) -> String {
    path.to_str().unwrap().replace('/', "%2F")
}

/// Whether the store's connection runs over TLS, as the server sees it.
async fn over_tls(store: &PostgresStateStore) -> bool {
    let client = store.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn verify_full_with_a_private_ca_connects_over_tls() {
    let Some(c) = cluster("tls_verify_full").await else {
        return;
    };
    let url = c.url(
        "oncall_tls_only",
        "127.0.0.1",
        &format!("?sslmode=verify-full&sslrootcert={}", c.ca("ca.crt")),
    );
    let store = PostgresStateStore::connect(&url).await.unwrap();
    assert!(over_tls(&store).await);
    // In key=value form too.
    let kv = format!(
        "host=127.0.0.1 port={} user=oncall_tls_only password='hunter2-secret' dbname=postgres \
         sslmode=verify-full sslrootcert='{}'",
        c.port,
        c.tls.join("ca.crt").display()
    );
    let store = PostgresStateStore::connect(&kv).await.unwrap();
    assert!(over_tls(&store).await);
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_name_and_verify_full_checks_both() {
    let Some(c) = cluster("tls_verify_ca").await else {
        return;
    };
    // The certificate names 127.0.0.1 only: "localhost" is the wrong name.
    let ca = c.ca("ca.crt");
    let by_name = |mode: &str| {
        c.url(
            "oncall_tls_only",
            "localhost",
            &format!("?sslmode={mode}&sslrootcert={ca}&connect_timeout=5"),
        )
    };
    let store = PostgresStateStore::connect(&by_name("verify-ca"))
        .await
        .unwrap();
    assert!(over_tls(&store).await);
    let wrong_name = PostgresStateStore::connect(&by_name("verify-full")).await;
    assert_permanent(&wrong_name, "verify-full to the wrong name");
    // require with a root certificate behaves as verify-ca (libpq's rule).
    let store = PostgresStateStore::connect(&by_name("require"))
        .await
        .unwrap();
    assert!(over_tls(&store).await);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_for_good_without_showing_the_password() {
    let Some(c) = cluster("tls_wrong_ca").await else {
        return;
    };
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = c.url(
            "oncall_tls_only",
            "127.0.0.1",
            &format!("?sslmode={mode}&sslrootcert={}", c.ca("other-ca.crt")),
        );
        let refused = PostgresStateStore::connect(&url).await;
        assert_permanent(&refused, mode);
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("certificate"), "{mode}: {message}");
    }
}

#[tokio::test]
async fn require_without_a_root_certificate_encrypts_without_verifying() {
    let Some(c) = cluster("tls_require").await else {
        return;
    };
    let url = c.url("oncall_tls_only", "127.0.0.1", "?sslmode=require");
    let store = PostgresStateStore::connect(&url).await.unwrap();
    assert!(over_tls(&store).await);
}

#[tokio::test]
async fn prefer_uses_tls_where_it_can_and_falls_back_where_the_server_refuses_it() {
    let Some(c) = cluster("tls_prefer").await else {
        return;
    };
    // The default (no sslmode) is prefer: TLS with a server whose CA nobody told us about.
    let store = PostgresStateStore::connect(&c.url("oncall_tls_only", "127.0.0.1", ""))
        .await
        .unwrap();
    assert!(over_tls(&store).await);
    // A TLS connection of this role is rejected by the server: libpq tries again without TLS.
    for params in ["", "?sslmode=prefer"] {
        let store = PostgresStateStore::connect(&c.url("oncall_plain_only", "127.0.0.1", params))
            .await
            .unwrap();
        assert!(!over_tls(&store).await, "{params}");
    }
    // allow: plain first.
    let store =
        PostgresStateStore::connect(&c.url("oncall_plain_only", "127.0.0.1", "?sslmode=allow"))
            .await
            .unwrap();
    assert!(!over_tls(&store).await);
    // disable never tries TLS; where the server wants it, that fails.
    let store =
        PostgresStateStore::connect(&c.url("oncall_plain_only", "127.0.0.1", "?sslmode=disable"))
            .await
            .unwrap();
    assert!(!over_tls(&store).await);
}

#[tokio::test]
async fn bad_tls_settings_are_permanent_errors() {
    let Some(c) = cluster("tls_settings").await else {
        return;
    };
    let missing = path_param(&c.tls.join("no-such.crt"));
    for params in [
        "?sslmode=verify-everything".to_owned(),
        format!("?sslmode=verify-full&sslrootcert={missing}"),
        format!("?sslmode=verify-full&sslrootcert={}", c.ca("server.ext")),
    ] {
        let url = c.url("oncall_tls_only", "127.0.0.1", &params);
        let refused = PostgresStateStore::connect(&url).await;
        assert_permanent(&refused, &params);
    }
}

fn assert_permanent<T: std::fmt::Debug>(result: &Result<T, Error>, what: &str) {
    match result {
        Ok(v) => panic!("{what}: connected: {v:?}"),
        Err(e) => {
            assert!(!e.is_transient(), "{what}: a transient error: {e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{what}: {e:?}");
        }
    }
}

/// libpq verifies the server's chain whenever a root certificate is given, in `prefer`,
/// `require` and `allow` too (`fe-secure-openssl.c`), and `prefer` falls back to a plain
/// connection when that fails. With a CA that signed nothing here and a role the server takes
/// only over TLS, no connection is made; with the cluster's CA, all three connect over TLS.
#[tokio::test]
async fn a_root_certificate_is_verified_in_prefer_require_and_allow_as_libpq_does() {
    let Some(c) = cluster("tls_root_every_mode").await else {
        return;
    };
    for mode in ["", "&sslmode=prefer", "&sslmode=require", "&sslmode=allow"] {
        let params = format!("?sslrootcert={}{mode}", c.ca("other-ca.crt"));
        let refused =
            PostgresStateStore::connect(&c.url("oncall_tls_only", "127.0.0.1", &params)).await;
        assert!(
            refused.is_err(),
            "{mode}: connected without verifying the chain"
        );
        if mode != "&sslmode=allow" {
            assert_permanent(&refused, mode);
        }
        let params = format!("?sslrootcert={}{mode}", c.ca("ca.crt"));
        let store = PostgresStateStore::connect(&c.url("oncall_tls_only", "127.0.0.1", &params))
            .await
            .unwrap();
        assert!(over_tls(&store).await, "{mode}");
    }
}

/// `allow`: plain first, TLS when the server refuses plain (a role it takes only over TLS).
#[tokio::test]
async fn allow_falls_back_to_tls_where_the_server_refuses_plain() {
    let Some(c) = cluster("tls_allow").await else {
        return;
    };
    let url = c.url("oncall_tls_only", "127.0.0.1", "?sslmode=allow");
    let store = PostgresStateStore::connect(&url).await.unwrap();
    assert!(over_tls(&store).await);
}
