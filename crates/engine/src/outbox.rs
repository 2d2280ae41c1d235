//! The delivery worker for outbound events (`dialtone_store::shared::outbox` holds the
//! outbox and its rules). Every node runs it ([`run`]): it fans waiting messages out to
//! their endpoints and claims due deliveries with a lease (`Store::claim_deliveries_except`;
//! PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's one writer), sends each as a task of its
//! own on its own HTTP client (10 s timeout per try) — at most `webhook_concurrency` at once
//! and [`PER_ENDPOINT`] per endpoint, so a slow receiver never holds up the others — and
//! records each try (`Store::finish_delivery`), which schedules the retry. It never holds up
//! dialling or ingest: it gives way to a pressed ingest. Schedule decisions use the
//! engine's clock; latency is measured on the monotonic clock.
//!
//! Signing is Standard Webhooks (https://www.standardwebhooks.com/): `webhook-id` (the
//! message id, the same on every retry), `webhook-timestamp` (unix seconds of this try),
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per
//! signing secret, space separated: two during a rotation), by the `standardwebhooks` crate.

use crate::{Engine, EngineError};
use dialtone_core::WebhookEndpointId;
use dialtone_store::{Claimed, TryResult};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a claim is held: well over one try's timeout, so a live node always finishes
/// first; a dead node's claims are due again after it.
pub const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Most deliveries claimed in one pass.
const CLAIM_LIMIT: u32 = 100;

/// The HTTP clients the worker sends with: its own, 10 s per try, no redirects followed (a
/// redirect is a non-2xx answer, retried). The operator's (default) workspace may send to
/// any address, its own network included; every other workspace reaches public addresses
/// only, so a tenant cannot make dialtone call (and show it the answer of) a service on
/// dialtone's network (server-side request forgery).
pub struct Clients {
    operator: reqwest::Client,
    tenant: reqwest::Client,
}

impl Clients {
    /// The client for a delivery of a tenant's workspace (public addresses only) or of the
    /// operator's.
    fn pick(&self, tenant: bool) -> &reqwest::Client {
        if tenant {
            &self.tenant
        } else {
            &self.operator
        }
    }
}

/// Builds the worker's [`Clients`] with `timeout` per try.
pub fn client(timeout: Duration) -> Clients {
    let builder = || {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dialtone-webhooks/", env!("CARGO_PKG_VERSION")))
    };
    Clients {
        operator: builder().build().expect("a reqwest client with rustls builds"),
        tenant: builder().dns_resolver(Arc::new(PublicOnly)).build().expect("a reqwest client with rustls builds"),
    }
}

