//! The lake's tables are Delta tables: exactly once per run and table, whatever crashes, races
//! and retries; read back by an independent reader (Python `deltalake`).

use std::path::{Path, PathBuf};
use std::process::Command;

use duff_datagen::{Dirt, GenConfig, Size};
use duff_delta::{COMMIT_ORDER, DeltaLake, DeltaTableDef};
use duff_engine::storage::Lake;
use duff_engine::{RunOptions, RunOutcome};

use crate::common::{self, delta_files, delta_rows, history_tables};

const DAY: &str = "2026-11-22";

pub(crate) fn sample(dir: &Path, rows: u64) -> PathBuf {
    sample_of(dir, "orders.csv", 17, rows, Dirt::typical())
}

/// A datagen file `name` of 200 clients and 30 products: its seed gives its order-id range.
pub(crate) fn sample_of(dir: &Path, name: &str, seed: u64, rows: u64, dirt: Dirt) -> PathBuf {
    let cfg = GenConfig {
        seed,
        size: Size::Rows(rows),
        clients: 200,
        products: 30,
        dirt,
        ..GenConfig::default()
    };
    common::datagen(dir, name, &cfg).0
}

/// `duff run` into `lake` with a fixed partition and timestamp, killed at `failpoint` if given.
pub(crate) fn duff_run(
    input: &Path,
    lake: &Path,
    failpoint: Option<&str>,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duff"));
    cmd.args([
        "run",
        input.to_str().unwrap(),
        "--lake",
        lake.to_str().unwrap(),
    ])
    .arg("--no-progress")
    .args(extra);
    if !extra.contains(&"--ingested-at") {
        cmd.args(["--ingested-at", "2026-11-22T10:00:00Z"]);
    }
    if !extra.contains(&"--pa-date") {
        cmd.args(["--pa-date", DAY]);
    }
    if let Some(f) = failpoint {
        cmd.env("DUFF_FAILPOINT", f);
    }
    cmd.output().unwrap()
}

pub(crate) fn must_succeed(out: std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `txn` actions for `run_id` in a table's log: one per commit of the run.
pub(crate) fn commits_of_run(lake: &Path, def: &DeltaTableDef, run_id: &str) -> usize {
    let log = lake.join(def.prefix).join("_delta_log");
    let mut n = 0;
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            n += text
                .lines()
                .filter(|l| l.contains("\"txn\"") && l.contains(&format!("\"appId\":\"{run_id}\"")))
                .count();
        }
    }
    n
}

/// Every table of the commit order holds exactly one commit of the run.
pub(crate) fn assert_every_table_commits_once(lake: &Path, run_id: &str, context: &str) {
    for def in COMMIT_ORDER.iter() {
        assert_eq!(
            commits_of_run(lake, def, run_id),
            1,
            "{context}: {}",
            def.name
        );
    }
}

fn only_run_id(lake: &Path) -> String {
    let runs = DeltaLake::open_local(lake).unwrap().runs().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].run_id.clone()
}

/// A lake loads a table again from the version it last loaded (only the newer commits): it
/// must still see what another process committed since.
#[test]
fn a_table_loaded_again_holds_what_another_process_committed_since() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 2_000);
    let root = dir.path().join("lake");
    let orders = &COMMIT_ORDER[1];
    let lake = DeltaLake::open_local(&root).unwrap();
    let before = lake.load(orders).unwrap();
    assert!(delta_rows(&root, orders).is_empty());

    must_succeed(duff_run(&input, &root, None, &[]));
    let after = lake.load(orders).unwrap();
    assert!(
        after.version() > before.version(),
        "{:?} after {:?}",
        after.version(),
        before.version()
    );
    let (files_before, files_after) = (
        before.snapshot().unwrap().log_data().iter().count(),
        after.snapshot().unwrap().log_data().iter().count(),
    );
    assert_eq!(files_before, 0);
    assert!(files_after > 0);
    assert_eq!(files_after, delta_files(&root, orders).len());
}

#[test]
fn a_crash_between_any_two_commits_is_completed_by_the_retry_and_readers_see_whole_runs() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 5_000);
    let clean = dir.path().join("clean");
    must_succeed(duff_run(&input, &clean, None, &[]));
    let run_id = only_run_id(&clean);
    let expected: Vec<_> = history_tables().map(|d| delta_rows(&clean, d)).collect();
    assert!(
        expected.iter().all(|rows| !rows.is_empty()),
        "every table has rows"
    );

    // Before and during the files' publication, then after each table's commit.
    let points = ["before_publish", "mid_publish"]
        .map(String::from)
        .into_iter()
        .chain(history_tables().map(|d| format!("after_commit_{}", d.name)));
    for (n, point) in points.enumerate() {
        let lake = dir.path().join(format!("crashed-{n}"));
        let out = duff_run(&input, &lake, Some(&point), &[]);
        assert!(
            !out.status.success(),
            "{point}: the failpoint must kill the run"
        );
        // In the gap: no table holds part of the run; before its commits none holds any of
        // it; after quarantine's (the first) only quarantine does; after another table's that
        // table and quarantine hold all of it, the others (committed side by side) all or
        // nothing; the run is not recorded.
        let crashed_after =
            history_tables().position(|d| point == format!("after_commit_{}", d.name));
        for (i, def) in history_tables().enumerate() {
            let rows = delta_rows(&lake, def);
            match crashed_after {
                None => assert!(rows.is_empty(), "{point}: {} holds nothing yet", def.name),
                Some(0) if i > 0 => {
                    assert!(rows.is_empty(), "{point}: {} holds nothing yet", def.name)
                }
                Some(at) if i == 0 || i == at => assert_eq!(
                    rows, expected[i],
                    "{point}: {} holds the whole run",
                    def.name
                ),
                Some(_) => assert!(
                    rows.is_empty() || rows == expected[i],
                    "{point}: {} holds part of the run",
                    def.name
                ),
            }
        }
        assert!(
            DeltaLake::open_local(&lake)
                .unwrap()
                .runs()
                .unwrap()
                .is_empty(),
            "{point}"
        );

        must_succeed(duff_run(&input, &lake, None, &[]));
        for (i, def) in history_tables().enumerate() {
            assert_eq!(
                delta_rows(&lake, def),
                expected[i],
                "{point}: {} after the retry",
                def.name
            );
            assert_eq!(
                commits_of_run(&lake, def, &run_id),
                1,
                "{point}: {}",
                def.name
            );
        }
        assert_eq!(only_run_id(&lake), run_id);
    }
}

