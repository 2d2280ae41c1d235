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

/// The same create with the same `Idempotency-Key`, sent to both nodes at once, 20 times:
/// each key makes one campaign; every answer is that campaign, or "still running" (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_sent_to_two_nodes_with_one_idempotency_key_makes_one_campaign() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(2).await;
    for k in 0..20 {
        let body = serde_json::json!({"name": format!("idem {k}"), "provider": "sim", "assistant_id": "a", "phone_number_id": "pn", "max_concurrent": 1});
        let key = format!("cluster-{k}");
        let (a, b) = tokio::join!(cluster.post_keyed(0, "/campaigns", &key, &body), cluster.post_keyed(1, "/campaigns", &key, &body));
        let created: Vec<&serde_json::Value> = [&a, &b].into_iter().filter(|(s, _)| *s == reqwest::StatusCode::CREATED).map(|(_, v)| v).collect();
        assert!(!created.is_empty(), "one of them created it: {a:?} {b:?}");
        assert!(created.iter().all(|v| v["id"] == created[0]["id"]), "one campaign, the same answer: {a:?} {b:?}");
        for (status, v) in [&a, &b] {
            assert!(
                *status == reqwest::StatusCode::CREATED || (*status == reqwest::StatusCode::CONFLICT && v["error"]["code"] == "idempotency_key_in_use"),
                "{status}: {v}"
            );
        }
        // The loser's retry gets the winner's answer from either node.
        let (status, again) = cluster.post_keyed(k % 2, "/campaigns", &key, &body).await;
        assert_eq!((status, &again["id"]), (reqwest::StatusCode::CREATED, &created[0]["id"]));
    }
    let names = cluster.campaign_names().await;
    for k in 0..20 {
        assert_eq!(names.iter().filter(|n| **n == format!("idem {k}")).count(), 1, "idem {k}: {names:?}");
    }
}
