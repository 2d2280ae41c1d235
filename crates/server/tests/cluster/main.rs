//! Several `dialtone serve` processes on one PostgreSQL database act as one system. One
//! simulator plays the provider; a small round-robin proxy plays the load balancer, so any
//! node receives any webhook. The simulator's own record is the judge.
//!
//! Needs `DIALTONE_TEST_PG_URL` (set by .ci/run); each test makes its own database.

mod support;

use support::*;

/// Three nodes, 20 campaigns × 500 contacts, cap 8 each: no campaign above 8 at any
/// moment, no duplicate dial, every contact finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_hold_every_cap_and_never_dial_twice() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let campaigns = cluster.campaigns(20, 500, 8).await;
    cluster.wait_until_completed(&campaigns, secs(240)).await;
    cluster.assert_judged_by_the_simulator(&campaigns, 500, 8).await;
}

/// The same with one node SIGKILLed halfway and never restarted: the survivors find its
/// in-flight work and finish everything, still within the caps and without a double dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_halfway_loses_nothing_and_causes_no_double_dial() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3).await;
    let campaigns = cluster.campaigns(20, 500, 8).await;
    cluster.wait_for_dials(20 * 500 / 2, secs(120)).await;
    cluster.kill(2);
    cluster.wait_until_completed(&campaigns, secs(300)).await;
    cluster.assert_judged_by_the_simulator(&campaigns, 500, 8).await;
}