#[test]
fn concurrent_attempts_of_one_run_commit_each_table_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 5_000);
    let options = common::fixed_options();
    let clean = dir.path().join("clean");
    let RunOutcome::Succeeded(m) = common::run_delta(&input, &clean, &options) else {
        panic!("the clean run succeeds")
    };
    for round in 0..3 {
        let lake = dir.path().join(format!("raced-{round}"));
        DeltaLake::open_local(&lake).unwrap();
        let barrier = std::sync::Barrier::new(3);
        let outcomes: Vec<RunOutcome> = std::thread::scope(|s| {
            let attempts: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let lake = DeltaLake::open_local(&lake).unwrap();
                        let source = duff_engine::input::LocalInput::open(&input).unwrap();
                        barrier.wait();
                        duff_engine::run(&source, &lake, &options, &|_| {}).unwrap()
                    })
                })
                .collect();
            attempts.into_iter().map(|a| a.join().unwrap()).collect()
        });
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, RunOutcome::Succeeded(_) | RunOutcome::Skipped(_))),
            "{outcomes:?}"
        );
        assert_every_table_commits_once(&lake, &m.run_id, &format!("round {round}"));
        for def in history_tables() {
            assert_eq!(
                delta_rows(&lake, def),
                delta_rows(&clean, def),
                "round {round}: {}",
                def.name
            );
        }
        assert_eq!(only_run_id(&lake), m.run_id);
    }
}

/// Today's defect: a retry whose `pa_date` differs (an event and a backfill derive it from
/// different clocks) put the rest of the run into another partition, and readers saw its rows
/// twice. The retry now keeps the partition the run was first committed with.
#[test]
fn a_retry_with_another_pa_date_keeps_the_partition_the_run_was_committed_with() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 3_000);
    let clean = dir.path().join("clean");
    must_succeed(duff_run(&input, &clean, None, &[]));
    let lake = dir.path().join("lake");
    let out = duff_run(&input, &lake, Some("after_commit_orders"), &[]);
    assert!(!out.status.success());
    must_succeed(duff_run(&input, &lake, None, &["--pa-date", "2026-11-23"]));
    for def in history_tables() {
        let rows = delta_rows(&lake, def);
        assert!(
            rows.iter().all(|r| r.last().unwrap() == DAY),
            "{}: one partition",
            def.name
        );
        assert_eq!(rows, delta_rows(&clean, def), "{}: the run once", def.name);
    }
    let runs = DeltaLake::open_local(&lake).unwrap().runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].pa_date, DAY,
        "the run records the partition it was committed with"
    );
}

/// Today's defect: two attempts of one run shared `_staging/<run_id>`, so a second attempt
/// wiped (or published) the first one's half-written files.
#[test]
fn two_attempts_of_one_run_never_share_their_staged_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = DeltaLake::open_local(dir.path()).unwrap();
    let run_id = "0123456789abcdef";
    let (a, b) = (lake.attempt_stem(run_id), lake.attempt_stem(run_id));
    assert_ne!(a, b, "each attempt has its own stem");
    assert!(a.starts_with(run_id) && b.starts_with(run_id));
    let first = lake.stage(&a).unwrap();
    let rel = format!("orders/pa_date={DAY}/{a}-0.parquet");
    let mut file = first.create(&rel).unwrap();
    std::io::Write::write_all(&mut file, b"half of a file").unwrap();
    let _second = lake.stage(&b).unwrap();
    std::io::Write::write_all(&mut file, b", the other half").unwrap();
    let bytes = file.finish().unwrap();
    first
        .publish(&[duff_engine::writer::WrittenFile {
            table: "orders".into(),
            path: rel.clone(),
            rows: 0,
            bytes,
        }])
        .expect("the second attempt left the first one's staging alone");
    assert_eq!(
        std::fs::read(dir.path().join(&rel)).unwrap(),
        b"half of a file, the other half"
    );
}

/// Today's defect: publishing removed "stale parts" of the run id, which could be a committed
/// attempt's files, so a losing attempt with fewer parts deleted committed data.
#[test]
fn a_later_attempt_never_deletes_a_committed_attempts_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 100_000);
    let lake_dir = dir.path().join("lake");
    must_succeed(duff_run(
        &input,
        &lake_dir,
        None,
        &["--file-mib", "1", "--row-group-rows", "8192"],
    ));
    let orders = &COMMIT_ORDER[1];
    assert_eq!(orders.name, "orders");
    let files = delta_files(&lake_dir, orders);
    assert!(files.len() > 1, "several parts: {files:?}");
    let before = delta_rows(&lake_dir, orders);

    // A second attempt of the same run publishes a single part, as one with other options would.
    let lake = DeltaLake::open_local(&lake_dir).unwrap();
    let run_id = only_run_id(&lake_dir);
    let stem = lake.attempt_stem(&run_id);
    let stage = lake.stage(&stem).unwrap();
    let rel = format!("orders/pa_date={DAY}/{stem}-0.parquet");
    let mut file = stage.create(&rel).unwrap();
    std::io::Write::write_all(&mut file, &std::fs::read(lake_dir.join(&files[0])).unwrap())
        .unwrap();
    let bytes = file.finish().unwrap();
    stage
        .publish(&[duff_engine::writer::WrittenFile {
            table: "orders".into(),
            path: rel,
            rows: 0,
            bytes,
        }])
        .unwrap();
    for f in &files {
        assert!(lake_dir.join(f).exists(), "{f} is still there");
    }
    assert_eq!(delta_rows(&lake_dir, orders), before);
}

