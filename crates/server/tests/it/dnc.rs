//! Do-not-call lists through the API: a number listed while the campaign runs is never
//! dialled, ends as `dnc`, and is counted as such.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_listed_mid_campaign_are_never_dialled_and_end_as_dnc() {
    // Calls last long enough (~0.3 s) that the campaign is surely still running when the
    // numbers are listed; which numbers are still undialled is read, not assumed.
    let mut options = Options::default();
    options.sim.time_scale = 0.005;
    let app = TestApp::with(options).await;
    let id = app.create_campaign(json!({"max_concurrent": 1, "max_attempts": 1})).await;
    app.import_csv(&id, &contacts_csv(12)).await;
    app.act(&id, "start").await;
    eventually(
        || async {
            if app.sim_stats().dials >= 1 {
                Ok(())
            } else {
                Err("no dial yet".to_string())
            }
        },
        secs(10),
    )
    .await;
    let dialled: Vec<String> = app.all_calls(&[("campaign_id", id.as_str())], 50).await.iter().map(|c| c["phone"].as_str().unwrap().to_string()).collect();
    let listed: Vec<String> = numbers(12).into_iter().filter(|n| !dialled.contains(n)).rev().take(2).collect();
    assert_eq!(listed.len(), 2, "two numbers are still undialled");
    let (status, added) = app.post_json("/dnc", &json!({"numbers": [listed[0], "not a number"], "reason": "opted out"})).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!((added["added"].as_u64(), added["rejected_count"].as_u64()), (Some(1), Some(1)), "{added}");
    assert_eq!(added["rejected"][0]["line"], 2);
    let (status, _) = app.post_json(&format!("/campaigns/{id}/dnc"), &json!({"numbers": [listed[1]]})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, check) = app.get(&format!("/dnc/check?phone={}&campaign_id={id}", urlencode(&listed[1]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(check["suppressed"], true, "{check}");

    let done = app.wait_for_status(&id, "completed", secs(30)).await;
    assert_eq!(done["counts"]["contacts"]["dnc"], 2, "{}", done["counts"]);
    for listed in &listed {
        let calls = app.all_calls(&[("campaign_id", id.as_str()), ("phone", listed.as_str())], 50).await;
        assert!(calls.is_empty(), "{listed} was dialled: {calls:?}");
    }
    assert_eq!(app.sim_stats().dials, 10, "only the ten unlisted numbers reached the provider");

    let resp = app.api(Method::DELETE, &format!("/dnc/{}", urlencode(&listed[0]))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.api(Method::DELETE, &format!("/dnc/{}", urlencode(&listed[0]))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

fn urlencode(phone: &str) -> String {
    phone.replace('+', "%2B")
}
