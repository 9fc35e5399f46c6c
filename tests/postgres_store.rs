//! `PostgresStateStore` against a real PostgreSQL (`DATABASE_URL`): the core's store conformance
//! suite, corrupt rows, migrations from many processes at once, and no password in any output.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;

use oncall_sync::postgres::PostgresStateStore;
use oncall_sync::testkit::store_conformance;
use oncall_sync::{DestinationId, Error, StateStore};
use postgres_support::*;

/// Runs SQL from the conformance suite's synchronous corrupt hook (on a worker thread of the
/// multi-threaded runtime, which may block).
fn execute_blocking(store: &PostgresStateStore, sql: String) {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(execute(store, &sql));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_store_conformance_suite() {
    let Some(store) = fresh_store("conformance").await else {
        return;
    };
    store_conformance::run_all(&store, "pg", |d: &DestinationId| {
        let sql = format!(
            "UPDATE {} SET state = '{{\"high_water\": \"not an instant\"}}' WHERE destination = '{}'",
            store.table(),
            d.0
        );
        execute_blocking(&store, sql);
        true
    })
    .await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_state_format_is_corrupt_state_naming_table_and_destination() {
    let Some(store) = fresh_store("format").await else {
        return;
    };
    let d = DestinationId("og-primary".into());
    store
        .save(&d, 0, &store_conformance::sample_state(1))
        .await
        .unwrap();
    execute(
        &store,
        &format!(
            "UPDATE {} SET format = 2 WHERE destination = 'og-primary'",
            store.table()
        ),
    )
    .await;
    match store.load(&d).await {
        Err(Error::CorruptState { message }) => {
            assert!(message.contains("og-primary"), "{message}");
            assert!(message.contains(store.table()), "{message}");
            assert!(message.contains("format Some(2)"), "{message}");
        }
        other => panic!("an unknown format is CorruptState, got {other:?}"),
    }
    // Nothing was replaced: a save over it still needs the version it is at.
    let lost = store.save(&d, 0, &Default::default()).await;
    assert!(matches!(lost, Err(Error::Conflict { .. })), "{lost:?}");
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_migrating_at_once_all_succeed_and_apply_each_migration_once() {
    let Some(url) = database_url("migrate_concurrently") else {
        return;
    };
    let schema = unique_schema("migrate");
    // Eight pools stand for eight processes starting together.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (url, schema) = (url.clone(), schema.clone());
        tasks.push(tokio::spawn(async move {
            let store = PostgresStateStore::connect(&url)
                .await
                .unwrap()
                .with_schema(&schema)
                .unwrap();
            store.migrate().await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("every migrate succeeds");
    }
    let store = store_in(&url, &schema).await; // and once more, later: nothing to do
    let client = store.pool().get().await.unwrap();
    let rows = client
        .query(
            &format!("SELECT version FROM {schema}.schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6],
        "each migration applied once"
    );
    drop(client);
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_library_is_refused() {
    let Some(store) = fresh_store("newer").await else {
        return;
    };
    execute(
        &store,
        &format!(
            "INSERT INTO {}.schema_migrations (version) VALUES (99)",
            store.schema()
        ),
    )
    .await;
    match store.migrate().await {
        Err(Error::CorruptState { message }) => {
            assert!(message.contains("version 99"), "{message}")
        }
        other => panic!("a newer schema is CorruptState, got {other:?}"),
    }
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmigrated_schema_says_to_migrate() {
    let Some(url) = database_url("unmigrated") else {
        return;
    };
    let store = PostgresStateStore::connect(&url)
        .await
        .unwrap()
        .with_schema(&unique_schema("unmigrated"))
        .unwrap();
    match store.load(&DestinationId("d".into())).await {
        Err(Error::CorruptState { message }) => assert!(message.contains("migrate"), "{message}"),
        other => panic!("expected CorruptState asking for migrate, got {other:?}"),
    }
    // verify_schema says so, and creates nothing; after migrate() it is content.
    match store.verify_schema().await {
        Err(Error::CorruptState { message }) => assert!(
            message.contains(store.schema()) && message.contains("does not exist"),
            "{message}"
        ),
        other => panic!("expected CorruptState for a missing schema, got {other:?}"),
    }
    assert!(
        store.verify_schema().await.is_err(),
        "still missing: verifying created nothing"
    );
    store.migrate().await.unwrap();
    store.verify_schema().await.unwrap();
    execute(
        &store,
        &format!(
            "INSERT INTO {}.schema_migrations (version) VALUES (99)",
            store.schema()
        ),
    )
    .await;
    match store.verify_schema().await {
        Err(Error::CorruptState { message }) => {
            assert!(message.contains("version 99"), "{message}")
        }
        other => panic!("a newer schema is CorruptState, got {other:?}"),
    }
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schema_names_are_refused_before_any_sql() {
    let Some(store) = fresh_store("names").await else {
        return;
    };
    for bad in ["", "Upper", "a;drop", "1abc", "a-b", &"x".repeat(64)] {
        assert!(
            store.clone().with_schema(bad).is_err(),
            "{bad:?} must be refused"
        );
    }
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_shows_in_debug_or_errors() {
    let Some(url) = database_url("password") else {
        return;
    };
    const SECRET: &str = "pw-Zq81-never-print";
    // Nothing listens on port 1: the connection fails, and its error must not carry the password.
    let refused = PostgresStateStore::connect(&format!(
        "postgres://oncall:{SECRET}@127.0.0.1:1/oncall?connect_timeout=2"
    ))
    .await
    .unwrap_err();
    for text in [refused.to_string(), format!("{refused:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("no PostgreSQL connection"), "{text}");
    }
    let store = PostgresStateStore::connect(&url).await.unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains("oncall_sync"), "{shown}");
    if let Ok(parsed) = url.parse::<oncall_sync::postgres::tokio_postgres::Config>() {
        if let Some(password) = parsed.get_password() {
            let password = String::from_utf8_lossy(password);
            assert!(!shown.contains(password.as_ref()), "{shown}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_registry_is_kept_and_concurrent_updates_both_land() {
    use oncall_sync::{Connection, ConnectionId, Endpoint, KeyReference, ProviderKind};
    let Some(store) = fresh_store("registry").await else {
        return;
    };
    assert!(store.load_connections().await.unwrap().list().is_empty());
    let add = |id: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .update_connections(|r| {
                    r.add(Connection::new(
                        ConnectionId(id.into()),
                        ProviderKind::Opsgenie,
                        KeyReference::EnvVar(format!("{id}_KEY")),
                        Endpoint::Us,
                    ))
                    .unwrap();
                })
                .await
        })
    };
    let (a, b) = (add("og"), add("og2"));
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    let registry = store.load_connections().await.unwrap();
    let ids: Vec<&str> = registry.list().iter().map(|c| c.id.0.as_str()).collect();
    assert_eq!(ids.len(), 2, "both updates landed: {ids:?}");
    execute(
        &store,
        &format!(
            "UPDATE {}.connection_registry SET registry = '[1]'",
            store.schema()
        ),
    )
    .await;
    let corrupt = store.load_connections().await;
    assert!(
        matches!(corrupt, Err(Error::CorruptState { .. })),
        "{corrupt:?}"
    );
    drop_schema(&store).await;
}

/// Reserved words (`user`, `select`) are valid schema names: the store quotes its identifiers,
/// so migrations, states, leases and the registry all work in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_words_are_schema_names_like_any_other() {
    let Some(url) = database_url("reserved_schema_names") else {
        return;
    };
    let base = PostgresStateStore::connect(&url).await.unwrap();
    for name in ["user", "select"] {
        let client = base.pool().get().await.unwrap();
        let taken: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        if taken > 0 {
            // Never drop a schema this test did not create.
            eprintln!("SKIPPED schema {name:?}: the database already has one");
            continue;
        }
        let store = base.clone().with_schema(name).unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store.verify_schema().await.unwrap();
        let d = DestinationId("d".into());
        store
            .enroll(
                &postgres_support::destination(&d),
                &oncall_sync::ScheduleId("s".into()),
            )
            .await
            .unwrap();
        let claims = store
            .claim_due("w1", 1, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(claims.len(), 1, "{name}");
        let fenced = store.fenced(&claims);
        let loaded = fenced.load(&d).await.unwrap();
        let state = oncall_sync::testkit::store_conformance::sample_state(3);
        fenced.save(&d, loaded.version, &state).await.unwrap();
        assert!(store
            .release("w1", &claims[0], std::time::Duration::ZERO, 0)
            .await
            .unwrap());
        assert_eq!(store.load(&d).await.unwrap().value, state);
        store.update_connections(|_| {}).await.unwrap();
        store.load_connections().await.unwrap();
        client
            .batch_execute(&format!("DROP SCHEMA \"{name}\" CASCADE"))
            .await
            .unwrap();
    }
}

/// A loopback server speaking just enough of PostgreSQL's protocol to ask for a password and
/// refuse it as a server does a wrong one (`28P01`). It answers `attempts` connections and
/// returns the passwords it was sent.
fn password_refusing_server(attempts: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut passwords = Vec::new();
        for _ in 0..attempts {
            let Ok((mut client, _)) = listener.accept() else {
                break;
            };
            let read_i32 = |c: &mut std::net::TcpStream| {
                let mut b = [0u8; 4];
                c.read_exact(&mut b).map(|()| i32::from_be_bytes(b))
            };
            // An SSLRequest first (sslmode=prefer): refused with 'N'; then the startup message.
            let mut len = read_i32(&mut client).unwrap();
            let code = read_i32(&mut client).unwrap();
            if code == 80_877_103 {
                client.write_all(b"N").unwrap();
                len = read_i32(&mut client).unwrap();
                read_i32(&mut client).unwrap();
            }
            let mut startup = vec![0u8; usize::try_from(len).unwrap() - 8];
            client.read_exact(&mut startup).unwrap();
            // AuthenticationCleartextPassword, then the client's PasswordMessage.
            client.write_all(b"R\0\0\0\x08\0\0\0\x03").unwrap();
            let mut tag = [0u8; 1];
            client.read_exact(&mut tag).unwrap();
            assert_eq!(&tag, b"p");
            let len = read_i32(&mut client).unwrap();
            let mut password = vec![0u8; usize::try_from(len).unwrap() - 4];
            client.read_exact(&mut password).unwrap();
            passwords.push(
                String::from_utf8_lossy(&password)
                    .trim_end_matches('\0')
                    .to_owned(),
            );
            let mut fields = Vec::new();
            for (kind, value) in [
                (b'S', "FATAL"),
                (b'V', "FATAL"),
                (b'C', "28P01"),
                (b'M', "password authentication failed for user \"oncall\""),
            ] {
                fields.push(kind);
                fields.extend_from_slice(value.as_bytes());
                fields.push(0);
            }
            fields.push(0);
            let mut error = vec![b'E'];
            error.extend_from_slice(&i32::try_from(fields.len() + 4).unwrap().to_be_bytes());
            error.extend_from_slice(&fields);
            client.write_all(&error).unwrap();
        }
        passwords
    });
    (port, server)
}

/// A wrong password: the server's refusal reaches the caller, the password does not (no
/// database needed: a loopback server refuses the password as PostgreSQL does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_without_the_password_in_the_error() {
    const SECRET: &str = "pw-Wr0ng-never-print";
    let (port, server) = password_refusing_server(1);
    let refused = PostgresStateStore::connect(&format!(
        "postgres://oncall:{SECRET}@127.0.0.1:{port}/oncall?connect_timeout=5"
    ))
    .await
    .unwrap_err();
    assert_eq!(
        server.join().unwrap(),
        vec![SECRET.to_owned()],
        "the server asked for the password and was sent it"
    );
    for text in [refused.to_string(), format!("{refused:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(
            text.contains("password authentication failed"),
            "the server's refusal is reported: {text}"
        );
    }
}

/// A database that does not exist is a configuration error: permanent, not retried for ever.
#[tokio::test]
async fn an_unknown_database_is_a_permanent_error() {
    let Some(url) = database_url("store_unknown_database") else {
        return;
    };
    let config: oncall_sync::postgres::tokio_postgres::Config = url.parse().unwrap();
    let port = config.get_ports()[0];
    let url = format!("postgres://postgres@127.0.0.1:{port}/no_such_database_here");
    let e = PostgresStateStore::connect(&url).await.unwrap_err();
    assert!(!e.is_transient(), "an unknown database is transient: {e}");
    assert!(e.to_string().contains("no_such_database_here"), "{e}");
}
