//! One fixture per reason code and per file-level error (tests/fixtures/).

use std::path::{Path, PathBuf};

use duff_engine::schema::{ORDERS, QUARANTINE};
use duff_engine::{Manifest, Reason, RunOptions, RunOutcome, RunStatus};

use crate::common::{self, columns, read_table, visible_data};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// What a fixture run produced: the outcome, kept lines, quarantined (line, reason, kept line),
/// and the directory holding the lake.
type FixtureRun = (
    RunOutcome,
    Vec<u64>,
    Vec<(u64, String, String)>,
    tempfile::TempDir,
);

/// Runs a fixture into a fresh lake.
fn run_fixture(rel: &str, options: &RunOptions) -> FixtureRun {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let outcome = common::run(&fixture(rel), &lake, options);
    let kept = columns(&read_table(&lake, &ORDERS), &["source_line"])
        .into_iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    let quarantined = columns(
        &read_table(&lake, &QUARANTINE),
        &["source_line", "reason", "kept_line"],
    )
    .into_iter()
    .map(|r| (r[0].parse().unwrap(), r[1].clone(), r[2].clone()))
    .collect();
    (outcome, kept, quarantined, dir)
}

/// Options that never fail a fixture for its share of bad rows.
fn lenient() -> RunOptions {
    RunOptions {
        max_bad_fraction: 1.0,
        ..RunOptions::default()
    }
}

#[test]
fn every_row_reason_has_a_fixture_and_is_reported_at_its_line() {
    for reason in Reason::ALL {
        let code = reason.code();
        let (outcome, kept, quarantined, _dir) =
            run_fixture(&format!("rows/{code}.csv"), &lenient());
        let m = match outcome {
            RunOutcome::Succeeded(m) => m,
            other => panic!("{code}: {other:?}"),
        };
        let bad_line = if reason == Reason::UnterminatedQuote {
            4
        } else {
            3
        };
        let kept_line = if reason == Reason::KeyConflict {
            "2"
        } else {
            "∅"
        };
        assert_eq!(
            quarantined,
            [(bad_line, code.to_string(), kept_line.to_string())],
            "{code}"
        );
        let expect_kept: Vec<u64> = [2, 3, 4].into_iter().filter(|&l| l != bad_line).collect();
        assert_eq!(kept, expect_kept, "{code}");
        assert_eq!(m.counts.rows_read, 3, "{code}");
        assert_eq!(m.counts.quarantined_by_reason.get(code), Some(&1), "{code}");
        assert!(m.nothing_lost, "{code}");
    }
}

#[test]
fn quarantine_keeps_the_raw_text_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    common::run(
        &fixture("rows/invalid_product_price.csv"),
        &lake,
        &lenient(),
    );
    let q = read_table(&lake, &QUARANTINE);
    let row = &columns(&q, &["detail", "raw_text"])[0];
    assert!(
        row[0].contains("product_price") && row[0].contains("12.34567"),
        "{}",
        row[0]
    );
    assert!(row[1].starts_with("1002,Barney Gumble,5002,"), "{}", row[1]);

    let lake2 = dir.path().join("lake2");
    common::run(&fixture("rows/invalid_utf8.csv"), &lake2, &lenient());
    let raw = std::fs::read(fixture("rows/invalid_utf8.csv")).unwrap();
    let bad_line = raw.split(|&b| b == b'\n').nth(2).unwrap();
    let q = read_table(&lake2, &QUARANTINE);
    let stored = &columns(&q, &["raw"])[0][0];
    let hex: String = bad_line.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        stored, &hex,
        "the raw bytes are kept exactly, even when they are not UTF-8"
    );
}

#[test]
fn an_exact_duplicate_is_dropped_and_counted() {
    let (outcome, kept, quarantined, _dir) = run_fixture("rows/exact_duplicate.csv", &lenient());
    let RunOutcome::Succeeded(m) = outcome else {
        panic!()
    };
    assert_eq!(kept, [2, 4]);
    assert!(quarantined.is_empty());
    assert_eq!(m.counts.exact_duplicates, 1);
    // The manifest records what the dedup tables held: two keys, in memory of their own.
    assert_eq!(m.dedup_keys, 2);
    assert!(m.dedup_heap_bytes > 0);
}

#[test]
fn a_stray_quote_does_not_swallow_the_rows_after_it() {
    let (_, kept, quarantined, _dir) =
        run_fixture("files/stray_quote_before_quoted_rows.csv", &lenient());
    assert_eq!(kept, [2, 4, 5]);
    assert_eq!(quarantined, [(3, "bad_quoting".into(), "∅".into())]);
}

