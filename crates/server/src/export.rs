//! `GET /campaigns/{id}/export.csv`: one CSV row per contact, streamed in keyset pages of
//! [`PAGE`] contacts so memory stays at one page whatever the campaign's size; and the
//! `dialtone bench export --contacts N` run that checks it on a large campaign.

use axum::body::Bytes;
use dialtone_core::CampaignId;
use dialtone_store::{ExportRow, Store};
use std::sync::Arc;

/// Contacts per keyset page of the export: a page is fetched, written and sent before the
/// next is read, so memory holds one page whatever the campaign's size.
pub const PAGE: u32 = 1_000;

/// The export's fixed columns, before one column per variable.
pub const COLUMNS: &[&str] = &["phone", "name", "status", "outcome", "attempts", "last_call_at", "duration_secs", "summary"];

/// The export's header: the fixed columns, then each variable key (sorted); a key equal to
/// a fixed column's name is written `variables.<key>`. Keys come from the imported files,
/// so they are [`defuse`]d like the cells.
pub fn header(keys: &[String]) -> Vec<String> {
    let mut h: Vec<String> = COLUMNS.iter().map(|s| s.to_string()).collect();
    h.extend(keys.iter().map(|k| if COLUMNS.contains(&k.as_str()) { format!("variables.{k}") } else { defuse(k.clone()) }));
    h
}

/// One contact's export record, in [`header`]'s order. A variable holding a string is
/// written as it is, any other JSON value as its JSON text, a missing one or `null` empty.
pub fn record(row: &ExportRow, keys: &[String]) -> Vec<String> {
    let phone = if row.extension.is_empty() { row.phone.clone() } else { format!("{} ext. {}", row.phone, row.extension) };
    let mut r = vec![
        phone,
        row.name.clone().unwrap_or_default(),
        row.status.clone(),
        row.outcome.clone().unwrap_or_default(),
        row.attempts.to_string(),
        row.last_call_at.map(|t| t.to_string()).unwrap_or_default(),
        row.duration_ms.map(|ms| format!("{}", ms as f64 / 1000.0)).unwrap_or_default(),
        row.summary.clone().unwrap_or_default(),
    ];
    let vars: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.variables).unwrap_or_default();
    r.extend(keys.iter().map(|k| match vars.get(k) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }));
    r.into_iter().map(defuse).collect()
}

/// A cell a spreadsheet would run as a formula, made inert (OWASP "CSV Injection"): a cell
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'` in front. A
/// cell that is a number or a phone number is left as it is, so `+14155550100`,
/// `+14155550100 ext. 22` and `-3.5` stay usable (a spreadsheet reads them as a number or
/// text, never as a formula): optional sign, then digits with at most one `.`, optionally
/// ` ext. ` and digits.
pub fn defuse(cell: String) -> String {
    let risky = matches!(cell.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    if !risky || is_number_or_phone(&cell) {
        return cell;
    }
    format!("'{cell}")
}

fn is_number_or_phone(cell: &str) -> bool {
    let (number, ext) = cell.split_once(" ext. ").unwrap_or((cell, "0"));
    let digits = number.strip_prefix(['+', '-']).unwrap_or(number);
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let decimal = match digits.split_once('.') {
        Some((whole, frac)) => plain(whole) && plain(frac),
        None => plain(digits),
    };
    decimal && plain(ext)
}

/// Writes `records` as CSV bytes (RFC 4180 quoting by the `csv` crate).
fn csv_bytes(records: impl IntoIterator<Item = Vec<String>>) -> Result<Bytes, std::io::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(64 * 1024));
    for r in records {
        w.write_record(&r).map_err(std::io::Error::other)?;
    }
    w.into_inner().map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
}