/// Whether `ip` is a public (globally routable) address: not loopback, private (RFC 1918,
/// IPv6 unique local), link-local, carrier-grade NAT (RFC 6598), unspecified, multicast,
/// broadcast, documentation, benchmarking (RFC 2544) or reserved; IPv4-mapped IPv6 is judged
/// as its IPv4. Ours because `IpAddr::is_global` is not stable Rust yet.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // Forms that carry an IPv4 address: IPv4-compatible `::a.b.c.d` (RFC 4291
            // §2.5.5.1), NAT64 `64:ff9b::/96` (RFC 6052) and 6to4 `2002::/16` (RFC 3056)
            // reach that address through a gateway: judged as it.
            let embedded = |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public_ip(embedded(s[6], s[7]));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public_ip(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 && !is_public_ip(embedded(s[1], s[2])) {
                return false;
            }
            let first = s[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// Why `url` may not be sent to from a tenant's workspace, if it names its host by a
/// non-public IP address or as `localhost` (a host name is checked when it is resolved,
/// by [`PublicOnly`]). A fully qualified name's final dot (`localhost.`, RFC 1034 §3.1)
/// names the same host and is judged without it.
pub fn non_public_host(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    let refused = match bare.parse::<IpAddr>() {
        Ok(ip) => !is_public_ip(ip),
        Err(_) => bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost"),
    };
    refused.then(|| format!("{bare} is not a public address"))
}

/// The system resolver, keeping public addresses only ([`is_public_ip`]): a name that
/// resolves to none fails the try. The check is on the addresses connected to, so a name
/// that changes what it resolves to between checks gains nothing.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public_ip(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The `webhook-signature` header value for `body` sent as message `id` at `timestamp`
/// (unix seconds): one `v1,<base64>` per secret (`whsec_…`), space separated. A secret
/// that does not decode is skipped (none is stored that way). The one place a signing
/// secret is exposed on the delivery path: the HMAC key.
pub fn signature(secrets: &[SecretString], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|s| standardwebhooks::Webhook::new(s.expose_secret()).ok())
        .filter_map(|w| w.sign(id, timestamp, body.as_bytes()).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The share of the time the ingest's writer may spend committing before the delivery
/// worker gives way to it: 50 %.
const INGEST_PRESSURE: f64 = 0.5;

/// The shortest span the ingest's pressure is judged over: 100 ms.
const PRESSURE_WINDOW: Duration = Duration::from_millis(100);

/// Messages fanned out per claim while the ingest is not pressed: a batch ahead of the
/// claims, so a backlog is not fanned out a few messages at a time.
const FAN_OUT_AHEAD: usize = 500;

/// The longest a claim waits for more slots to free up (see `run`): 20 ms.
const CLAIM_GATHER: Duration = Duration::from_millis(20);

/// While the ingest has been pressed for less than this, the worker starts no try and fans
/// nothing out: a burst of provider webhooks is acknowledged with the whole machine, and
/// its deliveries go once it is over: 30 s.
const PRESSED_PAUSE: Duration = Duration::from_secs(30);

/// The ingest counts as pressed until it has been calm this long, so a burst with short
/// lulls is one episode, not many with deliveries at full speed in between: 1 s.
const CALM: Duration = Duration::from_secs(1);

/// Pressed for longer than [`PRESSED_PAUSE`] (a node saturated for minutes), the worker
/// starts at most this many tries a second, so deliveries still move.
const PRESSED_RATE: f64 = 100.0;

/// How fast the worker may start tries, from how long the ingest has been pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Not pressed: as fast as the slots free up.
    Full,
    /// Pressed for less than [`PRESSED_PAUSE`]: no new try, no fan-out.
    Paused,
    /// Pressed for longer: at most [`PRESSED_RATE`] tries a second.
    Floor,
}

/// The ingest's pressure over time, as the worker samples it every [`PRESSURE_WINDOW`]:
/// when the current pressed episode began, and when a window was last pressed.
#[derive(Debug, Default)]
struct Pressure {
    since: Option<Instant>,
    last: Option<Instant>,
}

impl Pressure {
    /// Records one window's sample, taken at `now`.
    fn observe(&mut self, pressed: bool, now: Instant) {
        if pressed {
            self.last = Some(now);
            self.since.get_or_insert(now);
        } else if self.last.is_none_or(|last| now.saturating_duration_since(last) >= CALM) {
            *self = Pressure::default();
        }
    }

    fn pace(&self, now: Instant) -> Pace {
        match self.since {
            None => Pace::Full,
            Some(since) if now.saturating_duration_since(since) < PRESSED_PAUSE => Pace::Paused,
            Some(_) => Pace::Floor,
        }
    }
}

/// Most tries in flight to one endpoint on this node: a slow or timing-out receiver holds
/// at most this many of the worker's `webhook_concurrency` slots, and the other endpoints'
/// deliveries go on in the rest.
pub const PER_ENDPOINT: usize = 16;

/// The worker's loop. Tries run as tasks of their own, at most `webhook_concurrency` at
/// once and [`PER_ENDPOINT`] per endpoint; a slot freed is filled by the next claim at once
/// (a backlog drains at the worker's speed), and with nothing due the worker looks again
/// every `webhook_interval`. While the ingest's writer has been committing more than
/// [`INGEST_PRESSURE`] of the time, the worker leaves the CPU and the database to the
/// webhooks being acknowledged (issue 13: "deliveries never slow dialling or webhook
/// ingest"): for the first [`PRESSED_PAUSE`] of a burst it starts no try (those in flight
/// finish), then at most [`PRESSED_RATE`] a second, so a node saturated for long still
/// delivers; [`CALM`] after the burst it drains at full speed. At shutdown it waits for the tries
/// in flight (each bounded by its timeout), so none is sent again needlessly.
pub(crate) async fn run(engine: Arc<Engine>, cancel: CancellationToken) {
    let clients = Arc::new(client(engine.config.webhook_timeout));
    let slots = engine.config.webhook_concurrency.max(1);
    let mut flying: tokio::task::JoinSet<WebhookEndpointId> = tokio::task::JoinSet::new();
    let mut per_endpoint: HashMap<WebhookEndpointId, usize> = HashMap::new();
    let mut sample = (Instant::now(), engine.ingest_busy());
    let mut pressure = Pressure::default();
    // Claims are batched: with tries in flight, the next claim waits for a quarter of the
    // slots to be free or CLAIM_GATHER to pass, rather than one claim (a transaction) per
    // finished try.
    let batch = (slots / 4).max(1);
    let mut last_claim = Instant::now();
    loop {
        while let Some(done) = flying.try_join_next() {
            release(&mut per_endpoint, done);
        }
        // The pressure is looked at before a claim, not after: waking from an idle wait
        // (up to `webhook_interval`) into a burst, the worker's first look covers the burst
        // so far and it claims nothing. Looked at after, it made one full claim first (a
        // fan-out of FAN_OUT_AHEAD messages, ~100 tries and the outbox tables' first
        // ANALYZE) in the burst's first second (`dialtone bench --ingest-only
        // --webhook-endpoints 3`: 17 deliveries to each live receiver during the run
        // before, 1 after; BENCHMARKS.md, issue 13).
        if sample.0.elapsed() >= PRESSURE_WINDOW {
            let (since, busy) = sample;
            sample = (Instant::now(), engine.ingest_busy());
            pressure.observe(is_pressed(Duration::from_nanos(sample.1.saturating_sub(busy)), since.elapsed()), sample.0);
        }
        let pace = pressure.pace(Instant::now());
        let want = if pace == Pace::Paused { 0 } else { (slots - flying.len().min(slots)).min(CLAIM_LIMIT as usize) };
        if pace != Pace::Paused && want < batch && !flying.is_empty() && last_claim.elapsed() < CLAIM_GATHER {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(done) = flying.join_next() => release(&mut per_endpoint, done),
                _ = tokio::time::sleep(CLAIM_GATHER.saturating_sub(last_claim.elapsed())) => {}
            }
            continue;
        }
        last_claim = Instant::now();
        let mut claimed = 0;
        if want > 0 {
            let skip: Vec<WebhookEndpointId> = per_endpoint.iter().filter(|(_, n)| **n >= PER_ENDPOINT).map(|(e, _)| e.clone()).collect();
            // Pressed: fan out no more than is claimed (the fan-out's writes are the
            // ingest's competitors too); else a batch ahead.
            let fan_out = if pace == Pace::Full { FAN_OUT_AHEAD } else { want };
            match engine.claim_for_worker(want, fan_out, &skip).await {
                Ok((list, operator)) => {
                    claimed = list.len();
                    // One claim may take more for an endpoint than it has room for (the
                    // skip list covers only endpoints already full): the rest go back.
                    let mut back = vec![];
                    for c in list {
                        let n = per_endpoint.entry(c.delivery.endpoint_id.clone()).or_default();
                        if *n >= PER_ENDPOINT {
                            back.push(c.delivery);
                            continue;
                        }
                        *n += 1;
                        let (engine, clients, tenant) = (engine.clone(), clients.clone(), c.delivery.workspace_id != operator);
                        flying.spawn(async move {
                            let endpoint = c.delivery.endpoint_id.clone();
                            if let Err(e) = engine.deliver_one(clients.pick(tenant), tenant, c).await {
                                tracing::warn!(error = %e, %endpoint, "could not record a webhook try; it is sent again after its lease");
                            }
                            endpoint
                        });
                    }
                    if !back.is_empty() {
                        claimed -= back.len();
                        if let Err(e) = engine.store.give_back_deliveries(engine.node.as_str(), &back).await {
                            tracing::warn!(error = %e, "could not give back webhook deliveries; they are due again after their lease");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim webhook deliveries; retrying"),
            }
        }
        let interval = engine.config.webhook_interval;
        // Not pressed: a full claim means more is due, so wait for a slot; nothing (more)
        // due: for a slot (an endpoint that was skipped may go on) or the interval.
        let (wait_for_slot, sleep) = match pace {
            // Finished tries are collected meanwhile; the pressure is sampled again next.
            Pace::Paused => (true, PRESSURE_WINDOW),
            Pace::Floor => (false, if claimed == 0 { interval } else { Duration::from_secs_f64(claimed as f64 / PRESSED_RATE) }),
            Pace::Full if want == 0 || claimed == want => (true, Duration::MAX),
            Pace::Full => (true, interval),
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(done) = flying.join_next(), if wait_for_slot && !flying.is_empty() => release(&mut per_endpoint, done),
            _ = tokio::time::sleep(sleep.min(Duration::from_secs(3600))) => {}
        }
    }
    while flying.join_next().await.is_some() {}
}

/// A finished try's endpoint has one try fewer in flight.
fn release(per_endpoint: &mut HashMap<WebhookEndpointId, usize>, done: Result<WebhookEndpointId, tokio::task::JoinError>) {
    // A task that panicked leaves its count: that endpoint keeps one slot fewer (none does).
    let Ok(endpoint) = done else { return };
    if let Some(n) = per_endpoint.get_mut(&endpoint) {
        *n -= 1;
        if *n == 0 {
            per_endpoint.remove(&endpoint);
        }
    }
}

/// Whether the ingest is pressed: its writer was committing more than [`INGEST_PRESSURE`]
/// of `elapsed` (it spent `ingest_busy` of it).
fn is_pressed(ingest_busy: Duration, elapsed: Duration) -> bool {
    ingest_busy.as_secs_f64() > elapsed.as_secs_f64() * INGEST_PRESSURE
}

impl Engine {
    /// Nanoseconds the ingest's writer has spent committing since start.
    fn ingest_busy(&self) -> u64 {
        self.ingest_busy_ns.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Fans out up to `fan_out` messages and claims up to `limit` due deliveries for the
    /// worker, none to an endpoint in `skip`; with the operator's workspace (whose
    /// deliveries may go to any address).
    async fn claim_for_worker(
        &self,
        limit: usize,
        fan_out: usize,
        skip: &[WebhookEndpointId],
    ) -> Result<(Vec<Claimed>, dialtone_core::WorkspaceId), EngineError> {
        let claimed = self.store.claim_deliveries_except(self.node.as_str(), self.clock.now(), LEASE, limit as u32, fan_out as u32, skip).await?;
        let operator = self.default_workspace().await?;
        Ok((claimed, (*operator).clone()))
    }

    /// One pass of the delivery worker, as tests drive it: claims what is due at the engine
    /// clock's now, sends it (at most `webhook_concurrency` at once) and records each try.
    /// Returns how many tries were made.
    pub async fn deliver_webhooks(&self, clients: &Clients) -> Result<usize, EngineError> {
        let now = self.clock.now();
        let claimed = self.store.claim_deliveries(self.node.as_str(), now, LEASE, CLAIM_LIMIT).await?;
        let n = claimed.len();
        if n == 0 {
            return Ok(0);
        }
        let operator = self.default_workspace().await?;
        let results: Vec<Result<(), EngineError>> = futures::stream::iter(claimed)
            .map(|c| {
                let tenant = c.delivery.workspace_id != *operator;
                self.deliver_one(clients.pick(tenant), tenant, c)
            })
            .buffer_unordered(self.config.webhook_concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    /// Sends one claimed delivery; `tenant`: from a workspace other than the operator's,
    /// so to public addresses only.
    async fn deliver_one(&self, client: &reqwest::Client, tenant: bool, c: Claimed) -> Result<(), EngineError> {
        let d = &c.delivery;
        let timestamp = self.clock.now().as_second();
        let signature = signature(&c.secrets, d.message_id.as_str(), timestamp, &d.payload);
        let started = Instant::now();
        let refused = if tenant { reqwest::Url::parse(&c.url).ok().as_ref().and_then(non_public_host) } else { None };
        if let Some(why) = refused {
            let result = TryResult { status_code: None, latency_ms: 0, response_excerpt: None, error: Some(format!("refused: {why}")) };
            tracing::info!(endpoint = %d.endpoint_id, message = %d.message_id, error = ?result.error, "webhook delivery refused; retried on the schedule");
            self.finish_delivery(d, result).await?;
            return Ok(());
        }
        let answer = client
            .post(&c.url)
            .header("content-type", "application/json")
            .header("webhook-id", d.message_id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await;
        let result = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                TryResult { status_code: Some(status), latency_ms: started.elapsed().as_millis() as u64, response_excerpt: Some(body), error: None }
            }
            Err(e) => {
                // Without the URL (it may carry a token; it is the endpoint's, shown there),
                // with the cause (connection refused, no public address, …).
                let what = if e.is_timeout() { "timeout".to_string() } else { error_chain(&e.without_url()) };
                TryResult { status_code: None, latency_ms: started.elapsed().as_millis() as u64, response_excerpt: None, error: Some(what) }
            }
        };
        if !result.succeeded() {
            tracing::info!(endpoint = %d.endpoint_id, message = %d.message_id, attempt = d.attempts, status = ?result.status_code, error = ?result.error,
                "webhook delivery failed; retried on the schedule");
        }
        self.finish_delivery(d, result).await?;
        Ok(())
    }

    /// Records a try (`Store::finish_delivery`). Tries that end while another's record
    /// commits are recorded together in one transaction, so the worker's commits do not
    /// queue one by one with the ingest's (SQLite's one writer) nor wait for a WAL flush each
    /// (PostgreSQL): one commit per group instead of one per try.
    async fn finish_delivery(&self, d: &dialtone_store::Delivery, result: TryResult) -> Result<bool, EngineError> {
        let (store, node, now) = (&self.store, self.node.as_str(), self.clock.now());
        let item = dialtone_store::FinishedTry { delivery: d.clone(), attempt: d.attempts, result };
        let many = |tries: Vec<dialtone_store::FinishedTry>| async move { store.finish_deliveries(&tries, node, now).await };
        let one = |t: dialtone_store::FinishedTry| async move { store.finish_delivery(&t.delivery, t.attempt, node, &t.result, now).await };
        Ok(self.delivery_finishes.write(item, many, one).await?)
    }
}

/// An error and its sources, `: `-joined (reqwest's own text says only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_is_pressed_when_its_writer_commits_more_than_half_the_time() {
        let ms = Duration::from_millis;
        assert!(!is_pressed(ms(0), ms(200)), "idle ingest");
        assert!(!is_pressed(ms(100), ms(200)), "busy half the time: not yet");
        assert!(is_pressed(ms(101), ms(200)));
        assert!(is_pressed(ms(950), ms(1000)), "saturated");
    }

    #[test]
    fn a_pressed_ingest_pauses_deliveries_then_lets_them_go_at_the_floor_and_calm_resumes_them() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Pressure::default();
        assert_eq!(p.pace(at(0)), Pace::Full, "nothing seen yet");
        p.observe(false, at(100));
        assert_eq!(p.pace(at(100)), Pace::Full);
        p.observe(true, at(200));
        assert_eq!(p.pace(at(200)), Pace::Paused, "a burst begins: no new try");
        // A short lull is part of the same burst.
        p.observe(false, at(300));
        p.observe(false, at(1_100));
        assert_eq!(p.pace(at(1_100)), Pace::Paused, "calm for 0.9 s only");
        p.observe(true, at(1_200));
        assert_eq!(p.pace(at(200 + 29_999)), Pace::Paused);
        assert_eq!(p.pace(at(200 + 30_000)), Pace::Floor, "pressed for 30 s: deliveries move at the floor");
        p.observe(true, at(40_000));
        p.observe(false, at(40_500));
        assert_eq!(p.pace(at(40_500)), Pace::Floor);
        p.observe(false, at(41_000));
        assert_eq!(p.pace(at(41_000)), Pace::Full, "calm for 1 s: full speed");
        p.observe(true, at(41_100));
        assert_eq!(p.pace(at(41_100)), Pace::Paused, "a new burst pauses again from its own start");
    }

    #[test]
    fn public_addresses_are_told_from_local_private_and_reserved_ones() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip} is public");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip} is not public");
        }
    }

    #[test]
    fn a_url_naming_a_local_host_is_refused_for_tenants() {
        let refused = |u: &str| non_public_host(&reqwest::Url::parse(u).unwrap());
        assert_eq!(refused("http://127.0.0.1:9/hook").as_deref(), Some("127.0.0.1 is not a public address"));
        assert!(refused("http://[::1]/x").is_some());
        assert!(refused("http://LOCALHOST:8080/").is_some());
        assert!(refused("http://api.localhost/").is_some());
        assert!(refused("http://LOCALHOST./").is_some(), "a final dot names the same host");
        assert!(refused("http://api.localhost../").is_some());
        assert!(refused("http://127.0.0.1./").is_some());
        assert!(refused("http://169.254.169.254/latest/meta-data").is_some());
        assert_eq!(refused("https://hooks.example.com/dialtone"), None, "a name is checked when it is resolved");
        assert_eq!(refused("https://8.8.8.8/"), None);
    }
}
