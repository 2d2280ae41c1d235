//! Planner statistics (`Store::analyze_grown`): a table that grew in a burst is analysed
//! within seconds, and one that did not grow since is left alone, on both backends.

use crate::support::*;
use dialtone_core::Mode;
use std::time::{Duration, Instant};

/// A burst of 1,500 contacts: `contacts` is analysed (on PostgreSQL once the statistics
/// collector has seen the commit, about a second later; on SQLite at once), then not again
/// while nothing changes. `calls`, empty, is not analysed.
pub async fn a_table_grown_by_a_burst_is_analysed_once(store: S) {
    assert!(store.analyze_grown().await.unwrap().is_empty(), "nothing grew yet");
    running(&store, Mode::Continuous, 5, 3, 1500).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let analysed = loop {
        let analysed = store.analyze_grown().await.unwrap();
        if !analysed.is_empty() {
            break analysed;
        }
        assert!(Instant::now() < deadline, "the grown contacts table was not analysed within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(analysed, vec!["contacts".to_string()]);
    for _ in 0..3 {
        assert!(store.analyze_grown().await.unwrap().is_empty(), "analysed again with nothing grown");
    }
}
