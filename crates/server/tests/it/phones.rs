//! Numbers as people in dialtone's markets write them reach the provider in the E.164 form
//! libphonenumber gives them: national numbers read in the campaign's region (including an
//! Indian mobile whose national number begins with 91), and do-not-call entries read the same.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;

/// The E.164 numbers the campaign's calls went to.
async fn dialled(app: &TestApp, campaign: &str) -> BTreeSet<String> {
    app.all_calls(&[("campaign_id", campaign)], 50).await.iter().map(|c| c["phone"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_numbers_are_imported_and_dialled_as_libphonenumber_reads_them() {
    let app = TestApp::start().await;
    let india = app.create_campaign(json!({"default_region": "IN", "max_concurrent": 2})).await;
    let csv = "name,phone\n\
               Asha,9188097679\n\
               Ravi,091880 97680\n\
               Olga,+7 812 315-00-01\n\
               Ivan,8 (800) 555-35-35\n\
               Nobody,12345\n";
    let report = app.import_csv(&india, csv).await;
    assert_eq!((report["imported"].as_u64(), report["rejected_count"].as_u64()), (Some(3), Some(2)), "{report}");
    // `8 (800) ...` is a Russian national number: in an Indian list it is not one.
    let lines: Vec<u64> = report["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [5, 6], "{report}");

    let italy = app.create_campaign(json!({"default_region": "it", "max_concurrent": 2})).await;
    let (status, report) = app
        .post_json(
            &format!("/campaigns/{italy}/contacts"),
            &json!([
                {"phone": "391 231 2312"},
                {"phone": "+33 1 42 68 53 00"},
                {"phone": "06 6982 1234"},
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((report["imported"].as_u64(), report["rejected_count"].as_u64()), (Some(3), Some(0)), "{report}");

    for id in [&india, &italy] {
        app.act(id, "start").await;
    }
    for id in [&india, &italy] {
        app.wait_for_status(id, "completed", secs(30)).await;
    }
    assert_eq!(dialled(&app, &india).await, BTreeSet::from(["+919188097679".into(), "+919188097680".into(), "+78123150001".into()]));
    assert_eq!(dialled(&app, &italy).await, BTreeSet::from(["+393912312312".into(), "+33142685300".into(), "+390669821234".into()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indian_number_is_listed_do_not_call_in_its_own_region() {
    let app = TestApp::start().await;
    let india = app.create_campaign(json!({"default_region": "IN"})).await;

    // A campaign list reads national numbers in the campaign's region.
    let (status, added) = app.post_json(&format!("/campaigns/{india}/dnc"), &json!({"numbers": ["9188097679"]})).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!((added["added"].as_u64(), added["rejected_count"].as_u64()), (Some(1), Some(0)), "{added}");
    let (status, check) = app.get(&format!("/dnc/check?phone=%2B919188097679&campaign_id={india}")).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["suppressed"], true, "{check}");

    // The workspace list has no region of its own: the request names it, in the body...
    let (status, added) = app.post_json("/dnc", &json!({"numbers": ["9188097679", "+91 91880 97680"], "region": "IN"})).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!((added["added"].as_u64(), added["rejected_count"].as_u64()), (Some(2), Some(0)), "{added}");
    // ... or in the query, for a CSV upload and for a check.
    let req = app.api(Method::POST, "/dnc?region=in").header("content-type", "text/csv").body("phone\n91880 97681\n");
    let (status, added) = send(req).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(added["added"], 1, "{added}");
    for national in ["9188097679", "9188097680", "09188097681"] {
        let (status, check) = app.get(&format!("/dnc/check?phone={national}&region=IN")).await;
        assert_eq!(status, StatusCode::OK, "{check}");
        assert_eq!(check["suppressed"], true, "{national}: {check}");
        assert!(check["phone"].as_str().unwrap().starts_with("+9191880976"), "{check}");
    }
    let (status, check) = app.get("/dnc/check?phone=%2B919188097679").await;
    assert_eq!((status, &check["suppressed"]), (StatusCode::OK, &json!(true)), "{check}");

    let resp = app.api(Method::DELETE, "/dnc/9188097679?region=IN").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (_, check) = app.get("/dnc/check?phone=%2B919188097679").await;
    assert_eq!(check["suppressed"], false, "{check}");

    // A region libphonenumber has no numbering plan for is refused, naming the field.
    let (status, body) = app.post_json("/dnc", &json!({"numbers": ["9188097679"], "region": "XX"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "region", "{body}");
    let (status, body) = app.get("/dnc/check?phone=9188097679&region=india").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}
