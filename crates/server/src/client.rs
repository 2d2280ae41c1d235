//! `dialtone campaigns|batches|calls|dnc|stats|workspaces …` and `dialtone keys list|revoke`:
//! a client over the HTTP API (docs/api.md), for people at a terminal and for scripts. Every
//! command prints a short human summary, or with `--json` exactly the JSON body the API
//! answered (one page for lists, `{"data", "next_cursor"}`); an API error is printed as the
//! API's message and the command exits non-zero. A create prints the new id alone on stdout
//! (details on stderr), so `id=$(dialtone campaigns create …)` works.

use clap::{Args, Subcommand};
use dialtone_core::ProviderAccountId;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Where the API is and how to authenticate, shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Base URL of a running `dialtone serve`. Default: `http://` + the config's `listen`
    /// (a wildcard address such as 0.0.0.0 is dialled as 127.0.0.1).
    #[arg(long, env = "DIALTONE_API_URL", global = true)]
    pub api_url: Option<String>,
    /// API key (`dialtone keys create`).
    #[arg(long, env = "DIALTONE_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Print the API's JSON instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: CampaignsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    /// Campaigns with their status, progress and when their schedule next opens, newest
    /// first (one page; `--before` the cursor shown for the next).
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        before: Option<String>,
    },
    /// One campaign: status, counts, what its contacts wait for.
    Show {
        id: String,
        /// Show a live progress bar until the campaign ends (completed or canceled).
        #[arg(long)]
        watch: bool,
    },
    /// Create a draft campaign; prints its id alone (its status and name go to stderr;
    /// `show` has the rest). Other settings (schedule, calling hours,
    /// retry) go in `--body`, a JSON file of `POST /campaigns` fields.
    Create {
        #[command(flatten)]
        settings: Box<CampaignFlags>,
        /// A JSON file with the request body; the flags above override its fields.
        #[arg(long)]
        body: Option<PathBuf>,
    },
    /// Change a campaign's settings (`PATCH /campaigns/{id}`): only what is given changes;
    /// prints the campaign as `show` does. Other fields (schedule, calling hours, retry)
    /// go in `--body`, a JSON file of `PATCH` fields. Refused once the campaign is over.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        max_concurrent: Option<u32>,
        #[arg(long)]
        max_attempts: Option<u32>,
        #[command(flatten)]
        pool: PoolFlags,
        /// A JSON file with `PATCH` fields; the flags above override them.
        #[arg(long)]
        body: Option<PathBuf>,
    },
    /// Upload contacts from a CSV file (a header row and a phone column); bad rows are
    /// listed with their line and reason.
    Import { id: String, file: PathBuf },
    /// Start a draft campaign.
    Start {
        id: String,
        /// Then show a live progress bar until the campaign ends.
        #[arg(long)]
        watch: bool,
    },
    /// Pause: no new calls; calls under way finish.
    Pause { id: String },
    /// Resume a paused campaign.
    Resume {
        id: String,
        /// Then show a live progress bar until the campaign ends.
        #[arg(long)]
        watch: bool,
    },
    /// Cancel for good: pending contacts are not called.
    Cancel { id: String },
    /// Write the results CSV (one row per contact) to a file, or to stdout.
    Export {
        id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// The settings `campaigns create` and `batches create` share (a batch is a campaign
/// underneath), sent under the API's own field names.
#[derive(Debug, Args)]
pub struct CampaignFlags {
    #[arg(long)]
    pub name: Option<String>,
    /// sim, vapi, twilio or exotel.
    #[arg(long)]
    pub provider: Option<String>,
    #[arg(long)]
    pub assistant_id: Option<String>,
    #[arg(long)]
    pub phone_number_id: Option<String>,
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// One of the workspace's own provider accounts of `--provider` (`dialtone accounts
    /// list`): the calls go through it. Default: the server's account of the provider.
    #[arg(long, value_name = "pa_…", value_parser = account_id)]
    pub account_id: Option<ProviderAccountId>,
    #[command(flatten)]
    pub pool: PoolFlags,
}

impl CampaignFlags {
    /// Sets each flag given on `body` (a flag wins over the body file's field).
    fn apply(self, body: &mut Value) {
        set_fields(
            body,
            [
                ("name", self.name.map(Value::from)),
                ("provider", self.provider.map(Value::from)),
                ("assistant_id", self.assistant_id.map(Value::from)),
                ("phone_number_id", self.phone_number_id.map(Value::from)),
                ("max_concurrent", self.max_concurrent.map(Value::from)),
                ("max_attempts", self.max_attempts.map(Value::from)),
                ("account_id", self.account_id.map(|a| Value::from(a.to_string()))),
            ],
        );
        set_fields(body, self.pool.fields());
    }
}

/// The caller-ID pool and the throttle of `campaigns create|update` and `batches create`
/// (docs/api.md, "Caller-ID pools"), sent under the API's own field names; the API checks
/// them and names a bad one.
#[derive(Debug, Args)]
pub struct PoolFlags {
    /// Caller numbers, comma-separated (E.164, or national in the campaign's
    /// `default_region`; on Vapi also phone-number ids); each contact's calls go from one of
    /// them. `phone_number_id` defaults to the first. `none`: no pool (`[]`).
    #[arg(long, value_name = "NUMBERS", value_delimiter = ',')]
    pub caller_numbers: Option<Vec<String>>,
    /// How a contact's first call picks its number: round_robin, least_used or local_presence.
    #[arg(long)]
    pub caller_number_strategy: Option<String>,
    /// What local_presence does when no pool number is local: round_robin or least_used.
    #[arg(long)]
    pub fallback_strategy: Option<String>,
    /// At most this many calls placed in any rolling 60 s (1–10,000); `none` removes the
    /// throttle.
    #[arg(long, value_name = "N|none", value_parser = count_or_none)]
    pub calls_per_minute: Option<Value>,
}

impl PoolFlags {
    /// The request fields these flags set (`None`: the flag was not given).
    fn fields(self) -> [(&'static str, Option<Value>); 4] {
        let numbers = self.caller_numbers.map(|n| {
            let n: Vec<String> = n.iter().map(|n| n.trim().to_string()).collect();
            if n == ["none"] {
                json!([])
            } else {
                json!(n)
            }
        });
        [
            ("caller_numbers", numbers),
            ("caller_number_strategy", self.caller_number_strategy.map(Value::from)),
            ("fallback_strategy", self.fallback_strategy.map(Value::from)),
            ("calls_per_minute", self.calls_per_minute),
        ]
    }
}

/// A flag's `N|none`: a whole number, or `none` as JSON `null` (in a `PATCH`, clears it).
fn count_or_none(s: &str) -> Result<Value, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Value::Null);
    }
    s.parse::<u32>().map(Value::from).map_err(|_| format!("{s:?} is neither a whole number nor `none`"))
}

