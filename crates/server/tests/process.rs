//! `dialtone serve` as a process: it stops on SIGTERM and SIGINT whatever became of its
//! stderr, and what it logs carries no colour codes off a terminal, no Exotel callback
//! token and no phone number.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const EXOTEL_TOKEN: &str = "exo7callbacktokenSECRET9q2";

struct Node {
    child: Child,
    port: u16,
    /// Drains the child's stderr from the moment it starts, so that a log at `trace` can
    /// never fill the pipe (64 KiB) and block the server before the test reads it.
    log: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `dialtone serve` on a fresh SQLite file, logging everything (`DIALTONE_LOG=trace`), with
/// an Exotel account whose callback token is [`EXOTEL_TOKEN`].
fn serve(dir: &std::path::Path) -> Command {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialtone"));
    cmd.arg("serve")
        .env("DIALTONE_DATABASE_URL", format!("sqlite://{}", dir.join("p.db").display()))
        .env("DIALTONE_LISTEN", format!("127.0.0.1:{port}"))
        .env("DIALTONE_SIM_BASE_URL", "http://127.0.0.1:9")
        .env("DIALTONE_EXOTEL_SID", "dialtone-process")
        .env("DIALTONE_EXOTEL_API_KEY", "process-key")
        .env("DIALTONE_EXOTEL_API_TOKEN", "process-api-token")
        .env("DIALTONE_EXOTEL_BASE_URL", "http://127.0.0.1:9")
        .env("DIALTONE_EXOTEL_FLOW_URL", "https://process.invalid/flow")
        .env("DIALTONE_EXOTEL_CALLBACK_TOKEN", EXOTEL_TOKEN)
        .env("DIALTONE_LOG", "trace")
        .env_remove("NO_COLOR")
        .env("DIALTONE_PORT_FOR_TEST", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .current_dir(dir);
    cmd
}

fn port_of(cmd: &Command) -> u16 {
    cmd.get_envs().find(|(k, _)| *k == "DIALTONE_PORT_FOR_TEST").and_then(|(_, v)| v?.to_str()?.parse().ok()).unwrap()
}

/// A probe that gives up after 2 s: a server that accepted the connection but cannot
/// answer must fail the test at its deadline, not hang it.
async fn healthy(port: u16) -> bool {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok()
}

async fn start(cmd: &mut Command) -> Node {
    let port = port_of(cmd);
    let mut child = cmd.spawn().expect("spawn dialtone serve");
    let mut stderr = child.stderr.take().expect("stderr piped");
    let log = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut node = Node { child, port, log: Some(log) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(port).await {
        if let Some(status) = node.child.try_wait().unwrap() {
            panic!("dialtone serve exited before serving: {status}");
        }
        assert!(Instant::now() < deadline, "dialtone serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node
}

/// Requests that make the server log: API calls with numbers in the path and the query
/// string, Exotel callbacks carrying the token in the path and a number in the body.
async fn make_it_log(port: u16) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..3 {
        let _ = http.get(format!("{base}/api/v1/dnc/check?phone=%2B14155550123")).bearer_auth("dt_wrong").send().await.unwrap();
        let _ = http.delete(format!("{base}/api/v1/dnc/%2B919188097679")).bearer_auth("dt_wrong").send().await.unwrap();
        let _ = http.get(format!("{base}/api/v1/calls?phone=919188097679")).send().await.unwrap();
        let body = "CallSid=ca7process&Status=completed&From=%2B919188097679&To=08047100000&CustomField=call_01jz0000000000000000000000";
        for path in [format!("/webhooks/exotel/{EXOTEL_TOKEN}?x=1"), format!("/webhooks/exotel/{EXOTEL_TOKEN}x"), format!("/webhooks/exotel/{EXOTEL_TOKEN}/")] {
            let _ = http.post(format!("{base}{path}")).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
        }
        let _ = http.get(format!("{base}/metrics")).send().await.unwrap();
    }
}

fn signal(node: &Node, sig: libc::c_int) {
    let rc = unsafe { libc::kill(node.child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({sig})");
}

async fn exits_within(node: &mut Node, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "dialtone serve still running {within:?} after the signal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_shuts_down_cleanly_on_sigterm_and_sigint_with_its_stderr_pipe_closed() {
    for (name, sig) in [("SIGTERM", libc::SIGTERM), ("SIGINT", libc::SIGINT)] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = serve(dir.path());
        let port = port_of(&cmd);
        let child = cmd.spawn().expect("spawn");
        let mut node = Node { child, port, log: None };
        // The reading end goes away at once: every log line from now on meets EPIPE.
        drop(node.child.stderr.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(port).await {
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!("{name}: dialtone serve died writing to a closed stderr: {status}");
            }
            assert!(Instant::now() < deadline, "{name}: dialtone serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        make_it_log(port).await;
        // Still answering: no worker died on a log write.
        let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.expect("still serving");
        assert!(health.status().is_success());

        signal(&node, sig);
        let status = exits_within(&mut node, Duration::from_secs(10)).await;
        assert!(status.success(), "{name}: a clean exit, got {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_off_a_terminal_have_no_colour_no_exotel_token_and_no_phone_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve(dir.path());
    let mut node = start(&mut cmd).await;
    make_it_log(node.port).await;
    signal(&node, libc::SIGTERM);
    let status = exits_within(&mut node, Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    let log = node.log.take().unwrap().join().unwrap();

    // The requests were logged, by route pattern.
    assert!(log.contains("/webhooks/exotel/{token}"), "the Exotel callbacks are in the log by route: {}", tail(&log));
    assert!(log.contains("/api/v1/dnc/check") && log.contains("<unmatched>"), "{}", tail(&log));
    assert!(!log.contains(EXOTEL_TOKEN), "the Exotel callback token leaked into the log:\n{}", lines_with(&log, EXOTEL_TOKEN));
    for digits in ["4155550123", "9188097679"] {
        assert!(!log.contains(digits), "a phone number leaked into the log:\n{}", lines_with(&log, digits));
    }
    assert!(!log.contains('\u{1b}'), "ANSI escape codes in a log that is not a terminal:\n{}", lines_with(&log, "\u{1b}"));
}

fn lines_with(log: &str, needle: &str) -> String {
    log.lines().filter(|l| l.contains(needle)).take(5).collect::<Vec<_>>().join("\n")
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
