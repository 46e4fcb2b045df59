//! S3 lakes against a real S3-protocol server on loopback, with the real SDK and
//! `object_store` clients: ranged reads, multipart writes, Delta commits by conditional put,
//! the fold under its lease, fault injection, crashes at every commit point, concurrency, and
//! the Batch job's exit codes. The server keeps each bucket's objects as plain files, so what
//! S3 holds is read back as a local Delta table (`delta_rows`), independently of the code
//! that wrote it.

pub(crate) use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

use duff_datagen::{Dirt, GenConfig, Size};
use duff_delta::{ALL_TABLES, COMMIT_ORDER, DeltaLake};
use duff_engine::storage::StorageErrorKind;
use duff_engine::{Error, RunOptions, RunOutcome};
use duff_s3::test_server::{self as server, S3Server};
use duff_s3::{S3Lake, S3Source, S3Url, TransferSettings};

use crate::common::{delta_files, delta_rows, fixed_options, history_tables, run_delta};
use crate::lake::{assert_every_table_commits_once, latest_of_history};
use crate::marts::{assert_marts_match, assert_marts_match_history};
use crate::rows::{SortedRows, first_difference};

/// Tables that record when things happened (`started_at`, `folded_at`): two runs of the same
/// bytes differ there, so comparisons of lakes leave them out.
const RECORDS: [&str; 2] = ["runs", "folds"];

const INBOX: &str = "inbox";
const LAKE: &str = "lake";

/// The Delta lake at `s3://lake/<prefix>` of `server`.
fn s3_lake(
    server: &S3Server,
    prefix: &str,
    settings: &TransferSettings,
    runtime: &tokio::runtime::Runtime,
) -> DeltaLake<S3Lake> {
    let endpoint = server.endpoint();
    let files = runtime.block_on(async {
        let client = duff_s3::client(settings, &endpoint).await;
        let root = S3Url {
            bucket: LAKE.into(),
            key: prefix.into(),
        };
        S3Lake::new(client, settings.clone(), root).unwrap()
    });
    let store = duff_s3::object_store(settings, &endpoint, LAKE).unwrap();
    let root = S3Url {
        bucket: LAKE.into(),
        key: prefix.into(),
    };
    DeltaLake::open_in_store(files, root.directory_url().unwrap(), store).unwrap()
}

/// Runs the engine on `s3://inbox/<key>` into the Delta lake at `s3://lake/<prefix>`.
fn run_s3(
    server: &S3Server,
    key: &str,
    prefix: &str,
    options: &RunOptions,
    settings: &TransferSettings,
) -> Result<RunOutcome, Error> {
    let runtime = io_runtime();
    let source = runtime.block_on(async {
        let client = duff_s3::client(settings, &server.endpoint()).await;
        let url = S3Url {
            bucket: INBOX.into(),
            key: key.into(),
        };
        S3Source::head(client, settings.clone(), url, None).await
    })?;
    let lake = {
        let _entered = runtime.enter();
        s3_lake(server, prefix, settings, &runtime)
    };
    duff_engine::run(&source, &lake, options, &|_| {})
}

fn io_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Small transfers so that a few MB already cross many range and part boundaries.
fn small_transfers() -> TransferSettings {
    TransferSettings {
        read_chunk_bytes: 256 << 10,
        read_concurrency: 4,
        part_bytes: 5 << 20,
        initial_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_millis(50),
        ..TransferSettings::default()
    }
}

fn sample(rows: u64, seed: u64) -> Vec<u8> {
    let cfg = GenConfig {
        seed,
        size: Size::Rows(rows),
        dirt: Dirt::typical(),
        ..GenConfig::default()
    };
    let mut out = Vec::new();
    duff_datagen::generate(&cfg, &mut out).unwrap();
    out
}

/// Compares two lakes table by table (all but [`RECORDS`]) without their lineage columns,
/// naming the first difference.
fn assert_same_contents(a: &Path, b: &Path) {
    const LINEAGE: [&str; 2] = ["source_file", "run_id"];
    for def in ALL_TABLES.iter().filter(|d| !RECORDS.contains(&d.name)) {
        let (ours, theirs) = rayon::join(
            || SortedRows::read(a, def, &LINEAGE),
            || SortedRows::read(b, def, &LINEAGE),
        );
        if let Some(difference) = first_difference(&ours, &theirs) {
            panic!("{}: {difference}", def.name);
        }
    }
}

