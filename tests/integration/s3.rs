//! S3 storage against a real S3-protocol server on loopback, with the real SDK client: ranged
//! reads, multipart writes, conditional commits, fault injection, crashes, concurrency, and the
//! Batch job's exit codes.

pub(crate) use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

use duff_datagen::{Dirt, GenConfig, Size};
use duff_engine::schema::TABLES;
use duff_engine::storage::StorageErrorKind;
use duff_engine::{Error, RunOptions, RunOutcome};
use duff_s3::test_server::{self as server, S3Server};
use duff_s3::{S3Lake, S3Source, S3Url, TransferSettings};

use crate::common::{fixed_options, read_table, snapshot};

const INBOX: &str = "inbox";
const LAKE: &str = "lake";

/// Runs the engine on `s3://inbox/<key>` into `s3://lake/<prefix>` of `server`.
fn run_s3(
    server: &S3Server,
    key: &str,
    prefix: &str,
    options: &RunOptions,
    settings: &TransferSettings,
) -> Result<RunOutcome, Error> {
    let runtime = io_runtime();
    let (source, lake) = runtime.block_on(async {
        let client = duff_s3::client(settings, &server.endpoint()).await;
        let url = S3Url {
            bucket: INBOX.into(),
            key: key.into(),
        };
        let source = S3Source::head(client.clone(), settings.clone(), url, None).await?;
        let root = S3Url {
            bucket: LAKE.into(),
            key: prefix.into(),
        };
        Ok::<_, Error>((source, S3Lake::new(client, settings.clone(), root)?))
    })?;
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

/// Every table's rows without the lineage columns that name the input (`source_file`, `run_id`).
fn contents(lake: &Path) -> Vec<(String, Vec<Vec<String>>)> {
    TABLES
        .iter()
        .map(|t| {
            let (names, rows) = read_table(lake, t);
            let keep: Vec<usize> = (0..names.len())
                .filter(|&i| names[i] != "source_file" && names[i] != "run_id")
                .collect();
            let rows = rows
                .into_iter()
                .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
                .collect();
            (t.name.to_string(), rows)
        })
        .collect()
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
    let local = crate::common::run(&local_file, &dir.path().join("lake"), &options);

    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "uploads/orders.csv", &data);
    let settings = TransferSettings {
        read_chunk_bytes: 1 << 20,
        ..small_transfers()
    };
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
    assert_eq!(
        contents(&dir.path().join("lake")),
        contents(&server.bucket_dir(LAKE)),
        "every table holds the same rows"
    );
    assert!(
        server
            .bucket_dir(LAKE)
            .join(format!("_runs/{}.json", r.run_id))
            .exists()
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
    let strip = |mut s: std::collections::BTreeMap<String, Vec<u8>>| {
        s.retain(|k, _| !k.starts_with("_runs/"));
        s
    };
    assert_eq!(
        strip(snapshot(&faulty.bucket_dir(LAKE), true)),
        strip(snapshot(&clean.bucket_dir(LAKE), true)),
        "the same objects with the same bytes"
    );
    assert_eq!(got.manifest().counts, expected.manifest().counts);
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
        snapshot(&server.bucket_dir(LAKE), true).is_empty(),
        "nothing published, no manifest"
    );
    assert_eq!(server.open_upload_parts(), 0, "uploads aborted");
}

#[test]
fn two_concurrent_runs_of_the_same_object_publish_exactly_once() {
    let data = sample(80_000, 14);
    let server = Arc::new(S3Server::start(&[INBOX, LAKE]));
    server.put(INBOX, "c.csv", &data);
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
    let succeeded = outcomes
        .iter()
        .filter(|o| matches!(o, RunOutcome::Succeeded(_)))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, RunOutcome::Skipped(_)))
        .count();
    assert_eq!((succeeded, skipped), (1, 1), "{outcomes:?}");
    assert_eq!(
        server.counts().get("ManifestCreate").copied(),
        Some(2),
        "both attempts reached the conditional commit; one was refused"
    );
    let run_id = &outcomes[0].manifest().run_id;
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
    let strip = |mut s: std::collections::BTreeMap<String, Vec<u8>>| {
        s.retain(|k, _| !k.starts_with("_runs/"));
        s
    };
    assert_eq!(
        strip(snapshot(&server.bucket_dir(LAKE), true)),
        strip(snapshot(&committed.bucket_dir(LAKE), true)),
        "the lake is exactly what one run leaves"
    );
    assert!(
        server
            .bucket_dir(LAKE)
            .join(format!("_runs/{run_id}.json"))
            .exists()
    );
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
    let local = crate::common::run(&gz, &dir.path().join("lake"), &fixed_options());
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
    assert_eq!(
        contents(&dir.path().join("lake")),
        contents(&server.bucket_dir(LAKE).join("prefix/lake"))
    );
}

/// Runs the `duff` binary against `server`.
fn duff(server: &S3Server, args: &[&str], failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duff"));
    cmd.args(args)
        .envs(server.env())
        .env("DUFF_LOG_FORMAT", "json");
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

/// Crash at a failpoint, check what is visible, rerun, compare with a clean run.
fn s3_crash_then_rerun(failpoint: &str, visible_objects_after_crash: usize) {
    let data = sample(700_000, 16);
    let server = S3Server::start(&[INBOX, LAKE]);
    server.put(INBOX, "f.csv", &data);
    let mut args = vec![
        "run",
        "s3://inbox/f.csv",
        "--lake",
        "s3://lake/",
        "--no-progress",
    ];
    args.extend(FIXED);
    let out = duff(&server, &args, Some(failpoint));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the failpoint kills the run: {stderr}"
    );
    assert!(stderr.contains(failpoint), "{stderr}");
    assert!(
        server.counts().get("UploadPart").copied().unwrap_or(0) > 0,
        "parts went up"
    );
    let after_crash = snapshot(&server.bucket_dir(LAKE), true);
    assert!(
        after_crash.keys().all(|k| !k.starts_with("_runs/")),
        "not committed"
    );
    assert_eq!(
        after_crash.len(),
        visible_objects_after_crash,
        "{:?}",
        after_crash.keys()
    );

    let out = duff(&server, &args, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = S3Server::start(&[INBOX, LAKE]);
    clean.put(INBOX, "f.csv", &data);
    assert!(duff(&clean, &args, None).status.success());
    let strip = |mut s: std::collections::BTreeMap<String, Vec<u8>>| {
        s.retain(|k, _| !k.starts_with("_runs/"));
        s
    };
    assert_eq!(
        strip(snapshot(&server.bucket_dir(LAKE), true)),
        strip(snapshot(&clean.bucket_dir(LAKE), true)),
        "the rerun leaves exactly what one run leaves"
    );
    assert_eq!(
        snapshot(&server.bucket_dir(LAKE), true)
            .keys()
            .filter(|k| k.starts_with("_runs/"))
            .count(),
        1,
        "published exactly once"
    );
}

#[test]
fn a_crash_after_parts_were_uploaded_leaves_nothing_visible() {
    s3_crash_then_rerun("parts_uploaded", 0);
}

#[test]
fn a_crash_during_publication_is_uncommitted_and_the_rerun_converges() {
    s3_crash_then_rerun("mid_publish", 1);
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
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(server.bucket_dir(LAKE).join(format!("_runs/{run_id}.json"))).unwrap(),
    )
    .unwrap();
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
