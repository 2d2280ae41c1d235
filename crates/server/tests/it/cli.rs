//! The CLI that writes (issue 11): the real `dialtone` binary against a test server, as a
//! user at a terminal runs it.

use crate::support::*;
use serde_json::Value;
use std::process::Output;

/// Runs `dialtone args…` with the server's address and key in the environment (unless
/// `env` overrides them), off the runtime's workers (the server runs on them).
async fn dialtone(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dialtone"));
    cmd.args(args).env_remove("DIALTONE_LISTEN").env_remove("DIALTONE_DATABASE_URL").env("DIALTONE_API_URL", &app.base).env("DIALTONE_API_KEY", &app.key);
    // Not to pick up a dialtone.toml where the tests run.
    cmd.current_dir(std::env::temp_dir());
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status, stdout(&o), String::from_utf8_lossy(&o.stderr));
    stdout(&o)
}

fn json(o: Output) -> Value {
    let text = ok(o);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `campaigns create --body FILE FLAGS… --json`, `FILE` holding `body`: the created campaign.
async fn create_with_body(app: &TestApp, body: &str, flags: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("campaign.json");
    std::fs::write(&file, body).unwrap();
    let mut args = vec!["campaigns", "create", "--body", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push("--json");
    json(dialtone(app, &args, &[]).await)
}

/// A create's stdout: exactly the new id and a newline (its details go to stderr); the id.
fn id_alone(o: Output, prefix: &str) -> String {
    let out = ok(o);
    let id = out.strip_suffix('\n').unwrap_or_else(|| panic!("one line: {out:?}"));
    assert!(id.starts_with(prefix) && !id.contains(char::is_whitespace), "stdout is the id alone: {out:?}");
    id.to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn failed(o: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected a failure: {}", stdout(o));
    assert!(stderr.contains(message), "the API's message {message:?} is printed: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_is_created_imported_started_watched_and_exported_from_the_cli() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Fields without a flag come from --body; the flags win over it.
    let c = create_with_body(
        &app,
        r#"{"name": "from the file", "max_attempts": 1, "calling_hours": {"start": "00:00", "end": "00:00"}}"#,
        &["--name", "cli", "--provider", "sim", "--assistant-id", "asst_1", "--phone-number-id", PHONE_NUMBER_ID, "--max-concurrent", "3"],
    )
    .await;
    assert_eq!((c["name"].as_str(), c["max_attempts"].as_u64()), (Some("cli"), Some(1)), "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["status"], "draft", "{c}");
    // A draft is not going to open: no next open time, and the list says why.
    assert!(c["next_open_at"].is_null() && c["waiting_reason"].as_str().is_some_and(|w| w.contains("draft")), "{c}");
    let listed = ok(dialtone(&app, &["campaigns", "list"], &[]).await);
    let row = listed.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("(a draft: not started)"), "{row}");

    // A bad row is shown with its line and reason; the good ones are imported. The rows
    // are listed in line order: the duplicate on line 3 is found by the store after the
    // chunk's bad rows (line 9) were, and still comes first.
    let csv = dir.path().join("contacts.csv");
    let six = contacts_csv(6);
    let first = six.lines().nth(1).unwrap();
    let rest: Vec<&str> = six.lines().skip(2).collect();
    std::fs::write(&csv, format!("{}\n{first}\n{first}\n{}\nnot a phone,Bad Row,gold\n", six.lines().next().unwrap(), rest.join("\n"))).unwrap();
    let out = ok(dialtone(&app, &["campaigns", "import", &id, csv.to_str().unwrap()], &[]).await);
    assert!(out.contains("6 imported, 2 rejected"), "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("line ")).collect();
    assert!(lines.len() == 2 && lines[0].starts_with("line 3: duplicate") && lines[1].starts_with("line 9:"), "{out}");

    // start --watch with stdout not a terminal: the id first, then a line per change, then
    // the campaign as it ended.
    let watched = ok(dialtone(&app, &["campaigns", "start", &id, "--watch"], &[]).await);
    let mut lines = watched.lines();
    assert_eq!(lines.next(), Some(id.as_str()), "{watched}");
    let updates: Vec<&str> = watched.lines().filter(|l| l.contains(" contacts · ")).collect();
    assert!(!updates.is_empty() && updates.last().unwrap().starts_with("6/6 contacts · completed"), "{watched}");
    assert!(watched.contains("status: completed"), "{watched}");
    let done = json(dialtone(&app, &["campaigns", "show", &id, "--watch", "--json"], &[]).await);
    assert_eq!(done["status"], "completed", "{done}");
    let shown = ok(dialtone(&app, &["campaigns", "show", &id], &[]).await);
    assert!(shown.contains("status: completed") && shown.contains("progress: 6/6 contacts"), "{shown}");
    assert!(!shown.contains('{'), "readable lines, not JSON: {shown}");
    assert!(ok(dialtone(&app, &["campaigns", "list"], &[]).await).contains(&id));
    // --json is the API's page as it came.
    let page = json(dialtone(&app, &["campaigns", "list", "--json", "--limit", "1"], &[]).await);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1), "{page}");
    assert!(page.as_object().unwrap().contains_key("next_cursor"), "{page}");

    let file = dir.path().join("out.csv");
    ok(dialtone(&app, &["campaigns", "export", &id, "-o", file.to_str().unwrap()], &[]).await);
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 7, "a header and one row per contact: {exported}");
    assert!(exported.starts_with("phone,name,status,outcome,attempts,last_call_at,duration_secs,summary"), "{exported}");

    let calls = json(dialtone(&app, &["calls", "list", "--campaign", &id, "--json"], &[]).await);
    let data = calls["data"].as_array().unwrap();
    assert_eq!(data.len(), 6, "{calls}");
    let call_id = data[0]["id"].as_str().unwrap();
    let call = json(dialtone(&app, &["calls", "show", call_id, "--json"], &[]).await);
    assert_eq!(call["id"], call_id);
    assert!(call["events"].as_array().is_some_and(|e| !e.is_empty()), "{call}");
    assert!(ok(dialtone(&app, &["calls", "show", call_id], &[]).await).contains("duration_secs"));
    let table = ok(dialtone(&app, &["calls", "list", "--campaign", &id, "--status", "ended,failed"], &[]).await);
    assert_eq!(table.lines().count(), 7, "{table}");

    // The API's refusals are printed as its message, with a failing exit.
    failed(&dialtone(&app, &["calls", "hangup", call_id], &[]).await, "only a live call can be hung up");
    failed(&dialtone(&app, &["campaigns", "pause", &id], &[]).await, "completed");
    failed(&dialtone(&app, &["calls", "list", "--status", "sleeping"], &[]).await, "status");

    let stats = json(dialtone(&app, &["stats", "--campaign", &id, "--preset", "today", "--json"], &[]).await);
    assert!(stats.is_object(), "{stats}");
    assert_eq!(stats["total_calls"], 6, "{stats}");
    let plain = ok(dialtone(&app, &["stats", "--campaign", &id, "--preset", "today"], &[]).await);
    assert!(!plain.contains('{') && !plain.contains('['), "readable lines, not JSON: {plain}");
    assert!(plain.contains("calls          6 (") && plain.contains("success rate ") && plain.contains("latency "), "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_prints_the_id_alone_and_a_waiting_campaign_is_shown_in_words() {
    let app = TestApp::start().await;
    let out = dialtone(
        &app,
        &["campaigns", "create", "--name", "script", "--provider", "sim", "--assistant-id", "asst_1", "--phone-number-id", PHONE_NUMBER_ID],
        &[],
    )
    .await;
    assert!(stderr(&out).contains("draft"), "details on stderr");
    let id = &id_alone(out, "cmp_");

    // One contact where it is 3 at night: it waits for its calling hours, said in words.
    let zone = crate::batches::zone_at_local_hour(3);
    app.import_csv(id, &format!("phone,timezone\n{},{zone}\n", numbers(1)[0])).await;
    ok(dialtone(&app, &["campaigns", "start", id], &[]).await);
    let shown = eventually(
        || async {
            let shown = ok(dialtone(&app, &["campaigns", "show", id], &[]).await);
            if shown.contains("calling hours") {
                Ok(shown)
            } else {
                Err(shown)
            }
        },
        secs(10),
    )
    .await;
    assert!(shown.contains("waiting contacts:") && !shown.contains('{'), "{shown}");
    assert!(shown.contains("schedule next open: "), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_patch_names_the_field_in_plain_words() {
    let app = TestApp::start().await;
    let id = app.create_campaign(serde_json::json!({})).await;
    let patch = |body: Value| {
        let req = app.api(reqwest::Method::PATCH, &format!("/campaigns/{id}")).json(&body);
        send(req)
    };
    for (body, field, words) in [
        (serde_json::json!({"max_concurrent": "many"}), "max_concurrent", "max_concurrent: must be a whole number, not \"many\""),
        (serde_json::json!({"max_attempts": -1}), "max_attempts", "max_attempts: must be a whole number, not -1"),
        (serde_json::json!({"nmae": "x"}), "nmae", "nmae: is not a field here; the fields are "),
        (serde_json::json!({"name": 5}), "name", "name: must be text (a JSON string), not 5"),
        (serde_json::json!({"name": null}), "name", "name: must not be null"),
        (serde_json::json!({"schedule": null}), "schedule", "schedule: must not be null"),
        (serde_json::json!({"calling_hours": null}), "calling_hours", "calling_hours: must not be null"),
    ] {
        let (status, answer) = patch(body.clone()).await;
        assert_error(status, &answer, reqwest::StatusCode::BAD_REQUEST, "invalid_json");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(words), "{body}: {message}");
        assert!(!message.contains("expected") && !message.contains("line 1"), "no serde wording: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel_move_the_campaign() {
    let app = TestApp::start().await;
    let id = app.create_campaign(serde_json::json!({"max_concurrent": 1})).await;
    app.import_csv(&id, &contacts_csv(3)).await;
    assert!(
        ok(dialtone(&app, &["campaigns", "start", &id], &[]).await).contains("is starting")
            || app.get(&format!("/campaigns/{id}")).await.1["status"] != "draft"
    );
    let paused = json(dialtone(&app, &["campaigns", "pause", &id, "--json"], &[]).await);
    assert_eq!(paused["status"], "paused", "{paused}");
    let resumed = json(dialtone(&app, &["campaigns", "resume", &id, "--json"], &[]).await);
    assert_ne!(resumed["status"], "paused", "{resumed}");
    let canceled = json(dialtone(&app, &["campaigns", "cancel", &id, "--json"], &[]).await);
    assert_eq!(canceled["status"], "canceled", "{canceled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_do_not_call_list_is_kept_from_the_cli() {
    let app = TestApp::start().await;
    let out = ok(dialtone(&app, &["dnc", "add", "+14155550123", "+14155550124", "--reason", "asked"], &[]).await);
    assert_eq!(out.trim(), "2 added, 0 already listed");
    let list = json(dialtone(&app, &["dnc", "list", "--json"], &[]).await);
    let phones: Vec<&str> = list["data"].as_array().unwrap().iter().filter_map(|s| s["phone"].as_str()).collect();
    assert_eq!(phones.len(), 2, "{list}");
    assert!(phones.contains(&"+14155550123"), "{list}");
    // The API answers a removal with 204, no body: --json prints nothing (not `null`).
    let removed = dialtone(&app, &["dnc", "remove", "+14155550123", "--json"], &[]).await;
    assert_eq!(ok(removed), "", "nothing on stdout for an answer without a body");
    let table = ok(dialtone(&app, &["dnc", "list"], &[]).await);
    assert!(!table.contains("+14155550123") && table.contains("+14155550124"), "{table}");
    let out = ok(dialtone(&app, &["dnc", "add", "not-a-number", "+14155550124"], &[]).await);
    assert!(out.contains("line 1: invalid phone number \"not-a-number\"") && out.contains("0 added, 1 already listed"), "{out}");
    failed(&dialtone(&app, &["dnc", "remove", "+14155550199"], &[]).await, "not");
    // Written as people write them: spaces and brackets reach the API as one path segment.
    ok(dialtone(&app, &["dnc", "add", "(415) 555-0124"], &[]).await);
    assert_eq!(ok(dialtone(&app, &["dnc", "remove", "(415) 555-0124"], &[]).await).trim(), "(415) 555-0124 removed");
    ok(dialtone(&app, &["dnc", "add", "415 555 0125"], &[]).await);
    ok(dialtone(&app, &["dnc", "remove", "415 555 0125"], &[]).await);
    assert!(!ok(dialtone(&app, &["dnc", "list"], &[]).await).contains("+14155550125"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_early_ends_the_cli_quietly() {
    let app = TestApp::start().await;
    ok(dialtone(&app, &["dnc", "add", "+14155550001", "+14155550002", "+14155550003"], &[]).await);
    // `dialtone dnc list | head -c 1`, with the pipe's read end closed before the answer is printed.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dialtone"));
    cmd.args(["dnc", "list", "--json"]).env("DIALTONE_API_URL", &app.base).env("DIALTONE_API_KEY", &app.key).current_dir(std::env::temp_dir());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "no panic on a closed pipe: {stderr}");
    assert_ne!(out.status.code(), Some(101), "not the panic exit status: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_without_the_key_and_a_revoked_key_fails_at_once() {
    let app = TestApp::start().await;
    let db = [("DIALTONE_DATABASE_URL", app.database_url.as_str())];
    let key = ok(dialtone(&app, &["keys", "create", "--name", "ops"], &db).await).trim().to_string();
    assert!(key.starts_with("dt_"), "{key}");
    let with_key = [("DIALTONE_API_KEY", key.as_str())];
    ok(dialtone(&app, &["campaigns", "list"], &with_key).await);

    // The API's answer as it came: workspace, scopes, prefix, last use; never the key.
    let listed = json(dialtone(&app, &["keys", "list", "--json"], &[]).await);
    let text = listed.to_string();
    assert!(!text.contains(&key) && !text.contains(&key[8..]), "the key is never shown: {text}");
    let ops = listed["data"].as_array().unwrap().iter().find(|k| k["name"] == "ops").unwrap_or_else(|| panic!("{listed}")).clone();
    assert_eq!(ops["prefix"], &key[..8]);
    assert_eq!(ops["scopes"], serde_json::json!(["read", "write", "admin"]), "{ops}");
    let ws = ops["workspace_id"].as_str().unwrap_or_else(|| panic!("{ops}")).to_string();
    assert!(ops["created_at"].is_string() && ops["revoked_at"].is_null(), "{ops}");
    // The use above is noted (off the request's path: give it a moment).
    let mut used = Value::Null;
    for _ in 0..50 {
        let keys = json(dialtone(&app, &["keys", "list", "--json"], &[]).await);
        used = keys["data"].as_array().unwrap().iter().find(|k| k["name"] == "ops").unwrap()["last_used_at"].clone();
        if used.is_string() {
            break;
        }
        tokio::time::sleep(ms(100)).await;
    }
    assert!(used.is_string(), "last use recorded: {used}");
    let table = ok(dialtone(&app, &["keys", "list"], &[]).await);
    let row = table.lines().find(|l| l.contains("ops")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(&key[..8]) && row.contains("read,write,admin") && row.contains(&ws) && row.contains(used.as_str().unwrap()), "{table}");

    // Another workspace's keys: the operator's key names it.
    let acme = json(dialtone(&app, &["workspaces", "create", "Acme", "--key-name", "acme-reader", "--key-scopes", "read", "--json"], &[]).await);
    let acme_ws = acme["workspace"]["id"].as_str().unwrap();
    let theirs = json(dialtone(&app, &["keys", "list", "--workspace", acme_ws, "--json"], &[]).await);
    assert_eq!(theirs["data"].as_array().map(Vec::len), Some(1), "{theirs}");
    assert_eq!((theirs["data"][0]["scopes"].clone(), theirs["data"][0]["workspace_id"].as_str()), (serde_json::json!(["read"]), Some(acme_ws)), "{theirs}");

    let id = ops["id"].as_str().unwrap();
    assert!(ok(dialtone(&app, &["keys", "revoke", id], &[]).await).contains("revoked"));
    failed(&dialtone(&app, &["campaigns", "list"], &with_key).await, "unknown or revoked API key");
    failed(&dialtone(&app, &["keys", "revoke", id], &[]).await, "not found");
    let revoked = json(dialtone(&app, &["keys", "list", "--json"], &[]).await);
    let ops = revoked["data"].as_array().unwrap().iter().find(|k| k["id"] == id).unwrap();
    assert!(ops["revoked_at"].is_string(), "{ops}");
    // The other key still works.
    ok(dialtone(&app, &["campaigns", "list"], &[]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_api_url_the_cli_dials_the_configs_listen_address() {
    let app = TestApp::start().await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dialtone.toml");
    std::fs::write(&config, format!("listen = \"0.0.0.0:{port}\"\n")).unwrap();
    let out = ok(dialtone(&app, &["--config", config.to_str().unwrap(), "campaigns", "list", "--json"], &[("DIALTONE_API_URL", "")]).await);
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page, serde_json::json!({"data": [], "next_cursor": null}), "the API's page as it came");
    // And the environment's DIALTONE_LISTEN too.
    let out = ok(dialtone(&app, &["stats", "--json"], &[("DIALTONE_API_URL", ""), ("DIALTONE_LISTEN", &format!("127.0.0.1:{port}"))]).await);
    assert!(out.trim_start().starts_with('{'), "{out}");
    failed(&dialtone(&app, &["campaigns", "list"], &[("DIALTONE_API_KEY", "")]).await, "DIALTONE_API_KEY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_sent_from_csv_or_json_watched_and_canceled_from_the_cli() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let nums = numbers(5);
    let csv = dir.path().join("calls.csv");
    // Each callee in a zone where it is noon now: inside the default calling hours.
    let noon = crate::batches::zone_at_local_hour(12);
    std::fs::write(&csv, format!("phone,name,plan,timezone\n{},Ada,gold,{noon}\n{},,silver,{noon}\n{},,,{noon}\n", nums[0], nums[1], nums[2])).unwrap();
    let settings = ["--provider", "sim", "--assistant-id", "asst_it", "--phone-number-id", PHONE_NUMBER_ID, "--max-attempts", "1"];
    let mut args = vec!["batches", "create", "--file", csv.to_str().unwrap(), "--watch", "--json"];
    args.extend(settings);
    // The CSV's calls run to the end; --watch --json prints the batch as it ended.
    // The id and the progress lines go to stderr: stdout is the API's JSON alone.
    let out = dialtone(&app, &args, &[]).await;
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    let done = json(out);
    assert_eq!(done["status"], "completed", "{done}");
    assert!(progress.starts_with(done["id"].as_str().unwrap()) && progress.contains("3/3 calls · completed"), "{progress}");
    assert_eq!(done["progress"]["total"], 3, "{done}");
    assert_eq!(done["progress"]["percent_done"], 100.0, "{done}");
    let id = done["id"].as_str().unwrap().to_string();
    let shown = ok(dialtone(&app, &["batches", "show", &id], &[]).await);
    assert!(shown.contains("3/3 calls finished (100"), "{shown}");
    let listed = ok(dialtone(&app, &["batches", "list"], &[]).await);
    assert!(listed.contains(&id), "{listed}");
    let page = json(dialtone(&app, &["batches", "list", "--json"], &[]).await);
    assert_eq!(page["data"][0]["id"], id.as_str(), "the API's page: {page}");
    assert!(page["next_cursor"].is_null(), "{page}");

    // A JSON file holding the whole body, starting in two hours; a bad item is named by its number.
    let body = dir.path().join("batch.json");
    let start_at = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();
    std::fs::write(
        &body,
        serde_json::json!({"provider": "sim", "assistant_id": "asst_it", "phone_number_id": PHONE_NUMBER_ID, "start_at": start_at,
            "calls": [{"phone": nums[3]}, {"phone": nums[4], "variables": {"n": 1}}]})
        .to_string(),
    )
    .unwrap();
    let later = id_alone(dialtone(&app, &["batches", "create", "--file", body.to_str().unwrap(), "--name", "later"], &[]).await, "cmp_");
    let canceled = ok(dialtone(&app, &["batches", "cancel", &later], &[]).await);
    assert!(canceled.contains("canceled"), "{canceled}");
    failed(&dialtone(&app, &["batches", "cancel", &later], &[]).await, "cannot cancel a batch that is canceled");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::json!([{"phone": nums[0]}, {"phone": "nope"}]).to_string()).unwrap();
    let mut args = vec!["batches", "create", "--file", bad.to_str().unwrap()];
    args.extend(settings);
    let o = dialtone(&app, &args, &[]).await;
    failed(&o, "bad.json: item 2:");
    // A CSV's bad call is named by its line in the file (the header is line 1).
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("phone,name\n{},Ada\nnope,Bob\n", nums[0])).unwrap();
    let mut args = vec!["batches", "create", "--file", bad.to_str().unwrap()];
    args.extend(settings);
    let o = dialtone(&app, &args, &[]).await;
    failed(&o, "bad.csv: line 3:");
    // A number twice, and a bad one after it: every item number printed (the item, the
    // earlier item a reason names, the summary's first) is the CSV's line.
    let dup = dir.path().join("dup.csv");
    std::fs::write(&dup, format!("phone\n{}\n{}\nnope\n{}\n", nums[0], nums[1], nums[0])).unwrap();
    let mut args = vec!["batches", "create", "--file", dup.to_str().unwrap()];
    args.extend(settings);
    let o = dialtone(&app, &args, &[]).await;
    failed(&o, &format!("dup.csv: line 5: {} is also line 2: a batch calls each number once", nums[0]));
    failed(&o, "2 of 4 calls are invalid (first: line 4: ");
    assert!(!stderr(&o).contains("item "), "no item numbers left: {}", stderr(&o));
    // The API numbers the same items by their 1-based position in `calls`.
    let body = serde_json::json!({"provider": "sim", "assistant_id": "asst_it", "phone_number_id": PHONE_NUMBER_ID,
        "calls": [{"phone": nums[0]}, {"phone": nums[1]}, {"phone": "nope"}, {"phone": nums[0]}]});
    let (status, err) = app.post_json("/batches", &body).await;
    assert_eq!(status, 422, "{err}");
    let items = &err["error"]["details"]["items"];
    assert_eq!(items[0]["line"], 3, "{err}");
    assert_eq!((items[1]["line"].clone(), items[1]["duplicate_of"].clone()), (serde_json::json!(4), serde_json::json!(1)), "{err}");
    assert!(items[1]["reason"].as_str().unwrap().contains("is also item 1:"), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("(first: item 3: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_are_managed_from_the_cli_and_keys_made_with_scopes() {
    let app = TestApp::start().await;
    let created = json(dialtone(&app, &["workspaces", "create", "Acme", "--key-name", "acme-admin", "--json"], &[]).await);
    let ws = created["workspace"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_string();
    let acme_key = created["key"]["key"].as_str().unwrap().to_string();
    assert_eq!(created["key"]["scopes"], serde_json::json!(["read", "write", "admin"]));
    // Without --json: the id alone on stdout; the key, shown this once, on stderr.
    let o = dialtone(&app, &["workspaces", "create", "Delta", "--key-name", "delta-admin"], &[]).await;
    let err = stderr(&o);
    let delta = id_alone(o, "ws_");
    assert!(err.contains(&format!("created {delta}")) && err.contains("store it now") && err.contains("\ndt_"), "{err}");
    let bare = id_alone(dialtone(&app, &["workspaces", "create", "Echo"], &[]).await, "ws_");
    assert_ne!(bare, delta);
    let listed = ok(dialtone(&app, &["workspaces", "list"], &[]).await);
    assert!(listed.contains(&ws) && listed.contains("Acme") && listed.contains("(default)"), "{listed}");
    // Acme's own admin key lists only Acme.
    let mine = json(dialtone(&app, &["workspaces", "list", "--json"], &[("DIALTONE_API_KEY", acme_key.as_str())]).await);
    assert_eq!(mine["data"].as_array().unwrap().len(), 1, "{mine}");
    assert!(ok(dialtone(&app, &["workspaces", "rename", &ws, "Acme Ltd"], &[]).await).contains("Acme Ltd"));

    // A read-only key made straight in the database, for Acme.
    let db = [("DIALTONE_DATABASE_URL", app.database_url.as_str())];
    let reader = ok(dialtone(&app, &["keys", "create", "--name", "reports", "--scopes", "read", "--workspace", &ws], &db).await).trim().to_string();
    let as_reader = [("DIALTONE_API_KEY", reader.as_str())];
    ok(dialtone(&app, &["campaigns", "list"], &as_reader).await);
    failed(&dialtone(&app, &["dnc", "add", "+14155550100"], &as_reader).await, "lacks the `write` scope");
    failed(&dialtone(&app, &["keys", "create", "--scopes", "root"], &db).await, "unknown scope");

    assert!(ok(dialtone(&app, &["workspaces", "disable", &ws], &[]).await).contains("disabled"));
    failed(&dialtone(&app, &["campaigns", "list"], &as_reader).await, "disabled");
    assert!(ok(dialtone(&app, &["workspaces", "enable", &ws], &[]).await).contains("enabled"));
    ok(dialtone(&app, &["campaigns", "list"], &as_reader).await);
}

/// `dialtone secrets rotate`: with the new key in `DIALTONE_MASTER_KEY` and the old one in
/// `DIALTONE_PREVIOUS_MASTER_KEYS`, every stored secret is re-encrypted under the new key,
/// after which the old key is not needed; without a master key it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_rotate_re_encrypts_every_stored_secret_under_the_new_master_key() {
    use dialtone_store::secrets::{Keyring, MasterKey};
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/rotate.db", dir.path().display());
    let (old, old_text) = MasterKey::generate();
    let (new, new_text) = MasterKey::generate();
    let store = dialtone_store::connect_with(&url, Some(Keyring::new(old.clone(), vec![]))).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    let account = dialtone_store::NewProviderAccount {
        provider: dialtone_core::ProviderKind::Vapi,
        name: "v".into(),
        settings: Default::default(),
        secrets: [("api_key".to_string(), secrecy::SecretString::from("vapi-key-0123456789"))].into(),
        max_concurrent: None,
        calls_per_second: None,
    };
    let pa = store.create_provider_account(&ws, &account, jiff::Timestamp::now()).await.unwrap();
    store
        .create_webhook_endpoint(
            &ws,
            &dialtone_store::NewWebhookEndpoint { url: "http://127.0.0.1:9/h".into(), events: vec!["call.ended".into()], enabled: true, description: None },
            &"whsec_AAAA".into(),
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    drop(store);

    let run = |env: Vec<(&'static str, String)>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dialtone"));
        cmd.args(["secrets", "rotate"]).current_dir(std::env::temp_dir()).env("DIALTONE_DATABASE_URL", &url);
        cmd.env_remove("DIALTONE_MASTER_KEY").env_remove("DIALTONE_PREVIOUS_MASTER_KEYS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let rotated = ok(run(vec![
        ("DIALTONE_MASTER_KEY", new_text.expose_secret().to_string()),
        ("DIALTONE_PREVIOUS_MASTER_KEYS", format!("[\"{}\"]", old_text.expose_secret())),
    ])
    .await
    .unwrap());
    assert!(rotated.starts_with(&format!("2 stored secrets re-encrypted under master key {}", new.id())), "{rotated}");
    let again = ok(run(vec![("DIALTONE_MASTER_KEY", new_text.expose_secret().to_string())]).await.unwrap());
    assert!(again.starts_with("0 stored secrets"), "{again}");
    let o = run(vec![]).await.unwrap();
    failed(&o, "no master_key configured");

    let store = dialtone_store::connect_with(&url, Some(Keyring::new(new, vec![]))).await.unwrap();
    let secrets = store.provider_account_secrets(pa.id.as_str()).await.unwrap().unwrap();
    assert_eq!(secrets["api_key"].expose_secret(), "vapi-key-0123456789", "the old key is no longer needed");
    let eps = store.list_webhook_endpoints(&ws, &dialtone_store::Page { limit: 10, before: None }).await.unwrap();
    assert_eq!(eps[0].secret.expose_secret(), "whsec_AAAA");
}

/// `dialtone accounts`: create (a secret from the environment), list, show (last four
/// characters only), disable, enable, update (a secret replaced, shown by its last four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_accounts_are_managed_from_the_cli_and_their_secrets_never_printed() {
    let app = TestApp::start().await;
    let created = json(
        dialtone(
            &app,
            &[
                "accounts",
                "create",
                "--provider",
                "twilio",
                "--name",
                "Twilio EU",
                "--credential",
                "account_sid=AC42",
                "--credential",
                "twiml_url=https://example.com/twiml",
                "--credential",
                "machine_detection=true",
                "--credential-env",
                "auth_token=IT_TWILIO_TOKEN",
                "--max-concurrent",
                "3",
                "--json",
            ],
            &[("IT_TWILIO_TOKEN", "cli-token-from-env-9876")],
        )
        .await,
    );
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["credentials"]["auth_token"], "…9876");
    assert_eq!(created["credentials"]["machine_detection"], true);
    let list = ok(dialtone(&app, &["accounts", "list"], &[]).await);
    assert!(list.contains(&id) && list.contains("twilio") && list.contains("enabled") && list.contains("Twilio EU"), "{list}");
    let shown = ok(dialtone(&app, &["accounts", "show", &id], &[]).await);
    assert!(shown.contains("auth_token: …9876") && shown.contains("account_sid: AC42"), "{shown}");
    assert!(!shown.contains("cli-token-from-env"), "{shown}");
    let disabled = ok(dialtone(&app, &["accounts", "disable", &id], &[]).await);
    assert!(disabled.contains("disabled") && disabled.contains(&id), "{disabled}");
    let enabled = ok(dialtone(&app, &["accounts", "enable", &id], &[]).await);
    assert!(enabled.contains("enabled") && enabled.contains(&id), "{enabled}");
    assert_eq!(json(dialtone(&app, &["accounts", "show", &id, "--json"], &[]).await)["enabled"], true);

    // update: a secret replaced (from the environment), the others kept; a limit lifted.
    let o = dialtone(
        &app,
        &[
            "accounts",
            "update",
            &id,
            "--name",
            "Twilio EU 2",
            "--credential-env",
            "auth_token=IT_TWILIO_TOKEN",
            "--max-concurrent",
            "none",
            "--calls-per-second",
            "2.5",
        ],
        &[("IT_TWILIO_TOKEN", "rotated-token-from-env-4321")],
    )
    .await;
    let updated = ok(o.clone());
    assert!(!updated.contains("rotated-token") && !stderr(&o).contains("rotated-token"), "never the secret: {updated}");
    assert!(updated.contains("auth_token: …4321") && updated.contains("account_sid: AC42") && updated.contains("Twilio EU 2"), "{updated}");
    let shown = json(dialtone(&app, &["accounts", "show", &id, "--json"], &[]).await);
    assert_eq!((shown["max_concurrent"].clone(), shown["calls_per_second"].clone()), (Value::Null, serde_json::json!(2.5)), "{shown}");
    assert_eq!(shown["credentials"]["twiml_url"], "https://example.com/twiml", "{shown}");
    let o = dialtone(&app, &["accounts", "update", &id, "--credential", "auth_token=typed-secret-5555", "--json"], &[]).await;
    let patched = json(o);
    assert_eq!(patched["credentials"]["auth_token"], "…5555");
    assert!(!patched.to_string().contains("typed-secret"), "{patched}");
    failed(&dialtone(&app, &["accounts", "update", &id], &[]).await, "nothing to change");

    // A create without --json: the id alone on stdout, the details (never a secret) on stderr.
    let o = dialtone(
        &app,
        &[
            "accounts",
            "create",
            "--provider",
            "twilio",
            "--name",
            "Twilio US",
            "--credential",
            "account_sid=AC43",
            "--credential",
            "auth_token=plain-secret-1234",
            "--credential",
            "twiml_url=https://example.com/t",
        ],
        &[],
    )
    .await;
    let err = stderr(&o);
    let second = id_alone(o, "pa_");
    assert!(err.contains(&format!("created {second}")) && err.contains("auth_token: …1234") && !err.contains("plain-secret"), "{err}");
    let o = dialtone(&app, &["accounts", "create", "--provider", "vapi", "--name", "v", "--credential", "api_key=k"], &[]).await;
    failed(&o, "credentials.webhook_secret");
}

/// A caller-ID pool and a throttle set at creation and changed by `campaigns update`
/// (`none` clears the throttle), shown by `campaigns show`; each call shows the number it
/// went from in `calls list` and `calls show`; a batch takes the same flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_id_pool_and_a_throttle_are_set_and_changed_from_the_cli_and_each_call_shows_its_number() {
    const SF: &str = "+14152220100";
    const NY: &str = "+12122220100";
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pool = format!("{SF}, {NY}");
    let c = create_with_body(
        &app,
        r#"{"calling_hours": {"start": "00:00", "end": "00:00"}}"#,
        &[
            "--name",
            "pool",
            "--provider",
            "sim",
            "--assistant-id",
            "asst_it",
            "--max-attempts",
            "1",
            "--caller-numbers",
            &pool,
            "--caller-number-strategy",
            "local_presence",
            "--fallback-strategy",
            "least_used",
            "--calls-per-minute",
            "600",
        ],
    )
    .await;
    assert_eq!(c["caller_numbers"], serde_json::json!([SF, NY]), "{c}");
    assert_eq!((c["caller_number_strategy"].as_str(), c["fallback_strategy"].as_str()), (Some("local_presence"), Some("least_used")), "{c}");
    assert_eq!((c["calls_per_minute"].as_u64(), c["phone_number_id"].as_str()), (Some(600), Some(SF)), "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let shown = ok(dialtone(&app, &["campaigns", "show", &id], &[]).await);
    assert!(shown.contains(&format!("caller numbers: {SF}, {NY} (local_presence, else least_used)")), "{shown}");
    assert!(shown.contains("throttle: at most 600 calls per minute"), "{shown}");

    // update: only what is given changes; `none` removes the throttle.
    let u = json(
        dialtone(
            &app,
            &[
                "campaigns",
                "update",
                &id,
                "--name",
                "pool NY",
                "--max-concurrent",
                "2",
                "--caller-numbers",
                NY,
                "--caller-number-strategy",
                "round_robin",
                "--calls-per-minute",
                "none",
                "--json",
            ],
            &[],
        )
        .await,
    );
    assert_eq!((u["name"].as_str(), u["max_concurrent"].as_u64(), u["max_attempts"].as_u64()), (Some("pool NY"), Some(2), Some(1)), "{u}");
    assert_eq!((u["caller_numbers"].clone(), u["caller_number_strategy"].as_str()), (serde_json::json!([NY]), Some("round_robin")), "{u}");
    assert!(u["calls_per_minute"].is_null(), "{u}");
    let shown = ok(dialtone(&app, &["campaigns", "update", &id, "--calls-per-minute", "120"], &[]).await);
    assert!(shown.contains(&format!("caller numbers: {NY} (round_robin)")) && shown.contains("throttle: at most 120 calls per minute"), "{shown}");
    failed(&dialtone(&app, &["campaigns", "update", &id, "--calls-per-minute", "0"], &[]).await, "calls_per_minute");
    failed(&dialtone(&app, &["campaigns", "update", &id, "--calls-per-minute", "many"], &[]).await, "neither a whole number nor `none`");
    failed(&dialtone(&app, &["campaigns", "update", &id], &[]).await, "nothing to change");
    assert_eq!(app.campaign(&id).await["calls_per_minute"], 120, "a refused update changes nothing");

    // Every call goes from the pool's number, and says so.
    let callees = ["+12123337001", "+14153337002"];
    app.import_csv(&id, &format!("phone\n{}\n{}\n", callees[0], callees[1])).await;
    let started = jiff::Timestamp::now().to_string();
    ok(dialtone(&app, &["campaigns", "start", &id], &[]).await);
    app.wait_for_status(&id, "completed", secs(30)).await;
    let table = ok(dialtone(&app, &["calls", "list", "--campaign", &id], &[]).await);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(table.lines().next().unwrap().contains(" from "), "{table}");
    assert!(rows.iter().all(|r| r.split_whitespace().nth(2) == Some(NY)), "the caller number after the callee's: {table}");
    let page = json(dialtone(&app, &["calls", "list", "--campaign", &id, "--json"], &[]).await);
    let call_id = page["data"][0]["id"].as_str().unwrap().to_string();
    let call = ok(dialtone(&app, &["calls", "show", &call_id], &[]).await);
    assert!(call.lines().any(|l| l.starts_with("caller_number") && l.ends_with(NY)), "{call}");

    // A batch takes the same flags.
    let calls = dir.path().join("calls.json");
    std::fs::write(&calls, serde_json::json!([{"phone": "+12123337003"}]).to_string()).unwrap();
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();
    let b = json(
        dialtone(
            &app,
            &[
                "batches",
                "create",
                "--file",
                calls.to_str().unwrap(),
                "--provider",
                "sim",
                "--assistant-id",
                "asst_it",
                "--start-at",
                &later,
                "--caller-numbers",
                &format!("{SF},{NY}"),
                "--caller-number-strategy",
                "least_used",
                "--calls-per-minute",
                "60",
                "--json",
            ],
            &[],
        )
        .await,
    );
    assert_eq!(
        (b["caller_numbers"].clone(), b["caller_number_strategy"].as_str(), b["calls_per_minute"].as_u64()),
        (serde_json::json!([SF, NY]), Some("least_used"), Some(60)),
        "{b}"
    );
    let shown = ok(dialtone(&app, &["batches", "show", b["id"].as_str().unwrap()], &[]).await);
    assert!(shown.contains(&format!("caller numbers: {SF}, {NY} (least_used)")) && shown.contains("throttle: at most 60 calls per minute"), "{shown}");

    // calls list passes the API's sort and time bounds.
    let ids = |page: Value| page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let newest_first = ids(json(dialtone(&app, &["calls", "list", "--campaign", &id, "--sort", "-created_at", "--json"], &[]).await));
    let mut oldest_first = ids(json(dialtone(&app, &["calls", "list", "--campaign", &id, "--sort", "created_at", "--json"], &[]).await));
    assert_eq!(newest_first.len(), 2);
    oldest_first.reverse();
    assert_eq!(newest_first, oldest_first, "created_at is the reverse order");
    failed(&dialtone(&app, &["calls", "list", "--sort", "sideways"], &[]).await, "created_at or -created_at");
    let ahead = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    for (flag, at, n) in [
        ("--created-from", &started, 2),
        ("--created-from", &ahead, 0),
        ("--created-to", &started, 0),
        ("--created-to", &ahead, 2),
        ("--ended-from", &started, 2),
        ("--ended-from", &ahead, 0),
        ("--ended-to", &started, 0),
        ("--ended-to", &ahead, 2),
    ] {
        let listed = ids(json(dialtone(&app, &["calls", "list", "--campaign", &id, flag, at, "--json"], &[]).await));
        assert_eq!(listed.len(), n, "{flag} {at}: {listed:?}");
    }
    failed(&dialtone(&app, &["calls", "list", "--ended-to", "yesterday"], &[]).await, "ended_to");
}

/// `workspaces set-daily-limit ID N|none`: the workspace's `caller_number_daily_limit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_per_caller_number_is_set_and_lifted_from_the_cli() {
    let app = TestApp::start().await;
    let (_, list) = app.get("/workspaces").await;
    let ws = list["data"][0]["id"].as_str().unwrap().to_string();
    let out = ok(dialtone(&app, &["workspaces", "set-daily-limit", &ws, "50"], &[]).await);
    assert!(out.contains(&ws) && out.contains("at most 50 calls per caller number a day"), "{out}");
    assert_eq!(app.get(&format!("/workspaces/{ws}")).await.1["caller_number_daily_limit"], 50);
    assert!(ok(dialtone(&app, &["workspaces", "list"], &[]).await).contains("at most 50 calls per caller number a day"));
    let w = json(dialtone(&app, &["workspaces", "set-daily-limit", &ws, "none", "--json"], &[]).await);
    assert!(w["caller_number_daily_limit"].is_null(), "{w}");
    assert!(app.get(&format!("/workspaces/{ws}")).await.1["caller_number_daily_limit"].is_null());
    failed(&dialtone(&app, &["workspaces", "set-daily-limit", &ws, "0"], &[]).await, "caller_number_daily_limit");
}

/// `--account-id` on `campaigns create` and `batches create` sends the API's `account_id`:
/// the campaign and the batch go through the workspace's own account, and `show` names it
/// (and names none on the server's account). A disabled account is refused with the API's
/// message; an id that is not an account's is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_and_batches_name_a_workspace_provider_account_from_the_cli() {
    let app = TestApp::start().await;
    let vapi = serde_json::json!({"provider": "vapi", "name": "Vapi EU",
        "credentials": {"api_key": SIM_KEY, "webhook_secret": "cli-account-secret", "base_url": app.sim_base}});
    let (status, created) = app.post_json("/provider-accounts", &vapi).await;
    assert_eq!(status, 201, "{created}");
    let account = created["id"].as_str().unwrap().to_string();
    let settings = ["--provider", "vapi", "--assistant-id", "asst_it", "--phone-number-id", PHONE_NUMBER_ID, "--account-id", &account];

    let mut args = vec!["campaigns", "create", "--name", "own account"];
    args.extend(settings);
    let campaign = ok(dialtone(&app, &args, &[]).await).trim_end().to_string();
    assert_eq!(app.campaign(&campaign).await["account_id"], account.as_str());
    let shown = ok(dialtone(&app, &["campaigns", "show", &campaign], &[]).await);
    assert!(shown.contains(&format!("account: {account} (vapi)")), "{shown}");
    let plain = app.create_campaign(serde_json::json!({"name": "server's account"})).await;
    let shown = ok(dialtone(&app, &["campaigns", "show", &plain], &[]).await);
    assert!(!shown.contains("account:"), "the server's account is not named: {shown}");

    // A batch due in two hours (nothing is dialled while the test runs).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calls.json");
    std::fs::write(&file, serde_json::json!([{"phone": numbers(1)[0]}]).to_string()).unwrap();
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();
    let mut args = vec!["batches", "create", "--file", file.to_str().unwrap(), "--start-at", &later];
    args.extend(settings);
    let batch = ok(dialtone(&app, &args, &[]).await).trim_end().to_string();
    assert_eq!(app.get(&format!("/batches/{batch}")).await.1["account_id"], account.as_str());
    let shown = ok(dialtone(&app, &["batches", "show", &batch], &[]).await);
    assert!(shown.contains(&format!("account: {account} (vapi)")), "{shown}");

    ok(dialtone(&app, &["accounts", "disable", &account], &[]).await);
    let mut args = vec!["campaigns", "create", "--name", "refused"];
    args.extend(settings);
    failed(&dialtone(&app, &args, &[]).await, &format!("account_id: provider account {account} is disabled"));
    let o = dialtone(&app, &["campaigns", "create", "--provider", "vapi", "--account-id", &campaign], &[]).await;
    failed(&o, "is not a provider account id (pa_…)");
}
