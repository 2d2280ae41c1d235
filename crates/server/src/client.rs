//! `dialtone campaigns …`: a small client over the HTTP API, for people at a terminal.

use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Base URL of a running `dialtone serve`.
    #[arg(long, env = "DIALTONE_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// API key (`dialtone keys create`).
    #[arg(long, env = "DIALTONE_API_KEY", hide_env_values = true)]
    pub api_key: String,
    #[command(subcommand)]
    pub command: CampaignsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    /// Campaigns with their status, progress and when their schedule next opens.
    List,
    /// One campaign in full (JSON).
    Show { id: String },
}

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let get = |path: String| {
        let req = http.get(format!("{}/api/v1{path}", args.api_url.trim_end_matches('/'))).bearer_auth(&args.api_key);
        async move {
            let resp = req.send().await?;
            let status = resp.status();
            let body: Value = resp.json().await?;
            anyhow::ensure!(status.is_success(), "{status}: {}", body["error"]["message"].as_str().unwrap_or(&body.to_string()));
            Ok::<Value, anyhow::Error>(body)
        }
    };
    match args.command {
        CampaignsCommand::Show { id } => println!("{}", serde_json::to_string_pretty(&get(format!("/campaigns/{id}")).await?)?),
        CampaignsCommand::List => {
            let mut rows = vec![];
            let mut cursor: Option<String> = None;
            loop {
                let page = get(match &cursor {
                    Some(c) => format!("/campaigns?limit=100&before={c}"),
                    None => "/campaigns?limit=100".into(),
                })
                .await?;
                rows.extend(page["data"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            println!("{:<32} {:<24} {:<10} {:>9} {:>6}  next open", "id", "name", "status", "finished", "active");
            for c in rows {
                println!("{}", line(&c));
            }
        }
    }
    Ok(())
}

fn line(c: &Value) -> String {
    let contacts = c["counts"]["contacts"].as_object();
    let total: u64 = contacts.map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let open: u64 = contacts.map_or(0, |m| ["pending", "in_call"].iter().filter_map(|k| m.get(*k).and_then(Value::as_u64)).sum());
    let next = match (c["status"].as_str(), c["next_open_at"].as_str()) {
        (Some("completed" | "canceled"), _) => "-".to_string(),
        (_, Some(t)) => t.to_string(),
        (_, None) => "never (schedule ended)".to_string(),
    };
    let name: String = c["name"].as_str().unwrap_or("").chars().take(24).collect();
    format!(
        "{:<32} {:<24} {:<10} {:>9} {:>6}  {next}",
        c["id"].as_str().unwrap_or(""),
        name,
        c["status"].as_str().unwrap_or(""),
        format!("{}/{}", total - open, total),
        c["counts"]["active_calls"].to_string()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_campaign_line_shows_progress_and_the_next_open_time() {
        let c = serde_json::json!({"id": "cmp_1", "name": "December reminders", "status": "dialing", "next_open_at": "2026-12-01T14:00:00Z",
            "counts": {"contacts": {"done": 3, "pending": 5, "in_call": 2}, "active_calls": 2}});
        let l = super::line(&c);
        assert!(l.contains(" 3/10") && l.contains("2026-12-01T14:00:00Z") && l.contains("dialing"), "{l}");
    }
}
