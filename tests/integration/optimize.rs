//! `duff lake optimize`: compacting the current state's small files changes no row, keeps the
//! marts current, is completed by the next fold after a crash, is safe while runs commit, and
//! leaves later folds (a re-delivery, a `--force` re-run of a compacted run) exact.

use std::path::{Path, PathBuf};
use std::process::Command;

use duff_datagen::{Dirt, GenConfig, Size};

use crate::common::{self, delta_files, delta_rows};
use crate::guarantees::{assert_encoded_as_declared, encodings_by_column};
use crate::lake::{
    assert_check_finds, assert_check_healthy, derive_csv, duff_lake, duff_run, latest_of_history,
    must_succeed,
};
use crate::marts::assert_marts_match_history;

/// Small inputs of distinct order ids (one seed each), as a Lambda-sized upload would be.
fn small_inputs(dir: &Path, seeds: std::ops::Range<u64>) -> Vec<PathBuf> {
    seeds
        .map(|seed| {
            let cfg = GenConfig {
                seed,
                size: Size::Rows(400),
                clients: 40,
                products: 12,
                dirt: Dirt::typical(),
                ..GenConfig::default()
            };
            common::datagen(dir, &format!("small-{seed}.csv"), &cfg).0
        })
        .collect()
}

/// Runs each input into `lake`, one minute apart, all on one day (the tests' `pa_date`).
fn run_all(lake: &Path, inputs: &[PathBuf], first_minute: usize) {
    for (i, input) in inputs.iter().enumerate() {
        let at = format!("2026-11-23T10:{:02}:00Z", first_minute + i);
        must_succeed(duff_run(input, lake, None, &["--ingested-at", &at]));
    }
}

/// `order_lines` is the latest version of every line of history, every mart and current
/// dimension its recomputation, and `duff lake check` agrees.
fn assert_exact_and_healthy(lake: &Path) {
    assert_eq!(
        delta_rows(lake, &duff_delta::ORDER_LINES),
        latest_of_history(lake)
    );
    assert_marts_match_history(lake);
    assert_check_healthy(lake);
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

#[test]
fn optimize_compacts_small_files_without_changing_a_row_and_later_folds_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    let inputs = small_inputs(dir.path(), 101..107);
    run_all(&lake, &inputs, 0);
    let lines_before = sorted(delta_rows(&lake, &duff_delta::ORDER_LINES));
    let folds_before = sorted(delta_rows(&lake, &duff_delta::FOLDS));
    assert_eq!(delta_files(&lake, &duff_delta::ORDER_LINES).len(), 6);
    assert_eq!(delta_files(&lake, &duff_delta::FOLDS).len(), 6);

    let out = duff_lake(&["optimize", "--lake", lake_arg, "--row-group-rows", "300"]);
    must_succeed(out.clone());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("order_lines pa_date=2026-11-22: 6 files")
            && report.contains("folds: 6 files"),
        "{report}"
    );
    let compacted = delta_files(&lake, &duff_delta::ORDER_LINES);
    assert_eq!(compacted.len(), 1, "{compacted:?}");
    assert_eq!(delta_files(&lake, &duff_delta::FOLDS).len(), 1);
    assert_eq!(
        sorted(delta_rows(&lake, &duff_delta::ORDER_LINES)),
        lines_before
    );
    assert_eq!(sorted(delta_rows(&lake, &duff_delta::FOLDS)), folds_before);
    // Clustered by client, each row group sorted by key.
    assert!(assert_clustered(&lake.join(&compacted[0])) >= 4);
    // The marts were committed again with the compacted version: still current.
    assert_check_healthy(&lake);
    assert_marts_match_history(&lake);

    let out = duff_lake(&["optimize", "--lake", lake_arg]);
    must_succeed(out.clone());
    assert!(out.stdout.is_empty(), "nothing left to compact");

    // A `--force` re-run of a compacted run: its earlier lines are in the compacted file, and
    // go, even though they look newer (the re-run is told an earlier time).
    must_succeed(duff_run(
        &inputs[2],
        &lake,
        None,
        &["--force", "--ingested-at", "2026-11-23T09:00:00Z"],
    ));
    assert_exact_and_healthy(&lake);
    // A re-delivery of another compacted run's lines with a new status.
    let redelivery = dir.path().join("redelivery.csv");
    derive_csv(&inputs[4], &redelivery, |i, header, f| {
        let status = crate::lake::column_index(header, "status");
        f[status] = "broken".into();
        f.len() == header.len() && i % 3 == 0
    });
    must_succeed(duff_run(
        &redelivery,
        &lake,
        None,
        &["--ingested-at", "2026-11-25T10:00:00Z"],
    ));
    assert_exact_and_healthy(&lake);
    // The fold rewrote the clustered file without the superseded lines, its row groups apart.
    let rewritten: Vec<String> = delta_files(&lake, &duff_delta::ORDER_LINES)
        .into_iter()
        .filter(|f| f.contains("/cluster-"))
        .collect();
    assert_eq!(rewritten.len(), 1, "{rewritten:?}");
    assert_ne!(rewritten[0], compacted[0]);
    assert!(assert_clustered(&lake.join(&rewritten[0])) >= 4);

    // The files the lake writes itself are encoded as their tables declare, as a run's are:
    // the compacted file, the fold's rewrite of it, every mart's.
    for file in [&compacted[0], &rewritten[0]] {
        let encodings = encodings_by_column(&[lake.join(file)]);
        assert_encoded_as_declared(&duff_engine::schema::ORDERS, &encodings);
    }
    for def in &duff_delta::tables::MARTS {
        let files: Vec<PathBuf> = delta_files(&lake, def)
            .iter()
            .map(|f| lake.join(f))
            .collect();
        let encodings = encodings_by_column(&files);
        assert_encoded_as_declared(def.engine_table.unwrap(), &encodings);
    }
}