/// The export as a stream of CSV chunks: the header, then one chunk per keyset page of
/// [`PAGE`] contacts. `pages` counts the pages read (for tests and the bench).
pub fn stream(
    store: Arc<dyn Store>,
    campaign: CampaignId,
    keys: Vec<String>,
    pages: Option<Arc<std::sync::atomic::AtomicU64>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    enum Step {
        Header,
        After(Option<String>),
        Done,
    }
    futures::stream::unfold(Step::Header, move |step| {
        let (store, campaign, keys, pages) = (store.clone(), campaign.clone(), keys.clone(), pages.clone());
        async move {
            match step {
                Step::Header => Some((csv_bytes([header(&keys)]), Step::After(None))),
                Step::Done => None,
                Step::After(after) => {
                    let rows = match store.export_page(&campaign, after.as_deref(), PAGE).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            // The status line is gone already: the body is cut short, and the
                            // client sees an incomplete transfer rather than a short file.
                            tracing::error!(campaign_id = %campaign, error = %e, "export stopped by a database error");
                            return Some((Err(std::io::Error::other(e.to_string())), Step::Done));
                        }
                    };
                    if let Some(p) = &pages {
                        p.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if rows.is_empty() {
                        return None;
                    }
                    let next = if rows.len() < PAGE as usize { Step::Done } else { Step::After(rows.last().map(|r| r.id.clone())) };
                    Some((csv_bytes(rows.iter().map(|r| record(r, &keys))), next))
                }
            }
        }
    })
}

/// A draft `sim` campaign to export from (bench and tests).
pub async fn scratch_campaign(store: &dyn Store, ws: &dialtone_core::WorkspaceId) -> anyhow::Result<dialtone_store::Campaign> {
    use dialtone_core::frequency::{Frequency, Recurrence};
    use dialtone_core::schedule::{LocalHours, Schedule};
    let midnight = jiff::civil::Time::midnight();
    Ok(store
        .create_campaign(
            dialtone_store::NewCampaign {
                workspace_id: ws.clone(),
                name: "export".into(),
                provider: dialtone_core::ProviderKind::Sim,
                assistant_id: "asst_export".into(),
                phone_number_id: "pn_export".into(),
                mode: dialtone_core::Mode::Continuous,
                max_concurrent: 1,
                max_attempts: 1,
                retry: dialtone_core::RetryPolicy::default(),
                default_region: "US".into(),
                schedule: Schedule::always("UTC"),
                calling_hours: LocalHours::new(midnight, midnight),
                recurrence: Recurrence::new(Frequency::Once),
                max_call_duration_secs: None,
                assume_campaign_timezone_for_ambiguous: false,
                agent_id: None,
                caller_pool: Default::default(),
                calls_per_minute: None,
                account_id: None,
            },
            jiff::Timestamp::now(),
        )
        .await?)
}

/// Adds `n` contacts to `campaign` in the SQLite database at `url` with one statement (a
/// recursive CTE): ids `ct_` + 26 digits in order, numbers `+1415` + 7 digits, name
/// `Name i`, variables `{"plan": "gold", "n": i}`, status `done`, one attempt, no call.
pub async fn fill_sqlite(url: &str, ws: &str, campaign: &str, n: u64) -> anyhow::Result<()> {
    anyhow::ensure!(n < 10_000_000, "at most 9,999,999 contacts (7-digit numbers)");
    let pool = sqlx::SqlitePool::connect(url).await?;
    sqlx::query(
        "INSERT INTO contacts (id, workspace_id, campaign_id, phone, extension, name, variables, status, attempts, next_attempt_at, created_at, updated_at)
         WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?3)
         SELECT printf('ct_%026d', i), ?1, ?2, printf('+1415%07d', i), '', 'Name ' || i, json_object('plan', 'gold', 'n', i), 'done', 1, 0, 0, 0 FROM seq",
    )
    .bind(ws)
    .bind(campaign)
    .bind(n as i64)
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}