#[test]
fn force_replaces_the_run_in_every_table_and_skipping_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    must_succeed(duff_run(&input, &lake, None, &[]));
    let first: Vec<_> = history_tables().map(|d| delta_rows(&lake, d)).collect();
    let files: Vec<_> = history_tables().map(|d| delta_files(&lake, d)).collect();
    let out = duff_run(&input, &lake, None, &["--json"]);
    must_succeed(out);
    assert_eq!(
        files,
        history_tables()
            .map(|d| delta_files(&lake, d))
            .collect::<Vec<_>>(),
        "skipped"
    );
    must_succeed(duff_run(&input, &lake, None, &["--force"]));
    for (i, def) in history_tables().enumerate() {
        assert_eq!(
            delta_rows(&lake, def),
            first[i],
            "{}: the run once",
            def.name
        );
        let now = delta_files(&lake, def);
        assert!(
            now.iter().all(|f| !files[i].contains(f)),
            "{}: new files replace the old",
            def.name
        );
    }
    assert_eq!(
        DeltaLake::open_local(&lake).unwrap().runs().unwrap().len(),
        1
    );
    // The replaced run is folded again: the current state follows its new files.
    let current = delta_files(&lake, &duff_delta::ORDER_LINES);
    let name = |p: &String| {
        p.rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".parquet")
            .to_string()
    };
    let replaced: Vec<String> = files[1].iter().map(name).collect();
    assert!(!current.is_empty());
    for f in &current {
        let n = name(f);
        assert!(
            !replaced.iter().any(|old| n.starts_with(old.as_str())),
            "{f} is of the replaced files"
        );
    }
    assert_eq!(
        delta_rows(&lake, &duff_delta::ORDER_LINES),
        latest_of_history(&lake)
    );
}

/// A lake written by the earlier version (engine files, `_runs/` manifests) is refused until
/// converted; `duff lake convert` commits its runs' files as they are.
#[test]
fn a_lake_in_the_layout_before_delta_is_refused_then_converted_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 3_000);
    let b = dir.path().join("redelivery.csv");
    derive_csv(&a, &b, |i, header, f| {
        let status = column_index(header, "status");
        f[status] = "delivered".into();
        f.len() == header.len() && i % 3 == 0
    });
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "order_id,status\n1,created\n").unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    // The earlier layout: the engine's own lake, a manifest per run.
    let legacy = |input: &Path, at: &str| {
        let options = RunOptions {
            ingested_at: Some(at.parse().unwrap()),
            ..common::fixed_options()
        };
        common::run(input, &lake, &options)
    };
    legacy(&a, "2026-11-22T10:00:00Z");
    legacy(&b, "2026-11-23T10:00:00Z");
    assert!(matches!(
        legacy(&bad, "2026-11-23T11:00:00Z"),
        RunOutcome::Failed(_)
    ));
    let (_, legacy_orders) = common::read_table(&lake, &duff_engine::schema::ORDERS);

    let err = DeltaLake::open_local(&lake).err().expect("refused");
    assert!(
        err.to_string().contains("duff lake convert --lake"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_duff"))
        .args(["run", a.to_str().unwrap(), "--lake", lake_arg])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("before Delta tables"));

    let out = duff_lake(&["convert", "--lake", lake_arg]);
    assert!(out.status.success(), "{}", crate::venv::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 run(s) converted"));
    let mut converted: Vec<Vec<String>> = delta_rows(&lake, &COMMIT_ORDER[1])
        .into_iter()
        .map(|mut r| {
            r.pop();
            r
        })
        .collect();
    let mut before = legacy_orders;
    converted.sort();
    before.sort();
    assert_eq!(converted, before, "every committed row, as it was");
    assert_eq!(
        DeltaLake::open_local(&lake).unwrap().runs().unwrap().len(),
        3
    );
    assert_eq!(
        delta_rows(&lake, &duff_delta::ORDER_LINES),
        latest_of_history(&lake)
    );
    assert_eq!(
        duff_lake(&["check", "--lake", lake_arg]).status.code(),
        Some(0)
    );
    // Converting again changes nothing; the lake takes new runs as any other.
    let files = delta_files(&lake, &COMMIT_ORDER[1]);
    must_succeed(duff_lake(&["convert", "--lake", lake_arg]));
    assert_eq!(delta_files(&lake, &COMMIT_ORDER[1]), files);
    let c = dir.path().join("later.csv");
    derive_csv(&a, &c, |i, header, f| f.len() == header.len() && i % 5 == 0);
    must_succeed(duff_run(
        &c,
        &lake,
        None,
        &["--ingested-at", "2026-11-24T10:00:00Z"],
    ));
    assert_eq!(
        delta_rows(&lake, &duff_delta::ORDER_LINES),
        latest_of_history(&lake)
    );
}

/// Python's `deltalake` (delta-rs's Python reader, installed from PyPI) reads every table:
/// exactly the rows of the committed files, never those of a crashed attempt's leftovers.
#[test]
fn an_independent_delta_reader_sees_exactly_the_committed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 5_000);
    let lake = dir.path().join("lake");
    // A crashed attempt leaves a published part behind (never committed), then the retry.
    assert!(
        !duff_run(&input, &lake, Some("mid_publish"), &[])
            .status
            .success()
    );
    must_succeed(duff_run(&input, &lake, None, &[]));
    let python = crate::venv::tool_python("deltalake", "import deltalake, pyarrow");
    let script = r#"
import json, os, sys
from urllib.parse import unquote, urlparse
from deltalake import DeltaTable
import pyarrow.compute as pc
out = {}
for prefix in sys.argv[2:]:
    root = os.path.realpath(sys.argv[1] + "/" + prefix)
    dt = DeltaTable(root)
    t = dt.to_pyarrow_table()
    files = [os.path.relpath(unquote(urlparse(u).path) if "://" in u else u, root) for u in dt.file_uris()]
    entry = {"rows": t.num_rows, "files": sorted(files)}
    for col in ("total_price", "total_volume"):
        if col in t.column_names:
            entry[col] = str(pc.sum(t[col]).as_py())
    if "pa_date" in t.column_names:
        entry["pa_date"] = sorted(set(t["pa_date"].to_pylist()))
    out[prefix] = entry
