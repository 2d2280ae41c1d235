//! Contact uploads as people really send them: CRLF files, `;` and tab delimiters,
//! exported header names, extensions, broken quotes, multipart uploads with a bad part,
//! uploads over the size limit and too many at once.

use crate::support::*;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn upload(app: &TestApp, campaign: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    send(app.api(Method::POST, &format!("/campaigns/{campaign}/contacts")).header("content-type", content_type).body(body)).await
}

/// `text/csv` with `Transfer-Encoding: chunked` (no length given), over a raw connection.
async fn chunked_upload(app: &TestApp, campaign: &str, csv: &str) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST /api/v1/campaigns/{campaign}/contacts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
        Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.key
    );
    for line in csv.lines() {
        req.push_str(&format!("{:x}\r\n{line}\n\r\n", line.len() + 1));
    }
    req.push_str("0\r\n\r\n");
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(req.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status: u16 = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    (StatusCode::from_u16(status).unwrap(), serde_json::from_str(body).unwrap_or_else(|_| json!({"raw": body})))
}

async fn contacts_in(app: &TestApp, campaign: &str) -> u64 {
    total(&app.campaign(campaign).await["counts"]["contacts"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_and_semicolon_files_with_exported_headers_import_with_right_line_numbers() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    // Excel "CSV UTF-8" in a European locale: BOM, `;`, CRLF, a quoted note over two lines.
    let csv = "\u{feff}Full Name;Mobile Phone;Note\r\nAna;(415) 555-2671;\"two\r\nlines\"\r\nBo;not a number;x\r\nCy;4155552672;y\r\n";
    let (status, report) = upload(&app, &id, "text/csv", csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["rejected"][0]["line"], 4, "the bad row is on line 4: {report}");
    // Tab-delimited, header `Phone 1 - Value` (Google Contacts).
    let tabs = app.create_campaign(json!({})).await;
    let (status, report) = upload(&app, &tabs, "text/csv", "Name\tPhone 1 - Value\nAna\t4155552671\n").await;
    assert_eq!((status, report["imported"].clone()), (StatusCode::OK, json!(1)), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_without_a_phone_column_is_refused_listing_the_headers_seen_and_accepted() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let (status, body) = upload(&app, &id, "text/csv", "Name,Email,Fax\nAna,a@example.com,1\n").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let details = &body["error"]["details"];
    assert_eq!(details["field"], "file", "{body}");
    assert_eq!(details["headers_seen"], json!(["Name", "Email", "Fax"]), "{body}");
    assert!(details["accepted"].as_array().unwrap().contains(&json!("msisdn")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("\"Fax\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unterminated_quote_refuses_the_file_naming_its_line_and_stores_nothing() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let csv = "phone,name\r\n4155552671,Ana\r\n4155552672,\"Bo\r\n4155552673,Cy\r\n";
    let (status, body) = upload(&app, &id, "text/csv", csv).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["line"], 3, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("line 3"), "{body}");
    assert_eq!(contacts_in(&app, &id).await, 0, "the rows before the fault must not be stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_is_all_or_nothing() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let part = |csv: &'static str| Part::text(csv).file_name("c.csv").mime_str("text/csv").unwrap();
    // A good `file` part followed by a bad one: nothing from the first is kept.
    let form = Form::new().part("file", part("phone\n4155552671\n4155552672\n")).part("file", part("name\nAna\n"));
    let (status, body) = send(app.api(Method::POST, &format!("/campaigns/{id}/contacts")).multipart(form)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["part"], 2, "{body}");
    assert_eq!(contacts_in(&app, &id).await, 0);
    // A good part then a broken body (the closing boundary never comes).
    let boundary = "XyZ";
    let broken = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\n\r\nphone\n4155552671\n\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nphone\n41555");
    let (status, body) = upload(&app, &id, &format!("multipart/form-data; boundary={boundary}"), broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(contacts_in(&app, &id).await, 0);
    // Two good parts: both are imported.
    let form = Form::new().part("file", part("phone\n4155552671\n")).part("file", part("Mobile\n4155552672\n"));
    let (status, report) = send(app.api(Method::POST, &format!("/campaigns/{id}/contacts")).multipart(form)).await;
    assert_eq!((status, report["imported"].clone()), (StatusCode::OK, json!(2)), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_limit_gets_413_in_the_error_shape_and_stores_nothing() {
    let app = TestApp::with(Options { max_upload_bytes: Some(1000), ..Options::default() }).await;
    let id = app.create_campaign(json!({})).await;
    let big = contacts_csv(100);
    assert!(big.len() > 1000);
    let (status, body) = upload(&app, &id, "text/csv", big.clone()).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(body["error"]["details"]["limit_bytes"], 1000, "{body}");
    // Sent in chunks without a length: counted as it arrives.
    let (status, body) = chunked_upload(&app, &id, &big).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let form = Form::new().part("file", Part::text(big).file_name("c.csv"));
    let (status, body) = send(app.api(Method::POST, &format!("/campaigns/{id}/contacts")).multipart(form)).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let (status, body) = app.post_json(&format!("/campaigns/{id}/contacts"), &json!([{"phone": "4155552671", "pad": "x".repeat(2000)}])).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(contacts_in(&app, &id).await, 0);
    // Under the limit it goes through.
    let (status, report) = upload(&app, &id, "text/csv", contacts_csv(3)).await;
    assert_eq!((status, report["imported"].clone()), (StatusCode::OK, json!(3)), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_beyond_the_concurrency_bound_get_429() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let held = app.state.imports.clone().try_acquire_many_owned(4).expect("4 import slots by default");
    let (status, body) = upload(&app, &id, "text/csv", contacts_csv(2)).await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "too_many_imports");
    drop(held);
    let (status, report) = upload(&app, &id, "text/csv", contacts_csv(2)).await;
    assert_eq!((status, report["imported"].clone()), (StatusCode::OK, json!(2)), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_is_kept_on_the_contact_and_reaches_the_provider() {
    let app = TestApp::with(Options { provider_accounts: true, ..Options::default() }).await;
    let nums = numbers(3);
    // Vapi's wire (the sim account) and Twilio's.
    for (provider, caller, n, sent) in [("sim", PHONE_NUMBER_ID, 0, "22"), ("twilio", TWILIO_CALLER, 1, "wwww23")] {
        let id = app.create_campaign(json!({"provider": provider, "phone_number_id": caller})).await;
        let ext = if n == 0 { "ext. 22" } else { "x23" };
        let report = app.import_csv(&id, &format!("phone,name\n\"{} {ext}\",Ana\n", nums[n])).await;
        assert_eq!(report["imported"], 1, "{report}");
        app.act(&id, "start").await;
        let digits =
            eventually(|| async { app.sim_stats().digits_after_connect.get(&nums[n]).cloned().ok_or_else(|| "not dialled yet".to_string()) }, secs(10)).await;
        assert_eq!(digits, sent, "{provider}");
        let call =
            eventually(|| async { app.all_calls(&[("campaign_id", id.as_str())], 10).await.first().cloned().ok_or_else(|| "no call".to_string()) }, secs(10))
                .await;
        let (status, contact) = app.get(&format!("/contacts/{}", call["contact_id"].as_str().unwrap())).await;
        assert_eq!(status, StatusCode::OK, "{contact}");
        assert_eq!(contact["extension"], sent.trim_start_matches('w'), "{contact}");
        assert_eq!(contact["phone"], nums[n].as_str(), "{contact}");
    }
    // Exotel cannot dial one: the row is rejected by line, never imported without it.
    let id = app.create_campaign(json!({"provider": "exotel", "phone_number_id": EXOTEL_CALLER})).await;
    let report = app.import_csv(&id, &format!("phone\n{}\n{} x5\n", nums[2], nums[0])).await;
    assert_eq!(report["imported"], 1, "{report}");
    assert_eq!(report["rejected"][0]["line"], 3, "{report}");
    assert!(report["rejected"][0]["reason"].as_str().unwrap().contains("Exotel"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_number_with_two_extensions_is_two_contacts() {
    let app = TestApp::start().await;
    let id = app.create_campaign(json!({})).await;
    let report = app.import_csv(&id, "phone\n4155552671 x1\n4155552671 x2\n4155552671 x1\n4155552671\n").await;
    assert_eq!(report["imported"], 3, "{report}");
    assert_eq!(report["rejected"][0]["line"], 4, "{report}");
    assert!(report["rejected"][0]["reason"].as_str().unwrap().contains("extension 1"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_call_takes_an_extension() {
    let app = TestApp::start().await;
    let nums = numbers(2);
    let (status, body) = app.post_json("/assistants", &json!({"id": "asst_ext", "provider": "sim", "phone_number_id": PHONE_NUMBER_ID})).await;
    assert!(status.is_success(), "{body}");
    let body = json!({"assistant_id": "asst_ext", "phone": nums[0], "extension": "ext. 7"});
    let (status, call) = app.post_json("/calls", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    let digits =
        eventually(|| async { app.sim_stats().digits_after_connect.get(&nums[0]).cloned().ok_or_else(|| "not dialled yet".to_string()) }, secs(10)).await;
    assert_eq!(digits, "7");
    let (status, body) = app.post_json("/calls", &json!({"assistant_id": "asst_ext", "phone": nums[1], "extension": "7a"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["field"], "extension", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dnc_csv_with_a_broken_quote_is_refused_naming_its_line() {
    let app = TestApp::start().await;
    let req = app.api(Method::POST, "/dnc").header("content-type", "text/csv").body("Phone Number;Reason\r\n4155552671;x\r\n\"4155552672;y\r\n");
    let (status, body) = send(req).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["details"]["line"], 3, "{body}");
    let req = app.api(Method::POST, "/dnc").header("content-type", "text/csv").body("Phone Number;Reason\r\n4155552671;x\r\n");
    let (status, body) = send(req).await;
    assert_eq!((status, body["added"].clone()), (StatusCode::OK, json!(1)), "{body}");
}