/// What draining an export saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drained {
    /// CSV lines after the header (one per contact: the data has no newline in a field).
    pub rows: u64,
    pub bytes: u64,
    /// Keyset pages read from the store.
    pub pages: u64,
    /// The largest chunk sent at once, in bytes.
    pub max_chunk: usize,
    /// Peak resident memory during the export above resident memory before it, in KiB
    /// (Linux `/proc/self/status`; `None` elsewhere). Exact only if `peak_reset`.
    pub peak_rss_growth_kib: Option<u64>,
    /// Whether the peak could be reset before the export (`/proc/self/clear_refs`); if not,
    /// an earlier, higher peak can hide the export's.
    pub peak_reset: bool,
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the export of `campaign` to nowhere, counting lines and pages and measuring the
/// process's peak memory growth meanwhile.
pub async fn drain(store: Arc<dyn Store>, campaign: &CampaignId) -> anyhow::Result<Drained> {
    use futures::StreamExt;
    // Writing 5 resets the peak (VmHWM) to the current RSS (Linux ≥ 4.0).
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = proc_status_kib("VmRSS:");
    let pages = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let keys = store.variable_keys(campaign).await?;
    let mut s = std::pin::pin!(stream(store, campaign.clone(), keys, Some(pages.clone())));
    let (mut lines, mut bytes, mut max_chunk) = (0u64, 0u64, 0usize);
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        bytes += chunk.len() as u64;
        max_chunk = max_chunk.max(chunk.len());
    }
    let after = proc_status_kib("VmHWM:");
    Ok(Drained {
        rows: lines.saturating_sub(1),
        bytes,
        pages: pages.load(std::sync::atomic::Ordering::Relaxed),
        max_chunk,
        peak_rss_growth_kib: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        peak_reset,
    })
}

/// `dialtone bench export --contacts N`: a campaign of `n` contacts in a temp SQLite
/// database (filled in one statement), exported once: time, rows/s, pages and peak memory
/// growth. Fails if a row is missing.
pub async fn bench(n: u64) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("export.db").display());
    let store = dialtone_store::connect(&url).await?;
    let ws = store.default_workspace().await?;
    let campaign = scratch_campaign(store.as_ref(), &ws).await?;
    let t = std::time::Instant::now();
    fill_sqlite(&url, ws.as_str(), campaign.id.as_str(), n).await?;
    let fill_ms = t.elapsed().as_millis() as u64;
    let t = std::time::Instant::now();
    let d = drain(store, &campaign.id).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(d.rows == n, "exported {} rows of {n}", d.rows);
    Ok(serde_json::json!({
        "contacts": n,
        "fill_ms": fill_ms,
        "export_ms": (secs * 1000.0) as u64,
        "rows_per_sec": (n as f64 / secs.max(1e-9)) as u64,
        "bytes": d.bytes,
        "pages": d.pages,
        "max_chunk_bytes": d.max_chunk,
        "peak_rss_growth_kib": d.peak_rss_growth_kib,
        "peak_reset": d.peak_reset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn export_records_quote_and_spread_variables() {
        let row = ExportRow {
            id: "ct_1".into(),
            phone: "+14155550100".into(),
            extension: "22".into(),
            name: Some("Doe, \"Jo\"".into()),
            status: "done".into(),
            attempts: 2,
            variables: r#"{"plan":"gold","n":3,"name":"x","gone":null}"#.into(),
            outcome: Some("completed".into()),
            last_call_at: Some(t(1_700_000_000)),
            duration_ms: Some(61_500),
            summary: Some("=HYPERLINK(\"http://x\")".into()),
        };
        let keys: Vec<String> = ["gone", "n", "name", "other", "plan"].iter().map(|s| s.to_string()).collect();
        let header = header(&keys);
        assert_eq!(header[8..], ["gone", "n", "variables.name", "other", "plan"]);
        let bytes = csv_bytes([header, record(&row, &keys)]).unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let second = text.lines().nth(1).unwrap();
        assert_eq!(second, r#"+14155550100 ext. 22,"Doe, ""Jo""",done,completed,2,2023-11-14T22:13:20Z,61.5,"'=HYPERLINK(""http://x"")",,3,x,,gold"#);
    }

    #[test]
    fn formulas_are_defused_and_numbers_and_phones_kept() {
        for risky in ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "+1415 555", "+", "-", "+1.2.3"] {
            assert_eq!(defuse(risky.to_string()), format!("'{risky}"), "{risky:?}");
        }
        assert_eq!(header(&["=cmd".to_string()])[8], "'=cmd", "variable keys in the header too");
        for kept in ["+14155550100", "+14155550100 ext. 22", "-3.5", "+2", "42", "plain", "", "a=b", "1.2.3"] {
            assert_eq!(defuse(kept.to_string()), kept);
        }
    }
}
