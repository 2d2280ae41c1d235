//! The schemas cannot drift: both backends migrated fresh hold the same tables, columns
//! (type, nullability, default), primary keys, unique constraints, foreign keys, CHECK
//! constraints (the allowed values of every `x IN (…)` list) and indexes (columns,
//! uniqueness, partial predicate). Differences meant to be there are listed in `ALLOWED`,
//! each with its reason; anything else is drift, to be fixed by a migration numbered the
//! same on both backends.
//!
//! Each schema is read from the database itself (`sqlite_master` and pragmas; the
//! PostgreSQL catalogs) and flattened into facts, `"column calls.status" → "text not
//! null"`, in a common vocabulary:
//! - types: INTEGER/BIGINT → int, TEXT → text, REAL/DOUBLE PRECISION → real, BOOLEAN → bool;
//! - SQLite has no boolean type: a column PostgreSQL declares BOOLEAN is INTEGER on SQLite
//!   and compared as bool, its 0/1 default as FALSE/TRUE, `x = 1`/`x = 0` in its index
//!   predicates as `x`/`NOT x`, and its `CHECK (x IN (0, 1))` (PostgreSQL's type says that)
//!   is left out;
//! - SQLite lets a PRIMARY KEY column that is not INTEGER hold NULL (a bug it keeps for
//!   compatibility): its primary-key columns are compared as NOT NULL, as PostgreSQL has them;
//! - expressions lose PostgreSQL's casts (`'a'::text`) and its extra parentheses, `x = ANY
//!   (ARRAY[…])` reads `x IN (…)`, the values of an IN list and the conjuncts of an AND are
//!   sorted.

use crate::pg;
use sqlx::{Connection, PgConnection, Row, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};

/// What the schema says, fact by fact: a name (`"column calls.status"`) and its value.
type Facts = BTreeMap<String, String>;

/// Differences meant to be there: the fact, SQLite's value, PostgreSQL's (None: absent),
/// and why. Every entry must still be observed, so a stale one fails the test too.
const ALLOWED: &[(&str, Option<&str>, Option<&str>, &str)] = &[(
    "column call_events.seq",
    None,
    Some("int not null identity"),
    "orphaned events are applied in the order received: received_at, then the row's insertion order; \
     SQLite has that as its implicit rowid, PostgreSQL needs an identity column",
)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_migrate_to_the_same_schema() {
    let fresh = Fresh::migrated().await;
    let (sqlite, postgres) = fresh.facts().await;
    let drift = unexpected(diff(&sqlite, &postgres));
    assert!(drift.is_empty(), "the SQLite and PostgreSQL schemas differ (fix with a migration numbered the same on both):\n{}", drift.join("\n"));
}

/// The test above can fail: a column or an index added to one backend only is drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_or_index_added_to_one_backend_only_is_drift() {
    let fresh = Fresh::migrated().await;
    let mut lite = SqliteConnection::connect(&fresh.sqlite_url).await.unwrap();
    let mut pg = PgConnection::connect(&fresh.pg.url).await.unwrap();
    sqlx::query("ALTER TABLE calls ADD COLUMN note TEXT").execute(&mut lite).await.unwrap();
    sqlx::query("CREATE INDEX calls_note ON calls (ended_at) WHERE outcome = 'busy'").execute(&mut pg).await.unwrap();

    let (sqlite, postgres) = fresh.facts().await;
    let drift = unexpected(diff(&sqlite, &postgres));
    assert_eq!(
        drift,
        [
            "column calls.note: SQLite has `text`, PostgreSQL has nothing",
            "index calls_note: SQLite has nothing, PostgreSQL has `on calls (ended_at) where outcome = 'busy'`",
        ],
    );
}

#[test]
fn expressions_read_alike_from_both_backends() {
    let bools: BTreeSet<String> = ["inbound".to_string(), "is_default".to_string()].into();
    let none = BTreeSet::new();
    let same = |sqlite: &str, postgres: &str| assert_eq!(canonical(sqlite, &bools), canonical(postgres, &none), "{sqlite} vs {postgres}");
    same("status IN ('queued', 'dialing')", "(status = ANY (ARRAY['dialing'::text, 'queued'::text]))");
    same("status = 'queued' AND provider_call_id IS NULL", "((provider_call_id IS NULL) AND (status = 'queued'::text))");
    same("inbound = 0", "(NOT inbound)");
    same("is_default = 1", "is_default");
    same("COALESCE(campaign_id, '')", "COALESCE(campaign_id, ''::text)");
    same("max_concurrent > 0", "((max_concurrent > 0))");
    same("'{\"timezone\":\"UTC\"}'", "'{\"timezone\":\"UTC\"}'::text");
    assert_ne!(canonical("status IN ('a', 'b')", &none), canonical("status IN ('a', 'c')", &none), "IN lists are compared value by value");
}

