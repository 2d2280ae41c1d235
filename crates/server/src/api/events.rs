//! `GET /api/v1/events`: the workspace's campaign progress and call changes as server-sent
//! events (the WHATWG HTML "Server-sent events" format, `text/event-stream`).
//!
//! Sourced from the store, so it works with several nodes on one database: per process and
//! per workspace that has at least one client connected, one [`Hub`] poller reads the
//! workspace's first page of campaigns (with their counts) and its newest calls once every
//! [`POLL`], compares them with what it read last time and broadcasts what changed to every
//! connected client. The database work is two or three indexed reads per second per watched
//! workspace, whatever the number of clients; dialling and webhook ingest never wait on it.
//! Counting a campaign reads all its contacts and calls, so the counts of campaigns not
//! settled are read less often when that is slow ([`COUNTS_SHARE`]).

use super::campaigns::{view_with, CampaignView};
use super::{ApiError, Auth};
use crate::app::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use dialtone_core::WorkspaceId;
use dialtone_store::{CallFilter, Page};
use futures::{Stream, StreamExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How often a watched workspace is read.
pub const POLL: Duration = Duration::from_secs(1);
/// How often a comment line (`: heartbeat`) is sent on an idle stream, so proxies and the
/// client can tell a quiet stream from a dead one.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The counts of campaigns not settled are read in rounds spaced by this many times the
/// last round took (and no closer than [`POLL`], no further than [`COUNTS_MAX_WAIT`]):
/// counting reads every contact and call of a campaign (0.5 s of a reader at 1,000,000
/// contacts and 500,000 calls on SQLite), and a dashboard left open on such a campaign must
/// not take a core. At 20 the counts cost at most 5 % of one reader; while a round takes
/// under 50 ms, there is one every [`POLL`] as before.
pub const COUNTS_SHARE: u32 = 20;

/// The longest wait between two rounds of counts, whatever the last one took (a round slowed
/// by a busy reader pool must not freeze the counts for minutes).
pub const COUNTS_MAX_WAIT: Duration = Duration::from_secs(30);

/// Campaigns watched: the workspace's newest (not archived), as `GET /campaigns?limit=100`.
pub const CAMPAIGNS_WATCHED: u32 = 100;
/// Calls watched: the workspace's newest, as `GET /calls?limit=100`. A change to an older
/// call is not announced (its campaign's `counts` still move).
pub const CALLS_WATCHED: u32 = 100;
/// Events a slow client may fall behind by before it is cut off (it reconnects and gets the
/// current state again).
const BACKLOG: usize = 1024;

/// `GET /events` (under `/api/v1`).
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// One event sent to the clients of a workspace: `id: <epoch>-<seq>`, `event: <kind>`,
/// `data: <json>`.
#[derive(Debug, Clone)]
struct Sent {
    seq: u64,
    kind: &'static str,
    data: Arc<str>,
}

/// What one workspace's poller last read: per campaign / call id, the JSON it last sent
/// and that event's sequence number.
#[derive(Default)]
struct Snapshot {
    /// The counts of campaigns that are over, with the row's `updated_at` they were read
    /// at: not counted again until the row changes (a finished campaign of a million
    /// contacts is not re-counted every second).
    settled: HashMap<dialtone_core::CampaignId, (jiff::Timestamp, dialtone_store::CampaignCounts)>,
    /// The other campaigns' counts as last read, with whether the campaign was over then:
    /// reused between rounds (see [`COUNTS_SHARE`]).
    recent: HashMap<dialtone_core::CampaignId, (bool, dialtone_store::CampaignCounts)>,
    /// When the next round of counts is due; `None`: at the next read.
    counts_due: Option<tokio::time::Instant>,
    campaigns: BTreeMap<String, Sent>,
    calls: BTreeMap<String, Sent>,
    seq: u64,
}

struct Watch {
    /// Tells this poller apart from an earlier one of the same workspace (a restart of the
    /// process or of the poller starts the sequence again), for `Last-Event-ID`.
    epoch: u64,
    tx: broadcast::Sender<Sent>,
    snapshot: Mutex<Snapshot>,
}

/// The per-process fan-out of store changes to SSE clients, one poller per watched workspace.
#[derive(Default)]
pub struct Hub {
    watches: Mutex<HashMap<WorkspaceId, Arc<Watch>>>,
    /// Fired at shutdown: every stream ends, so a graceful shutdown is not held up by them.
    closed: CancellationToken,
}

impl Hub {
    /// How many workspaces this process is reading for connected clients (one reader each,
    /// however many clients).
    pub fn watched_workspaces(&self) -> usize {
        self.watches.lock().unwrap().len()
    }

    /// Ends every stream (at shutdown) and stops the pollers.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Subscribes to the workspace's changes, its poller started if none runs: the
    /// snapshot events a client has not seen (`seen` maps the poller's epoch to the last
    /// sequence number the client saw, 0 for none), the poller's epoch, and the live feed.
    fn subscribe(&self, app: &Arc<AppState>, ws: &WorkspaceId, seen: impl Fn(u64) -> u64) -> (Vec<Sent>, u64, broadcast::Receiver<Sent>) {
        // Under the map's lock, which the poller takes to see whether any client is left:
        // a subscription never lands on a poller that is stopping.
        let mut watches = self.watches.lock().unwrap();
        let watch = watches
            .entry(ws.clone())
            .or_insert_with(|| {
                let epoch = jiff::Timestamp::now().as_millisecond() as u64;
                let (tx, _) = broadcast::channel(BACKLOG);
                let watch = Arc::new(Watch { epoch, tx, snapshot: Mutex::new(Snapshot::default()) });
                tokio::spawn(poll(app.clone(), ws.clone(), watch.clone()));
                watch
            })
            .clone();
        // Subscribed under the snapshot's lock, which the poller holds while it publishes:
        // nothing falls between the backlog and the live events.
        let snapshot = watch.snapshot.lock().unwrap();
        let after = seen(watch.epoch);
        let mut backlog: Vec<Sent> = snapshot.campaigns.values().chain(snapshot.calls.values()).filter(|s| s.seq > after).cloned().collect();
        backlog.sort_by_key(|s| s.seq);
        (backlog, watch.epoch, watch.tx.subscribe())
    }
}

/// Reads the workspace every [`POLL`] until no client is left (or shutdown), then forgets
/// the watch.
async fn poll(app: Arc<AppState>, ws: WorkspaceId, watch: Arc<Watch>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = app.events.closed.cancelled() => break,
        }
        {
            // Checked under the map's lock: a client subscribing now either finds this
            // watch still listed and running, or a fresh one.
            let mut watches = app.events.watches.lock().unwrap();
            if watch.tx.receiver_count() == 0 {
                watches.remove(&ws);
                return;
            }
        }
        if let Err(e) = read_once(&app, &ws, &watch).await {
            tracing::warn!(workspace = %ws, error = %e.message, "live events: could not read the workspace");
        }
    }
    app.events.watches.lock().unwrap().remove(&ws);
}