#[test]
fn an_unterminated_quote_mid_file_costs_one_line() {
    let (_, kept, quarantined, _dir) =
        run_fixture("files/unterminated_quote_mid_file.csv", &lenient());
    assert_eq!(kept, [2, 4, 5, 6]);
    assert_eq!(quarantined, [(3, "unterminated_quote".into(), "∅".into())]);
}

#[test]
fn quoted_newlines_escapes_crlf_bom_blank_lines_and_column_order() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    common::run(
        &fixture("files/quoted_newlines.csv"),
        &lake,
        &RunOptions::default(),
    );
    let rows = columns(
        &read_table(&lake, &ORDERS),
        &["client_name", "product_description", "source_line"],
    );
    assert_eq!(
        rows[0],
        ["Barney's\nBowl-a-rama", "Duff \"Special\" Lager", "2"]
    );
    assert_eq!(
        rows[1][2], "4",
        "the record after a two-line record starts on line 4"
    );

    let (outcome, kept, _, _d) = run_fixture(
        "files/crlf_bom_no_final_newline.csv",
        &RunOptions::default(),
    );
    assert_eq!(kept, [2, 3]);
    assert_eq!(outcome.manifest().counts.rows_read, 2);

    let (outcome, kept, _, _d) = run_fixture("files/blank_lines.csv", &RunOptions::default());
    // Lines: 1 header, 2 blank, 3 row, 4 "\r" (blank), 5 blank, 6 row, 7 and 8 blank.
    assert_eq!(
        kept,
        [3, 6],
        "blank lines are skipped but still counted as lines"
    );
    assert_eq!(outcome.manifest().counts.blank_lines, 5);
    assert_eq!(outcome.manifest().counts.rows_read, 2);

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let m = common::run(
        &fixture("files/header_any_order_extra_columns.csv"),
        &lake,
        &RunOptions::default(),
    );
    assert_eq!(m.manifest().extra_columns, ["Notes"]);
    let rows = columns(
        &read_table(&lake, &ORDERS),
        &["client_id", "status", "point_of_sale_channel"],
    );
    assert_eq!(
        rows,
        [["1001", "delivered", "Retail"]],
        "canonical spellings are stored"
    );
}

fn failed(rel: &str, options: &RunOptions) -> (Manifest, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    match common::run(&fixture(rel), &lake, options) {
        RunOutcome::Failed(m) => {
            assert_eq!(m.status, RunStatus::Failed);
            assert_eq!(
                visible_data(&lake),
                Vec::<String>::new(),
                "{rel}: a failed run publishes no data"
            );
            let committed = duff_engine::LocalLake::open(&lake)
                .unwrap()
                .read_manifest(&m.run_id)
                .unwrap();
            assert_eq!(
                committed.as_ref(),
                Some(&m),
                "{rel}: the failed manifest is committed"
            );
            assert!(fixture(rel).exists(), "the input is left in place");
            (m, dir)
        }
        other => panic!("{rel}: expected a failed run, got {other:?}"),
    }
}

/// Two bad rows of three: a small file's good row lands and its bad ones are quarantined by
/// default; once bad rows reach --min-bad-rows, their share fails the file.
#[test]
fn the_share_of_bad_rows_fails_a_file_only_past_the_minimum_count() {
    let rel = "files/too_many_bad_rows.csv";
    let (outcome, kept, quarantined, _dir) = run_fixture(rel, &RunOptions::default());
    assert!(matches!(outcome, RunOutcome::Succeeded(_)), "{outcome:?}");
    assert_eq!(kept.len(), 1);
    assert_eq!(quarantined.len(), 2);
    let strict = RunOptions {
        min_bad_rows: 2,
        ..RunOptions::default()
    };
    let (m, _dir) = failed(rel, &strict);
    assert_eq!(m.error_code.as_deref(), Some("too_many_bad_rows"));
    let error = m.error.unwrap();
    assert!(
        error.contains("2 of 3 rows") && error.contains("applied from 2 bad rows"),
        "{error}"
    );
    assert_eq!(m.counts.quarantined, 2, "the counts say what was found");
}

#[test]
fn file_level_errors_fail_the_run_with_a_clear_reason() {
    for (rel, code, says) in [
        ("files/empty.csv", "empty_file", "header row is required"),
        ("files/bom_only.csv", "empty_file", "empty"),
        ("files/blank_only.csv", "empty_file", "empty"),
        ("files/missing_column.csv", "missing_columns", "product_ccf"),
        ("files/duplicate_column.csv", "duplicate_column", "status"),
        ("files/header_not_utf8.csv", "header_not_utf8", "UTF-8"),
        (
            "files/header_quoting.csv",
            "header_quoting",
            "line 1) is not valid CSV: a quote inside an unquoted name",
        ),
    ] {
        let (m, _dir) = failed(rel, &RunOptions::default());
        assert_eq!(m.error_code.as_deref(), Some(code), "{rel}");
        let error = m.error.unwrap();
        assert!(error.contains(says), "{rel}: {error}");
    }
}