print(json.dumps(out))
sys.stdout.flush()
# Skip interpreter teardown: pyarrow's and deltalake's native threads have been seen to abort
# it ("terminate called without an active exception") after every answer was printed.
os._exit(0)
"#;
    let prefixes: Vec<&str> = duff_delta::ALL_TABLES.iter().map(|d| d.prefix).collect();
    let out = Command::new(&python)
        .args(["-c", script, lake.to_str().unwrap()])
        .args(&prefixes)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::venv::text(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = DeltaLake::open_local(&lake).unwrap().runs().unwrap();
    let m = &runs[0];
    for def in duff_delta::ALL_TABLES.iter() {
        let entry = &seen[def.prefix];
        let files: Vec<String> = delta_files(&lake, def)
            .iter()
            .map(|f| {
                f.strip_prefix(&format!("{}/", def.prefix))
                    .unwrap()
                    .to_string()
            })
            .collect();
        let theirs: Vec<String> = entry["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(theirs, files, "{}: the same files", def.name);
        let rows = entry["rows"].as_u64().unwrap();
        match def.name {
            // One run: its lines are the current state.
            "orders" | "fact_orders" | "order_lines" => {
                assert_eq!(rows, m.counts.rows_written, "{}", def.name)
            }
            "quarantine" => assert_eq!(rows, m.counts.quarantined),
            "runs" => assert_eq!(rows, 1),
            _ => assert_eq!(rows as usize, delta_rows(&lake, def).len(), "{}", def.name),
        }
        if def.partitioned {
            assert_eq!(entry["pa_date"], serde_json::json!([DAY]), "{}", def.name);
        }
    }
    // Money, summed by the other reader, equals the engine's rows' sum (exact decimals).
    let orders = delta_rows(&lake, &COMMIT_ORDER[1]);
    let names: Vec<&str> = duff_engine::schema::ORDERS
        .columns
        .iter()
        .map(|c| c.name)
        .collect();
    let at = names.iter().position(|n| *n == "total_price").unwrap();
    let ours: i128 = orders.iter().map(|r| crate::api::units(&r[at])).sum();
    let theirs = crate::api::units(seen["orders"]["total_price"].as_str().unwrap());
    assert_eq!(ours, theirs);
}

#[test]
fn options_do_not_change_what_a_run_commits() {
    // The same input through the library with default options: same rows as the CLI's run.
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 2_000);
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let options = RunOptions {
        threads: 1,
        ..common::fixed_options()
    };
    common::run_delta(&input, &a, &options);
    common::run_delta(
        &input,
        &b,
        &RunOptions {
            threads: 3,
            chunk_bytes: 4096,
            ..options.clone()
        },
    );
    for def in history_tables() {
        assert_eq!(delta_rows(&a, def), delta_rows(&b, def), "{}", def.name);
    }
}

pub(crate) fn duff_lake(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_duff"))
        .arg("lake")
        .args(args)
        .output()
        .unwrap()
}