/// `--account-id`: a provider account's id (`pa_…`), checked before anything is sent.
fn account_id(s: &str) -> Result<ProviderAccountId, String> {
    ProviderAccountId::parse(s).ok_or_else(|| format!("{s:?} is not a provider account id (pa_…)"))
}

/// Sets each given field of a request body (a flag given wins over the `--body` file).
fn set_fields<'a>(body: &mut Value, fields: impl IntoIterator<Item = (&'a str, Option<Value>)>) {
    for (k, v) in fields {
        if let Some(v) = v {
            body[k] = v;
        }
    }
}

/// The JSON object in a `--body` file, or `{}` without one.
fn body_file(path: Option<PathBuf>) -> anyhow::Result<Value> {
    let body = match path {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            serde_json::from_str::<Value>(&text).map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?
        }
        None => json!({}),
    };
    anyhow::ensure!(body.is_object(), "the --body file must hold a JSON object");
    Ok(body)
}

#[derive(Debug, Args)]
pub struct BatchesArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: BatchesCommand,
}

#[derive(Debug, Subcommand)]
pub enum BatchesCommand {
    /// Send a batch of calls (`POST /batches`); it starts at once. `--file` is a JSON
    /// object (the whole request body), a JSON array of calls, or a CSV (a header row, a
    /// phone column; name, timezone and extension columns; other columns become variables).
    /// The flags fill in or override the body's settings. A bad item refuses the whole
    /// batch; each is printed with its reason and its number: for a CSV its line in the
    /// file (the header is line 1), else its 1-based position in `calls` (`item N`).
    Create {
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        settings: Box<CampaignFlags>,
        /// No call before this instant (RFC 3339).
        #[arg(long)]
        start_at: Option<String>,
        /// Then show a live progress bar until the batch ends.
        #[arg(long)]
        watch: bool,
    },
    /// Batches, newest first, with their progress (one page; `--before` the cursor shown
    /// for the next).
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        before: Option<String>,
    },
    /// One batch: status, progress, counts by status and outcome.
    Show {
        id: String,
        /// Show a live progress bar until the batch ends (completed or canceled).
        #[arg(long)]
        watch: bool,
    },
    /// Cancel: calls not yet placed are not placed; live calls finish.
    Cancel { id: String },
}

#[derive(Debug, Args)]
pub struct CallsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: CallsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// Calls, newest first (one page; `--before` the last id shown for the next).
    List {
        #[arg(long)]
        campaign: Option<String>,
        /// One or several, comma-separated (e.g. ended,failed).
        #[arg(long)]
        status: Option<String>,
        /// One or several, comma-separated (e.g. busy,no_answer).
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[command(flatten)]
        window: Box<CallsWindow>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        before: Option<String>,
    },
    /// One call with its details and event history.
    Show { id: String },
    /// Hang up a live call (its outcome becomes canceled).
    Hangup { id: String },
}

/// `calls list`'s time bounds and order, sent as the `GET /calls` parameters of the same
/// names (the API checks them and names a bad one).
#[derive(Debug, Args)]
pub struct CallsWindow {
    /// Calls created at or after this instant (RFC 3339).
    #[arg(long)]
    pub created_from: Option<String>,
    /// Calls created before this instant (RFC 3339).
    #[arg(long)]
    pub created_to: Option<String>,
    /// Calls ended at or after this instant (RFC 3339); a call not ended never matches.
    #[arg(long)]
    pub ended_from: Option<String>,
    /// Calls ended before this instant (RFC 3339); a call not ended never matches.
    #[arg(long)]
    pub ended_to: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at` (oldest first).
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
}

#[derive(Debug, Args)]
pub struct DncArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: DncCommand,
}

#[derive(Debug, Subcommand)]
pub enum DncCommand {
    /// Put numbers on the do-not-call list (workspace-wide, or one campaign's).
    Add {
        #[arg(required = true)]
        numbers: Vec<String>,
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The do-not-call list (one page).
    List {
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Take a number off the list.
    Remove {
        number: String,
        #[arg(long)]
        campaign: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[arg(long)]
    pub campaign: Option<String>,
    /// today, week or month.
    #[arg(long)]
    pub preset: Option<String>,
    /// RFC 3339 start of the range.
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339 end of the range.
    #[arg(long)]
    pub to: Option<String>,
}

/// A connection made usable: the base URL and key settled.
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    pub json: bool,
}

/// The API's base URL: `DIALTONE_API_URL` / `--api-url`, else `http://` + `listen`.
pub fn base_url(api_url: Option<&str>, listen: &str) -> String {
    if let Some(url) = api_url {
        return url.trim_end_matches('/').to_string();
    }
    let addr = match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "::" | "", port)) => format!("127.0.0.1:{port}"),
        _ => listen.to_string(),
    };
    format!("http://{addr}")
}

impl Api {
    pub fn new(conn: &Connection, listen: &str) -> anyhow::Result<Self> {
        let key = conn.api_key.clone().filter(|k| !k.is_empty()).ok_or_else(|| anyhow::anyhow!("no API key: set DIALTONE_API_KEY or pass --api-key"))?;
        Ok(Self { http: reqwest::Client::new(), base: base_url(conn.api_url.as_deref(), listen), key, json: conn.json })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}/api/v1{path}", self.base)).bearer_auth(&self.key)
    }

    /// Sends `req`; the JSON body of a 2xx, else the API's error message as the error.
    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.send().await.map_err(|e| anyhow::anyhow!("cannot reach the API at {}: {e}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        let body: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let message = body["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| body.to_string());
            anyhow::bail!("{message} (HTTP {})", status.as_u16());
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let req = self.req(reqwest::Method::POST, path);
        self.send(match body {
            Some(b) => req.json(b),
            None => req,
        })
        .await
    }

    /// Prints what a create answered: with `--json` the API's body; else the new `id` alone
    /// on stdout (so `id=$(dialtone … create …)` works) and `details` of the body on stderr.
    /// Every create of the CLI prints through here.
    fn print_created(&self, body: &Value, id: &str, details: impl FnOnce(&Value) -> String) {
        if self.json {
            self.print(body, |_| String::new());
        } else {
            eprintln!("{}", details(body));
            println!("{id}");
        }
    }

    /// Prints `body` as JSON with `--json`, else `summary` of it. An answer without a body
    /// (204) prints nothing with `--json`: stdout holds exactly what the API answered.
    fn print(&self, body: &Value, summary: impl FnOnce(&Value) -> String) {
        if self.json {
            if !body.is_null() {
                println!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
            }
        } else {
            println!("{}", summary(body));
        }
    }
}

/// A path segment, percent-encoded (a phone number's `+`).
/// `s` as one URL path segment. Form encoding writes a space as `+`, which a path keeps as
/// a plus (`dnc remove "415 555 1039"` became `+415+555+1039`): spaces become `%20` (a
/// literal `+` is already `%2B`).
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

