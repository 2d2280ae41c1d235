//! The dashboard end to end in headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver: a campaign created and run from the page
//! against the simulator, paused and resumed, a CSV with a bad row, a call's events.
//!
//! Run with `cargo test -p dialtone --features browser-tests --test browser`. A missing
//! Chromium or ChromeDriver is a failure, never a skip. With `DIALTONE_SCREENSHOTS=<dir>`
//! the test also saves a PNG of each page there (docs/screenshots is made this way).

#[allow(dead_code)]
#[path = "it/support.rs"]
mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A ChromeDriver process on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    for path in [CHROMEDRIVER, CHROMIUM] {
        assert!(
            std::path::Path::new(path).exists(),
            "{path} is missing: the browser tests need Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver { child, url };
    eventually(|| async { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map(|_| ()).map_err(|e| e.to_string()) }, secs(20)).await;
    driver
}

async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", format!("--window-size={width},{height}")]
        }
    });
    let Value::Object(caps) = caps else { unreachable!() };
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(http).capabilities(caps).connect(&driver.url).await.expect("open a Chromium session through chromedriver")
}

/// Waits until an element matching `css` has text for which `ok` holds; returns the text.
async fn wait_text(c: &Client, css: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("<no such element>");
    loop {
        if let Ok(els) = c.find_all(Locator::Css(css)).await {
            for el in els {
                if let Ok(t) = el.text().await {
                    if ok(&t) {
                        return t;
                    }
                    last = t;
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{css}: waited {timeout:?}; last text {last:?}");
        }
        tokio::time::sleep(ms(100)).await;
    }
}

async fn click(c: &Client, css: &str) {
    wait_text(c, css, secs(10), |_| true).await;
    c.find(Locator::Css(css)).await.unwrap().click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn fill(c: &Client, css: &str, text: &str) {
    wait_text(c, css, secs(10), |_| true).await;
    let el = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

/// Saves the page as `<DIALTONE_SCREENSHOTS>/<name>.png` when that variable is set.
async fn screenshot(c: &Client, name: &str) {
    screenshot_at(c, name, None).await;
}

/// [`screenshot`] with the element `at` (a CSS selector) scrolled into view.
async fn screenshot_at(c: &Client, name: &str, at: Option<&str>) {
    let Ok(dir) = std::env::var("DIALTONE_SCREENSHOTS") else { return };
    // Charts and live values settle first; the page is shown from its top.
    tokio::time::sleep(ms(600)).await;
    let scroll = "document.activeElement && document.activeElement.blur(); const at = arguments[0] && document.querySelector(arguments[0]); if (at) at.scrollIntoView(); else window.scrollTo(0, 0);";
    c.execute(scroll, vec![json!(at)]).await.unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
}

async fn sign_in(c: &Client, app: &TestApp) {
    c.goto(&app.base).await.unwrap();
    wait_text(c, "#signin h1", secs(10), |t| t == "Sign in").await;
    let nav = c.find(Locator::Css("#nav")).await.unwrap();
    assert!(!nav.is_displayed().await.unwrap(), "signed out, the menu and Sign out are hidden");
    screenshot(c, "sign-in").await;
    fill(c, "#api-key", &app.key).await;
    click(c, "#signin button[type=submit]").await;
    wait_text(c, "h1", secs(10), |t| t == "Campaigns").await;
    wait_text(c, "#live", secs(10), |t| t == "live").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_is_created_run_paused_resumed_and_inspected_from_the_dashboard() {
    let mut options = Options::default();
    // Calls of 0.6–2.7 s, so the run spans many of the stream's one-second reads and a pause lands mid-run.
    options.sim.time_scale = 0.03;
    let app = TestApp::with(options).await;
    let driver = driver().await;
    let c = browser(&driver, 1280, 900).await;
    sign_in(&c, &app).await;

    // Create from the page, round the clock (the test runs at any hour).
    fill(&c, "#create-campaign input[name=name]", "Browser test").await;
    fill(&c, "#create-campaign input[name=assistant_id]", "asst_it").await;
    fill(&c, "#create-campaign input[name=phone_number_id]", PHONE_NUMBER_ID).await;
    fill(&c, "#create-campaign input[name=max_concurrent]", "2").await;
    fill(&c, "#create-campaign input[name=max_attempts]", "1").await;
    c.execute("for (const n of ['hours_start','hours_end']) document.querySelector(`#create-campaign input[name=${n}]`).value = '00:00';", vec![])
        .await
        .unwrap();
    click(&c, "#create-campaign button[type=submit]").await;
    wait_text(&c, "#campaign-status", secs(10), |t| t == "draft").await;
    let url = c.current_url().await.unwrap();
    let id = url.fragment().unwrap().strip_prefix("/campaign/").expect("the page moves to the new campaign").to_string();
    assert_eq!(app.campaign(&id).await["name"], "Browser test");

    // A CSV with a bad row on line 3: the page lists it with its line and reason.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("contacts.csv");
    let mut rows: Vec<String> = contacts_csv(16).lines().map(str::to_string).collect();
    rows.insert(2, "Bad Row,12,gold".into());
    std::fs::write(&csv, rows.join("\n")).unwrap();
    c.find(Locator::Id("csv-file")).await.unwrap().send_keys(csv.to_str().unwrap()).await.unwrap();
    click(&c, "#upload button[type=submit]").await;
    wait_text(&c, "#import-summary", secs(10), |t| t.contains("16 imported") && t.contains("1 rejected")).await;
    let bad = wait_text(&c, "#rejected tr[data-line='3']", secs(5), |_| true).await;
    assert!(bad.starts_with('3') && bad.contains("12"), "the bad row's line and reason: {bad}");
    wait_text(&c, "#contacts tbody tr", secs(5), |t| t.contains("pending")).await;
    screenshot_at(&c, "campaign-import", Some("#upload")).await;

    // Start it, pause it while it runs, resume it.
    click(&c, "button[data-action=start]").await;
    wait_text(&c, "#campaign-status", secs(10), |t| t == "dialing").await;
    click(&c, "button[data-action=pause]").await;
    wait_text(&c, "#campaign-status", secs(10), |t| t == "paused").await;
    assert_eq!(app.campaign(&id).await["status"], "paused");
    let held = app.campaign(&id).await;
    assert!(u(&held["counts"]["contacts"]["pending"]) > 0, "paused before the end: {held}");
    click(&c, "button[data-action=resume]").await;
    wait_text(&c, "#campaign-status", secs(10), |t| t == "dialing").await;

    // The campaigns list follows it live to the end.
    c.goto(&format!("{}/#/campaigns", app.base)).await.unwrap();
    let row = format!("#campaigns tr[data-campaign-id='{id}']");
    wait_text(&c, &format!("{row} .progress-text"), secs(5), |_| true).await;
    screenshot(&c, "campaigns").await;
    wait_text(&c, &format!("{row} .progress-text"), secs(90), |t| t == "16 / 16").await;
    wait_text(&c, &format!("{row} .status"), secs(10), |t| t == "completed").await;
    assert_eq!(app.campaign(&id).await["status"], "completed");

    c.goto(&format!("{}/#/campaign/{id}", app.base)).await.unwrap();
    wait_text(&c, "#campaign-status", secs(10), |t| t == "completed").await;
    c.find(Locator::Css("#campaign-hourly rect")).await.expect("the hourly chart has bars");
    screenshot(&c, "campaign").await;

    // Calls: filtered by the campaign; one opens with its event timeline.
    c.goto(&format!("{}/#/calls?campaign_id={id}", app.base)).await.unwrap();
    wait_text(&c, "#calls tbody tr", secs(10), |t| t.contains("ended")).await;
    screenshot(&c, "calls").await;
    // The date range is asked of the server (created_from / created_to), in local days:
    // from tomorrow lists nothing, from today lists the campaign's calls again.
    let today = jiff::Zoned::now().date();
    let tomorrow = today.tomorrow().unwrap();
    for (from, rows_expected) in [(tomorrow, false), (today, true)] {
        c.goto(&format!("{}/#/calls?campaign_id={id}&from={from}", app.base)).await.unwrap();
        let css = format!("#call-filters input[name=from][value='{from}']");
        wait_text(&c, &css, secs(10), |_| true).await;
        let rows = c.find_all(Locator::Css("#calls tbody tr")).await.unwrap();
        assert_eq!(!rows.is_empty(), rows_expected, "calls created from {from}: {} rows", rows.len());
    }
    click(&c, "#calls tbody tr a").await;
    wait_text(&c, "#call-status", secs(10), |t| t == "ended").await;
    let events = wait_text(&c, "#events tbody", secs(10), |t| !t.is_empty()).await;
    assert!(events.contains("provider") && events.contains("ended"), "the call's timeline shows the provider's events up to its end: {events}");
    screenshot(&c, "call").await;

    // The other pages render.
    c.goto(&format!("{}/#/stats", app.base)).await.unwrap();
    wait_text(&c, "[data-stat=calls] b", secs(10), |t| t.parse::<u64>().is_ok_and(|n| n >= 16)).await;
    screenshot(&c, "stats").await;
    c.goto(&format!("{}/#/dnc", app.base)).await.unwrap();
    fill(&c, "#dnc-add textarea[name=numbers]", "+14155552671").await;
    click(&c, "#dnc-add button[type=submit]").await;
    wait_text(&c, "#dnc tbody", secs(10), |t| t.contains("+14155552671")).await;
    screenshot(&c, "dnc").await;
    c.goto(&format!("{}/#/scheduled", app.base)).await.unwrap();
    fill(&c, "#schedule-call input[name=phone]", "+14155550100").await;
    click(&c, "#schedule-call button[type=submit]").await;
    wait_text(&c, "#scheduled tbody", secs(10), |t| t.contains("+14155550100")).await;
    screenshot(&c, "scheduled").await;
    let scheduled = app.all_calls(&[("status", "scheduled")], 10).await;
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    let call = scheduled[0]["id"].as_str().unwrap().to_string();
    let before = ts(&scheduled[0]["scheduled_for"]);
    let srow = format!("#scheduled tr[data-call-id='{call}']");
    c.execute(&format!("document.querySelector(\"{srow} input[type=datetime-local]\").value = '2027-06-01T10:30';"), vec![]).await.unwrap();
    click(&c, &format!("{srow} button.secondary")).await;
    eventually(
        || async {
            let now = ts(&app.call(&call).await["scheduled_for"]);
            if now != before && now.to_string().starts_with("2027-06-01") {
                Ok(())
            } else {
                Err(format!("still {now}"))
            }
        },
        secs(10),
    )
    .await;
    click(&c, &format!("{srow} button.danger")).await;
    eventually(
        || async {
            if app.call(&call).await["status"] == "canceled" {
                Ok(())
            } else {
                Err("not canceled".to_string())
            }
        },
        secs(10),
    )
    .await;
    wait_text(&c, "main > p.notice", secs(10), |t| t == "Nothing scheduled.").await;
    c.goto(&format!("{}/#/dnc", app.base)).await.unwrap();
    click(&c, "#dnc tbody button.danger").await;
    eventually(
        || async {
            let (_, list) = app.get("/dnc").await;
            if list["data"].as_array().is_some_and(|d| d.is_empty()) {
                Ok(())
            } else {
                Err(format!("{list}"))
            }
        },
        secs(10),
    )
    .await;

    // On a phone-sized window the campaigns page still reads.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/#/campaigns", app.base)).await.unwrap();
    wait_text(&c, &format!("{row} .status"), secs(10), |t| t == "completed").await;
    screenshot(&c, "campaigns-phone").await;
    c.close().await.unwrap();
}
