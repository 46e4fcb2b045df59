//! The engine against the independent reference, on datagen files with every kind of dirt.

use duff_datagen::{Dirt, GenConfig, Size};
use duff_engine::rules::REQUIRED_COLUMNS;
use duff_engine::schema::{DIM_CLIENTS, FACT_ORDERS, ORDERS, QUARANTINE};
use duff_engine::{RunOptions, RunOutcome};

use crate::common::{self, columns, read_table};
use crate::reference::reference;

/// The orders columns that carry values: the input's columns, then the totals.
fn order_values() -> Vec<&'static str> {
    let mut v = REQUIRED_COLUMNS.to_vec();
    v.extend(["total_price", "total_volume"]);
    v
}

/// Runs one generated file through both implementations and compares everything observable.
fn compare(name: &str, cfg: GenConfig, options: RunOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (input, expected) = common::datagen(dir.path(), name, &cfg);
    let lake = dir.path().join("lake");
    let outcome = common::run(&input, &lake, &options);
    let RunOutcome::Succeeded(manifest) = outcome else {
        panic!("{name}: {outcome:?}")
    };

    let plain = if name.ends_with(".gz") {
        let mut d = flate2::read::MultiGzDecoder::new(std::fs::File::open(&input).unwrap());
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
        v
    } else {
        std::fs::read(&input).unwrap()
    };
    let reference = reference(&plain, &["Retail", "Online", "B2B"]);

    // Kept rows: same lines, same values, same order.
    let orders = read_table(&lake, &ORDERS);
    let mut with_line = order_values();
    with_line.push("source_line");
    let got: Vec<Vec<String>> = columns(&orders, &with_line);
    let want: Vec<Vec<String>> = reference
        .kept
        .iter()
        .map(|r| {
            let mut v = r.values.clone();
            v.push(r.line.to_string());
            v
        })
        .collect();
    assert_eq!(got.len(), want.len(), "{name}: kept rows");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "{name}: first differing kept row");
    }

    // Quarantine: same lines, same reasons, same kept lines for conflicts.
    let q = read_table(&lake, &QUARANTINE);
    let got_q: Vec<(u64, String, Option<u64>)> =
        columns(&q, &["source_line", "reason", "kept_line"])
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].clone(), r[2].parse().ok()))
            .collect();
    assert_eq!(got_q, reference.quarantine, "{name}: quarantine");

    // Counts: engine manifest = reference = datagen's sidecar; nothing lost, checked from Parquet.
    let c = &manifest.counts;
    assert_eq!(
        c.exact_duplicates, reference.exact_duplicates,
        "{name}: duplicates"
    );
    assert_eq!(c.rows_read, reference.rows_read, "{name}: rows read");
    assert_eq!(c.rows_read, expected.rows, "{name}: rows vs datagen");
    assert_eq!(c.rows_written, expected.kept, "{name}: kept vs datagen");
    assert_eq!(
        c.exact_duplicates, expected.exact_duplicates,
        "{name}: duplicates vs datagen"
    );
    assert_eq!(
        c.quarantined_by_reason, expected.quarantined_by_reason,
        "{name}: reasons vs datagen"
    );
    assert_eq!(
        orders.1.len() as u64 + c.exact_duplicates + q.1.len() as u64,
        c.rows_read,
        "{name}: read = written + duplicates + quarantined (from the Parquet files)"
    );
    assert!(manifest.nothing_lost);

    // The fact table mirrors the orders; dimensions hold the last name of each kept client.
    let fact = read_table(&lake, &FACT_ORDERS);
    assert_eq!(
        columns(
            &fact,
            &[
                "order_id",
                "product_id",
                "client_id",
                "units",
                "total_price",
                "source_line"
            ]
        ),
        columns(
            &orders,
            &[
                "order_id",
                "product_id",
                "client_id",
                "product_ccf",
                "total_price",
                "source_line"
            ]
        ),
        "{name}: fact vs orders"
    );
    let mut dim: Vec<(i64, String)> = columns(
        &read_table(&lake, &DIM_CLIENTS),
        &["client_id", "client_name"],
    )
    .into_iter()
    .map(|r| (r[0].parse().unwrap(), r[1].clone()))
    .collect();
    dim.sort();
    let mut want_dim: Vec<(i64, String)> = reference.clients.into_iter().collect();
    want_dim.sort();
    assert_eq!(dim, want_dim, "{name}: dim_clients");
}

fn dirty(seed: u64, rows: u64) -> GenConfig {
    GenConfig {
        seed,
        size: Size::Rows(rows),
        dirt: Dirt::every_kind(0.004),
        ..GenConfig::default()
    }
}

fn small_ranges() -> RunOptions {
    RunOptions {
        threads: 2,
        chunk_bytes: 16 * 1024,
        max_record_bytes: 4096,
        ..common::fixed_options()
    }
}

#[test]
fn every_kind_of_dirt() {
    compare("dirty.csv", dirty(1, 30_000), small_ranges());
}

#[test]
fn typical_dirt_default_options() {
    let cfg = GenConfig {
        seed: 2,
        size: Size::Rows(40_000),
        dirt: Dirt::typical(),
        ..GenConfig::default()
    };
    compare("typical.csv", cfg, common::fixed_options());
}

#[test]
fn crlf_bom_shuffled_and_extra_columns_without_final_newline() {
    let cfg = GenConfig {
        crlf: true,
        bom: true,
        shuffle_columns: true,
        extra_columns: true,
        header_case_noise: true,
        final_newline: false,
        ..dirty(3, 20_000)
    };
    compare("messy.csv", cfg, small_ranges());
}

#[test]
fn gzip_stream_in_small_windows() {
    compare("dirty.csv.gz", dirty(4, 20_000), small_ranges());
}

#[test]
fn single_thread_tiny_ranges() {
    let options = RunOptions {
        threads: 1,
        chunk_bytes: 700,
        max_record_bytes: 1024,
        ..common::fixed_options()
    };
    compare("tiny-ranges.csv", dirty(5, 8_000), options);
}
