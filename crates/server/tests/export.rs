//! The CSV export of a large campaign streams in keyset pages with bounded memory. Its own
//! test binary, so no other test's allocations count in the process's peak memory.
//! 50,000 contacts here: 1,000,000 took 101 s in a debug build, so
//! `dialtone bench export --contacts 1000000`
//! runs the million.

use dialtone_server::export;

const CONTACTS: u64 = 50_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_has_every_row_and_reads_in_pages_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("export.db").display());
    let store = dialtone_store::connect(&url).await.unwrap();
    let ws = store.default_workspace().await.unwrap();
    let campaign = export::scratch_campaign(store.as_ref(), &ws).await.unwrap();
    export::fill_sqlite(&url, ws.as_str(), campaign.id.as_str(), CONTACTS).await.unwrap();

    let d = export::drain(store, &campaign.id).await.unwrap();
    assert_eq!(d.rows, CONTACTS, "{d:?}");
    // One read per full page, and one more that finds the end.
    assert_eq!(d.pages, CONTACTS / u64::from(export::PAGE) + 1, "{d:?}");
    // A chunk is one page of rows (~70 bytes each), never the whole file.
    assert!(d.max_chunk < 200 * export::PAGE as usize, "{d:?}");
    assert!(d.bytes > 40 * CONTACTS, "{d:?}");
    if let Some(kib) = d.peak_rss_growth_kib {
        assert!(kib < 100 * 1024, "peak memory grew by {kib} KiB during the export: {d:?}");
    }
}