pub async fn run(args: ClientArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    match args.command {
        CampaignsCommand::List { limit, before } => {
            let page = api.send(api.req(reqwest::Method::GET, "/campaigns").query(&page_query(limit, before))).await?;
            api.print(&page, |p| {
                let mut out = format!("{:<32} {:<24} {:<10} {:>9} {:>6}  next open", "id", "name", "status", "finished", "active");
                for c in p["data"].as_array().into_iter().flatten() {
                    out.push('\n');
                    out.push_str(&line(c));
                }
                out.push_str(&more(p));
                out
            });
        }
        CampaignsCommand::Show { id, watch } => {
            let c = api.get(&format!("/campaigns/{}", seg(&id))).await?;
            if watch {
                return watch_campaign(&api, &id).await;
            }
            api.print(&c, summary);
        }
        CampaignsCommand::Create { settings, body } => {
            let mut req = body_file(body)?;
            settings.apply(&mut req);
            let c = api.post("/campaigns", Some(&req)).await?;
            api.print_created(&c, c["id"].as_str().unwrap_or_default(), |c| {
                format!(
                    "created {} ({}): {}",
                    c["id"].as_str().unwrap_or_default(),
                    c["status"].as_str().unwrap_or_default(),
                    c["name"].as_str().unwrap_or_default()
                )
            });
        }
        CampaignsCommand::Update { id, name, max_concurrent, max_attempts, pool, body } => {
            let mut req = body_file(body)?;
            set_fields(
                &mut req,
                [("name", name.map(Value::from)), ("max_concurrent", max_concurrent.map(Value::from)), ("max_attempts", max_attempts.map(Value::from))],
            );
            set_fields(&mut req, pool.fields());
            anyhow::ensure!(req.as_object().is_some_and(|o| !o.is_empty()), "nothing to change: give a flag (see --help) or --body");
            let c = api.send(api.req(reqwest::Method::PATCH, &format!("/campaigns/{}", seg(&id))).json(&req)).await?;
            api.print(&c, summary);
        }
        CampaignsCommand::Import { id, file } => {
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let req = api.req(reqwest::Method::POST, &format!("/campaigns/{}/contacts", seg(&id))).header("content-type", "text/csv").body(bytes);
            let report = api.send(req).await?;
            api.print(&report, |r| {
                let mut out = String::new();
                for bad in r["rejected"].as_array().into_iter().flatten() {
                    out.push_str(&format!("line {}: {}\n", bad["line"], bad["reason"].as_str().unwrap_or_default()));
                }
                out.push_str(&format!("{} imported, {} rejected", r["imported"], r["rejected_count"].as_u64().unwrap_or(0)));
                out
            });
        }
        CampaignsCommand::Start { id, watch } => act(&api, &id, "start", watch).await?,
        CampaignsCommand::Resume { id, watch } => act(&api, &id, "resume", watch).await?,
        CampaignsCommand::Pause { id } => act(&api, &id, "pause", false).await?,
        CampaignsCommand::Cancel { id } => act(&api, &id, "cancel", false).await?,
        CampaignsCommand::Export { id, output } => {
            let resp = api.req(reqwest::Method::GET, &format!("/campaigns/{}/export.csv", seg(&id))).send().await?;
            if !resp.status().is_success() {
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                anyhow::bail!("{} (HTTP {})", body["error"]["message"].as_str().unwrap_or("export failed"), status.as_u16());
            }
            // Streamed chunk by chunk: a million-row export is never held in memory.
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut resp = resp;
            let mut bytes = 0u64;
            while let Some(chunk) = resp.chunk().await? {
                out.write_all(&chunk)?;
                bytes += chunk.len() as u64;
            }
            out.flush()?;
            if let Some(path) = output {
                eprintln!("wrote {bytes} bytes to {}", path.display());
            }
        }
    }
    Ok(())
}

async fn act(api: &Api, id: &str, action: &str, watch: bool) -> anyhow::Result<()> {
    let c = api.post(&format!("/campaigns/{}/{action}", seg(id)), None).await?;
    if watch {
        // With `--json`, only the campaign as it ended is printed.
        return watch_campaign(api, id).await;
    }
    api.print(&c, |c| format!("{} is {}", c["id"].as_str().unwrap_or(id), c["status"].as_str().unwrap_or_default()));
    Ok(())
}

/// The campaign's contacts: (finished, total), from its `counts.contacts`.
fn progress(c: &Value) -> (u64, u64) {
    let contacts = c["counts"]["contacts"].as_object();
    let total: u64 = contacts.map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let open: u64 = contacts.map_or(0, |m| ["pending", "in_call"].iter().filter_map(|k| m.get(*k).and_then(Value::as_u64)).sum());
    (total - open.min(total), total)
}

fn is_over(c: &Value) -> bool {
    matches!(c["status"].as_str(), Some("completed" | "canceled"))
}

/// How `--watch` shows progress: a bar (on stderr) when stdout is a terminal; else one
/// line per change, on stdout, or on stderr with `--json` (stdout then holds only the API's
/// JSON of the campaign or batch as it ended).
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines { last: String, stderr: bool },
}

impl Progress {
    /// Prints `id` first (where the lines go), then starts the bar or the lines.
    fn start(api: &Api, id: &str, unit: &str) -> anyhow::Result<Self> {
        if api.json {
            eprintln!("{id}");
        } else {
            println!("{id}");
        }
        if std::io::stdout().is_terminal() {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(indicatif::ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {unit}  {{msg}}"))?);
            Ok(Self::Bar(bar))
        } else {
            Ok(Self::Lines { last: String::new(), stderr: api.json })
        }
    }

    /// Shows `done` of `total` `unit` and `msg` (status, active calls): the bar moves; a
    /// line is printed only when it differs from the last one.
    fn update(&mut self, done: u64, total: u64, unit: &str, msg: String) {
        match self {
            Self::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(msg);
            }
            Self::Lines { last, stderr } => {
                let line = format!("{done}/{total} {unit} · {msg}");
                if *last != line {
                    if *stderr {
                        eprintln!("{line}");
                    } else {
                        println!("{line}");
                    }
                    *last = line;
                }
            }
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish();
        }
    }
}