/// Asserts that `duff lake check` finds the lake healthy (exit 0).
pub(crate) fn assert_check_healthy(lake: &Path) {
    let out = duff_lake(&["check", "--lake", lake.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::venv::text(&out));
}

/// Asserts that `duff lake check` reports problems (exit 2), one of them containing `problem`.
pub(crate) fn assert_check_finds(lake: &Path, problem: &str) {
    let out = duff_lake(&["check", "--lake", lake.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::venv::text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(problem), "{report}");
}

/// Every file under a table's directory that no commit references.
fn unreferenced(lake: &Path, def: &DeltaTableDef) -> Vec<PathBuf> {
    let committed: Vec<PathBuf> = delta_files(lake, def)
        .iter()
        .map(|f| lake.join(f))
        .collect();
    let mut out = Vec::new();
    let mut dirs = vec![lake.join(def.prefix)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("_delta_log") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "parquet") && !committed.contains(&path)
            {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn lake_check_finds_a_healthy_lake_healthy_and_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 3_000);
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "order_id,status\n1,created\n").unwrap();
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    must_succeed(duff_run(&input, &lake, None, &[]));
    assert_eq!(
        duff_run(&other, &lake, None, &[]).status.code(),
        Some(2),
        "a failed run"
    );
    let out = duff_lake(&["check", "--lake", lake_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::venv::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("healthy (2 runs)"));

    // A committed file goes missing.
    let orders = &COMMIT_ORDER[1];
    let gone = delta_files(&lake, orders).remove(0);
    std::fs::remove_file(lake.join(&gone)).unwrap();
    let out = duff_lake(&["check", "--lake", lake_arg]);
    assert_eq!(out.status.code(), Some(2));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&gone) && report.contains("unreadable"),
        "{report}"
    );

    // A run whose last commit has not happened yet.
    let crashed = dir.path().join("crashed");
    assert!(
        !duff_run(&input, &crashed, Some("after_commit_orders"), &[])
            .status
            .success()
    );
    let out = duff_lake(&["check", "--lake", crashed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("has no record yet"));
}

#[test]
fn lake_vacuum_removes_only_unreferenced_files_older_than_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    assert!(
        !duff_run(&input, &lake, Some("mid_publish"), &[])
            .status
            .success()
    );
    must_succeed(duff_run(&input, &lake, None, &[]));
    let orphans: Vec<PathBuf> = COMMIT_ORDER
        .iter()
        .flat_map(|d| unreferenced(&lake, d))
        .collect();
    assert_eq!(
        orphans.len(),
        1,
        "the crashed attempt's published part: {orphans:?}"
    );
    let rows: Vec<_> = history_tables().map(|d| delta_rows(&lake, d)).collect();

    let out = duff_lake(&["vacuum", "--lake", lake_arg, "--retention-hours", "0"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "too short a retention is refused"
    );
    let out = duff_lake(&["vacuum", "--lake", lake_arg, "--retention-hours", "1"]);
    must_succeed(out);
    assert!(orphans[0].exists(), "younger than the retention: kept");

    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&orphans[0])
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let out = duff_lake(&[
        "vacuum",
        "--lake",
        lake_arg,
        "--retention-hours",
        "1",
        "--dry-run",
    ]);
    must_succeed(out);
    assert!(orphans[0].exists(), "a dry run removes nothing");
    let out = duff_lake(&["vacuum", "--lake", lake_arg, "--retention-hours", "1"]);
    assert!(out.status.success(), "{}", crate::venv::text(&out));
    let name = orphans[0].file_name().unwrap().to_str().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(name));
    assert!(
        !orphans[0].exists(),
        "older than the retention and unreferenced: removed"
    );
    let after: Vec<_> = history_tables().map(|d| delta_rows(&lake, d)).collect();
    assert_eq!(after, rows, "no committed row is touched");
    assert_eq!(
        duff_lake(&["check", "--lake", lake_arg]).status.code(),
        Some(0)
    );

    // The crashed attempt's unpublished files are in its staging directory: removed once old.
    let staging: Vec<PathBuf> = std::fs::read_dir(lake.join("_staging"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(staging.len(), 1, "{staging:?}");
    std::fs::File::open(&staging[0])
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let out = duff_lake(&["vacuum", "--lake", lake_arg, "--retention-hours", "1"]);
    assert!(out.status.success(), "{}", crate::venv::text(&out));
    assert!(!staging[0].exists());
}

#[test]
fn only_vacuum_removes_the_logs_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let first = sample(dir.path(), 2_000);
    let second = sample_of(dir.path(), "later.csv", 18, 2_000, Dirt::typical());
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    must_succeed(duff_run(&first, &lake, None, &[]));
    // A checkpoint of every table (vacuum writes one), then every log entry ages past the
    // log retention (30 days).
    must_succeed(duff_lake(&["vacuum", "--lake", lake_arg]));
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400);
    let logs: Vec<PathBuf> = COMMIT_ORDER
        .iter()
        .map(|d| lake.join(d.prefix).join("_delta_log"))
        .collect();
    for entry in logs.iter().flat_map(|log| std::fs::read_dir(log).unwrap()) {
        let path = entry.unwrap().path();
        if path.is_file() {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(long_ago).unwrap();
        }
    }
    let first_commits: Vec<PathBuf> = logs
        .iter()
        .map(|log| log.join(format!("{:020}.json", 0)))
        .collect();
    assert!(first_commits.iter().all(|c| c.exists()));

    // Another run commits to every table: `deltalake` would remove the expired entries after
    // each commit (with the ingest's role, which may not delete); the run leaves them.
    must_succeed(duff_run(&second, &lake, None, &[]));
    let kept: Vec<&PathBuf> = first_commits.iter().filter(|c| c.exists()).collect();
    assert_eq!(kept.len(), first_commits.len(), "a run removed log entries");
    let rows: Vec<_> = history_tables().map(|d| delta_rows(&lake, d)).collect();

    let out = duff_lake(&["vacuum", "--lake", lake_arg]);
    assert!(out.status.success(), "{}", crate::venv::text(&out));
    let left: Vec<&PathBuf> = first_commits.iter().filter(|c| c.exists()).collect();
    assert!(left.is_empty(), "vacuum left expired log entries: {left:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired log entries"),
        "{}",
        crate::venv::text(&out)
    );
    // Read from their checkpoints, the tables hold what they held.
    let after: Vec<_> = history_tables().map(|d| delta_rows(&lake, d)).collect();
    assert_eq!(after, rows);
    assert_check_healthy(&lake);
}

/// The `add` actions of a table's log, as JSON, by file path.
fn add_actions(lake: &Path, def: &DeltaTableDef) -> Vec<serde_json::Value> {
    let log = lake.join(def.prefix).join("_delta_log");
    let mut adds = Vec::new();
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let action: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(add) = action.get("add") {
                    adds.push(add.clone());
                }
            }
        }
    }
    adds
}