#[test]
fn the_lake_comparison_names_a_changed_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(2_000, 5);
    let changed = replace_bytes(&data, b",delivered\n", b",created\n");
    assert_ne!(data, changed);
    let lake = |name: &str, bytes: &[u8]| {
        let file = dir.path().join(format!("{name}.csv"));
        std::fs::write(&file, bytes).unwrap();
        let lake = dir.path().join(name);
        run_delta(&file, &lake, &fixed_options());
        lake
    };
    let (a, again, b) = (lake("a", &data), lake("again", &data), lake("b", &changed));
    assert_same_contents(&a, &again);
    let panic = std::panic::catch_unwind(|| assert_same_contents(&a, &b)).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with("quarantine: row ")
            && message.contains(",delivered\"")
            && message.contains(",created\""),
        "{message}"
    );
}

/// Asserts two lakes' [`every_table`] agree, naming the first differing row.
fn assert_same_tables(ours: &[(&str, SortedRows)], theirs: &[(&str, SortedRows)], context: &str) {
    for ((name, a), (_, b)) in ours.iter().zip(theirs) {
        if let Some(difference) = first_difference(a, b) {
            panic!("{context}: {name}: {difference}");
        }
    }
}

/// Every table's rows as a Delta reader sees them, lineage included.
fn every_table(lake: &Path) -> Vec<(&'static str, SortedRows)> {
    ALL_TABLES
        .iter()
        .filter(|d| !RECORDS.contains(&d.name))
        .map(|d| (d.name, SortedRows::read(lake, d, &[])))
        .collect()
}

/// The objects under the lake that are not Delta logs (data files).
fn data_objects(lake: &Path) -> Vec<String> {
    crate::common::snapshot(lake, true)
        .into_keys()
        .filter(|k| !k.contains("_delta_log/"))
        .collect()
}

/// `data` with every `from` replaced by `to` (the files are Latin-1, not UTF-8).
fn replace_bytes(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn runs_of(lake: &Path) -> Vec<duff_engine::Manifest> {
    DeltaLake::open_local(lake).unwrap().runs().unwrap()
}

/// Number of parse-range boundaries (multiples of `chunk`) that fall inside a quoted field.
fn boundaries_inside_quotes(data: &[u8], chunk: usize) -> usize {
    let mut quoted = false;
    let mut hits = 0;
    for (i, &b) in data.iter().enumerate() {
        if i > 0 && i % chunk == 0 && quoted {
            hits += 1;
        }
        if b == b'"' {
            quoted = !quoted;
        }
    }
    hits
}

#[test]
fn a_100_mb_object_gives_the_same_lake_as_the_local_file() {
    let data = {
        let cfg = GenConfig {
            seed: 7,
            size: Size::Bytes(100_000_000),
            dirt: Dirt::typical(),
            ..GenConfig::default()
        };
        let mut out = Vec::new();
        duff_datagen::generate(&cfg, &mut out).unwrap();
        out
    };
    let options = RunOptions {
        chunk_bytes: 256 << 10,
        ..fixed_options()
    };
    assert!(
        boundaries_inside_quotes(&data, options.chunk_bytes) > 0,
        "the sample must put quoted fields across parse boundaries"
    );
    let dir = tempfile::tempdir().unwrap();
    let local_file = dir.path().join("orders.csv");
    std::fs::write(&local_file, &data).unwrap();
    let local = run_delta(&local_file, &dir.path().join("lake"), &options);

    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "uploads/orders.csv", &data);
    let settings = TransferSettings {
        read_chunk_bytes: 1 << 20,
        ..small_transfers()
    };
    // The first completion's answer is lost: the SDK retries it, S3 answers NoSuchUpload,
    // and the object, complete with its size, says it was done.
    server
        .faults
        .lose_complete_answers
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let remote = run_s3(&server, "uploads/orders.csv", "", &options, &settings).unwrap();
    let (RunOutcome::Succeeded(l), RunOutcome::Succeeded(r)) = (&local, &remote) else {
        panic!("both runs succeed: {local:?} {remote:?}");
    };
    assert_eq!(l.counts, r.counts);
    assert!(r.nothing_lost);
    assert!(
        r.outputs.iter().any(|f| f.bytes > 5 << 20),
        "at least one file is big enough for a multipart upload"
    );
    let lake = server.bucket_dir(LAKE);
    // Every table, the current state and the marts hold the same rows.
    assert_same_contents(&dir.path().join("lake"), &lake);
    assert_eq!(
        runs_of(&lake).len(),
        1,
        "the run is recorded in the runs table"
    );
    // Folded in S3: the current state and the marts equal a recomputation from history.
    let latest = latest_of_history(&lake);
    assert_eq!(delta_rows(&lake, &duff_delta::ORDER_LINES), latest);
    assert_marts_match(&lake, &latest);
    assert!(
        !lake.join("_fold.lock").exists(),
        "the fold's lease is released"
    );
    assert_eq!(
        server.open_upload_parts(),
        0,
        "no multipart upload left open"
    );
    let counts = server.counts();
    let ranges = data.len().div_ceil(1 << 20) as u64;
    assert!(counts["GetObject"] >= ranges, "ranged reads: {counts:?}");
    assert!(counts["UploadPart"] >= 2, "multipart writes: {counts:?}");
    assert_eq!(
        server
            .faults
            .lose_complete_answers
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "a completion's answer was lost: {counts:?}"
    );
    assert!(
        counts["CompleteMultipartUpload"]
            > r.outputs.iter().filter(|f| f.bytes > 5 << 20).count() as u64,
        "the lost one was retried: {counts:?}"
    );
    assert!(
        counts["CopyObject"] >= 1,
        "the run's files join order_lines by a server-side copy: {counts:?}"
    );
}