/// Polls the campaign twice a second and shows its progress ([`Progress`]) until it is
/// over; then prints it (its summary, or with `--json` the API's JSON of it).
async fn watch_campaign(api: &Api, id: &str) -> anyhow::Result<()> {
    let mut progress_shown = Progress::start(api, id, "contacts")?;
    loop {
        let c = api.get(&format!("/campaigns/{}", seg(id))).await?;
        let (done, total) = progress(&c);
        progress_shown.update(done, total, "contacts", format!("{} · {} active", c["status"].as_str().unwrap_or_default(), c["counts"]["active_calls"]));
        if is_over(&c) {
            progress_shown.finish();
            api.print(&c, summary);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A campaign in a few lines: status, progress, outcomes, what waits for what.
fn summary(c: &Value) -> String {
    let (done, total) = progress(c);
    let mut out = format!(
        "{} {}\nstatus: {}\nprogress: {done}/{total} contacts, {} active calls",
        c["id"].as_str().unwrap_or_default(),
        c["name"].as_str().unwrap_or_default(),
        c["status"].as_str().unwrap_or_default(),
        c["counts"]["active_calls"]
    );
    if let Some(outcomes) = c["counts"]["outcomes"].as_object().filter(|o| !o.is_empty()) {
        let parts: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!("\noutcomes: {}", parts.join(", ")));
    }
    out.push_str(&account(c));
    out.push_str(&callers(c));
    let next = match (c["status"].as_str(), c["next_open_at"].as_str()) {
        (Some("completed" | "canceled"), _) => None,
        (_, Some(t)) => Some(t.to_string()),
        (Some("draft"), None) => None,
        (_, None) => Some("never (the schedule has ended)".to_string()),
    };
    if let Some(next) = next {
        out.push_str(&format!("\nschedule next open: {next}"));
    }
    if let Some(why) = c["waiting_reason"].as_str() {
        out.push_str(&format!("\nheld back: {why}"));
    }
    if let Some(waiting) = c["waiting"].as_object().filter(|w| !w.is_empty()) {
        out.push_str("\nwaiting contacts:");
        for (why, w) in waiting {
            let when = match (w["earliest"].as_str(), w["latest"].as_str()) {
                (Some(a), Some(b)) if a != b => format!(", from {a} to {b}"),
                (Some(a), _) => format!(", until {a}"),
                _ => String::new(),
            };
            out.push_str(&format!("\n  {:<18} {}{when}", why.replace('_', " "), w["count"]));
        }
    }
    for a in c["alerts"].as_array().into_iter().flatten() {
        out.push_str(&format!("\nalert: {}", a["message"].as_str().map_or_else(|| a.to_string(), str::to_string)));
    }
    out
}

/// A campaign's or batch's own provider account (`account_id`), a line, when it names one
/// (none: the server's account of its provider).
fn account(c: &Value) -> String {
    match c["account_id"].as_str() {
        Some(id) => format!("\naccount: {id} ({})", c["provider"].as_str().unwrap_or_default()),
        None => String::new(),
    }
}

/// A campaign's or batch's caller-ID pool and throttle, a line each, when set: the numbers
/// with the strategy that picks among them (and `local_presence`'s fallback), and the
/// calls per minute.
fn callers(c: &Value) -> String {
    let mut out = String::new();
    let numbers: Vec<&str> = c["caller_numbers"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !numbers.is_empty() {
        let strategy = c["caller_number_strategy"].as_str().unwrap_or_default();
        let fallback = match (strategy, c["fallback_strategy"].as_str()) {
            ("local_presence", Some(f)) => format!(", else {f}"),
            _ => String::new(),
        };
        out.push_str(&format!("\ncaller numbers: {} ({strategy}{fallback})", numbers.join(", ")));
    }
    if let Some(n) = c["calls_per_minute"].as_u64() {
        out.push_str(&format!("\nthrottle: at most {n} calls per minute"));
    }
    out
}

/// `?limit=&before=` of a list.
fn page_query(limit: u32, before: Option<String>) -> Vec<(&'static str, String)> {
    let mut q = vec![("limit", limit.to_string())];
    if let Some(b) = before {
        q.push(("before", b));
    }
    q
}

/// The line telling how to get the next page, if there is one.
fn more(page: &Value) -> String {
    page["next_cursor"].as_str().map_or_else(String::new, |next| format!("\nmore: --before {next}"))
}

/// The `calls` of a CSV file: one object per row, header → cell (empty cells left out),
/// read by the server as a JSON contact row.
/// The calls of a CSV file, and the file line (1-based) each starts on: the API names a
/// bad call by its position in `calls`, the user knows it by its line in the file.
fn csv_calls(bytes: &[u8]) -> anyhow::Result<(Vec<Value>, Vec<u64>)> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let headers: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let mut calls = vec![];
    let mut lines = vec![];
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| anyhow::anyhow!("CSV line {}: {e}", e.position().map_or(i as u64 + 2, |p| p.line())))?;
        lines.push(record.position().map_or(i as u64 + 2, |p| p.line()));
        let mut call = serde_json::Map::new();
        for (h, v) in headers.iter().zip(record.iter()) {
            if !v.is_empty() {
                call.insert(h.clone(), Value::from(v));
            }
        }
        calls.push(Value::Object(call));
    }
    Ok((calls, lines))
}

/// The `POST /batches` body from `--file`: a JSON object as it is, a JSON array or a CSV
/// as its `calls`; for a CSV also the file line of each call.
fn batch_body(file: &std::path::Path) -> anyhow::Result<(Value, Option<Vec<u64>>)> {
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let is_csv = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        let (calls, lines) = csv_calls(&bytes)?;
        return Ok((json!({ "calls": calls }), Some(lines)));
    }
    match serde_json::from_slice::<Value>(&bytes).map_err(|e| anyhow::anyhow!("{}: not JSON (a .csv file is read as CSV): {e}", file.display()))? {
        Value::Array(calls) => Ok((json!({ "calls": calls }), None)),
        body @ Value::Object(_) => Ok((body, None)),
        _ => anyhow::bail!("{}: expected a JSON object (the request body) or an array of calls", file.display()),
    }
}

/// `text` with every `item N` (the API's name for the N-th call of a batch, 1-based) as
/// `line L`, L being the CSV file line that call came from (`lines[N - 1]`).
fn items_as_lines(text: &str, lines: &[u64]) -> String {
    static ITEM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| regex::Regex::new(r"\bitem (\d+)\b").expect("a valid pattern"));
    ITEM.replace_all(text, |c: &regex::Captures| match c[1].parse::<usize>().ok().and_then(|n| lines.get(n.wrapping_sub(1))) {
        Some(line) => format!("line {line}"),
        None => c[0].to_string(),
    })
    .into_owned()
}

/// A batch in a few lines: status, progress, outcomes.
fn batch_summary(b: &Value) -> String {
    let p = &b["progress"];
    let mut out = format!(
        "{} {}\nstatus: {}\nprogress: {}/{} calls finished ({}%), {} active calls",
        b["id"].as_str().unwrap_or_default(),
        b["name"].as_str().unwrap_or_default(),
        b["status"].as_str().unwrap_or_default(),
        p["finished"],
        p["total"],
        p["percent_done"],
        b["counts"]["active_calls"]
    );
    if let Some(outcomes) = b["counts"]["outcomes"].as_object().filter(|o| !o.is_empty()) {
        let parts: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!("\noutcomes: {}", parts.join(", ")));
    }
    out.push_str(&account(b));
    out.push_str(&callers(b));
    out
}