/// Asserts that the row groups of the `order_lines` file at `path` hold ascending, disjoint
/// ranges of clients, each sorted by `(order_id, product_id)`; returns how many it has.
fn assert_clustered(path: &Path) -> usize {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let open = || ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap());
    let groups = open().unwrap().metadata().num_row_groups();
    let mut last_client = i64::MIN;
    for group in 0..groups {
        let mut rows: Vec<(i64, i64, i64)> = Vec::new();
        for batch in open()
            .unwrap()
            .with_row_groups(vec![group])
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let int = |name: &str| batch[name].as_primitive::<Int64Type>().clone();
            let (clients, orders, products) =
                (int("client_id"), int("order_id"), int("product_id"));
            rows.extend(
                (0..batch.num_rows())
                    .map(|i| (clients.value(i), orders.value(i), products.value(i))),
            );
        }
        let keys: Vec<(i64, i64)> = rows.iter().map(|r| (r.1, r.2)).collect();
        assert!(keys.is_sorted(), "row group {group} of {}", path.display());
        let (lo, hi) = rows.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
            (lo.min(r.0), hi.max(r.0))
        });
        assert!(
            lo > last_client,
            "row group {group} overlaps the clients before it"
        );
        last_client = hi;
    }
    groups
}

#[test]
fn a_crash_after_compaction_leaves_the_marts_behind_until_the_next_fold() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    run_all(&lake, &small_inputs(dir.path(), 201..204), 0);
    let lines_before = sorted(delta_rows(&lake, &duff_delta::ORDER_LINES));
    let out = Command::new(env!("CARGO_BIN_EXE_duff"))
        .args(["lake", "optimize", "--lake", lake_arg])
        .env("DUFF_FAILPOINT", "before_optimize_marts_commit")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(delta_files(&lake, &duff_delta::ORDER_LINES).len(), 1);
    assert_eq!(
        sorted(delta_rows(&lake, &duff_delta::ORDER_LINES)),
        lines_before
    );
    assert_check_finds(&lake, "the marts reflect order_lines version");
    must_succeed(duff_lake(&["fold", "--lake", lake_arg]));
    assert_check_healthy(&lake);
    assert_marts_match_history(&lake);
}

#[test]
fn optimize_while_runs_commit_and_fold_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    let inputs = small_inputs(dir.path(), 301..309);
    run_all(&lake, &inputs[..5], 0);
    let spawn_run = |input: &Path, minute: usize| {
        Command::new(env!("CARGO_BIN_EXE_duff"))
            .args([
                "run",
                input.to_str().unwrap(),
                "--lake",
                lake_arg,
                "--no-progress",
            ])
            .args(["--pa-date", "2026-11-23"])
            .args(["--ingested-at", &format!("2026-11-23T11:{minute:02}:00Z")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children: Vec<std::process::Child> = inputs[5..]
        .iter()
        .enumerate()
        .map(|(i, input)| spawn_run(input, i))
        .collect();
    children.push(
        Command::new(env!("CARGO_BIN_EXE_duff"))
            .args(["lake", "optimize", "--lake", lake_arg])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_exact_and_healthy(&lake);
}

#[test]
fn a_target_under_a_mib_or_a_missing_lake_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    let out = duff_lake(&["optimize", "--lake", lake_arg]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no lake at"),
        "{}",
        crate::venv::text(&out)
    );
    assert!(!lake.exists(), "a mistyped path does not become a lake");
    run_all(&lake, &small_inputs(dir.path(), 401..403), 0);
    let out = duff_lake(&["optimize", "--lake", lake_arg, "--target-mib", "0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("less than 1 MiB"),
        "{}",
        crate::venv::text(&out)
    );
    assert_eq!(
        delta_files(&lake, &duff_delta::ORDER_LINES).len(),
        2,
        "nothing compacted"
    );
}
