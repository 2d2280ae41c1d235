//! PostgreSQL only: several nodes (each its own pool, as separate processes would have)
//! claiming the same campaign side by side never exceed its cap, and never dial a contact
//! twice; the connection settings a node relies on; wakes between nodes, and what a
//! server restart leaves behind.

use crate::pg;
use crate::support::*;
use dialtone_core::{CallStatus, ContactStatus, EventKind, Mode, Outcome};
use dialtone_store::postgres::PostgresStore;
use dialtone_store::CallFilter;
use sqlx::Connection;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

const NODES: usize = 3;

/// One store on a fresh, migrated database (the database is dropped with its handle).
async fn one_node() -> (pg::Database, S) {
    let db = pg::fresh_database().await;
    let store: S = Arc::new(PostgresStore::connect(&db.url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    (db, store)
}

/// `NODES` stores on one fresh database, migrated by all of them at once (as nodes
/// starting together would).
async fn nodes(db: &pg::Database) -> Vec<S> {
    let mut nodes: Vec<S> = Vec::new();
    for _ in 0..NODES {
        nodes.push(Arc::new(PostgresStore::connect(&db.url).await.expect("connect a node")));
    }
    let migrations: Vec<_> = nodes.iter().cloned().map(|n| tokio::spawn(async move { n.migrate().await })).collect();
    for m in migrations {
        m.await.unwrap().expect("concurrent migrations succeed");
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_on_three_nodes_fill_exactly_the_free_slots() {
    const CAP: usize = 6;
    const TASKS_PER_NODE: usize = 8;
    let db = pg::fresh_database().await;
    let nodes = nodes(&db).await;
    let (ws, cmp) = running(&nodes[0], Mode::Continuous, CAP as u32, 3, 300).await;
    let mut seen = HashSet::new();
    let mut active = Vec::new();

    for round in 0..6i64 {
        let barrier = Arc::new(Barrier::new(NODES * TASKS_PER_NODE));
        let tasks: Vec<_> = (0..NODES * TASKS_PER_NODE)
            .map(|i| {
                let (node, cmp, barrier) = (nodes[i % NODES].clone(), cmp.id.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    node.claim(&cmp, NODE, at(round * 100)).await.expect("claim")
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for t in tasks {
            claimed.extend(t.await.unwrap());
        }
        assert_eq!(claimed.len(), CAP - active.len(), "round {round}: racing claims on {NODES} nodes fill exactly the free slots");
        for d in &claimed {
            assert!(seen.insert(d.contact_id.clone()), "round {round}: contact {} claimed twice", d.contact_id);
        }
        active.extend(claimed);
        assert_eq!(active_of(&nodes[1], &ws, &cmp.id).await, CAP as u64);
        // Free a different number of slots each round, through different nodes.
        for (i, d) in active.drain(..(round as usize % 4) + 1).enumerate() {
            end(&nodes[i % NODES], &d.call_id, Outcome::Completed, at(round * 100 + 50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_for_overlapping_sets_of_campaigns_on_three_nodes_fill_each_cap_exactly() {
    const CAMPAIGNS: usize = 4;
    const CAP: usize = 3;
    const TASKS_PER_NODE: usize = 6;
    let db = pg::fresh_database().await;
    let nodes = nodes(&db).await;
    let ws = nodes[0].default_workspace().await.unwrap();
    let mut ids = vec![];
    for i in 0..CAMPAIGNS as u32 {
        let cmp = draft_campaign(&nodes[0], &ws, Mode::Continuous, CAP as u32, 3).await;
        add_contacts(&nodes[0], &ws, &cmp.id, i * 100..i * 100 + 60).await;
        start(&nodes[0], &ws, &cmp.id).await;
        ids.push(cmp.id);
    }
    let mut seen = HashSet::new();
    let mut active: Vec<Vec<_>> = vec![vec![]; CAMPAIGNS];

    for round in 0..6i64 {
        let barrier = Arc::new(Barrier::new(NODES * TASKS_PER_NODE));
        let tasks: Vec<_> = (0..NODES * TASKS_PER_NODE)
            .map(|i| {
                let node = nodes[i % NODES].clone();
                // Each task asks for a different run of campaigns, in a different order
                // (some reversed, some a single campaign): the claims overlap every way.
                let mut mine: Vec<_> = (0..=(i % CAMPAIGNS)).map(|k| ids[(i + k) % CAMPAIGNS].clone()).collect();
                if i % 3 == 0 {
                    mine.reverse();
                }
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    node.claim_many(&mine, NODE, at(round * 100)).await.expect("claim_many")
                })
            })
            .collect();
        let mut claimed: Vec<Vec<_>> = vec![vec![]; CAMPAIGNS];
        for t in tasks {
            for (cmp, dials) in t.await.unwrap() {
                let k = ids.iter().position(|c| *c == cmp).unwrap();
                assert!(dials.iter().all(|d| d.campaign_id == cmp));
                claimed[k].extend(dials);
            }
        }
        for k in 0..CAMPAIGNS {
            assert_eq!(claimed[k].len(), CAP - active[k].len(), "round {round}, campaign {k}: exactly its free slots are filled");
            for d in &claimed[k] {
                assert!(seen.insert(d.contact_id.clone()), "round {round}: contact {} claimed twice", d.contact_id);
            }
            active[k].append(&mut claimed[k]);
            assert_eq!(active_of(&nodes[1], &ws, &ids[k]).await, CAP as u64);
            // Free a different number of slots in each campaign and round.
            for (i, d) in active[k].drain(..(round as usize + k) % CAP + 1).enumerate() {
                end(&nodes[i % NODES], &d.call_id, Outcome::Completed, at(round * 100 + 50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_dialling_a_campaign_through_never_exceed_the_cap() {
    const CAP: u32 = 5;
    const CONTACTS: u32 = 240;
    const WORKERS_PER_NODE: usize = 4;
    let db = pg::fresh_database().await;
    let nodes = nodes(&db).await;
    let (ws, cmp) = running(&nodes[0], Mode::Continuous, CAP, 3, CONTACTS).await;

    // Watches the database, from its own pool, for the whole run.
    let done = Arc::new(AtomicBool::new(false));
    let observer = {
        let (pool, cmp, done) = (PostgresStore::connect(&db.url).await.unwrap().pool().clone(), cmp.id.clone(), done.clone());
        tokio::spawn(async move {
            let mut peak = 0i64;
            while !done.load(Ordering::Relaxed) {
                let n: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE campaign_id = $1 AND status IN ('queued', 'dialing', 'ringing', 'in_progress')")
                        .bind(cmp.as_str())
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                peak = peak.max(n);
            }
            peak
        })
    };

    let workers: Vec<_> = (0..NODES * WORKERS_PER_NODE)
        .map(|i| {
            let (node, cmp) = (nodes[i % NODES].clone(), cmp.id.clone());
            tokio::spawn(async move {
                let mut dialled = Vec::new();
                let mut idle = 0;
                // Until the campaign has had nothing to claim for a while.
                while idle < 50 {
                    let dials = node.claim(&cmp, NODE, at(1)).await.expect("claim");
                    if dials.is_empty() {
                        idle += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    idle = 0;
                    for d in dials {
                        place(&node, &d, at(2)).await;
                        tokio::task::yield_now().await;
                        end(&node, &d.call_id, Outcome::Completed, at(3)).await;
                        dialled.push(d.contact_id);
                    }
                }
                dialled
            })
        })
        .collect();
    let mut dialled = Vec::new();
    for w in workers {
        dialled.extend(w.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    let peak = observer.await.unwrap();

    assert!(peak <= CAP as i64, "{peak} calls were active at once; the cap is {CAP}");
    assert!(peak >= 2, "the nodes never overlapped (peak {peak}): this run proved nothing");
    let unique: HashSet<_> = dialled.iter().collect();
    assert_eq!((dialled.len(), unique.len()), (CONTACTS as usize, CONTACTS as usize), "every contact dialled exactly once");
    let calls = calls_where(&nodes[2], &ws, CallFilter { campaign_id: Some(cmp.id.clone()), ..Default::default() }).await;
    assert_eq!(calls.len(), CONTACTS as usize, "one call row per contact");
    let counts = nodes[1].campaign_counts(&cmp.id).await.unwrap();
    assert_eq!(counts.contacts.get(ContactStatus::Done.as_str()), Some(&(CONTACTS as u64)), "{counts:?}");
    assert_eq!(counts.active_calls, 0);
}

#[tokio::test]
async fn a_node_connection_cancels_statements_after_thirty_seconds() {
    let db = pg::fresh_database().await;
    let node = PostgresStore::connect(&db.url).await.unwrap();
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(node.pool()).await.unwrap();
    assert_eq!(timeout, "30s");
    assert_eq!(node.pool().options().get_max_connections(), 16);
    assert!(node.pool().options().get_test_before_acquire(), "a dead connection (server restart) is never handed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_of_different_campaigns_on_three_nodes_respect_the_account_limit() {
    // Odd: two campaigns' fair shares (3 + 3) exceed it, so only the account lock keeps it.
    const ACCOUNT: usize = 5;
    const TASKS_PER_NODE: usize = 6;
    let db = pg::fresh_database().await;
    let nodes = nodes(&db).await;
    nodes[0].set_account_limit(dialtone_core::ProviderKind::Sim, Some(ACCOUNT as u32), at(0)).await.unwrap();
    // Each campaign alone could take the whole account; they lock different campaign rows.
    let (ws, a) = running(&nodes[0], Mode::Continuous, 10, 3, 50).await;
    let b = draft_campaign(&nodes[0], &ws, Mode::Continuous, 10, 3).await;
    add_contacts(&nodes[0], &ws, &b.id, 100..150).await;
    start(&nodes[0], &ws, &b.id).await;

    for round in 0..4i64 {
        let barrier = Arc::new(Barrier::new(NODES * TASKS_PER_NODE));
        let tasks: Vec<_> = (0..NODES * TASKS_PER_NODE)
            .map(|i| {
                let node = nodes[i % NODES].clone();
                let cmp = if i % 2 == 0 { a.id.clone() } else { b.id.clone() };
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    node.claim(&cmp, NODE, at(round * 100)).await.expect("claim")
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let active = nodes[1].active_calls().await.unwrap();
        assert!(active <= ACCOUNT as u64, "round {round}: {active} calls active on an account limited to {ACCOUNT}");
        assert_eq!(active, ACCOUNT as u64, "round {round}: racing claims fill the account");
        // End every active call, through different nodes.
        let mut i = 0;
        for cmp in [&a.id, &b.id] {
            for call in calls_of(&nodes[2], &ws, cmp).await.into_iter().filter(|c| c.status.is_active()) {
                end(&nodes[i % NODES], &call.id, Outcome::Completed, at(round * 100 + 50)).await;
                i += 1;
            }
        }
    }
}

/// Two nodes, each its own pool: a wake published on one reaches the other's subscription
/// (and its own) within two seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wake_published_on_one_node_reaches_another_within_two_seconds() {
    let db = pg::fresh_database().await;
    let nodes = nodes(&db).await;
    let mut theirs = nodes[1].subscribe_wakes().await.expect("subscribe").expect("PostgreSQL has wakes");
    let mut ours = nodes[0].subscribe_wakes().await.expect("subscribe").expect("PostgreSQL has wakes");
    assert!(theirs.try_recv().is_err() && ours.try_recv().is_err(), "nothing was published yet");

    nodes[0].publish_wake().await.expect("publish");
    for (who, rx) in [("another node", &mut theirs), ("the publishing node", &mut ours)] {
        let got = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "{who} did not hear the wake within 2 s: {got:?}");
    }
    // Many wakes while nobody reads are coalesced, not queued without bound.
    for _ in 0..100 {
        nodes[2].publish_wake().await.expect("publish");
    }
    let got = tokio::time::timeout(Duration::from_secs(2), theirs.recv()).await;
    assert!(matches!(got, Ok(Some(()))), "{got:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut backlog = 0;
    while theirs.try_recv().is_ok() {
        backlog += 1;
    }
    assert!(backlog < 100, "wakes are bounded and dropped when full ({backlog} were waiting)");
}

/// Every backend connection to the test database, except the caller's, killed as a server
/// restart would.
async fn kill_connections(db: &pg::Database) -> u64 {
    let mut admin = sqlx::PgConnection::connect(&db.url).await.expect("admin connection");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminate backends");
    let _ = admin.close().await;
    killed as u64
}

async fn listeners(db: &pg::Database) -> i64 {
    let mut admin = sqlx::PgConnection::connect(&db.url).await.expect("admin connection");
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'")
            .fetch_one(&mut admin)
            .await
            .expect("count listeners");
    let _ = admin.close().await;
    n
}

/// A restart of the server (here: every connection killed) leaves neither the pool nor
/// the wake subscription broken: the next store call works, and the listener re-listens.
/// Dropping the receiver ends the listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_break_neither_the_pool_nor_the_wake_listener() {
    let db = pg::fresh_database().await;
    let nodes = nodes(&db).await;
    let mut rx = nodes[1].subscribe_wakes().await.expect("subscribe").expect("PostgreSQL has wakes");
    nodes[0].heartbeat("node_a", at(0)).await.expect("heartbeat");
    nodes[1].heartbeat("node_b", at(0)).await.expect("heartbeat");

    assert!(kill_connections(&db).await >= 3, "the pools' connections and the listener's were killed");

    // The pool hands out a fresh connection, not the dead one (nor a panic).
    nodes[0].heartbeat("node_a", at(1)).await.expect("the pool reconnects after a restart");
    nodes[1].heartbeat("node_b", at(1)).await.expect("the pool reconnects after a restart");
    let (ws, cmp) = running(&nodes[0], Mode::Continuous, 1, 3, 1).await;
    assert_eq!(nodes[1].claim(&cmp.id, "node_b", at(2)).await.expect("claim").len(), 1);
    assert_eq!(calls_of(&nodes[2], &ws, &cmp.id).await.len(), 1);

    // The listener notices, reconnects and wakes once for what it may have missed…
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    assert!(matches!(got, Ok(Some(()))), "no wake after the listener's connection died: {got:?}");
    // …and listens again: a new wake from another node arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while rx.try_recv().is_ok() {}
    nodes[0].publish_wake().await.expect("publish after a restart");
    let got = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert!(matches!(got, Ok(Some(()))), "the listener did not listen again: {got:?}");

    // Dropping the receiver ends the listening task and closes its connection.
    assert_eq!(listeners(&db).await, 1);
    drop(rx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while listeners(&db).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the listener outlived its receiver");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A heartbeat tells the node the server's clock, which every node shares, so a node can
/// tell how far off its own clock is (the engine warns and exports the skew).
#[tokio::test]
async fn a_heartbeat_returns_the_servers_clock_whatever_the_nodes_clock_says() {
    let db = pg::fresh_database().await;
    let nodes = nodes(&db).await;
    let node = &nodes[0];
    let before = jiff::Timestamp::now();
    // The node's clock is years off; the server's is what comes back.
    let server = node.heartbeat("node_a", at(0)).await.unwrap().expect("PostgreSQL has a clock");
    let after = jiff::Timestamp::now();
    let slack = jiff::SignedDuration::from_secs(2);
    assert!(server >= before - slack && server <= after + slack, "server clock {server}, local {before}..{after}");
    assert!(server.duration_since(at(0)).abs() > jiff::SignedDuration::from_hours(24 * 100), "not the node's own clock echoed back");
}

/// A stats refresh that drained the change log vacuums it (issue 11): PostgreSQL keeps
/// deleted rows until a VACUUM, and every `/stats` read first checks the log for rows, so
/// without it that check scanned every row ever logged since the last (auto)vacuum (18 ms
/// a read after the bench's 2,000,000; 160 ms the first time). The drained table is left
/// with no pages at all (VACUUM truncates the empty tail).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stats_refresh_leaves_the_drained_change_log_vacuumed() {
    let (db, store) = one_node().await;
    let mut c = sqlx::PgConnection::connect(&db.url).await.expect("connection");
    // 20,000 logged hours of a campaign with no calls: each recomputes to nothing.
    sqlx::query("INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour) SELECT 'c', 'ws_none', 'cmp_none', (i % 50) * 3600000 FROM generate_series(1, 20000) i")
        .execute(&mut c)
        .await
        .expect("log changes");
    assert!(log_pages(&mut c).await > 10, "the log holds its rows");
    assert_eq!(store.refresh_stats().await.expect("refresh"), 50, "each logged hour recomputed once");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM stats_dirty").fetch_one(&mut c).await.unwrap();
    assert_eq!(left, 0);
    assert_eq!(log_pages(&mut c).await, 0, "the drained log was vacuumed: no dead rows left to scan");
}

/// The pages `stats_dirty` takes on disk.
async fn log_pages(c: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT pg_relation_size('stats_dirty') / current_setting('block_size')::bigint").fetch_one(c).await.expect("relation size")
}

/// A burst takes the outbox tables from empty to thousands of rows long before autovacuum
/// analyses them, and with statistics that still say "nearly empty" the claim read every
/// due delivery (117 ms a claim at 125,000 due: BENCHMARKS.md). The claim analyses a table
/// once more rows changed than its statistics say it has: within seconds of the burst
/// (the statistics collector sees a commit about a second after it), not a minute.
#[tokio::test]
async fn the_outbox_tables_are_analysed_once_a_burst_has_grown_them() {
    let (db, store) = one_node().await;
    let ws = store.default_workspace().await.unwrap();
    for _ in 0..3 {
        let endpoint = dialtone_store::NewWebhookEndpoint {
            url: "http://127.0.0.1:9/hook".into(),
            events: vec!["campaign.paused".into()],
            enabled: true,
            description: None,
        };
        store.create_webhook_endpoint(&ws, &endpoint, &secrecy::SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), t0()).await.unwrap();
    }
    let events: Vec<dialtone_store::OutboxEvent> =
        (0..1500).map(|n| dialtone_store::OutboxEvent::new(ws.as_str(), "campaign.paused", serde_json::json!({ "n": n }))).collect();
    store.emit_events(&events, t0()).await.unwrap();

    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let analysed_rows = |table: &'static str| format!("SELECT reltuples::float8 FROM pg_class WHERE oid = '{table}'::regclass");
    let before: f64 = sqlx::query_scalar(&analysed_rows("webhook_deliveries")).fetch_one(&mut c).await.unwrap();
    assert!(before < 1000.0, "not analysed before the burst: {before}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Each claim fans out up to 1,000 messages (3 deliveries each) and takes one try.
        store.claim_deliveries_except("n1", t0(), jiff::SignedDuration::from_secs(60), 1, 1000, &[]).await.unwrap();
        let deliveries: f64 = sqlx::query_scalar(&analysed_rows("webhook_deliveries")).fetch_one(&mut c).await.unwrap();
        let messages: f64 = sqlx::query_scalar(&analysed_rows("webhook_messages")).fetch_one(&mut c).await.unwrap();
        if deliveries >= 3000.0 && messages >= 1000.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the grown tables were not analysed: deliveries {deliveries}, messages {messages}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The engine's tables (`calls`, `call_events`, `contacts`) go from empty to thousands of
/// rows within seconds of a campaign starting; until analysed, the plans PostgreSQL made
/// while they were small (sequential scans) are kept by every prepared statement. The
/// engine calls `Store::analyze_grown` every second: a table that grew past its statistics
/// is analysed (within seconds: the statistics collector sees a commit about a second
/// after it), and one that did not grow since is left alone.
#[tokio::test]
async fn the_engine_tables_are_analysed_once_a_burst_has_grown_them() {
    let (db, store) = one_node().await;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let analysed_rows = "SELECT reltuples::float8 FROM pg_class WHERE oid = 'contacts'::regclass";
    let before: f64 = sqlx::query_scalar(analysed_rows).fetch_one(&mut c).await.unwrap();
    assert!(before < 1000.0, "not analysed before the burst: {before}");
    running(&store, Mode::Continuous, 5, 3, 1500).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut analysed = Vec::new();
    loop {
        analysed.extend(store.analyze_grown().await.unwrap());
        let contacts: f64 = sqlx::query_scalar(analysed_rows).fetch_one(&mut c).await.unwrap();
        if contacts >= 1500.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the grown contacts table was not analysed: {contacts} rows in its statistics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(analysed.iter().any(|t| t == "contacts"), "{analysed:?}");
    // Nothing changed since: nothing to analyse again.
    assert!(!store.analyze_grown().await.unwrap().contains(&"contacts".to_string()));
}

/// Dialed marks written together (`Store::mark_dialed_many`, the engine's group) racing
/// event batches on the same calls, in the other order, on several connections: both take
/// the call rows in id order, then the provider ids' advisory locks, then campaigns, so
/// neither waits on the other in a cycle (a deadlock victim would be retried, and fail the
/// test only after three tries). Every mark and every event lands: each call ends ringing
/// with its provider id, whichever committed first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_dialed_marks_racing_event_batches_on_the_same_calls_all_land() {
    const CALLS: usize = 12;
    let (_db, store) = one_node().await;
    let (ws, cmp) = running(&store, Mode::Continuous, CALLS as u32, 1, (CALLS * 4) as u32).await;
    for round in 0..4i64 {
        let dials = claim(&store, &cmp.id, at(round * 100)).await;
        assert_eq!(dials.len(), CALLS, "round {round}");
        for d in &dials {
            assert!(store.mark_placing(&d.call_id, NODE, at(round * 100 + 1)).await.unwrap());
        }
        let marks: Vec<(dialtone_core::CallId, String)> = dials.iter().rev().map(|d| (d.call_id.clone(), provider_id(&d.call_id))).collect();
        // Events name both ids (the provider echoes ours), in the marks' opposite order,
        // split into batches that race each other as well as the marks.
        let events: Vec<_> = dials
            .iter()
            .map(|d| event(Some(&d.call_id), Some(&provider_id(&d.call_id)), EventKind::Progress(CallStatus::Ringing), &format!("ring-{}", d.call_id)))
            .collect();
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for half in [&marks[..CALLS / 2], &marks[CALLS / 2..]] {
            let (store, barrier, half) = (store.clone(), barrier.clone(), half.to_vec());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.mark_dialed_many(&half, at(round * 100 + 2)).await.map(drop)
            }));
        }
        for half in [events[..CALLS / 2].to_vec(), events[CALLS / 2..].to_vec()] {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.apply_events(&half, at(round * 100 + 2)).await.map(drop)
            }));
        }
        for t in tasks {
            t.await.unwrap().expect("no mark or batch fails");
        }
        for d in &dials {
            let call = load_call(&store, &ws, &d.call_id).await;
            assert_eq!((call.status, call.provider_call_id), (CallStatus::Ringing, Some(provider_id(&d.call_id))), "round {round}");
        }
        let ends: Vec<_> = dials
            .iter()
            .map(|d| {
                event(
                    Some(&d.call_id),
                    Some(&provider_id(&d.call_id)),
                    EventKind::Ended { outcome: Outcome::Completed, reason: None },
                    &format!("end-{}", d.call_id),
                )
            })
            .collect();
        store.apply_events(&ends, at(round * 100 + 3)).await.unwrap();
    }
}

/// The `/stats` change log is written once per statement (migration 0030): a statement
/// over many calls or events logs each (workspace, campaign, hour) it touched once, not a
/// row per row changed; an update of only the timestamps every event bumps logs nothing;
/// an update that moves a call to another hour logs both hours; deletes log the old hour;
/// provider events log their received hour under their call's campaign.
#[tokio::test]
async fn the_stats_change_log_takes_one_row_per_hour_a_statement_touched() {
    let (db, store) = one_node().await;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (_ws, cmp) = running(&store, Mode::Continuous, 40, 1, 40).await;
    let dials = claim(&store, &cmp.id, t0()).await;
    assert_eq!(dials.len(), 40);
    store.refresh_stats().await.unwrap();
    let hour = t0().as_millisecond() / 3_600_000 * 3_600_000;
    let cmp_id = cmp.id.to_string();

    sqlx::query("UPDATE calls SET last_event_at = last_event_at + 1, updated_at = updated_at + 1").execute(&mut c).await.unwrap();
    assert_eq!(drain_log(&mut c).await, [], "only the timestamps every event bumps changed");

    sqlx::query("UPDATE calls SET status = 'dialing'").execute(&mut c).await.unwrap();
    assert_eq!(drain_log(&mut c).await, [("c".to_string(), cmp_id.clone(), hour)], "40 calls changed, one hour logged once");

    let moved = dials[0].call_id.to_string();
    sqlx::query("UPDATE calls SET created_at = created_at + 3600000 WHERE id = $1").bind(&moved).execute(&mut c).await.unwrap();
    assert_eq!(drain_log(&mut c).await, [("c".to_string(), cmp_id.clone(), hour), ("c".to_string(), cmp_id.clone(), hour + 3_600_000)]);

    sqlx::query("DELETE FROM calls WHERE id = ANY($1)").bind(vec![dials[1].call_id.to_string(), dials[2].call_id.to_string()]).execute(&mut c).await.unwrap();
    assert_eq!(drain_log(&mut c).await, [("c".to_string(), cmp_id.clone(), hour)]);

    // A batch of provider events with the provider's own time, received in one hour.
    let now = t0() + jiff::SignedDuration::from_secs(60);
    let events: Vec<_> = dials[3..23]
        .iter()
        .map(|d| {
            let mut e = progress(&d.call_id, CallStatus::Ringing);
            e.occurred_at = Some(now);
            e
        })
        .collect();
    store.apply_events(&events, now).await.unwrap();
    let rows = drain_log(&mut c).await;
    assert!(rows.contains(&("w".to_string(), cmp_id.clone(), hour)), "{rows:?}");
    assert!(rows.contains(&("c".to_string(), cmp_id.clone(), hour)), "{rows:?}");
    assert_eq!(rows.len(), 2, "20 events and 20 call changes, one hour of each: {rows:?}");

    // The rollup built from this log still answers what the raw query answers (the test
    // drained the log itself above, so those hours are logged again first).
    let ws = store.default_workspace().await.unwrap();
    sqlx::query("INSERT INTO stats_dirty (kind, workspace_id, campaign_id, hour) VALUES ('c', $1, $2, $3), ('c', $1, $2, $4), ('w', $1, $2, $3)")
        .bind(ws.to_string())
        .bind(&cmp_id)
        .bind(hour)
        .bind(hour + 3_600_000)
        .execute(&mut c)
        .await
        .unwrap();
    store.refresh_stats().await.unwrap();
    let q = dialtone_store::StatsQuery { workspace_id: ws, campaign_id: None, from: at(-86_400), to: at(86_400), now: at(86_400) };
    assert_eq!(store.stats(&q).await.unwrap(), store.stats_raw(&q).await.unwrap());
}

/// The change log's rows, (kind, campaign, hour), sorted; the log is left empty.
async fn drain_log(c: &mut sqlx::PgConnection) -> Vec<(String, String, i64)> {
    let mut rows: Vec<(String, String, i64)> =
        sqlx::query_as("DELETE FROM stats_dirty RETURNING kind, campaign_id, hour").fetch_all(c).await.expect("drain the log");
    rows.sort();
    rows
}

/// The engine's hot writes (group commits, claims) run on connections that keep one generic
/// plan per prepared statement; with `plan_cache_mode = auto` PostgreSQL planned each of
/// their array statements again on every run (BENCHMARKS.md, "generic plans"). The API's
/// connections keep `auto`: a page's `LIMIT $n` is better planned with its value.
#[tokio::test]
async fn the_engine_connections_keep_generic_plans_and_the_api_connections_do_not() {
    let db = pg::fresh_database().await;
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    dialtone_store::Store::migrate(&store).await.expect("migrate");
    let mode = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, String>("SHOW plan_cache_mode").fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(mode(store.engine_pool()).await, "force_generic_plan");
    assert_eq!(mode(store.pool()).await, "auto");
    // The engine's writes work on them: a claim and a group commit of events.
    let store: S = Arc::new(store);
    let (_, cmp) = running(&store, Mode::Continuous, 2, 3, 4).await;
    let now = at(2);
    let dials = claim(&store, &cmp.id, now).await;
    assert_eq!(dials.len(), 2, "claimed up to the cap");
    place(&store, &dials[0], now).await;
    let applied = store.apply_events(&[ended(&dials[0].call_id, Outcome::Completed)], now).await.unwrap();
    assert!(applied[0].ended_call(), "{applied:?}");
    assert_eq!(claim(&store, &cmp.id, now).await.len(), 1, "the freed slot is claimed again");
}