/// One read: the campaigns and calls whose JSON differs from what was last sent are
/// broadcast as `campaign` / `call` events.
async fn read_once(app: &AppState, ws: &WorkspaceId, watch: &Watch) -> Result<(), ApiError> {
    let campaigns = app.store.list_campaigns_archived(ws, false, &Page { limit: CAMPAIGNS_WATCHED, before: None }).await?;
    let started = tokio::time::Instant::now();
    let (mut counts, ids, round) = {
        let snapshot = watch.snapshot.lock().unwrap();
        let settled = |c: &dialtone_store::Campaign| snapshot.settled.get(&c.id).filter(|(at, _)| *at == c.updated_at).map(|(_, n)| n.clone());
        let counts = campaigns.iter().filter_map(|c| settled(c).map(|n| (c.id.clone(), n))).collect::<HashMap<_, _>>();
        let round = snapshot.counts_due.is_none_or(|due| started >= due);
        let ids = to_count(campaigns.iter().map(|c| (&c.id, c.status.is_terminal())), &counts, &snapshot.recent, round);
        (counts, ids, round)
    };
    let fresh = app.store.campaign_counts_many(&ids).await?;
    {
        let mut snapshot = watch.snapshot.lock().unwrap();
        if round {
            let pace = counts_pace(started.elapsed());
            snapshot.counts_due = (pace > POLL).then(|| started + pace);
        }
        snapshot.settled.retain(|id, _| campaigns.iter().any(|c| c.id == *id));
        snapshot.recent.retain(|id, _| campaigns.iter().any(|c| c.id == *id));
        let unsettled: Vec<_> = campaigns.iter().filter(|c| !counts.contains_key(&c.id)).collect();
        for c in unsettled {
            let over = c.status.is_terminal();
            if !ids.contains(&c.id) {
                // Not read this time: its counts as last read.
                if let Some((_, n)) = snapshot.recent.get(&c.id) {
                    counts.insert(c.id.clone(), n.clone());
                }
                continue;
            }
            // A campaign with no contact and no call has no row in the counts: all zero.
            let n = fresh.get(&c.id).cloned().unwrap_or_default();
            // Read after it ended, with no call left in flight: its counts are final until
            // its row changes. (A canceled campaign's calls in flight still end and are
            // counted after it is over.)
            if over && n.active_calls == 0 && n.contacts.get("in_call").copied().unwrap_or(0) == 0 {
                snapshot.recent.remove(&c.id);
                snapshot.settled.insert(c.id.clone(), (c.updated_at, n));
            } else {
                snapshot.recent.insert(c.id.clone(), (over, n));
            }
        }
    }
    counts.extend(fresh);
    let views: Vec<CampaignView> = campaigns
        .into_iter()
        .map(|c| {
            let n = counts.remove(&c.id).unwrap_or_default();
            view_with(app, c, n)
        })
        .collect();
    let calls = app.store.list_calls(ws, &CallFilter::default(), &Page { limit: CALLS_WATCHED, before: None }).await?;
    let mut snapshot = watch.snapshot.lock().unwrap();
    let snapshot = &mut *snapshot;
    // Oldest first, so a client sees changes in the order things were created.
    let now = app.now();
    for v in views.iter().rev() {
        let Ok(data) = serde_json::to_string(v) else { continue };
        // An open schedule's `next_open_at` is "now", new at every read: compared as "open".
        let open = v.next_open_at.is_some_and(|at| at <= now);
        let same = |old: &str| {
            let Ok(mut old) = serde_json::from_str::<serde_json::Value>(old) else { return false };
            let Ok(mut new) = serde_json::to_value(v) else { return false };
            if open && old["next_open_at"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).is_some_and(|at| at <= now) {
                old["next_open_at"] = serde_json::Value::Null;
                new["next_open_at"] = serde_json::Value::Null;
            }
            old == new
        };
        publish(&watch.tx, &mut snapshot.seq, &mut snapshot.campaigns, v.campaign.id.to_string(), "campaign", data, same);
    }
    for c in calls.iter().rev() {
        let Ok(data) = serde_json::to_string(c) else { continue };
        let same = |old: &str| old == data;
        publish(&watch.tx, &mut snapshot.seq, &mut snapshot.calls, c.id.to_string(), "call", data.clone(), same);
    }
    // Forget calls that dropped out of the newest page, so the snapshot stays bounded.
    if snapshot.calls.len() > 4 * CALLS_WATCHED as usize {
        let keep: std::collections::HashSet<String> = calls.iter().map(|c| c.id.to_string()).collect();
        snapshot.calls.retain(|id, _| keep.contains(id));
    }
    Ok(())
}