/// Both backends, freshly migrated through `dialtone_store::connect`; dropped with the test.
struct Fresh {
    _dir: tempfile::TempDir,
    sqlite_url: String,
    pg: pg::Database,
}

impl Fresh {
    async fn migrated() -> Self {
        let (dir, pg) = (tempfile::tempdir().unwrap(), pg::fresh_database().await);
        let sqlite_url = format!("sqlite://{}/t.db", dir.path().display());
        dialtone_store::connect(&sqlite_url).await.expect("migrate a fresh SQLite store");
        dialtone_store::connect(&pg.url).await.expect("migrate a fresh PostgreSQL store");
        Self { _dir: dir, sqlite_url, pg }
    }

    /// (SQLite's facts, PostgreSQL's), read from the databases as they are now.
    async fn facts(&self) -> (Facts, Facts) {
        let (postgres, booleans) = postgres_facts(&mut PgConnection::connect(&self.pg.url).await.unwrap()).await;
        let sqlite = sqlite_facts(&mut SqliteConnection::connect(&self.sqlite_url).await.unwrap(), &booleans).await;
        (sqlite, postgres)
    }
}

/// Every fact on which the backends disagree, as "fact: SQLite has `…`, PostgreSQL has `…`".
fn diff(sqlite: &Facts, postgres: &Facts) -> Vec<(String, Option<String>, Option<String>)> {
    let keys: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    keys.into_iter().filter(|k| sqlite.get(*k) != postgres.get(*k)).map(|k| ((*k).clone(), sqlite.get(k).cloned(), postgres.get(k).cloned())).collect()
}

/// The differences not in `ALLOWED`, and any allowed one no longer seen, as sentences.
fn unexpected(diffs: Vec<(String, Option<String>, Option<String>)>) -> Vec<String> {
    let show = |v: &Option<String>| v.as_ref().map_or("nothing".to_string(), |v| format!("`{v}`"));
    let allowed =
        |d: &(String, Option<String>, Option<String>)| ALLOWED.iter().any(|(k, s, p, _)| (*k, *s, *p) == (d.0.as_str(), d.1.as_deref(), d.2.as_deref()));
    let mut out: Vec<String> =
        diffs.iter().filter(|d| !allowed(d)).map(|(k, s, p)| format!("{k}: SQLite has {}, PostgreSQL has {}", show(s), show(p))).collect();
    for (k, s, p, _) in ALLOWED {
        if !diffs.iter().any(|d| (d.0.as_str(), d.1.as_deref(), d.2.as_deref()) == (*k, *s, *p)) {
            out.push(format!("{k}: the allowed difference (SQLite {s:?}, PostgreSQL {p:?}) is gone; remove it from ALLOWED"));
        }
    }
    out
}

/// A declared type in the common vocabulary.
fn common_type(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    let common = if t.contains("int") {
        "int"
    } else if t.contains("char") || t.contains("text") {
        "text"
    } else if t.contains("real") || t.contains("double") || t.contains("float") {
        "real"
    } else if t.contains("bool") {
        "bool"
    } else {
        return format!("other({declared})");
    };
    common.to_string()
}

fn column_fact(ty: &str, nullable: bool, default: Option<String>, identity: bool) -> String {
    let mut v = ty.to_string();
    if !nullable {
        v.push_str(" not null");
    }
    if let Some(d) = default {
        v.push_str(&format!(" default {d}"));
    }
    if identity {
        v.push_str(" identity");
    }
    v
}

fn index_fact(table: &str, unique: bool, columns: &[String], predicate: Option<String>) -> String {
    let mut v = format!("{}on {table} ({})", if unique { "unique " } else { "" }, columns.join(", "));
    if let Some(p) = predicate {
        v.push_str(&format!(" where {p}"));
    }
    v
}

