//! One statement for both backends. A query whose text is the same on SQLite and
//! PostgreSQL is written once, with `$N` placeholders (sqlx's SQLite driver reads `$N` as
//! the N-th argument, as PostgreSQL does), and run through [`Db`] on whichever backend
//! holds the connection. Rows come back as one `#[derive(sqlx::FromRow)]` type per table
//! (every integer column is a 64-bit integer on both, every time unix milliseconds, so
//! one row type decodes on both).
//!
//! Why our own small dispatcher and not `sqlx::Any`: a backend keeps its own connection
//! types (an SQLite `BEGIN IMMEDIATE` writer, a PostgreSQL transaction holding row locks
//! and `LISTEN`), and a shared statement must run inside those very transactions; `Any`
//! cannot borrow a `Transaction<Postgres>`. This is the shape vaultwarden's `db_run!` and
//! SQLPage's one code path take: written once, a backend branch only where the dialects
//! really differ (locking, `UNNEST`, upserts), each branch saying why.

use crate::Result;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

/// Which SQL dialect a [`Db`] speaks, for the few statements that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One bound argument. Owned, so an argument list can be built before the connection is
/// chosen. Every column is text, a 64-bit integer, a double or a boolean (see the
/// migrations), so these four cover the schema; `Bytes` is a BLOB (`bytea`) argument a
/// statement reads from, never a stored column (`events::insert_events`'s payloads).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Bytes(Vec<u8>),
}

macro_rules! arg_from {
    ($variant:ident: $($t:ty => $conv:expr),+ $(,)?) => {
        $(impl From<$t> for Arg {
            fn from(v: $t) -> Self {
                #[allow(clippy::redundant_closure_call)]
                Arg::$variant(($conv)(v))
            }
        })+
    };
}
arg_from!(Int: i64 => Some, Option<i64> => |v| v, u32 => |v: u32| Some(i64::from(v)), Option<u32> => |v: Option<u32>| v.map(i64::from));
arg_from!(Text: String => Some, &str => |v: &str| Some(v.to_string()), &String => |v: &String| Some(v.clone()),
    Option<String> => |v| v, Option<&str> => |v: Option<&str>| v.map(str::to_string));
arg_from!(Real: f64 => Some, Option<f64> => |v| v);
arg_from!(Bytes: Vec<u8> => |v| v);
arg_from!(Bool: bool => Some, Option<bool> => |v| v);

/// A list of strings (ids) as one JSON array argument, the array parameter both backends
/// read: `json_each($n)` on SQLite (which has no array type), `jsonb_array_elements_text($n::jsonb)`
/// on PostgreSQL.
pub fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    serde_json::to_string(&items.iter().map(AsRef::as_ref).collect::<Vec<&str>>()).expect("strings serialize")
}

/// The elements of a JSON array bound as argument `$n`, as a row source with one row per
/// element and the element in the column `value`: `json_each($n)` on SQLite,
/// `jsonb_array_elements($n::jsonb)` on PostgreSQL. Fields are read the same on both,
/// `value ->> 'name'` (text or NULL on PostgreSQL, the JSON value's own type on SQLite;
/// `CAST(… AS BIGINT)` makes an integer of either).
///
/// A batch of rows travels this way rather than as `VALUES ($1, $2, …), (…)`: one argument
/// whatever the batch's size, so the statement's text is the same every time (sqlx prepares
/// it once and keeps it) and SQLite does not look up each of hundreds of `$N` names
/// (`sqlite3_bind_parameter_name`, a linear search: binding N of them is O(N²); it was
/// ~5 % of the writer's CPU in the issue 10 profile, BENCHMARKS.md).
pub fn json_elements(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("json_each(${n})"),
        Dialect::Postgres => format!("jsonb_array_elements(${n}::jsonb)"),
    }
}