/// Readers skip files on the statistics: every bound must be the file's true minimum and
/// maximum, and every count exact, recomputed here from the file's rows.
#[test]
fn file_statistics_are_the_files_true_bounds_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 20_000);
    let lake = dir.path().join("lake");
    must_succeed(duff_run(&input, &lake, None, &["--row-group-rows", "4096"]));
    let mut checked = 0;
    for def in history_tables() {
        let table = def.engine_table.unwrap();
        for add in add_actions(&lake, def) {
            let rel = format!("{}/{}", def.prefix, add["path"].as_str().unwrap());
            let rows = common::parquet_rows(&lake.join(&rel));
            let stats: serde_json::Value =
                serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            assert_eq!(
                stats["numRecords"].as_u64().unwrap() as usize,
                rows.len(),
                "{rel}"
            );
            for (i, column) in table.columns.iter().enumerate() {
                let values: Vec<&String> = rows.iter().map(|r| &r[i]).collect();
                let nulls = values.iter().filter(|v| v.as_str() == "∅").count();
                assert_eq!(
                    stats["nullCount"][column.name], nulls,
                    "{rel} {}",
                    column.name
                );
                let present: Vec<&String> =
                    values.into_iter().filter(|v| v.as_str() != "∅").collect();
                let (Some(lo), Some(hi)) = (
                    &stats["minValues"].get(column.name),
                    &stats["maxValues"].get(column.name),
                ) else {
                    continue;
                };
                use duff_engine::schema::ColumnType as T;
                let text = |v: &serde_json::Value| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let (want_lo, want_hi) = match column.ty {
                    T::BigInt | T::Int => {
                        let ints: Vec<i64> = present.iter().map(|v| v.parse().unwrap()).collect();
                        (
                            ints.iter().min().unwrap().to_string(),
                            ints.iter().max().unwrap().to_string(),
                        )
                    }
                    T::Decimal => {
                        let units: Vec<i128> =
                            present.iter().map(|v| crate::api::units(v)).collect();
                        let pick = |u: i128| {
                            present[units.iter().position(|x| *x == u).unwrap()].to_string()
                        };
                        (
                            pick(*units.iter().min().unwrap()),
                            pick(*units.iter().max().unwrap()),
                        )
                    }
                    T::TimestampMillis => {
                        let mut ts: Vec<String> = present
                            .iter()
                            .map(|v| {
                                chrono::DateTime::parse_from_rfc3339(v)
                                    .unwrap()
                                    .to_utc()
                                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                                    .to_string()
                            })
                            .collect();
                        ts.sort();
                        (ts[0].clone(), ts[ts.len() - 1].clone())
                    }
                    T::String | T::LowCardinalityString => {
                        let mut s: Vec<&String> = present.clone();
                        s.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                        (s[0].to_string(), s[s.len() - 1].to_string())
                    }
                    T::Binary => panic!("{rel}: binary columns get no bounds"),
                    T::DecimalSum => panic!("{rel}: sums are columns of marts only"),
                };
                let (lo, hi) = (text(lo), text(hi));
                if column.ty == T::Decimal {
                    // The log writes `12.3400`; a JSON reader (this one too) may read 12.34.
                    let u = |s: &str| {
                        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
                        crate::api::units(&format!("{int}.{frac:0<4}"))
                    };
                    let got = (u(&lo), u(&hi));
                    assert_eq!(got, (u(&want_lo), u(&want_hi)), "{rel} {}", column.name);
                } else {
                    assert_eq!((lo, hi), (want_lo, want_hi), "{rel} {}", column.name);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "bounds were checked ({checked})");
    let orders = &add_actions(&lake, &COMMIT_ORDER[1])[0];
    let stats: serde_json::Value = serde_json::from_str(orders["stats"].as_str().unwrap()).unwrap();
    for column in [
        "order_id",
        "product_id",
        "client_id",
        "total_price",
        "ingested_at",
        "status",
    ] {
        assert!(
            stats["minValues"].get(column).is_some(),
            "orders has bounds on {column}"
        );
    }
}

/// Rewrites a CSV through `edit` (record index, header, fields), keeping the rest as is.
pub(crate) fn derive_csv(
    from: &Path,
    to: &Path,
    edit: impl Fn(usize, &csv::StringRecord, &mut Vec<String>) -> bool,
) {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(from)
        .unwrap();
    let header = reader.headers().unwrap().clone();
    let mut writer = csv::Writer::from_path(to).unwrap();
    writer.write_record(&header).unwrap();
    for (i, record) in reader.records().enumerate() {
        let Ok(record) = record else { continue };
        let mut fields: Vec<String> = record.iter().map(str::to_string).collect();
        if edit(i, &header, &mut fields) {
            writer.write_record(&fields).unwrap();
        }
    }
    writer.flush().unwrap();
}

pub(crate) fn column_index(header: &csv::StringRecord, name: &str) -> usize {
    header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(name))
        .unwrap()
}

/// The latest version of every order line, recomputed from the history (`orders`).
pub(crate) fn latest_of_history(lake: &Path) -> Vec<Vec<String>> {
    let at = crate::common::orders_column;
    let (order, product, ingested, run) = (
        at("order_id"),
        at("product_id"),
        at("ingested_at"),
        at("run_id"),
    );
    let mut latest: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for row in delta_rows(lake, &COMMIT_ORDER[1]) {
        let key = (row[order].clone(), row[product].clone());
        let newer = latest
            .get(&key)
            .is_none_or(|old| (&row[ingested], &row[run]) > (&old[ingested], &old[run]));
        if newer {
            latest.insert(key, row);
        }
    }
    let mut rows: Vec<Vec<String>> = latest.into_values().collect();
    rows.sort();
    rows
}

#[test]
fn the_current_state_is_the_latest_version_of_every_line_whatever_the_order_of_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 4_000);
    let lake = dir.path().join("lake");
    let current = duff_delta::ORDER_LINES;
    let run = |input: &Path, day: &str, at: &str| {
        must_succeed(duff_run(
            input,
            &lake,
            None,
            &["--pa-date", day, "--ingested-at", at],
        ));
    };
    run(&a, "2026-11-22", "2026-11-22T10:00:00Z");
    assert_eq!(
        delta_rows(&lake, &current),
        latest_of_history(&lake),
        "a first run"
    );

    // A later upload re-delivers every fifth line with a new status and units, and moves one
    // line to another client.
    let b = dir.path().join("redelivery.csv");
    derive_csv(&a, &b, |i, header, f| {
        let (status, units, client) = (
            column_index(header, "status"),
            column_index(header, "product_ccf"),
            column_index(header, "client_id"),
        );
        if f.len() != header.len() || i % 5 != 0 {
            return false;
        }
        f[status] = if f[status].trim().eq_ignore_ascii_case("created") {
            "delivered"
        } else {
            "broken"
        }
        .into();
        if let Ok(n) = f[units].trim().parse::<i64>() {
            f[units] = (n + 1).to_string();
        }
        if i == 0 {
            f[client] = "987654".into();
        }
        true
    });
    run(&b, "2026-11-23", "2026-11-23T09:00:00Z");
    // An upload older than both, folded last: its versions lose wherever a newer one exists.
    let c = dir.path().join("late.csv");
    derive_csv(&a, &c, |i, header, f| {
        let status = column_index(header, "status");
        if f.len() != header.len() || i % 3 != 0 {
            return false;
        }
        f[status] = "created".into();
        true
    });
    run(&c, "2026-11-21", "2026-11-21T08:00:00Z");
    // The first file again: skipped, nothing changes.
    run(&a, "2026-11-22", "2026-11-22T10:00:00Z");
    let expected = latest_of_history(&lake);
    let rows = delta_rows(&lake, &current);
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows, expected, "order_lines = the latest of history");
    crate::marts::assert_marts_match_history(&lake);
    // And by the other reader: Python `deltalake` reads both tables and recomputes the latest
    // version of every line itself.
    let python = crate::venv::tool_python("deltalake", "import deltalake, pyarrow");
    let script = r#"