/// PostgreSQL's facts, and its boolean columns per table (`"table.column"`), which SQLite
/// stores as INTEGER.
async fn postgres_facts(conn: &mut PgConnection) -> (Facts, BTreeSet<String>) {
    let mut facts = Facts::new();
    let mut booleans = BTreeSet::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for t in &tables {
        facts.insert(format!("table {t}"), "exists".into());
    }
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES', column_default::text, is_identity = 'YES'
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let none = BTreeSet::new();
    for r in columns {
        let (table, column, ty): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let ty = common_type(&ty);
        if ty == "bool" {
            booleans.insert(format!("{table}.{column}"));
        }
        let default = r.get::<Option<String>, _>(4).map(|d| canonical(&d, &none));
        facts.insert(format!("column {table}.{column}"), column_fact(&ty, r.get(3), default, r.get(5)));
    }
    // CHECK and FOREIGN KEY constraints (NOT NULL is the columns' nullability).
    let constraints = sqlx::query(
        "SELECT t.relname::text, c.contype::text, pg_get_constraintdef(c.oid)
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = current_schema() AND c.contype IN ('c', 'f')",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for r in constraints {
        let (table, kind, def): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let tokens = tokenize(&def);
        if kind == "c" {
            // `CHECK ((expr))`
            facts.insert(format!("check {table}: {}", render(&normalize(&tokens[1..], &none))), "present".into());
        } else {
            // `FOREIGN KEY (a, b) REFERENCES other(x, y)`
            let (from, rest) = parenthesized(&tokens, 0);
            let refs = rest.iter().position(|t| t == "references").expect("REFERENCES in a foreign key");
            let (to, _) = parenthesized(&rest, refs);
            facts.insert(format!("foreign key {table} ({})", from.join(", ")), format!("{} ({})", rest[refs + 1], to.join(", ")));
        }
    }
    let indexes = sqlx::query(
        "SELECT i.relname::text, t.relname::text, ix.indisunique, c.contype::text, pg_get_indexdef(ix.indexrelid)
         FROM pg_index ix
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         LEFT JOIN pg_constraint c ON c.conindid = ix.indexrelid AND c.conrelid = ix.indrelid AND c.contype IN ('p', 'u')
         WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for r in indexes {
        let (name, table, unique, constraint, def): (String, String, bool, Option<String>, String) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let bools = table_booleans(&booleans, &table);
        let (columns, predicate) = index_parts(&def, &bools);
        let (key, value) = match constraint.as_deref() {
            Some("p") => (format!("primary key {table}"), format!("({})", columns.join(", "))),
            Some(_) => (format!("unique {table} ({})", columns.join(", ")), "constraint".into()),
            None => (format!("index {name}"), index_fact(&table, unique, &columns, predicate)),
        };
        facts.insert(key, value);
    }
    (facts, booleans)
}

/// SQLite's facts; `booleans` are PostgreSQL's boolean columns (see the module's doc).
async fn sqlite_facts(conn: &mut SqliteConnection, booleans: &BTreeSet<String>) -> Facts {
    let mut facts = Facts::new();
    let tables: Vec<(String, String)> =
        sqlx::query_as("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    for (table, sql) in &tables {
        facts.insert(format!("table {table}"), "exists".into());
        let bools = table_booleans(booleans, table);
        let columns = sqlx::query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)").bind(table).fetch_all(&mut *conn).await.unwrap();
        for r in columns {
            let (column, declared, not_null, pk): (String, String, bool, i64) = (r.get(0), r.get(1), r.get(2), r.get(4));
            let is_bool = bools.contains(&column);
            let ty = if is_bool && common_type(&declared) == "int" { "bool".to_string() } else { common_type(&declared) };
            let default = r.get::<Option<String>, _>(3).map(|d| match (is_bool, canonical(&d, &bools).as_str()) {
                (true, "0") => "false".to_string(),
                (true, "1") => "true".to_string(),
                (_, other) => other.to_string(),
            });
            // SQLite lets a PRIMARY KEY column that is not an INTEGER hold NULL (a bug it
            // keeps for compatibility); every id is set by the code, as PostgreSQL demands.
            facts.insert(format!("column {table}.{column}"), column_fact(&ty, !not_null && pk == 0, default, false));
        }
        // CHECKs live in the table's SQL (ALTER TABLE ADD COLUMN appends to it).
        let tokens = tokenize(sql);
        for (i, t) in tokens.iter().enumerate() {
            if t == "check" && tokens.get(i + 1).is_some_and(|n| n == "(") {
                let end = closing(&tokens, i + 1);
                let expr = render(&normalize(&tokens[i + 1..=end], &bools));
                // PostgreSQL's BOOLEAN says this.
                if bools.iter().any(|b| expr == format!("{b} IN (0, 1)")) {
                    continue;
                }
                facts.insert(format!("check {table}: {expr}"), "present".into());
            }
        }
        let fks = sqlx::query("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?) ORDER BY id, seq")
            .bind(table)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let mut by_id: BTreeMap<i64, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
        for r in fks {
            let e = by_id.entry(r.get(0)).or_insert_with(|| (r.get(1), vec![], vec![]));
            e.1.push(r.get(2));
            e.2.push(r.get(3));
        }
        for (other, from, to) in by_id.into_values() {
            facts.insert(format!("foreign key {table} ({})", from.join(", ")), format!("{other} ({})", to.join(", ")));
        }
        let indexes = sqlx::query("SELECT name, \"unique\", origin FROM pragma_index_list(?)").bind(table).fetch_all(&mut *conn).await.unwrap();
        for r in indexes {
            let (name, unique, origin): (String, bool, String) = (r.get(0), r.get(1), r.get(2));
            let (key, value) = if origin == "c" {
                let sql: String =
                    sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").bind(&name).fetch_one(&mut *conn).await.unwrap();
                let (columns, predicate) = index_parts(&sql, &bools);
                (format!("index {name}"), index_fact(table, unique, &columns, predicate))
            } else {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno").bind(&name).fetch_all(&mut *conn).await.unwrap();
                if origin == "pk" {
                    (format!("primary key {table}"), format!("({})", columns.join(", ")))
                } else {
                    (format!("unique {table} ({})", columns.join(", ")), "constraint".into())
                }
            };
            facts.insert(key, value);
        }
    }
    facts
}

