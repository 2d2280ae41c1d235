//! Throwaway PostgreSQL databases for the suite: one per test, created through the server
//! named by `DIALTONE_TEST_PG_URL` and dropped (best effort) when the test is done.

use sqlx::{Connection, PgConnection};

pub const URL_VAR: &str = "DIALTONE_TEST_PG_URL";

/// The server URL. Unset is a failure, not a skip: CI must not pass with half the suite.
pub fn server_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set: the PostgreSQL half of the conformance suite needs a server, \
             e.g. {URL_VAR}=postgres://postgres@127.0.0.1:5432/test (.ci/run sets it)"
        ),
    }
}

/// `url` with its database replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_at = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_at..].find('/') {
        Some(slash) => &base[..authority_at + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A connection for CREATE/DROP DATABASE: to the URL's own database, or to `postgres` if
/// that one does not exist.
async fn admin(url: &str) -> PgConnection {
    match PgConnection::connect(url).await {
        Ok(c) => c,
        Err(first) => PgConnection::connect(&with_database(url, "postgres"))
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url} ({first}) nor its `postgres` database ({e})")),
    }
}

/// Drops its database when the test is over.
pub struct Database {
    server: String,
    pub name: String,
    pub url: String,
}

/// A new empty database (not migrated) on the test server.
pub async fn fresh_database() -> Database {
    let server = server_url();
    let name = format!("dialtone_t_{}", dialtone_core::EventId::new().as_str().trim_start_matches("evt_").to_lowercase());
    let mut conn = admin(&server).await;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {server}: {e}"));
    let _ = conn.close().await;
    let url = with_database(&server, &name);
    Database { server, name, url }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on a future: use a
        // runtime of our own on a thread of our own.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = admin(&server).await;
                // FORCE: pools of the test (or its spawned tasks) may still hold connections.
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}; drop it by hand", self.name);
        }
    }
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
    assert_eq!(with_database("postgresql://u:p@h/test?sslmode=disable", "x"), "postgresql://u:p@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
}