import os, sys
from deltalake import DeltaTable
root = sys.argv[1]
cols = ["order_id", "product_id", "status", "product_ccf", "client_id", "ingested_at", "run_id", "pa_date"]
def rows(prefix):
    t = DeltaTable(os.path.join(root, prefix)).to_pyarrow_table(columns=cols)
    return list(zip(*[t[c].to_pylist() for c in cols]))
latest = {}
for r in rows("orders"):
    key, version = (r[0], r[1]), (r[5], r[6])
    if key not in latest or version > (latest[key][5], latest[key][6]):
        latest[key] = r
current = rows("order_lines")
same = sorted(current) == sorted(latest.values())
print("same" if same else f"differ: {len(current)} current, {len(latest)} latest")
sys.stdout.flush()
os._exit(0)
"#;
    let out = Command::new(&python)
        .args(["-c", script, lake.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "same",
        "{}",
        crate::venv::text(&out)
    );

    // New order ids, beyond every file's range: the run's files join as they are (links).
    let d = dir.path().join("new-orders.csv");
    derive_csv(&a, &d, |_, header, f| {
        let order = column_index(header, "order_id");
        if f.len() != header.len() {
            return false;
        }
        if let Ok(n) = f[order].trim().parse::<i64>() {
            f[order] = (n + 1_000_000_000).to_string();
        }
        true
    });
    let before: Vec<String> = delta_files(&lake, &current);
    run(&d, "2026-11-24", "2026-11-24T09:00:00Z");
    let after: Vec<String> = delta_files(&lake, &current);
    assert!(
        before.iter().all(|f| after.contains(f)),
        "no earlier file was rewritten"
    );
    let added: Vec<&String> = after.iter().filter(|f| !before.contains(f)).collect();
    assert!(!added.is_empty());
    let orders_files = delta_files(&lake, &COMMIT_ORDER[1]);
    for f in added {
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(lake.join(f)).unwrap().ino();
        assert!(
            orders_files
                .iter()
                .any(|o| std::fs::metadata(lake.join(o)).unwrap().ino() == inode),
            "{f} is a link to the run's orders file"
        );
    }
    assert_eq!(delta_rows(&lake, &current), latest_of_history(&lake));
    crate::marts::assert_marts_match_history(&lake);
}

#[test]
fn concurrent_runs_of_different_files_fold_into_an_exact_current_state() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    DeltaLake::open_local(&lake).unwrap();
    let inputs: Vec<PathBuf> = (0..3)
        .map(|n| {
            let path = dir.path().join(format!("day-{n}.csv"));
            derive_csv(&a, &path, |i, header, f| {
                let status = column_index(header, "status");
                if f.len() != header.len() || i % (n + 2) != 0 {
                    return false;
                }
                f[status] = ["created", "delivered", "broken"][n].into();
                true
            });
            path
        })
        .collect();
    let barrier = std::sync::Barrier::new(inputs.len());
    std::thread::scope(|s| {
        for (n, input) in inputs.iter().enumerate() {
            let (lake, barrier) = (&lake, &barrier);
            s.spawn(move || {
                let options = RunOptions {
                    ingested_at: Some(format!("2026-11-2{n}T10:00:00Z").parse().unwrap()),
                    ..common::fixed_options()
                };
                let lake = DeltaLake::open_local(lake).unwrap();
                let source = duff_engine::input::LocalInput::open(input).unwrap();
                barrier.wait();
                duff_engine::run(&source, &lake, &options, &|_| {}).unwrap()
            });
        }
    });
    assert_eq!(
        delta_rows(&lake, &duff_delta::ORDER_LINES),
        latest_of_history(&lake)
    );
    crate::marts::assert_marts_match_history(&lake);
}

#[test]
fn a_crash_before_the_fold_commits_is_completed_by_duff_lake_fold_or_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    let out = duff_run(&a, &lake, Some("before_fold_commit"), &[]);
    assert!(!out.status.success());
    assert_eq!(
        DeltaLake::open_local(&lake).unwrap().runs().unwrap().len(),
        1,
        "the run is committed"
    );
    assert!(
        delta_rows(&lake, &duff_delta::ORDER_LINES).is_empty(),
        "not folded yet"
    );
    assert!(
        delta_rows(&lake, &duff_delta::FOLDS).is_empty(),
        "no record of a fold"
    );
    let out = duff_lake(&["fold", "--lake", lake.to_str().unwrap()]);
    assert!(out.status.success(), "{}", crate::venv::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("folded "));
    let folds = delta_rows(&lake, &duff_delta::FOLDS);
    assert_eq!(folds.len(), 1, "{folds:?}");
    assert_eq!(
        folds[0][0],
        only_run_id(&lake),
        "the run's fold is recorded"
    );
    assert_eq!(
        delta_rows(&lake, &duff_delta::ORDER_LINES),
        latest_of_history(&lake)
    );
    // Nothing left to fold: the next run of the same input changes nothing.
    let files = delta_files(&lake, &duff_delta::ORDER_LINES);
    must_succeed(duff_run(&a, &lake, None, &[]));
    assert_eq!(delta_files(&lake, &duff_delta::ORDER_LINES), files);
}

