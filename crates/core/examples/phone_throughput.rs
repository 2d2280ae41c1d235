//! Measures `PhoneNumber::parse` throughput over the phone corpus (valid and invalid rows
//! alike, as an import sees them).
//!
//! `cargo run --release -p dialtone-core --example phone_throughput [-- PARSES]` (default
//! 100,000 parses); prints parses per second. The first parse, which builds the library's
//! metadata, is timed on its own.
//!
//! Measured on the 2-core development machine under load (release build, back to back):
//! rlibphonenumber 2.2.15 120,000–140,000 parses/s (7–8 µs each, first parse 20–25 ms);
//! phonenumber 0.3.10, which this replaced, 3,000–3,900 parses/s (255–334 µs, 134–157 ms).

use dialtone_core::PhoneNumber;
use std::time::Instant;

const CORPUS: &str = include_str!("../tests/data/phone_corpus.tsv");

fn main() {
    let parses: usize = std::env::args().nth(1).map(|n| n.parse().expect("PARSES is a count")).unwrap_or(100_000);
    let rows: Vec<(&str, &str)> = CORPUS
        .lines()
        .skip_while(|l| !l.starts_with("raw\t"))
        .skip(1)
        .map(|l| {
            let mut cols = l.split('\t');
            (cols.next().unwrap(), cols.next().unwrap())
        })
        .collect();

    let start = Instant::now();
    let _ = PhoneNumber::parse("+14155552671", "US");
    println!("first parse (metadata load): {:.2} ms", start.elapsed().as_secs_f64() * 1e3);

    let start = Instant::now();
    let mut valid = 0usize;
    for i in 0..parses {
        let (raw, region) = rows[i % rows.len()];
        valid += PhoneNumber::parse(std::hint::black_box(raw), region).is_ok() as usize;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{parses} parses ({valid} valid) in {secs:.3} s: {:.0} parses/s, {:.2} µs each", parses as f64 / secs, secs * 1e6 / parses as f64);
}