/// The campaigns whose counts are read now, of `campaigns` (the page: each id with whether
/// the campaign is over), given the `settled` ones' counts and the others' `recent` read
/// (with whether the campaign was over then): never a settled one; in a `round` every
/// other; between rounds only those with no recent read or whose end came after it
/// (settling needs counts read after the end).
fn to_count<'a>(
    campaigns: impl IntoIterator<Item = (&'a dialtone_core::CampaignId, bool)>,
    settled: &HashMap<dialtone_core::CampaignId, dialtone_store::CampaignCounts>,
    recent: &HashMap<dialtone_core::CampaignId, (bool, dialtone_store::CampaignCounts)>,
    round: bool,
) -> Vec<dialtone_core::CampaignId> {
    campaigns
        .into_iter()
        .filter(|(id, _)| !settled.contains_key(*id))
        .filter(|(id, over)| round || recent.get(*id).is_none_or(|(was_over, _)| was_over != over))
        .map(|(id, _)| id.clone())
        .collect()
}

/// How long after a round of counts that took `took` the next one is due: [`COUNTS_SHARE`]
/// times `took`, at most [`COUNTS_MAX_WAIT`] (the caller reads again at the next [`POLL`]
/// when this is no longer than it).
fn counts_pace(took: Duration) -> Duration {
    (took * COUNTS_SHARE).min(COUNTS_MAX_WAIT)
}