/// Polls the batch twice a second and shows its progress ([`Progress`]) until it is over;
/// then prints it.
async fn watch_batch(api: &Api, id: &str) -> anyhow::Result<()> {
    let mut shown = Progress::start(api, id, "calls")?;
    loop {
        let b = api.get(&format!("/batches/{}", seg(id))).await?;
        shown.update(
            b["progress"]["finished"].as_u64().unwrap_or(0),
            b["progress"]["total"].as_u64().unwrap_or(0),
            "calls",
            format!("{} · {} active", b["status"].as_str().unwrap_or_default(), b["counts"]["active_calls"]),
        );
        if is_over(&b) {
            shown.finish();
            api.print(&b, batch_summary);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run_batches(args: BatchesArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    match args.command {
        BatchesCommand::Create { file, settings, start_at, watch } => {
            let (mut body, csv_lines) = batch_body(&file)?;
            settings.apply(&mut body);
            set_fields(&mut body, [("start_at", start_at.map(Value::from))]);
            let resp = api
                .req(reqwest::Method::POST, "/batches")
                .json(&body)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach the API at {}: {e}", api.base))?;
            let status = resp.status();
            let b: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                // Every item number the API prints (`line`, and `item N` in its texts) is
                // the item's 1-based position in `calls`: for a CSV, shown as its file line.
                let shown = |text: &str| csv_lines.as_deref().map_or_else(|| text.to_string(), |lines| items_as_lines(text, lines));
                for bad in b["error"]["details"]["items"].as_array().into_iter().flatten() {
                    let item = format!("item {}", bad["line"].as_u64().unwrap_or(0));
                    eprintln!("{}: {}: {}", file.display(), shown(&item), shown(bad["reason"].as_str().unwrap_or_default()));
                }
                let message = b["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| b.to_string());
                // A field of one call (`calls[3].name`, 0-based): for a CSV, name its file line too.
                let index = b["error"]["details"]["field"].as_str().and_then(|f| f.strip_prefix("calls[")?.split_once(']')?.0.parse::<usize>().ok());
                if let Some(line) = index.and_then(|i| csv_lines.as_ref()?.get(i)) {
                    eprintln!("{}: line {line}: {message}", file.display());
                }
                anyhow::bail!("{} (HTTP {})", shown(&message), status.as_u16());
            }
            let id = b["id"].as_str().unwrap_or_default().to_string();
            if watch {
                return watch_batch(&api, &id).await;
            }
            api.print_created(&b, &id, |b| format!("created batch {id} with {} calls ({})", b["progress"]["total"], b["status"].as_str().unwrap_or_default()));
        }
        BatchesCommand::List { limit, before } => {
            let page = api.send(api.req(reqwest::Method::GET, "/batches").query(&page_query(limit, before))).await?;
            api.print(&page, |p| {
                let mut out = format!("{:<32} {:<24} {:<10} {:>13} {:>6}", "id", "name", "status", "finished", "done%");
                for b in p["data"].as_array().into_iter().flatten() {
                    let name: String = b["name"].as_str().unwrap_or("").chars().take(24).collect();
                    out.push_str(&format!(
                        "\n{:<32} {:<24} {:<10} {:>13} {:>6}",
                        b["id"].as_str().unwrap_or(""),
                        name,
                        b["status"].as_str().unwrap_or(""),
                        format!("{}/{}", b["progress"]["finished"], b["progress"]["total"]),
                        b["progress"]["percent_done"].to_string()
                    ));
                }
                out.push_str(&more(p));
                out
            });
        }
        BatchesCommand::Show { id, watch } => {
            let b = api.get(&format!("/batches/{}", seg(&id))).await?;
            if watch {
                return watch_batch(&api, &id).await;
            }
            api.print(&b, batch_summary);
        }
        BatchesCommand::Cancel { id } => {
            let b = api.post(&format!("/batches/{}/cancel", seg(&id)), None).await?;
            api.print(&b, |b| format!("{} is {}", b["id"].as_str().unwrap_or(&id), b["status"].as_str().unwrap_or_default()));
        }
    }
    Ok(())
}

pub async fn run_calls(args: CallsArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    match args.command {
        CallsCommand::List { campaign, status, outcome, phone, window, limit, before } => {
            let CallsWindow { created_from, created_to, ended_from, ended_to, sort } = *window;
            let query: Vec<(&str, String)> = [
                ("campaign_id", campaign),
                ("status", status),
                ("outcome", outcome),
                ("phone", phone),
                ("created_from", created_from),
                ("created_to", created_to),
                ("ended_from", ended_from),
                ("ended_to", ended_to),
                ("sort", sort),
                ("limit", Some(limit.to_string())),
                ("before", before),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let page = api.send(api.req(reqwest::Method::GET, "/calls").query(&query)).await?;
            api.print(&page, |p| {
                let mut out = format!("{:<32} {:<16} {:<16} {:<11} {:<14} {:>8}  created", "id", "phone", "from", "status", "outcome", "secs");
                for c in p["data"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n{:<32} {:<16} {:<16} {:<11} {:<14} {:>8}  {}",
                        c["id"].as_str().unwrap_or_default(),
                        c["phone"].as_str().unwrap_or_default(),
                        c["caller_number"].as_str().unwrap_or("-"),
                        c["status"].as_str().unwrap_or_default(),
                        c["outcome"].as_str().unwrap_or("-"),
                        c["duration_secs"].as_f64().map_or("-".to_string(), |s| format!("{s:.1}")),
                        c["created_at"].as_str().unwrap_or_default()
                    ));
                }
                out.push_str(&more(p));
                out
            });
        }
        CallsCommand::Show { id } => {
            let c = api.get(&format!("/calls/{}", seg(&id))).await?;
            api.print(&c, call_summary);
        }
        CallsCommand::Hangup { id } => {
            let c = api.post(&format!("/calls/{}/hangup", seg(&id)), None).await?;
            api.print(&c, |c| format!("{} hung up: {}", c["id"].as_str().unwrap_or(&id), c["outcome"].as_str().unwrap_or_default()));
        }
    }
    Ok(())
}

fn call_summary(c: &Value) -> String {
    let field = |k: &str| match &c[k] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut out = String::new();
    for k in [
        "id",
        "campaign_id",
        "phone",
        "caller_number",
        "name",
        "status",
        "outcome",
        "ended_reason",
        "answered_by",
        "duration_secs",
        "cost",
        "recording_url",
        "summary",
    ] {
        out.push_str(&format!("{k:<14} {}\n", field(k)));
    }
    for t in c["transcript"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}: {}\n", t["speaker"].as_str().unwrap_or_default(), t["text"].as_str().unwrap_or_default()));
    }
    let events = c["events"].as_array().map_or(0, Vec::len);
    out.push_str(&format!("{events} events (--json to see them)"));
    out
}

pub async fn run_dnc(args: DncArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    let base = |campaign: &Option<String>| match campaign {
        Some(c) => format!("/campaigns/{}/dnc", seg(c)),
        None => "/dnc".to_string(),
    };
    match args.command {
        DncCommand::Add { numbers, campaign, reason } => {
            let mut body = json!({ "numbers": numbers });
            if let Some(r) = reason {
                body["reason"] = r.into();
            }
            let r = api.post(&base(&campaign), Some(&body)).await?;
            api.print(&r, |r| {
                let mut out = String::new();
                for bad in r["rejected"].as_array().into_iter().flatten() {
                    out.push_str(&format!("line {}: {}\n", bad["line"], bad["reason"].as_str().unwrap_or_default()));
                }
                out.push_str(&format!("{} added, {} already listed", r["added"], r["already_listed"]));
                out
            });
        }
        DncCommand::List { campaign, limit } => {
            let page = api.get(&format!("{}?limit={limit}", base(&campaign))).await?;
            api.print(&page, |p| {
                let rows: Vec<String> = p["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        format!(
                            "{:<16} {:<32} {}",
                            s["phone"].as_str().unwrap_or_default(),
                            s["campaign_id"].as_str().unwrap_or("(workspace)"),
                            s["reason"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                if rows.is_empty() {
                    "the list is empty".to_string()
                } else {
                    rows.join("\n")
                }
            });
        }
        DncCommand::Remove { number, campaign } => {
            let r = api.send(api.req(reqwest::Method::DELETE, &format!("{}/{}", base(&campaign), seg(&number)))).await?;
            api.print(&r, |_| format!("{number} removed"));
        }
    }
    Ok(())
}

pub async fn run_stats(args: StatsArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    let query: Vec<(&str, String)> = [("campaign_id", args.campaign), ("preset", args.preset), ("from", args.from), ("to", args.to)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let s = api.send(api.req(reqwest::Method::GET, "/stats").query(&query)).await?;
    api.print(&s, stats_summary);
    Ok(())
}

/// `/stats` in readable lines: rates as percentages, latencies in ms, the failure
/// breakdown one reason a line; the hourly series only counted (`--json` has it).
fn stats_summary(s: &Value) -> String {
    let pct = |v: &Value| v.as_f64().map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
    let counts = |v: &Value| {
        let parts: Vec<String> = v.as_object().into_iter().flatten().map(|(k, n)| format!("{k} {n}")).collect();
        if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join(", ")
        }
    };
    let ms = |p: &Value| match (p["p50"].as_i64(), p["p95"].as_i64(), p["p99"].as_i64()) {
        (Some(a), Some(b), Some(c)) => format!("p50 {a} ms, p95 {b} ms, p99 {c} ms ({} samples)", p["count"]),
        _ => "no samples".to_string(),
    };
    let mut out = format!(
        "range          {} to {}{}\ncalls          {} ({})\noutcomes       {}\nsuccess rate   {} of {} ended calls\nfailure rate   {} ({} failed)\navg duration   {}\nscheduled      {} in the next hour, {} in the next 24 h\nretries        {} pending, {} placed, success rate {}\nlatency        webhook to commit: {}\n               placement: {}",
        s["from"].as_str().unwrap_or_default(),
        s["to"].as_str().unwrap_or_default(),
        s["campaign_id"].as_str().map_or(String::new(), |c| format!(", campaign {c}")),
        s["total_calls"],
        counts(&s["by_status"]),
        counts(&s["by_outcome"]),
        pct(&s["success_rate"]),
        s["ended_calls"],
        pct(&s["failure_rate"]),
        s["failed_calls"],
        s["avg_duration_secs"].as_f64().map_or("-".to_string(), |d| format!("{d:.1} s")),
        s["scheduled_next_hour"],
        s["scheduled_next_24h"],
        s["retries"]["pending"],
        s["retries"]["calls"],
        pct(&s["retries"]["success_rate"]),
        ms(&s["latency_ms"]["webhook_to_commit"]),
        ms(&s["latency_ms"]["placement"]),
    );
    let failures = s["failure_breakdown"].as_array().map_or(&[][..], Vec::as_slice);
    if !failures.is_empty() {
        out.push_str("\nfailures");
        for f in failures {
            out.push_str(&format!(
                "\n  {:<6} {} ({})",
                f["count"],
                f["outcome"].as_str().unwrap_or_default(),
                f["reason"].as_str().unwrap_or("no reason given")
            ));
        }
    }
    out.push_str(&format!("\nhourly series  {} hours (--json to see them)", s["hourly"].as_array().map_or(0, Vec::len)));
    out
}

/// `dialtone keys list` and `dialtone keys revoke`: through the API (`GET /keys`,
/// `DELETE /keys/{id}`) with an admin key, so they show what the API answers (`keys create`
/// works straight in the database: it makes the first key).
#[derive(Debug, Args)]
pub struct KeysListArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Whose keys (`ws_…`); default the key's own workspace. Another workspace: the
    /// operator's (default workspace's) admin key only.
    #[arg(long)]
    pub workspace: Option<String>,
}

/// `dialtone keys revoke ID` (see [`KeysListArgs`]).
#[derive(Debug, Args)]
pub struct KeysRevokeArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The key's id (`key_…`).
    pub id: String,
}

/// A time of the API (RFC 3339) or `-`.
fn time_or_dash(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn key_line(k: &Value) -> String {
    let scopes: Vec<&str> = k["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    format!(
        "{:<31} {:<9} {:<16} {:<30} {:<17} {:<28} {:<28} {}",
        k["id"].as_str().unwrap_or_default(),
        k["prefix"].as_str().unwrap_or("-"),
        k["name"].as_str().unwrap_or_default(),
        k["workspace_id"].as_str().unwrap_or_default(),
        scopes.join(","),
        time_or_dash(&k["created_at"]),
        time_or_dash(&k["last_used_at"]),
        time_or_dash(&k["revoked_at"]),
    )
}

/// `GET /keys`: prefix, name, workspace, scopes, created, last use, revoked (never the secret).
pub async fn run_keys_list(args: KeysListArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    let query: Vec<(&str, String)> = args.workspace.map(|w| ("workspace_id", w)).into_iter().collect();
    let page = api.send(api.req(reqwest::Method::GET, "/keys").query(&query)).await?;
    api.print(&page, |p| {
        let mut out = format!("{:<31} {:<9} {:<16} {:<30} {:<17} {:<28} {:<28} revoked", "id", "prefix", "name", "workspace", "scopes", "created", "last used");
        for k in p["data"].as_array().into_iter().flatten() {
            out.push('\n');
            out.push_str(&key_line(k));
        }
        out
    });
    Ok(())
}

/// `DELETE /keys/{id}`; then the key as the API lists it now (its `revoked_at` set), which
/// `--json` prints (the DELETE itself answers 204, no body).
pub async fn run_keys_revoke(args: KeysRevokeArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    let id = args.id;
    api.send(api.req(reqwest::Method::DELETE, &format!("/keys/{}", seg(&id)))).await?;
    // The operator may revoke another workspace's key: look for it where it is.
    let mine = api.get("/keys").await?;
    let key = mine["data"].as_array().into_iter().flatten().find(|k| k["id"] == id.as_str()).cloned();
    match key {
        Some(k) => api.print(&k, |k| format!("revoked {} ({} {})", id, k["prefix"].as_str().unwrap_or("-"), k["name"].as_str().unwrap_or_default())),
        None => api.print(&json!({ "id": id }), |_| format!("revoked {id}")),
    }
    Ok(())
}

/// `dialtone workspaces …` (an admin key; `/api/v1/workspaces`).
#[derive(Debug, Args)]
pub struct WorkspacesArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: WorkspacesCommand,
}

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Create a workspace; prints its id alone on stdout, its details on stderr. With
    /// `--key-name`, also its first API key: the key itself is shown this once, on stderr
    /// (with `--json`, as `key.key` in the JSON on stdout).
    Create {
        name: String,
        /// Make a first key with this name.
        #[arg(long)]
        key_name: Option<String>,
        /// The first key's scopes, comma-separated (read, write, admin; default all three).
        #[arg(long, requires = "key_name")]
        key_scopes: Option<String>,
    },
    /// The workspaces this key may see (every one for the default workspace's admin key).
    List,
    /// Rename a workspace.
    Rename { id: String, name: String },
    /// Disable a workspace: every key of it gets 401 from now on, on every server.
    Disable { id: String },
    /// Enable a disabled workspace again.
    Enable { id: String },
    /// Keep every caller number of the workspace to at most N calls per UTC day, across
    /// all its campaigns and batches (1–1,000,000); `none` lifts the limit.
    SetDailyLimit {
        id: String,
        #[arg(value_name = "N|none", value_parser = count_or_none)]
        limit: Value,
    },
}