#[test]
fn a_line_longer_than_the_limit_fails_the_file_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.csv");
    let header = std::fs::read(fixture("files/header_only.csv")).unwrap();
    let mut data = header.clone();
    data.extend_from_slice(b"1001,Moe,5001,10001,Duff,1.25,24,0.355,Retail,delivered\n");
    data.extend_from_slice(
        format!(
            "1002,{},5002,10001,Duff,1.25,24,0.355,Retail,delivered\n",
            "x".repeat(500)
        )
        .as_bytes(),
    );
    std::fs::write(&input, data).unwrap();
    let lake = dir.path().join("lake");
    let options = RunOptions {
        max_record_bytes: 200,
        ..RunOptions::default()
    };
    let RunOutcome::Failed(m) = common::run(&input, &lake, &options) else {
        panic!()
    };
    assert_eq!(m.error_code.as_deref(), Some("line_too_long"));
    assert!(m.error.unwrap().contains("line 3"));
}

#[test]
fn a_header_only_file_is_a_successful_empty_run() {
    let (outcome, kept, quarantined, dir) =
        run_fixture("files/header_only.csv", &RunOptions::default());
    let RunOutcome::Succeeded(m) = outcome else {
        panic!()
    };
    assert!(kept.is_empty() && quarantined.is_empty());
    assert_eq!(m.counts.rows_read, 0);
    assert!(m.outputs.is_empty());
    assert_eq!(visible_data(&dir.path().join("lake")), Vec::<String>::new());
}

#[test]
fn a_missing_input_is_an_error_not_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = duff_engine::LocalLake::open(dir.path().join("lake")).unwrap();
    let err = duff_engine::run_local(
        &dir.path().join("nope.csv"),
        &lake,
        &RunOptions::default(),
        &|_| {},
    )
    .unwrap_err();
    assert!(!err.is_file_level());
    assert!(err.to_string().contains("nope.csv"), "{err}");
}

#[test]
fn a_truncated_gzip_stream_fails_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = duff_datagen::GenConfig {
        size: duff_datagen::Size::Rows(20_000),
        ..Default::default()
    };
    let (input, _) = common::datagen(dir.path(), "orders.csv.gz", &cfg);
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();
    let lake = dir.path().join("lake");
    let RunOutcome::Failed(m) = common::run(&input, &lake, &RunOptions::default()) else {
        panic!()
    };
    assert_eq!(m.error_code.as_deref(), Some("gzip_corrupt"));
    assert!(m.error.unwrap().contains("orders.csv.gz"));
    assert_eq!(visible_data(&lake), Vec::<String>::new());
}

/// A gzip bomb: a file that expands far past what exports do fails as a file, with what it
/// was allowed, before its expansion is processed; the same file within its allowance lands.
#[test]
fn a_gzip_input_expanding_past_its_allowance_fails_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::best(),
    );
    use std::io::Write;
    writeln!(enc, "client_id,client_name,order_id,product_id,product_description,product_price,product_ccf,product_volume,point_of_sale_channel,status").unwrap();
    for _ in 0..40_000 {
        writeln!(
            enc,
            "1001,Moe,5001,10001,Duff,1.25,24,0.355,Retail,delivered"
        )
        .unwrap();
    }
    enc.finish().unwrap();
    let compressed = std::fs::metadata(&path).unwrap().len();
    let lake = dir.path().join("lake");
    let bomb = RunOptions {
        max_gzip_ratio: 10,
        gzip_allowance_bytes: 64 << 10,
        ..RunOptions::default()
    };
    let RunOutcome::Failed(m) = common::run(&path, &lake, &bomb) else {
        panic!("the expansion must fail the file")
    };
    assert_eq!(m.error_code.as_deref(), Some("gzip_expansion"));
    let error = m.error.unwrap();
    let limit = (compressed * 10).max(64 << 10);
    assert!(
        error.contains(&format!("expands past {limit} bytes"))
            && error.contains("--max-gzip-ratio"),
        "{error}"
    );
    assert_eq!(visible_data(&lake), Vec::<String>::new());
    // Within its allowance (the default ratio, or the 64 MiB every input may reach), the
    // same file is a run like any other: its 39,999 duplicates counted.
    let lake = dir.path().join("lake2");
    let RunOutcome::Succeeded(m) = common::run(&path, &lake, &RunOptions::default()) else {
        panic!()
    };
    assert_eq!(m.counts.rows_read, 40_000);
    assert_eq!(m.counts.exact_duplicates, 39_999);
    assert_eq!(m.dedup_keys, 1);
}