#[test]
fn lake_check_recomputes_the_current_state_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    must_succeed(duff_run(&a, &lake, None, &[]));
    let b = dir.path().join("redelivery.csv");
    derive_csv(&a, &b, |i, header, f| {
        let status = column_index(header, "status");
        f[status] = "broken".into();
        f.len() == header.len() && i % 4 == 0
    });
    must_succeed(duff_run(
        &b,
        &lake,
        None,
        &["--ingested-at", "2026-11-23T10:00:00Z"],
    ));
    let out = duff_lake(&["check", "--lake", lake_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::venv::text(&out));
    // One window of order ids at a time, with windows smaller than a run: the same answer.
    let out = duff_lake(&["check", "--lake", lake_arg, "--window-rows", "300"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::venv::text(&out));

    // A run committed but not folded (a crash before the fold's commit) is named.
    let c = dir.path().join("later.csv");
    derive_csv(&a, &c, |i, header, f| f.len() == header.len() && i % 7 == 0);
    let out = duff_run(
        &c,
        &lake,
        Some("before_fold_commit"),
        &["--ingested-at", "2026-11-24T10:00:00Z"],
    );
    assert!(!out.status.success());
    let out = duff_lake(&["check", "--lake", lake_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not folded into order_lines yet"));
    must_succeed(duff_lake(&["fold", "--lake", lake_arg]));
    assert_eq!(
        duff_lake(&["check", "--lake", lake_arg]).status.code(),
        Some(0)
    );

    // A current-state file lost: its lines are missing from the current state, each counted
    // once however many windows the check takes.
    let gone = delta_files(&lake, &duff_delta::ORDER_LINES).remove(0);
    let lost = crate::common::parquet_rows(&lake.join(&gone)).len();
    std::fs::remove_file(lake.join(&gone)).unwrap();
    for window in ["8388608", "300", "7"] {
        let out = duff_lake(&["check", "--lake", lake_arg, "--window-rows", window]);
        assert_eq!(out.status.code(), Some(2));
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            report.contains(&format!(
                "order_lines misses the latest version of {lost} line(s)"
            )),
            "window {window}: {report}"
        );
        assert_eq!(
            report.matches("unreadable").count(),
            1,
            "named once: {report}"
        );
    }
}

#[test]
fn lake_maintenance_on_a_missing_lake_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-lake");
    for command in ["check", "vacuum", "fold", "convert"] {
        let out = duff_lake(&[command, "--lake", missing.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no lake at"),
            "{command}"
        );
        assert!(!missing.exists(), "{command} created nothing");
    }
}

/// Two uploads stamped with the same ingestion time and the same keys: the version of the
/// larger run id is current, whichever upload is folded first (the rule of the current state: largest `ingested_at`,
/// then `run_id`), and the marts follow it.
#[test]
fn a_tie_in_ingestion_time_goes_to_the_larger_run_id_whatever_the_fold_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 1_500);
    let with_status = |name: &str, status: &'static str| {
        let to = dir.path().join(name);
        derive_csv(&a, &to, |_, header, f| {
            let at = column_index(header, "status");
            if f.len() != header.len() {
                return false;
            }
            f[at] = status.into();
            true
        });
        to
    };
    let (x, y) = (
        with_status("x.csv", "delivered"),
        with_status("y.csv", "broken"),
    );
    let at = crate::common::orders_column;
    let mut winners = Vec::new();
    for (n, (first, second)) in [(&x, &y), (&y, &x)].into_iter().enumerate() {
        let lake = dir.path().join(format!("lake-{n}"));
        for input in [first, second] {
            must_succeed(duff_run(
                input,
                &lake,
                None,
                &[
                    "--pa-date",
                    "2026-11-22",
                    "--ingested-at",
                    "2026-11-22T10:00:00Z",
                ],
            ));
        }
        // Each upload's run id, from its lines in history.
        let mut run_of_status = std::collections::BTreeMap::new();
        for row in delta_rows(&lake, &COMMIT_ORDER[1]) {
            run_of_status.insert(row[at("status")].clone(), row[at("run_id")].clone());
        }
        assert_eq!(run_of_status.len(), 2, "{run_of_status:?}");
        let (status, run) = run_of_status
            .iter()
            .max_by_key(|(_, run)| run.as_str())
            .unwrap();
        let current = delta_rows(&lake, &duff_delta::ORDER_LINES);
        assert!(!current.is_empty());
        assert!(
            current
                .iter()
                .all(|r| &r[at("status")] == status && &r[at("run_id")] == run),
            "fold order {n}: every current line is the larger run id's ({run}, {status})"
        );
        assert_eq!(current, latest_of_history(&lake));
        crate::marts::assert_marts_match_history(&lake);
        winners.push(run.clone());
    }
    assert_eq!(
        winners[0], winners[1],
        "the same upload wins in both orders"
    );
}

/// A reader that follows the logs (the API's `CommittedOnly`) and fails half-way, one table's
/// log unreadable, sees every table's new commits once the log reads again: no table is
/// recorded as followed to a version whose files it did not take.
#[test]
fn a_reader_that_fails_to_follow_one_log_catches_up_on_every_table_at_the_next_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let first = sample_of(dir.path(), "first.csv", 31, 2_000, Dirt::typical());
    let second = sample_of(dir.path(), "second.csv", 32, 2_000, Dirt::typical());
    assert!(matches!(
        common::run_delta(&first, &lake, &common::fixed_options()),
        RunOutcome::Succeeded(_)
    ));
    let root = lake.canonicalize().unwrap();
    let reader = duff_delta::CommittedOnly::local(&root).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(reader.refresh()).unwrap();
    let orders = &COMMIT_ORDER[1];
    assert_eq!(orders.name, "orders");
    let before = reader.files_of(orders);
    assert!(!before.is_empty());

    assert!(matches!(
        common::run_delta(&second, &lake, &common::fixed_options()),
        RunOutcome::Succeeded(_)
    ));
    // The newest commit of one table becomes unreadable for a while.
    let log = root.join("marts/status/_delta_log");
    let newest = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max()
        .unwrap();
    let intact = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, b"{ not a Delta action").unwrap();
    assert!(runtime.block_on(reader.refresh()).is_err());
    std::fs::write(&newest, intact).unwrap();

    runtime.block_on(reader.refresh()).unwrap();
    let after = reader.files_of(orders);
    assert_eq!(after, delta_files(&lake, orders));
    assert!(
        after.len() > before.len(),
        "the second run's files are seen"
    );
}