#[test]
fn throttling_and_connection_resets_are_survived_with_identical_output() {
    let data = sample(60_000, 11);
    let settings = small_transfers();
    let clean = S3Server::start(&[INBOX, LAKE]);
    clean.put(INBOX, "a.csv", &data);
    let expected = run_s3(&clean, "a.csv", "", &fixed_options(), &settings).unwrap();
    assert!(matches!(expected, RunOutcome::Succeeded(_)));

    let faulty = S3Server::start(&[INBOX, LAKE]);
    faulty.put(INBOX, "a.csv", &data);
    faulty
        .faults
        .slow_down_every
        .store(4, std::sync::atomic::Ordering::Relaxed);
    faulty
        .faults
        .cut_body_every
        .store(3, std::sync::atomic::Ordering::Relaxed);
    let got = run_s3(&faulty, "a.csv", "", &fixed_options(), &settings).unwrap();
    assert!(matches!(got, RunOutcome::Succeeded(_)), "{got:?}");
    let counts = faulty.counts();
    assert!(
        counts.get("injected_503").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    assert!(
        counts.get("injected_cut").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    assert_same_tables(
        &every_table(&faulty.bucket_dir(LAKE)),
        &every_table(&clean.bucket_dir(LAKE)),
        "every table holds the same rows",
    );
    assert_eq!(got.manifest().counts, expected.manifest().counts);
}

/// A `DeleteObjects` answered 200 with per-key errors fails the publication (the job retries)
/// instead of leaving stale parts behind silently. Stale parts are those of an earlier attempt
/// under the same stem: the engine's own commit names files after the run alone (a Delta
/// lake's attempts each have their own stem). A lost completion's answer: the 100 MB test.
#[test]
fn refused_deletes_of_stale_parts_fail_the_publication() {
    let data = sample(20_000, 12);
    let settings = small_transfers();
    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "a.csv", &data);
    let runtime = io_runtime();
    let run = |options: &RunOptions| {
        let (source, lake) = runtime.block_on(async {
            let client = duff_s3::client(&settings, &server.endpoint()).await;
            let url = S3Url {
                bucket: INBOX.into(),
                key: "a.csv".into(),
            };
            let source = S3Source::head(client.clone(), settings.clone(), url, None)
                .await
                .unwrap();
            let root = S3Url {
                bucket: LAKE.into(),
                key: String::new(),
            };
            (source, S3Lake::new(client, settings.clone(), root).unwrap())
        });
        duff_engine::run(&source, &lake, options, &|_| {})
    };
    let got = run(&fixed_options()).unwrap();
    assert!(matches!(got, RunOutcome::Succeeded(_)), "{got:?}");
    let run_id = got.manifest().run_id.clone();
    let orders = data_objects(&server.bucket_dir(LAKE))
        .into_iter()
        .find(|k| k.starts_with("orders/") && k.contains(run_id.as_str()))
        .expect("an orders file of the run");
    let dir = orders.rsplit_once('/').unwrap().0;
    let stale = format!("{dir}/{run_id}-9.parquet");
    server.put(LAKE, &stale, b"left by an earlier attempt");
    server
        .faults
        .refuse_deletes
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let forced = RunOptions {
        force: true,
        ..fixed_options()
    };
    let message = match run(&forced) {
        Err(e) => e.to_string(),
        Ok(other) => panic!("a refused delete must fail the publication: {other:?}"),
    };
    assert!(
        message.contains("DeleteObjects") && message.contains("AccessDenied"),
        "{message}"
    );
    assert!(data_objects(&server.bucket_dir(LAKE)).contains(&stale));
    let again = run(&forced).unwrap();
    assert!(matches!(again, RunOutcome::Succeeded(_)), "{again:?}");
    assert!(!data_objects(&server.bucket_dir(LAKE)).contains(&stale));
}

#[test]
fn an_object_replaced_during_the_read_fails_cleanly() {
    let data = sample(30_000, 12);
    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "b.csv", &data);
    *server.faults.replace_after_first_get.lock().unwrap() =
        Some(("b.csv".into(), sample(30_000, 13)));
    let settings = TransferSettings {
        read_concurrency: 1,
        ..small_transfers()
    };
    let err = run_s3(&server, "b.csv", "", &fixed_options(), &settings).unwrap_err();
    match &err {
        Error::Storage(e) => assert_eq!(e.kind, StorageErrorKind::Changed, "{e}"),
        other => panic!("expected a storage error, got {other}"),
    }
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
    assert!(
        data_objects(&server.bucket_dir(LAKE)).is_empty(),
        "nothing published: {:?}",
        data_objects(&server.bucket_dir(LAKE))
    );
    assert!(
        runs_of(&server.bucket_dir(LAKE)).is_empty(),
        "nothing recorded"
    );
    assert_eq!(server.open_upload_parts(), 0, "uploads aborted");
}