/// Broadcasts `data` as the new state of `id` unless `same` says it equals what was last sent.
fn publish(
    tx: &broadcast::Sender<Sent>,
    seq: &mut u64,
    seen: &mut BTreeMap<String, Sent>,
    id: String,
    kind: &'static str,
    data: String,
    same: impl Fn(&str) -> bool,
) {
    if seen.get(&id).is_some_and(|s| same(&s.data)) {
        return;
    }
    *seq += 1;
    let sent = Sent { seq: *seq, kind, data: data.into() };
    seen.insert(id, sent.clone());
    // No receiver is fine: the snapshot keeps it for the next client.
    let _ = tx.send(sent);
}

/// `Last-Event-ID: <epoch>-<seq>` of this poller, or `None`.
fn last_seen(headers: &HeaderMap, epoch: u64) -> Option<u64> {
    let (e, s) = headers.get("last-event-id")?.to_str().ok()?.split_once('-')?;
    (e.parse::<u64>().ok()? == epoch).then_some(())?;
    s.parse().ok()
}

/// `GET /api/v1/events`: first the current state (every watched campaign and call, as
/// `campaign` and `call` events; after a reconnect with `Last-Event-ID` from the same
/// poller, only what changed since), then every change as it is read, with a
/// `: heartbeat` comment every [`HEARTBEAT`] of silence.
#[utoipa::path(get, path = "/events", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received, to resume after a reconnect.")),
    responses((status = 200, description = "Server-sent events: `campaign` (an item of `GET /campaigns`) and `call` (an item of `GET /calls`), each with an `id`; a `: heartbeat` comment after 15 s of silence.",
        content_type = "text/event-stream", body = String)))]
async fn stream(State(app): State<Arc<AppState>>, Auth(ws): Auth, headers: HeaderMap) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let (backlog, epoch, rx) = app.events.subscribe(&app, &ws, |epoch| last_seen(&headers, epoch).unwrap_or(0));
    let event = move |s: Sent| Ok(Event::default().id(format!("{epoch}-{}", s.seq)).event(s.kind).data(&*s.data));
    let live = tokio_stream_from(rx);
    let events = futures::stream::iter(backlog).chain(live).map(event).take_until(app.events.closed.clone().cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

/// The live events of a subscription; a client that fell more than [`BACKLOG`] events behind
/// is cut off (it reconnects and gets the current state).
fn tokio_stream_from(rx: broadcast::Receiver<Sent>) -> impl Stream<Item = Sent> {
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(s) => Some((s, rx)),
            Err(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round under 50 ms keeps the one-second poll; a slower one spaces the next by 20×,
    /// never more than 30 s.
    #[test]
    fn slow_counts_are_read_less_often() {
        assert!(counts_pace(Duration::from_millis(3)) <= POLL);
        assert!(counts_pace(Duration::from_millis(50)) <= POLL);
        assert_eq!(counts_pace(Duration::from_millis(500)), Duration::from_secs(10));
        assert_eq!(counts_pace(Duration::from_secs(5)), COUNTS_MAX_WAIT);
    }

    #[test]
    fn between_rounds_only_new_and_just_ended_campaigns_are_counted() {
        let id = |id: &str| dialtone_core::CampaignId::from_db(id.to_string());
        // (id, over): running and read; new to the page; over since its last read; over
        // and read since, calls still in flight; over and settled.
        let page = [(id("cmp_running"), false), (id("cmp_new"), false), (id("cmp_just_ended"), true), (id("cmp_ending"), true), (id("cmp_settled"), true)];
        let settled = HashMap::from([(id("cmp_settled"), Default::default())]);
        let recent = HashMap::from([
            (id("cmp_running"), (false, Default::default())),
            (id("cmp_just_ended"), (false, Default::default())),
            (id("cmp_ending"), (true, Default::default())),
        ]);
        let ids =
            |round| to_count(page.iter().map(|(id, over)| (id, *over)), &settled, &recent, round).into_iter().map(|id| id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(false), ["cmp_new", "cmp_just_ended"]);
        assert_eq!(ids(true), ["cmp_running", "cmp_new", "cmp_just_ended", "cmp_ending"]);
    }
}