/// The boolean columns of `table`, by column name.
fn table_booleans(booleans: &BTreeSet<String>, table: &str) -> BTreeSet<String> {
    booleans.iter().filter_map(|b| b.strip_prefix(&format!("{table}.")).map(str::to_string)).collect()
}

/// An index's key columns (each canonical) and partial predicate, from its CREATE INDEX
/// (SQLite's text, or PostgreSQL's `pg_get_indexdef`: `… ON public.t USING btree (…) WHERE …`).
fn index_parts(def: &str, bools: &BTreeSet<String>) -> (Vec<String>, Option<String>) {
    let tokens = tokenize(def);
    let on = tokens.iter().position(|t| t == "on").expect("ON in CREATE INDEX");
    let open = on + tokens[on..].iter().position(|t| t == "(").expect("a column list");
    let close = closing(&tokens, open);
    let columns = split_commas(&tokens[open + 1..close]).iter().map(|c| render(&normalize(c, bools))).collect();
    let predicate = tokens.get(close + 1).filter(|t| *t == "where").map(|_| render(&normalize(&tokens[close + 2..], bools)));
    (columns, predicate)
}

/// The canonical text of one expression (see the module's doc); `bools` are the boolean
/// columns of its table.
fn canonical(expr: &str, bools: &BTreeSet<String>) -> String {
    render(&normalize(&tokenize(expr), bools))
}

/// Lower-cased words, numbers, 'strings' (kept as written) and one-character punctuation
/// (`<=`, `>=`, `<>`, `!=` and `::` as one); `--` comments dropped.
fn tokenize(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' && chars.get(i + 1) == Some(&'\'') {
                    i += 2;
                } else if chars[i] == '\'' {
                    break;
                } else {
                    i += 1;
                }
            }
            i += 1;
            out.push(chars[start..i.min(chars.len())].iter().collect());
        } else if c.is_alphanumeric() || c == '_' || c == '"' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '"') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect::<String>().replace('"', "").to_lowercase());
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["<=", ">=", "<>", "!=", "::"].contains(&two.as_str()) {
                out.push(two);
                i += 2;
            } else {
                out.push(c.to_string());
                i += 1;
            }
        }
    }
    out
}

const KEYWORDS: [&str; 6] = ["and", "or", "not", "is", "null", "in"];