#[test]
fn two_concurrent_runs_of_the_same_object_commit_each_table_exactly_once() {
    let data = sample(80_000, 14);
    let server = Arc::new(S3Server::start(&[INBOX, LAKE]));
    server.put(INBOX, "c.csv", &data);
    // The tables exist before the race, as in a deployed lake.
    drop(s3_lake(&server, "", &small_transfers(), &io_runtime()));
    let barrier = Arc::new(Barrier::new(2));
    let outcomes: Vec<RunOutcome> = (0..2)
        .map(|_| {
            let (server, barrier) = (server.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                run_s3(&server, "c.csv", "", &fixed_options(), &small_transfers()).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RunOutcome::Succeeded(_) | RunOutcome::Skipped(_))),
        "{outcomes:?}"
    );
    let run_id = &outcomes[0].manifest().run_id;
    let lake = server.bucket_dir(LAKE);
    assert_every_table_commits_once(&lake, run_id, "concurrent attempts");
    let committed = S3Server::start(&[INBOX, LAKE]);
    committed.put(INBOX, "c.csv", &data);
    run_s3(
        &committed,
        "c.csv",
        "",
        &fixed_options(),
        &small_transfers(),
    )
    .unwrap();
    assert_same_tables(
        &every_table(&lake),
        &every_table(&committed.bucket_dir(LAKE)),
        "the lake reads exactly as one run left it",
    );
    assert_eq!(runs_of(&lake).len(), 1);
}

