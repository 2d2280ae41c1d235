//! `dialtone`: serve, demo, sim, migrate, keys, import.

use clap::{Parser, Subcommand};
use dialtone_core::{CampaignId, SystemClock};
use dialtone_server::{app, bench, client, config::Config, demo, import, keys, sim_cmd};
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
    /// Look at campaigns through a running server's API (status, progress, next open time).
    Campaigns(client::ClientArgs),
    /// Measure webhook ingest and dispatch throughput (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Run the provider simulator (Vapi wire format).
    Sim(sim_cmd::SimArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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
enum KeysCommand {
    /// Create an API key for the default workspace; it is printed once.
    Create {
        #[arg(long, default_value = "default")]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Import { .. } | Command::Keys { .. } | Command::Migrate);
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
            client::run(args).await
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
            let state = app::build(&config, config.engine(), Arc::new(SystemClock)).await?;
            let listener = tokio::net::TcpListener::bind(&config.listen).await?;
            tracing::info!(listen = %listener.local_addr()?, "dialtone serving");
            let cancel = CancellationToken::new();
            let on_signal = cancel.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: finishing placements under way");
                on_signal.cancel();
            });
            app::serve(state, listener, cancel).await
        }
        Command::Migrate => {
            dialtone_store::connect(&config.database_url).await?;
            println!("migrations applied to {}", config.database_url);
            Ok(())
        }
        Command::Keys { command: KeysCommand::Create { name } } => {
            let store = dialtone_store::connect(&config.database_url).await?;
            let ws = store.default_workspace().await?;
            let key = keys::generate();
            let id = store.create_api_key(&ws, &name, &keys::hash(&key), jiff::Timestamp::now()).await?;
            eprintln!("created {id} for workspace {ws}; store the key now, it is not shown again:");
            println!("{key}");
            Ok(())
        }
        Command::Import { campaign, file } => import_file(&config, &campaign, &file).await,
        Command::Demo(_) | Command::Sim(_) | Command::Bench(_) | Command::Campaigns(_) => unreachable!("handled before config is loaded"),
    }
}

async fn import_file(config: &Config, campaign: &str, file: &std::path::Path) -> anyhow::Result<()> {
    let store = dialtone_store::connect(&config.database_url).await?;
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
    let default = if quiet { "error" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIALTONE_LOG").unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