fn workspace_line(w: &Value) -> String {
    let state = if w["disabled_at"].is_null() { "enabled" } else { "disabled" };
    let default = if w["is_default"].as_bool() == Some(true) { " (default)" } else { "" };
    let limit = w["caller_number_daily_limit"].as_u64().map_or(String::new(), |n| format!(", at most {n} calls per caller number a day"));
    format!("{:<30} {:<9} {}{default}{limit}", w["id"].as_str().unwrap_or_default(), state, w["name"].as_str().unwrap_or_default())
}

pub async fn run_workspaces(args: WorkspacesArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    let patch = |id: &str, body: Value| api.send(api.req(reqwest::Method::PATCH, &format!("/workspaces/{}", seg(id))).json(&body));
    match args.command {
        WorkspacesCommand::Create { name, key_name, key_scopes } => {
            let mut body = json!({ "name": name });
            if let Some(k) = key_name {
                body["key"] = json!({ "name": k });
                if let Some(s) = key_scopes {
                    body["key"]["scopes"] = s.split(',').map(|s| s.trim()).collect::<Vec<_>>().into();
                }
            }
            let r = api.post("/workspaces", Some(&body)).await?;
            // The key's secret is shown this once, on stderr with the other details (stdout
            // holds the workspace's id alone); `--json` has it as `key.key`.
            api.print_created(&r, r["workspace"]["id"].as_str().unwrap_or_default(), |r| {
                let mut out = format!("created {}", workspace_line(&r["workspace"]));
                if let Some(key) = r["key"]["key"].as_str() {
                    out.push_str(&format!("\nkey {} (store it now, it is not shown again):\n{key}", r["key"]["id"].as_str().unwrap_or_default()));
                }
                out
            });
        }
        WorkspacesCommand::List => {
            let r = api.get("/workspaces").await?;
            api.print(&r, |r| r["data"].as_array().into_iter().flatten().map(workspace_line).collect::<Vec<_>>().join("\n"));
        }
        WorkspacesCommand::Rename { id, name } => {
            let r = patch(&id, json!({ "name": name })).await?;
            api.print(&r, workspace_line);
        }
        WorkspacesCommand::Disable { id } => {
            let r = patch(&id, json!({ "disabled": true })).await?;
            api.print(&r, workspace_line);
        }
        WorkspacesCommand::Enable { id } => {
            let r = patch(&id, json!({ "disabled": false })).await?;
            api.print(&r, workspace_line);
        }
        WorkspacesCommand::SetDailyLimit { id, limit } => {
            let r = patch(&id, json!({ "caller_number_daily_limit": limit })).await?;
            api.print(&r, workspace_line);
        }
    }
    Ok(())
}