#[test]
fn concurrent_runs_of_different_objects_fold_into_an_exact_current_state() {
    let server = Arc::new(S3Server::start(&[INBOX, LAKE]));
    // Three deliveries of overlapping keys with new statuses, uploaded at once.
    let base = sample(20_000, 21);
    for n in 0..3 {
        let (from, to) = [
            (",delivered\n", ",created\n"),
            (",delivered\n", ",broken\n"),
            (",created\n", ",delivered\n"),
        ][n];
        let day = replace_bytes(&base, from.as_bytes(), to.as_bytes());
        assert_ne!(day, base);
        server.put(INBOX, &format!("day-{n}.csv"), &day);
    }
    drop(s3_lake(&server, "", &small_transfers(), &io_runtime()));
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..3)
        .map(|n| {
            let (server, barrier) = (server.clone(), barrier.clone());
            std::thread::spawn(move || {
                let options = RunOptions {
                    ingested_at: Some(format!("2026-11-2{n}T10:00:00Z").parse().unwrap()),
                    ..fixed_options()
                };
                barrier.wait();
                run_s3(
                    &server,
                    &format!("day-{n}.csv"),
                    "",
                    &options,
                    &small_transfers(),
                )
                .unwrap()
            })
        })
        .collect();
    for h in handles {
        assert!(matches!(h.join().unwrap(), RunOutcome::Succeeded(_)));
    }
    let lake = server.bucket_dir(LAKE);
    assert_eq!(runs_of(&lake).len(), 3);
    let current = delta_rows(&lake, &duff_delta::ORDER_LINES);
    assert!(!current.is_empty());
    let latest = latest_of_history(&lake);
    assert_eq!(current, latest, "every run folded, exactly");
    assert_marts_match(&lake, &latest);
    assert!(!lake.join("_fold.lock").exists(), "the lease is released");

    // Two more files of new orders, then `duff lake optimize` in S3 (under the same lease):
    // one file per partition, no row changed, the marts still current.
    for seed in [23, 24] {
        let key = format!("new-{seed}.csv");
        server.put(INBOX, &key, &sample(3_000, seed));
        let args = run_args(&key);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        must_succeed(duff(&server, &args, None));
    }
    let current = delta_rows(&lake, &duff_delta::ORDER_LINES);
    let files_before = delta_files(&lake, &duff_delta::ORDER_LINES).len();
    assert_eq!(files_before, 3);
    let out = duff(&server, &["lake", "optimize", "--lake", "s3://lake/"], None);
    must_succeed(out);
    assert_eq!(delta_files(&lake, &duff_delta::ORDER_LINES).len(), 1);
    assert_eq!(delta_rows(&lake, &duff_delta::ORDER_LINES), current);
    assert_marts_match_history(&lake);
    must_succeed(duff(
        &server,
        &["lake", "check", "--lake", "s3://lake/"],
        None,
    ));
    assert!(!lake.join("_fold.lock").exists(), "the lease is released");

    // `duff lake vacuum` in S3: nothing is old enough to go; every table's log gets a
    // checkpoint, read back by the next check.
    let vacuum = [
        "lake",
        "vacuum",
        "--lake",
        "s3://lake/",
        "--retention-hours",
        "1",
    ];
    must_succeed(duff(&server, &vacuum, None));
    assert_eq!(delta_rows(&lake, &duff_delta::ORDER_LINES), current);
    for def in duff_delta::COMMIT_ORDER {
        let log = lake.join(def.prefix).join("_delta_log");
        assert!(log.join("_last_checkpoint").exists(), "{}", def.name);
    }
    must_succeed(duff(
        &server,
        &["lake", "check", "--lake", "s3://lake/"],
        None,
    ));
}

#[test]
fn missing_objects_and_bad_credentials_fail_fast_and_permanently() {
    let server = S3Server::start(&[INBOX, LAKE]);
    let runtime = io_runtime();
    let settings = small_transfers();
    let missing = runtime.block_on(async {
        let client = duff_s3::client(&settings, &server.endpoint()).await;
        S3Source::head(
            client,
            settings.clone(),
            S3Url::parse("s3://inbox/nope.csv").unwrap().unwrap(),
            None,
        )
        .await
    });
    match missing {
        Err(Error::Storage(e)) => {
            assert_eq!(e.kind, StorageErrorKind::NotFound);
            assert!(e.to_string().contains("s3://inbox/nope.csv"), "{e}");
        }
        other => panic!("expected not found, got {other:?}"),
    }
    server.put(INBOX, "d.csv", b"client_id\n");
    let before = server.counts().values().sum::<u64>();
    let denied = runtime.block_on(async {
        let endpoint = duff_s3::Endpoint {
            credentials: Some((server::ACCESS_KEY.into(), "wrong-secret".into())),
            ..server.endpoint()
        };
        let client = duff_s3::client(&settings, &endpoint).await;
        S3Source::head(
            client,
            settings.clone(),
            S3Url::parse("s3://inbox/d.csv").unwrap().unwrap(),
            None,
        )
        .await
    });
    match denied {
        Err(e @ Error::Storage(_)) => {
            assert!(!e.is_retryable(), "{e}");
            assert_eq!(e.code(), "storage_denied", "{e}");
        }
        other => panic!("expected access denied, got {other:?}"),
    }
    // Rejected before reaching the store: no retries of a permanent error.
    assert_eq!(server.counts().values().sum::<u64>(), before);
}

