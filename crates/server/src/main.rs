//! `dialtone`: serve, demo, sim, migrate, keys, import, and the API clients (campaigns, batches, calls, dnc, stats).

use clap::{Parser, Subcommand};
use dialtone_core::{CampaignId, SystemClock};
use dialtone_server::{app, bench, client, config::Config, demo, import, keys, logs, sim_cmd};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "dialtone", version, about = "Campaign call engine for AI voice agents")]
struct Cli {
    /// Config file (TOML). Default: ./dialtone.toml if present. DIALTONE_* env vars override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, webhooks and the engine.
    Serve,
    /// Zero set-up demo: SQLite in a temp dir, the simulator in-process, a live progress bar.
    Demo(demo::DemoArgs),
    /// Create, update, import, start, pause, resume, cancel, watch and export campaigns through a
    /// running server's API (DIALTONE_API_URL, else the config's `listen`; DIALTONE_API_KEY).
    Campaigns(client::ClientArgs),
    /// Send many calls in one request and follow them: create (from JSON or CSV), list,
    /// show (with --watch), cancel (through the API).
    Batches(client::BatchesArgs),
    /// List calls, show one with its details and events, hang up a live one (through the API).
    Calls(client::CallsArgs),
    /// The do-not-call list: add, list, remove numbers (through the API).
    Dnc(client::DncArgs),
    /// Call statistics: counts, success rate, failures, latency (through the API).
    Stats(client::StatsArgs),
    /// Workspaces: create (with a first key), list, rename, disable, enable, set the daily
    /// limit per caller number (through the API, with an admin key; an admin key of the
    /// default workspace manages them all).
    Workspaces(client::WorkspacesArgs),
    /// The workspace's own provider accounts: create, list, show, update, disable, enable
    /// (through the API).
    Accounts(client::AccountsArgs),
    /// Measure webhook ingest and dispatch throughput (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Run the provider simulator (Vapi wire format).
    Sim(Box<sim_cmd::SimArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// API keys: `create` straight in the database (like `migrate`: it makes the first key);
    /// `list` and `revoke` through the API.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Stored secrets (straight in the database, like `migrate`).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Import contacts from a CSV file straight into the database, with a progress bar.
    Import {
        /// Campaign id (cmp_…).
        #[arg(long)]
        campaign: String,
        /// The CSV file: a header row, a phone column (phone, number, phone_number or mobile).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-encrypt every stored secret (provider accounts' credentials, webhook endpoints'
    /// signing secrets, kept `Idempotency-Key` answers that show a secret) under `master_key`, opening them with it or any of
    /// `previous_master_keys`; afterwards the previous keys may be removed. `serve` does
    /// the same at every start.
    Rotate,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key (for the default workspace unless `--workspace`); it is printed once.
    Create {
        #[arg(long, default_value = "default")]
        name: String,
        /// Comma-separated, of read, write, admin (default: all three).
        #[arg(long, default_value = keys::ALL_SCOPES)]
        scopes: String,
        /// The workspace's id (ws_…); default the default workspace.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Keys with their workspace, scopes, prefix, creation, last use and revocation (never
    /// the key), as `GET /api/v1/keys` answers (through the API, with an admin key).
    List(client::KeysListArgs),
    /// Revoke a key by its id (key_…) through the API: every request with it fails with 401
    /// from now on, on every server sharing the database.
    Revoke(client::KeysRevokeArgs),
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&e.into()),
    };
    match runtime.block_on(run_cli()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// The API client's commands end quietly when their reader goes (`dialtone calls list |
/// head`), like other Unix tools: SIGPIPE back to its default action. Rust ignores it at
/// start, so a write to a closed pipe fails and `println!` panics. Not for `serve`, `sim`,
/// `demo` or `bench`, whose sockets and child processes (flite) must see the error instead.
fn default_sigpipe() {
    // SAFETY: resetting one signal's disposition at start, before any thread writes.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Reports a fatal error. Not `eprintln!` (nor returning the error from `main`, which uses
/// it): with stderr closed it panics, and the exit status would say "panicked".
fn fail(e: &anyhow::Error) -> std::process::ExitCode {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "Error: {e:#}");
    std::process::ExitCode::FAILURE
}

async fn run_cli() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Campaigns(_)
            | Command::Batches(_)
            | Command::Calls(_)
            | Command::Dnc(_)
            | Command::Stats(_)
            | Command::Workspaces(_)
            | Command::Accounts(_)
            | Command::Keys { .. }
    ) {
        default_sigpipe();
    }
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Import { .. } | Command::Keys { .. } | Command::Secrets { .. } | Command::Migrate);
    match cli.command {
        Command::Sim(args) => {
            init_logs(&Config::default(), false);
            args.run().await
        }
        Command::Demo(args) => {
            init_logs(&Config::default(), true);
            demo::run(args).await
        }
        Command::Campaigns(args) => {
            init_logs(&Config::default(), true);
            client::run(args, &Config::load(cli.config.as_deref())?.listen).await
        }
        Command::Batches(args) => {
            init_logs(&Config::default(), true);
            client::run_batches(args, &Config::load(cli.config.as_deref())?.listen).await
        }
        Command::Calls(args) => {
            init_logs(&Config::default(), true);
            client::run_calls(args, &Config::load(cli.config.as_deref())?.listen).await
        }
        Command::Dnc(args) => {
            init_logs(&Config::default(), true);
            client::run_dnc(args, &Config::load(cli.config.as_deref())?.listen).await
        }
        Command::Stats(args) => {
            init_logs(&Config::default(), true);
            client::run_stats(args, &Config::load(cli.config.as_deref())?.listen).await
        }
        Command::Workspaces(args) => {
            init_logs(&Config::default(), true);
            client::run_workspaces(args, &Config::load(cli.config.as_deref())?.listen).await
        }
        Command::Accounts(args) => {
            init_logs(&Config::default(), true);
            client::run_accounts(args, &Config::load(cli.config.as_deref())?.listen).await
        }
        Command::Bench(args) => {
            init_logs(&Config::default(), true);
            bench::run(args).await
        }
        command => {
            let config = Config::load(cli.config.as_deref())?;
            init_logs(&config, quiet);
            run(command, config).await
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            // Listening for SIGTERM/SIGINT before anything slow (migrations) starts.
            let cancel = CancellationToken::new();
            shutdown_on_signals(cancel.clone())?;
            let state = app::build(&config, config.engine(), Arc::new(SystemClock)).await?;
            let listener = tokio::net::TcpListener::bind(&config.listen).await?;
            tracing::info!(listen = %listener.local_addr()?, "dialtone serving");
            app::serve(state, listener, cancel).await
        }
        Command::Migrate => {
            dialtone_store::connect(config.database_url.expose_secret()).await?;
            println!("migrations applied to {}", config.database_shown());
            Ok(())
        }
        Command::Keys { command: KeysCommand::Create { name, scopes, workspace } } => {
            let scopes: Vec<&str> = scopes.split(',').collect();
            let scopes = keys::normalize_scopes(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
            let store = dialtone_store::connect(config.database_url.expose_secret()).await?;
            let ws = match workspace {
                Some(id) => {
                    let w = store.get_workspace(&id).await?.ok_or_else(|| anyhow::anyhow!("no workspace {id} (see `dialtone workspaces list`)"))?;
                    dialtone_core::WorkspaceId::from_db(w.id)
                }
                None => store.default_workspace().await?,
            };
            let key = keys::generate();
            let id = store.create_scoped_api_key(&ws, &name, &keys::hash(&key), keys::shown_prefix(&key), &scopes, jiff::Timestamp::now()).await?;
            eprintln!("created {id} for workspace {ws}; store the key now, it is not shown again:");
            println!("{key}");
            Ok(())
        }
        Command::Keys { command: KeysCommand::List(args) } => client::run_keys_list(args, &config.listen).await,
        Command::Keys { command: KeysCommand::Revoke(args) } => client::run_keys_revoke(args, &config.listen).await,
        Command::Secrets { command: SecretsCommand::Rotate } => {
            anyhow::ensure!(config.master_key.is_some(), "no master_key configured (DIALTONE_MASTER_KEY): nothing to re-encrypt under");
            let store = dialtone_store::connect_with(config.database_url.expose_secret(), config.keyring()?).await?;
            let resealed = store.rotate_secrets().await?;
            let key = store.keyring().map(|k| k.current_id().to_string()).unwrap_or_default();
            println!("{resealed} stored secrets re-encrypted under master key {key}; every secret is now under it (previous_master_keys may be removed)");
            Ok(())
        }
        Command::Import { campaign, file } => import_file(&config, &campaign, &file).await,
        Command::Demo(_)
        | Command::Sim(_)
        | Command::Bench(_)
        | Command::Campaigns(_)
        | Command::Batches(_)
        | Command::Calls(_)
        | Command::Dnc(_)
        | Command::Stats(_)
        | Command::Workspaces(_)
        | Command::Accounts(_) => {
            unreachable!("handled before config is loaded")
        }
    }
}

async fn import_file(config: &Config, campaign: &str, file: &std::path::Path) -> anyhow::Result<()> {
    let store = dialtone_store::connect(config.database_url.expose_secret()).await?;
    let ws = store.default_workspace().await?;
    let id = CampaignId::parse(campaign).ok_or_else(|| anyhow::anyhow!("{campaign:?} is not a campaign id (cmp_…)"))?;
    let campaign = store.get_campaign(&ws, &id).await?.ok_or_else(|| anyhow::anyhow!("campaign {id} not found"))?;
    let size = std::fs::metadata(file)?.len();
    let open = || -> anyhow::Result<import::CsvContacts<std::io::BufReader<std::fs::File>>> {
        let reader = std::io::BufReader::new(std::fs::File::open(file)?);
        let rows = import::CsvContacts::new(reader, &campaign.default_region, &campaign.schedule.timezone)?;
        Ok(if import::dials_extensions(campaign.provider) { rows } else { rows.refuse_extensions() })
    };
    // All or nothing, as over HTTP: a fault in the file (an unterminated quote) stops the
    // import before the first row is stored.
    open()?.scan()?;
    let mut rows = open()?;
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")?);
    let mut report = import::ImportReport::default();
    while let Some(chunk) = rows.next_chunk(1000, &mut report)? {
        if !chunk.is_empty() {
            let done = store.insert_contacts(&ws, &id, &chunk, jiff::Timestamp::now()).await?;
            report.imported += done.inserted;
            done.duplicates.into_iter().for_each(|d| report.reject(d));
        }
        bar.set_position(rows.bytes_read());
        bar.set_message(format!("{} imported, {} rejected", report.imported, report.rejected_count));
    }
    bar.finish();
    for r in &report.rejected {
        eprintln!("line {}: {}", r.line, r.reason);
    }
    if report.rejected_count > report.rejected.len() as u64 {
        eprintln!("… and {} more rejected rows", report.rejected_count - report.rejected.len() as u64);
    }
    println!("{} rows read, {} imported, {} rejected", report.rows, report.imported, report.rejected_count);
    Ok(())
}

fn init_logs(config: &Config, quiet: bool) {
    // Quiet commands draw progress bars on stderr; routine warnings (a 429 being retried)
    // would tear them. DIALTONE_LOG=info brings everything back.
    logs::init(config.log_format, if quiet { "error" } else { "info" });
}

/// The first SIGTERM or SIGINT cancels `cancel` (the server drains, the engine finishes
/// placements under way); a second one exits at once. Cancelling comes before logging, and
/// logging cannot fail, so no state of stderr can keep the process from stopping.
fn shutdown_on_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let name = tokio::select! { _ = term.recv() => "SIGTERM", _ = int.recv() => "SIGINT" };
            cancel.cancel();
            tracing::info!(signal = name, "shutting down: finishing placements under way; send it again to exit now");
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::warn!("second signal: exiting without waiting");
            std::process::exit(130);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
            tracing::info!("shutting down: finishing placements under way");
        }
    });
    Ok(())
}