/// `dialtone accounts`: a workspace's own provider accounts (`/api/v1/provider-accounts`).
#[derive(Debug, Args)]
pub struct AccountsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: AccountsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Register an account; prints its id alone on stdout, its details on stderr (secrets
    /// by their last four characters: the server encrypts them and never shows them again).
    Create {
        /// vapi, twilio or exotel.
        #[arg(long)]
        provider: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        credentials: CredentialFlags,
        /// Calls at once on this account (default: no limit).
        #[arg(long)]
        max_concurrent: Option<u32>,
        /// Calls placed per second (default: the provider's).
        #[arg(long)]
        calls_per_second: Option<f64>,
    },
    /// The workspace's accounts, newest first.
    List,
    /// One account, its secrets shown by their last four characters.
    Show { id: String },
    /// Disable an account (it stays listed).
    Disable { id: String },
    /// Enable a disabled account again.
    Enable { id: String },
    /// Change an account (`PATCH /provider-accounts/{id}`): only what is given changes;
    /// credentials are merged field by field (a secret is replaced, the others stay).
    /// Prints the account as `show` does, secrets by their last four characters.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        credentials: CredentialFlags,
        /// Calls at once on this account; `none` lifts the limit.
        #[arg(long, value_name = "N|none", value_parser = count_or_none)]
        max_concurrent: Option<Value>,
        /// Calls placed per second; `none` restores the provider's default.
        #[arg(long, value_name = "X|none", value_parser = rate_or_none)]
        calls_per_second: Option<Value>,
    },
}

/// The credentials of `accounts create` and `accounts update`, sent as `credentials`.
#[derive(Debug, Args)]
pub struct CredentialFlags {
    /// A credential, `NAME=VALUE` (repeatable): the config file's field of the provider
    /// without its prefix, e.g. `account_sid=AC…` (`true`/`false` are booleans).
    #[arg(long = "credential", value_name = "NAME=VALUE")]
    credentials: Vec<String>,
    /// A credential read from an environment variable, `NAME=VARIABLE` (repeatable),
    /// so a secret stays out of the shell history and the process list.
    #[arg(long = "credential-env", value_name = "NAME=VARIABLE")]
    credentials_env: Vec<String>,
}

impl CredentialFlags {
    /// The `credentials` object, `None` when no flag was given.
    fn given(&self) -> anyhow::Result<Option<serde_json::Map<String, Value>>> {
        if self.credentials.is_empty() && self.credentials_env.is_empty() {
            return Ok(None);
        }
        credential_pairs(&self.credentials, &self.credentials_env).map(Some)
    }
}

/// A flag's `X|none`: a number (fractions allowed), or `none` as JSON `null` (in a
/// `PATCH`, clears it).
fn rate_or_none(s: &str) -> Result<Value, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Value::Null);
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite()).map(Value::from).ok_or_else(|| format!("{s:?} is neither a number nor `none`"))
}