#[test]
fn a_gzip_object_is_streamed_like_the_local_gzip_file() {
    let data = sample(40_000, 15);
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("e.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &data).unwrap();
    let compressed = enc.finish().unwrap();
    std::fs::write(&gz, &compressed).unwrap();
    let local = run_delta(&gz, &dir.path().join("lake"), &fixed_options());
    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "e.csv.gz", &compressed);
    let remote = run_s3(
        &server,
        "e.csv.gz",
        "prefix/lake",
        &fixed_options(),
        &small_transfers(),
    )
    .unwrap();
    assert!(remote.manifest().source.gzip);
    assert_eq!(local.manifest().counts, remote.manifest().counts);
    assert_same_contents(
        &dir.path().join("lake"),
        &server.bucket_dir(LAKE).join("prefix/lake"),
    );
}

/// Runs the `duff` binary against `server`.
fn duff(server: &S3Server, args: &[&str], failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duff"));
    cmd.args(args)
        .envs(server.env())
        .env("DUFF_LOG_FORMAT", "json")
        // A crashed fold's lease expires in seconds, not the default ten minutes.
        .env("DUFF_FOLD_LEASE_SECS", "3")
        // A process killed at a failpoint leaves its fold's scratch copy; keep it in the test's
        // directory, not the machine's /tmp.
        .env("TMPDIR", &server.root);
    if let Some(f) = failpoint {
        cmd.env("DUFF_FAILPOINT", f);
    }
    cmd.output().unwrap()
}

const FIXED: [&str; 6] = [
    "--pa-date",
    "2026-11-22",
    "--ingested-at",
    "2026-11-22T10:00:00Z",
    "--s3-part-mib",
    "5",
];

/// `duff run s3://inbox/<key> --lake s3://lake/` with fixed dates.
fn run_args(key: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        &format!("s3://{INBOX}/{key}"),
        "--lake",
        "s3://lake/",
        "--no-progress",
    ]
    .map(String::from)
    .to_vec();
    args.extend(FIXED.map(String::from));
    args
}

fn must_succeed(out: std::process::Output) {
    assert!(out.status.success(), "{}", crate::venv::text(&out));
}

/// What a clean run of `data` leaves: every table's rows, and the run id.
struct CleanRun {
    tables: Vec<(&'static str, SortedRows)>,
    run_id: String,
}

fn clean_run(data: &[u8]) -> CleanRun {
    let clean = S3Server::start(&[INBOX, LAKE]);
    clean.put(INBOX, "f.csv", data);
    let args = run_args("f.csv");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    must_succeed(duff(&clean, &args, None));
    CleanRun {
        tables: every_table(&clean.bucket_dir(LAKE)),
        run_id: runs_of(&clean.bucket_dir(LAKE))[0].run_id.clone(),
    }
}

/// Crash a run at `failpoint`, check what readers see in the gap, complete it (`recover`),
/// and compare every table with a clean run's; every table holds the run once.
fn s3_crash_then_complete(data: &[u8], clean: &CleanRun, failpoint: &str, recover: &[&str]) {
    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "f.csv", data);
    let args = run_args("f.csv");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = duff(&server, &args, Some(failpoint));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{failpoint}: the failpoint kills the run: {stderr}"
    );
    assert!(stderr.contains(failpoint), "{stderr}");
    let lake = server.bucket_dir(LAKE);

    // In the gap: a table holds the whole run or nothing, and the run is recorded only once
    // its every history table holds it.
    for ((name, rows), (_, want)) in every_table(&lake).iter().zip(&clean.tables) {
        assert!(
            rows.is_empty() || rows == want,
            "{failpoint}: {name} holds part of the run"
        );
    }
    // The fold's points (`before_…_commit`) come after the run's record.
    let recorded = failpoint.starts_with("before_");
    assert_eq!(
        runs_of(&lake).len(),
        usize::from(recorded),
        "{failpoint}: recorded only once committed to every table"
    );

    for step in recover {
        let step: Vec<&str> = match *step {
            "rerun" => args.clone(),
            other => vec!["lake", other, "--lake", "s3://lake/"],
        };
        must_succeed(duff(&server, &step, None));
    }
    assert_same_tables(
        &every_table(&lake),
        &clean.tables,
        &format!("{failpoint}: completed as one clean run"),
    );
    assert_every_table_commits_once(&lake, &clean.run_id, failpoint);
    assert_eq!(runs_of(&lake).len(), 1, "{failpoint}");
}