/// The strings of a [`json_list`] bound as argument `$n`, as a one-column subquery for
/// `IN (…)`: `SELECT value FROM json_each($n)` on SQLite, `SELECT
/// jsonb_array_elements_text($n::jsonb)` on PostgreSQL. For lists of ids, whose length
/// varies with the data (see [`json_elements`] for why not one `$N` each).
pub fn in_json_list(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("SELECT value FROM json_each(${n})"),
        Dialect::Postgres => format!("SELECT jsonb_array_elements_text(${n}::jsonb)"),
    }
}

/// `INDEXED BY {index}` on SQLite, nothing on PostgreSQL: for a statement over live calls
/// that must read the partial index of live calls whatever the planner's statistics say.
///
/// SQLite's planner has none until a table is analysed (`crate::shared::planner`: not under
/// 1,000 rows), and its reader connections keep the plans they made before (measured: the
/// writer's count fell from 0.3 ms to 8 µs at its `ANALYZE`, the readers' stayed at 1.3 ms).
/// Left to itself it read the max-duration sweep through `calls_provider_id` (every call
/// ever sent) rather than `calls_active` (the live ones). SQLite documents `INDEXED BY` as
/// the way to keep a time-sensitive statement's plan from changing, and a statement that
/// names a dropped index fails to prepare rather than quietly scanning
/// (<https://sqlite.org/lang_indexedby.html>). PostgreSQL plans from statistics the engine
/// keeps fresh (`analyze_if_grown`) and has no such clause.
pub fn indexed_by(dialect: Dialect, index: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("INDEXED BY {index}"),
        Dialect::Postgres => String::new(),
    }
}

/// `args![a, b, …]`: the argument list of a statement, `$1` first.
#[macro_export]
#[doc(hidden)]
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::sql::Arg::from($a)),*] };
}
pub use args;

/// A row type that decodes on both backends.
pub trait Record: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Record for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// Where a shared statement runs: a pool (each statement on its own connection, in its own
/// implicit transaction) or a connection the backend holds (inside its transaction).
pub enum Db<'a> {
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl<'a> From<&'a mut SqliteConnection> for Db<'a> {
    fn from(c: &'a mut SqliteConnection) -> Db<'a> {
        Db::Sqlite(c)
    }
}

impl<'a> From<&'a mut PgConnection> for Db<'a> {
    fn from(c: &'a mut PgConnection) -> Db<'a> {
        Db::Postgres(c)
    }
}

/// A backend's own transaction, as the connection it runs on (so a shared statement can be
/// handed `&mut tx` as it is, among the backend's own statements).
impl<'a, 't> From<&'a mut sqlx::Transaction<'t, Sqlite>> for Db<'a> {
    fn from(tx: &'a mut sqlx::Transaction<'t, Sqlite>) -> Db<'a> {
        Db::Sqlite(tx)
    }
}

impl<'a, 't> From<&'a mut sqlx::Transaction<'t, Postgres>> for Db<'a> {
    fn from(tx: &'a mut sqlx::Transaction<'t, Postgres>) -> Db<'a> {
        Db::Postgres(tx)
    }
}

/// What a shared function that runs inside the caller's transaction takes as `&mut`: a
/// backend's own transaction or a [`Db`]. Being a `&mut` parameter, the caller's
/// `tx: &mut Transaction<…>` is reborrowed, not moved, and stays usable after the call.
pub trait AsDb {
    fn as_db(&mut self) -> Db<'_>;
}

impl AsDb for sqlx::Transaction<'_, Sqlite> {
    fn as_db(&mut self) -> Db<'_> {
        Db::from(self)
    }
}

impl AsDb for sqlx::Transaction<'_, Postgres> {
    fn as_db(&mut self) -> Db<'_> {
        Db::from(self)
    }
}

impl AsDb for Db<'_> {
    fn as_db(&mut self) -> Db<'_> {
        self.by_ref()
    }
}

impl<'a> From<&'a SqlitePool> for Db<'a> {
    fn from(p: &'a SqlitePool) -> Db<'a> {
        Db::SqlitePool(p)
    }
}

impl<'a> From<&'a PgPool> for Db<'a> {
    fn from(p: &'a PgPool) -> Db<'a> {
        Db::PgPool(p)
    }
}

