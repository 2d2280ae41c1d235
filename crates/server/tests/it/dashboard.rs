//! The dashboard's files as served: the page at `/`, its script and stylesheet, embedded and
//! complete (nothing fetched from elsewhere). What the page does is tested in Chromium
//! (`tests/browser.rs`, feature `browser-tests`).

use crate::support::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_from_the_binary_and_load_nothing_from_elsewhere() {
    let app = TestApp::start().await;
    let mut bodies = vec![];
    for (path, kind) in [("/", "text/html"), ("/dashboard/dashboard.js", "text/javascript"), ("/dashboard/dashboard.css", "text/css")] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        bodies.push((path, res.text().await.unwrap()));
    }
    assert!(bodies[0].1.contains("/dashboard/dashboard.js") && bodies[0].1.contains("/dashboard/dashboard.css"), "{}", bodies[0].1);
    for (path, body) in &bodies {
        // The only absolute URLs allowed are XML namespaces (SVG) and comments' references.
        for (i, _) in body.match_indices("http") {
            let rest = &body[i..];
            let ok = rest.starts_with("http://www.w3.org/2000/svg") || rest.starts_with("https://html.spec.whatwg.org");
            assert!(ok, "{path} loads something from elsewhere: {}", &rest[..rest.len().min(80)]);
        }
    }
    // The page needs no key; the API behind it does.
    let (status, _) = send(app.http.get(app.url("/api/v1/campaigns"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