/// Before and during the files' publication (a file big enough for multipart uploads), after
/// each table's commit, and inside the fold: the retry (or `duff lake fold`, the scheduled
/// fold job) completes the run, and `duff lake check` finds the lake healthy.
#[test]
fn a_crash_at_every_commit_point_in_s3_is_completed_by_the_retry_or_the_fold_job() {
    let big = sample(700_000, 16);
    let clean = clean_run(&big);
    for point in ["parts_uploaded", "mid_publish"] {
        s3_crash_then_complete(&big, &clean, point, &["rerun"]);
    }
    let small = sample(5_000, 18);
    let clean = clean_run(&small);
    for def in history_tables() {
        let point = format!("after_commit_{}", def.name);
        s3_crash_then_complete(&small, &clean, &point, &["rerun", "check"]);
    }
    for point in [
        "before_fold_commit",
        "before_marts_commit",
        "before_dims_commit",
    ] {
        s3_crash_then_complete(&small, &clean, point, &["fold", "check"]);
    }
}

#[test]
fn the_batch_job_exit_codes_tell_retryable_from_permanent() {
    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "in/good.csv", &sample(5_000, 17));
    server.put(INBOX, "in/bad header.csv", b"client,name\n1,a\n");
    let job = |key: &str, etag: &str, extra: &[&str]| {
        let mut args = vec![
            "job",
            "--bucket",
            INBOX,
            "--key",
            key,
            "--etag",
            etag,
            "--lake",
            "s3://lake/",
        ];
        args.extend(extra);
        duff(&server, &args, None)
    };
    let ok = job("in/good.csv", "", &[]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let logs = String::from_utf8_lossy(&ok.stderr).to_string();
    let finished: serde_json::Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "job finished")
        .unwrap_or_else(|| panic!("a JSON 'job finished' log line: {logs}"));
    assert_eq!(finished["status"], "succeeded");
    let run_id = finished["run_id"].as_str().unwrap().to_string();
    let record = runs_of(&server.bucket_dir(LAKE));
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].run_id, run_id);
    let manifest = serde_json::to_value(&record[0]).unwrap();
    assert!(
        manifest["cost"]["vcpu_seconds"].as_f64().unwrap() > 0.0,
        "{manifest}"
    );
    assert!(
        manifest["cost"]["gb_seconds"].as_f64().unwrap() > 0.0,
        "{manifest}"
    );
    assert!(
        manifest["source"]["version"]
            .as_str()
            .unwrap()
            .starts_with("etag:")
    );

    assert_eq!(
        job("in/good.csv", "", &[]).status.code(),
        Some(0),
        "already done: skipped"
    );
    assert_eq!(
        job("in/bad header.csv", "", &[]).status.code(),
        Some(2),
        "rejected input"
    );
    assert_eq!(
        job("in/missing.csv", "", &[]).status.code(),
        Some(3),
        "missing object"
    );
    assert_eq!(
        job("in/good.csv", "0123456789abcdef0123456789abcdef", &[])
            .status
            .code(),
        Some(3),
        "another version than the one named"
    );
    let unreachable = Command::new(env!("CARGO_BIN_EXE_duff"))
        .args([
            "job",
            "--bucket",
            INBOX,
            "--key",
            "in/good.csv",
            "--lake",
            "s3://lake/",
            "--s3-max-attempts",
            "2",
        ])
        .envs(server.env())
        .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(
        unreachable.status.code(),
        Some(75),
        "network failure is retryable: {}",
        String::from_utf8_lossy(&unreachable.stderr)
    );
}