/// Binds `args` in order to a `query` or `query_as` of either backend.
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::Real(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
            };
        }
        q
    }};
}

/// Runs `$method` on the statement built for the backend `$db` holds.
macro_rules! run {
    ($db:expr, $t:ty, $sql:expr, $args:expr, $method:ident) => {
        match $db {
            Db::SqlitePool(p) => bind_all!(query_as::<Sqlite, $t>($sql), $args).$method(*p).await,
            Db::PgPool(p) => bind_all!(query_as::<Postgres, $t>($sql), $args).$method(*p).await,
            Db::Sqlite(c) => bind_all!(query_as::<Sqlite, $t>($sql), $args).$method(&mut **c).await,
            Db::Postgres(c) => bind_all!(query_as::<Postgres, $t>($sql), $args).$method(&mut **c).await,
        }
    };
}

fn query<DB: sqlx::Database>(sql: &str) -> sqlx::query::Query<'_, DB, <DB as sqlx::Database>::Arguments<'_>> {
    sqlx::query(sql)
}

impl Db<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::SqlitePool(_) | Db::Sqlite(_) => Dialect::Sqlite,
            Db::PgPool(_) | Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Reborrows, so one `Db` can run several statements in turn.
    pub fn by_ref(&mut self) -> Db<'_> {
        match self {
            Db::SqlitePool(p) => Db::SqlitePool(p),
            Db::PgPool(p) => Db::PgPool(p),
            Db::Sqlite(c) => Db::Sqlite(c),
            Db::Postgres(c) => Db::Postgres(c),
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        Ok(match self {
            Db::SqlitePool(p) => bind_all!(query::<Sqlite>(sql), args).execute(*p).await?.rows_affected(),
            Db::PgPool(p) => bind_all!(query::<Postgres>(sql), args).execute(*p).await?.rows_affected(),
            Db::Sqlite(c) => bind_all!(query::<Sqlite>(sql), args).execute(&mut **c).await?.rows_affected(),
            Db::Postgres(c) => bind_all!(query::<Postgres>(sql), args).execute(&mut **c).await?.rows_affected(),
        })
    }

    pub async fn fetch_all<T: Record>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        Ok(run!(self, T, sql, args, fetch_all)?)
    }

    pub async fn fetch_optional<T: Record>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<T>> {
        Ok(run!(self, T, sql, args, fetch_optional)?)
    }

    pub async fn fetch_one<T: Record>(&mut self, sql: &str, args: Vec<Arg>) -> Result<T> {
        Ok(run!(self, T, sql, args, fetch_one)?)
    }
}

fn query_as<DB: sqlx::Database, T>(sql: &str) -> sqlx::query::QueryAs<'_, DB, T, <DB as sqlx::Database>::Arguments<'_>>
where
    T: for<'r> FromRow<'r, DB::Row>,
{
    sqlx::query_as(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(sqlx::FromRow, Debug, PartialEq)]
    struct Pair {
        n: i64,
        s: Option<String>,
    }

    /// The same text, `$N` placeholders reused and out of order, on SQLite.
    #[tokio::test]
    async fn one_statement_runs_on_sqlite_with_numbered_placeholders() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut db = Db::from(&pool);
        db.execute("CREATE TABLE t (n INTEGER NOT NULL, s TEXT, b BOOLEAN NOT NULL, r REAL)", args![]).await.unwrap();
        let n = db.execute("INSERT INTO t (n, s, b, r) VALUES ($2, $1, $3, $4)", args!["x", 7i64, true, 0.5]).await.unwrap();
        assert_eq!(n, 1);
        let got: Pair = db.fetch_one("SELECT n, s FROM t WHERE n = $1 AND (s = $2 OR $2 IS NULL) AND b = $3", args![7i64, "x", true]).await.unwrap();
        assert_eq!(got, Pair { n: 7, s: Some("x".into()) });
        let none: Option<Pair> = db.fetch_optional("SELECT n, s FROM t WHERE n = $1", args![8i64]).await.unwrap();
        assert_eq!(none, None);
        assert_eq!(db.dialect(), Dialect::Sqlite);
    }
}