/// Casts dropped, `= ANY (ARRAY[…])` made `IN (…)`, grouping parentheses dropped (those of
/// a call or an IN list kept), `x = 1`/`x = 0` on a boolean made `x`/`NOT x`, IN values and
/// AND conjuncts sorted. Good for the flat AND-of-comparisons our schemas hold; an OR
/// would lose its grouping.
fn normalize(tokens: &[String], bools: &BTreeSet<String>) -> Vec<String> {
    // Casts: `::text`, `::double precision`, `::character varying`.
    let mut t: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "::" {
            i += 2;
            if matches!(tokens.get(i - 1).map(String::as_str), Some("double" | "character")) {
                i += 1;
            }
        } else {
            t.push(tokens[i].clone());
            i += 1;
        }
    }
    // `= ANY ( ARRAY [ a , b ] )` → `IN ( a , b )`.
    let mut u: Vec<String> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] == "=" && t.get(i + 1).is_some_and(|x| x == "any") && t.get(i + 2).is_some_and(|x| x == "(") && t.get(i + 3).is_some_and(|x| x == "array") {
            let close = closing(&t, i + 2);
            u.push("in".into());
            u.push("(".into());
            u.extend(t[i + 5..close - 1].iter().cloned());
            u.push(")".into());
            i = close + 1;
        } else {
            u.push(t[i].clone());
            i += 1;
        }
    }
    // Grouping parentheses: a `(` not after a name (a call) or IN (a list).
    let mut drop = vec![false; u.len()];
    for (i, tok) in u.iter().enumerate() {
        let grouping = i == 0 || {
            let prev = u[i - 1].as_str();
            !(prev == "in" || (!KEYWORDS.contains(&prev) && prev.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')))
        };
        if tok == "(" && grouping {
            drop[i] = true;
            drop[closing(&u, i)] = true;
        }
    }
    let flat: Vec<String> = u.into_iter().zip(drop).filter(|(_, d)| !d).map(|(t, _)| t).collect();
    // Conjuncts, each with its IN list sorted and booleans read alike, then sorted.
    let mut conjuncts: Vec<Vec<String>> = Vec::new();
    let mut depth = 0;
    let mut current = Vec::new();
    for tok in flat {
        match tok.as_str() {
            "(" => depth += 1,
            ")" => depth -= 1,
            "and" if depth == 0 => {
                conjuncts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(tok);
    }
    conjuncts.push(current);
    let mut conjuncts: Vec<Vec<String>> = conjuncts.into_iter().map(|c| tidy_conjunct(c, bools)).collect();
    conjuncts.sort();
    conjuncts.join(&"and".to_string())
}

fn tidy_conjunct(c: Vec<String>, bools: &BTreeSet<String>) -> Vec<String> {
    if c.len() == 3 && c[1] == "=" && bools.contains(&c[0]) {
        match c[2].as_str() {
            "1" => return vec![c[0].clone()],
            "0" => return vec!["not".into(), c[0].clone()],
            _ => {}
        }
    }
    if let Some(at) = c.iter().position(|t| t == "in") {
        if c.get(at + 1).is_some_and(|t| t == "(") && c.last().is_some_and(|t| t == ")") {
            let mut values: Vec<String> = split_commas(&c[at + 2..c.len() - 1]).into_iter().map(|v| v.concat()).collect();
            values.sort();
            let mut out: Vec<String> = c[..at + 2].to_vec();
            for (k, v) in values.into_iter().enumerate() {
                if k > 0 {
                    out.push(",".into());
                }
                out.push(v);
            }
            out.push(")".into());
            return out;
        }
    }
    c
}

/// Tokens back to text: keywords upper-case, no space inside parentheses or before commas.
fn render(tokens: &[String]) -> String {
    let mut s = String::new();
    for (i, t) in tokens.iter().enumerate() {
        let word = if KEYWORDS.contains(&t.as_str()) { t.to_uppercase() } else { t.clone() };
        let tight = i == 0 || t == ")" || t == "," || tokens[i - 1] == "(" || (t == "(" && !matches!(tokens[i - 1].as_str(), "in" | "and" | "or" | "not"));
        if !tight {
            s.push(' ');
        }
        s.push_str(&word);
    }
    s
}

/// The index of the `)` closing the `(` at `open`.
fn closing(tokens: &[String], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {tokens:?}")
}

/// The comma-separated items at the top level of `tokens`.
fn split_commas(tokens: &[String]) -> Vec<Vec<String>> {
    let mut items = vec![Vec::new()];
    let mut depth = 0;
    for t in tokens {
        match t.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => depth -= 1,
            "," if depth == 0 => {
                items.push(Vec::new());
                continue;
            }
            _ => {}
        }
        items.last_mut().unwrap().push(t.clone());
    }
    items
}

/// The names inside the first parentheses at or after `from`, and the tokens after them.
fn parenthesized(tokens: &[String], from: usize) -> (Vec<String>, Vec<String>) {
    let open = from + tokens[from..].iter().position(|t| t == "(").expect("a parenthesized list");
    let close = closing(tokens, open);
    let names = split_commas(&tokens[open + 1..close]).into_iter().map(|n| n.concat()).collect();
    (names, tokens[close + 1..].to_vec())
}