/// PyPI `deltalake` (its own log replay and its own S3 client) reads every table of a lake in
/// S3 over the S3 protocol, and sees exactly the committed rows: the row counts the server's
/// files give, and the same total of money in `orders`.
#[test]
fn an_independent_delta_reader_reads_the_s3_lake_over_the_s3_protocol() {
    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "g.csv", &sample(5_000, 19));
    let done = run_s3(&server, "g.csv", "", &fixed_options(), &small_transfers()).unwrap();
    assert!(matches!(done, RunOutcome::Succeeded(_)), "{done:?}");
    let python = crate::venv::tool_python("deltalake", "import deltalake, pyarrow");
    let script = r#"
import json, os, sys
from deltalake import DeltaTable
import pyarrow.compute as pc
options = {
    "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL_S3"],
    "AWS_REGION": os.environ["AWS_REGION"],
    "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
    "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
    "AWS_ALLOW_HTTP": "true",
}
out = {}
for prefix in sys.argv[1:]:
    t = DeltaTable("s3://lake/" + prefix, storage_options=options).to_pyarrow_table()
    entry = {"rows": t.num_rows}
    if "total_price" in t.column_names:
        entry["total_price"] = str(pc.sum(t["total_price"]).as_py())
    out[prefix] = entry
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"#;
    let prefixes: Vec<&str> = ALL_TABLES.iter().map(|d| d.prefix).collect();
    let out = Command::new(&python)
        .args(["-c", script])
        .args(&prefixes)
        .envs(server.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::venv::text(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lake = server.bucket_dir(LAKE);
    for def in ALL_TABLES.iter() {
        let rows = delta_rows(&lake, def);
        assert!(!rows.is_empty(), "{}: the run leaves rows", def.name);
        assert_eq!(
            seen[def.prefix]["rows"].as_u64().unwrap() as usize,
            rows.len(),
            "{}",
            def.name
        );
    }
    let names: Vec<&str> = duff_engine::schema::ORDERS
        .columns
        .iter()
        .map(|c| c.name)
        .collect();
    let at = names.iter().position(|n| *n == "total_price").unwrap();
    let ours: i128 = delta_rows(&lake, &COMMIT_ORDER[1])
        .iter()
        .map(|r| crate::api::units(&r[at]))
        .sum();
    let theirs = crate::api::units(seen["orders"]["total_price"].as_str().unwrap());
    assert_eq!(ours, theirs);
}

/// Maintenance never creates a lake where there is none, and a prefix holding the layout
/// before Delta tables is refused with what to do, not misread.
#[test]
fn a_missing_or_earlier_layout_s3_lake_is_refused_with_a_message() {
    let server = S3Server::start(&[INBOX, LAKE]);
    let out = duff(
        &server,
        &["lake", "check", "--lake", "s3://lake/none/"],
        None,
    );
    assert!(!out.status.success());
    let text = crate::venv::text(&out);
    assert!(text.contains("no lake at s3://lake/none/"), "{text}");
    assert!(
        data_objects(&server.bucket_dir(LAKE)).is_empty(),
        "nothing created"
    );
    assert!(!server.bucket_dir(LAKE).join("none").exists());

    server.put(LAKE, "old/_runs/0123456789abcdef0123.json", b"{}");
    server.put(INBOX, "h.csv", &sample(1_000, 20));
    let out = duff(
        &server,
        &[
            "run",
            "s3://inbox/h.csv",
            "--lake",
            "s3://lake/old/",
            "--no-progress",
        ],
        None,
    );
    assert!(!out.status.success());
    let text = crate::venv::text(&out);
    assert!(
        text.contains("layout before Delta tables") && text.contains("duff lake convert"),
        "{text}"
    );
    let objects = crate::common::snapshot(&server.bucket_dir(LAKE).join("old"), true);
    assert_eq!(objects.len(), 1, "nothing written: {:?}", objects.keys());
}