fn account_line(a: &Value) -> String {
    let state = if a["enabled"].as_bool() == Some(true) { "enabled" } else { "disabled" };
    format!(
        "{:<30} {:<7} {:<9} {}",
        a["id"].as_str().unwrap_or_default(),
        a["provider"].as_str().unwrap_or_default(),
        state,
        a["name"].as_str().unwrap_or_default()
    )
}

fn account_detail(a: &Value) -> String {
    let mut out = account_line(a);
    for (k, v) in a["credentials"].as_object().into_iter().flatten() {
        out.push_str(&format!("\n  {k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
    }
    out.push_str(&format!("\n  max_concurrent: {}\n  calls_per_second: {}", a["max_concurrent"], a["calls_per_second"]));
    out
}

/// `--credential NAME=VALUE` and `--credential-env NAME=VARIABLE` pairs as a JSON object
/// (`true`/`false` as booleans).
fn credential_pairs(pairs: &[String], from_env: &[String]) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for p in pairs {
        let (k, v) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--credential {p:?}: expected NAME=VALUE"))?;
        let v = match v {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            v => Value::String(v.to_string()),
        };
        out.insert(k.trim().to_string(), v);
    }
    for p in from_env {
        let (k, var) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--credential-env {p:?}: expected NAME=VARIABLE"))?;
        let v = std::env::var(var.trim()).map_err(|_| anyhow::anyhow!("--credential-env {k}: the environment variable {var} is not set"))?;
        out.insert(k.trim().to_string(), Value::String(v));
    }
    Ok(out)
}

pub async fn run_accounts(args: AccountsArgs, listen: &str) -> anyhow::Result<()> {
    let api = Api::new(&args.conn, listen)?;
    match args.command {
        AccountsCommand::Create { provider, name, credentials, max_concurrent, calls_per_second } => {
            let mut body = json!({ "provider": provider, "name": name, "credentials": credentials.given()?.unwrap_or_default() });
            if let Some(m) = max_concurrent {
                body["max_concurrent"] = json!(m);
            }
            if let Some(r) = calls_per_second {
                body["calls_per_second"] = json!(r);
            }
            let r = api.post("/provider-accounts", Some(&body)).await?;
            api.print_created(&r, r["id"].as_str().unwrap_or_default(), |r| format!("created {}", account_detail(r)));
        }
        AccountsCommand::List => {
            let r = api.get("/provider-accounts?limit=500").await?;
            api.print(&r, |r| r["data"].as_array().into_iter().flatten().map(account_line).collect::<Vec<_>>().join("\n"));
        }
        AccountsCommand::Show { id } => {
            let r = api.get(&format!("/provider-accounts/{}", seg(&id))).await?;
            api.print(&r, account_detail);
        }
        AccountsCommand::Disable { id } => {
            api.send(api.req(reqwest::Method::DELETE, &format!("/provider-accounts/{}", seg(&id)))).await?;
            let r = api.get(&format!("/provider-accounts/{}", seg(&id))).await?;
            api.print(&r, |r| format!("disabled {}", account_line(r)));
        }
        AccountsCommand::Enable { id } => {
            let r = api.send(api.req(reqwest::Method::PATCH, &format!("/provider-accounts/{}", seg(&id))).json(&json!({ "enabled": true }))).await?;
            api.print(&r, |r| format!("enabled {}", account_line(r)));
        }
        AccountsCommand::Update { id, name, credentials, max_concurrent, calls_per_second } => {
            let mut body = json!({});
            set_fields(
                &mut body,
                [
                    ("name", name.map(Value::from)),
                    ("credentials", credentials.given()?.map(Value::Object)),
                    ("max_concurrent", max_concurrent),
                    ("calls_per_second", calls_per_second),
                ],
            );
            anyhow::ensure!(body.as_object().is_some_and(|o| !o.is_empty()), "nothing to change: give a flag (see --help)");
            let r = api.send(api.req(reqwest::Method::PATCH, &format!("/provider-accounts/{}", seg(&id))).json(&body)).await?;
            api.print(&r, account_detail);
        }
    }
    Ok(())
}

fn line(c: &Value) -> String {
    let (done, total) = progress(c);
    let next = match (c["status"].as_str(), c["next_open_at"].as_str()) {
        (Some("completed" | "canceled"), _) => "-".to_string(),
        (Some("draft"), _) => "- (a draft: not started)".to_string(),
        (_, Some(t)) => t.to_string(),
        (_, None) => "never (schedule ended)".to_string(),
    };
    let name: String = c["name"].as_str().unwrap_or("").chars().take(24).collect();
    format!(
        "{:<32} {:<24} {:<10} {:>9} {:>6}  {next}",
        c["id"].as_str().unwrap_or(""),
        name,
        c["status"].as_str().unwrap_or(""),
        format!("{done}/{total}"),
        c["counts"]["active_calls"].to_string()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_segment_keeps_spaces_brackets_and_pluses() {
        assert_eq!(super::seg("(415) 555-1039"), "%28415%29%20555-1039");
        assert_eq!(super::seg("+1 415"), "%2B1%20415");
        assert_eq!(super::seg("cmp_01abc"), "cmp_01abc");
    }

    #[test]
    fn a_campaign_line_shows_progress_and_the_next_open_time() {
        let c = serde_json::json!({"id": "cmp_1", "name": "December reminders", "status": "dialing", "next_open_at": "2026-12-01T14:00:00Z",
            "counts": {"contacts": {"done": 3, "pending": 5, "in_call": 2}, "active_calls": 2}});
        let l = super::line(&c);
        assert!(l.contains(" 3/10") && l.contains("2026-12-01T14:00:00Z") && l.contains("dialing"), "{l}");
    }

    #[test]
    fn a_csvs_item_numbers_are_shown_as_its_lines() {
        let lines = [2, 3, 5];
        assert_eq!(super::items_as_lines("+1415 is also item 1: once", &lines), "+1415 is also line 2: once");
        assert_eq!(
            super::items_as_lines("2 of 3 calls are invalid (first: item 3: +1 is also item 1)", &lines),
            "2 of 3 calls are invalid (first: line 5: +1 is also line 2)"
        );
        assert_eq!(super::items_as_lines("item 9 and items 1", &lines), "item 9 and items 1", "unknown numbers and other words stay");
    }

    #[test]
    fn the_address_comes_from_the_url_else_from_listen() {
        assert_eq!(super::base_url(Some("http://h:1/"), "0.0.0.0:8080"), "http://h:1");
        assert_eq!(super::base_url(None, "0.0.0.0:9000"), "http://127.0.0.1:9000");
        assert_eq!(super::base_url(None, "[::]:9000"), "http://127.0.0.1:9000");
        assert_eq!(super::base_url(None, "10.0.0.2:8080"), "http://10.0.0.2:8080");
    }
}
