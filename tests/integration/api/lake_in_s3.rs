//! The lake-direct backend (the API Lambda's `lake` setting, `duff serve --lake s3://…`): the
//! embedded engine over the test lake copied, logs, run records and an uncommitted attempt's
//! files alike, into a real S3-protocol server on loopback answers every report exactly as
//! over the local directory; an S3 that fails is a retryable 503.

use std::sync::atomic::Ordering;
use std::time::Duration;

use duff_api::EmbeddedBackend;
use duff_s3::TransferSettings;
use duff_s3::test_server::S3Server;

use super::{every_report, get, lake, server, spawn};
use crate::common;

/// An S3-protocol server holding every file of the API test lake under `s3://lake/team/lake/`.
fn lake_in_s3() -> S3Server {
    let s3 = S3Server::start(&["lake"]);
    let files = common::snapshot(&lake().root, true);
    assert!(files.keys().any(|k| k.contains("_delta_log/")));
    for (rel, bytes) in &files {
        s3.put("lake", &format!("team/lake/{rel}"), bytes);
    }
    s3
}

#[test]
fn the_lake_read_from_s3_answers_every_report_exactly_like_the_local_lake() {
    let lake = lake();
    let s3 = lake_in_s3();
    let settings = TransferSettings {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        ..TransferSettings::default()
    };
    let store = duff_s3::object_store(&settings, &s3.endpoint(), "lake").unwrap();
    let root = url::Url::parse("s3://lake/team/lake/").unwrap();
    let backend = EmbeddedBackend::open_in_store(store, root, 2).unwrap();
    assert_eq!(backend.location(), "s3://lake/team/lake/");
    let api = spawn(duff_api::router(backend, None));

    let gets_before = s3.counts().get("GetObject").copied().unwrap_or(0);
    for target in every_report(lake) {
        let (want, got) = (get(server(), &target), get(&api, &target));
        assert_eq!(got.status, want.status, "{target}: {}", got.text());
        assert_eq!(
            got.body,
            want.body,
            "{target}:\n from S3 {}\n local {}",
            got.text(),
            want.text()
        );
    }
    let gets = s3.counts().get("GetObject").copied().unwrap_or(0) - gets_before;
    assert!(gets > 10, "the reports were read from S3 ({gets} GETs)");

    // A request follows the tables' logs once (its current-state check and its query share
    // the refresh): one LIST of each table's _delta_log/, and one of the data of each of the
    // two tables this report reads (no listing is cached: a later run's files must show).
    std::thread::sleep(Duration::from_millis(1100));
    let lists = |s3: &S3Server| s3.counts().get("ListObjectsV2").copied().unwrap_or(0);
    let before = lists(&s3);
    assert_eq!(get(&api, "/sales/by-status").status, 200);
    let per_request = lists(&s3) - before;
    assert!(
        per_request <= duff_delta::ALL_TABLES.len() as u64 + 2,
        "{per_request} LISTs for one report"
    );

    // S3 failing: every request answered 503 SlowDown, past the client's retries. The files'
    // reads fail (the logs were followed less than a second ago), then the logs' too.
    s3.faults.slow_down_every.store(1, Ordering::Relaxed);
    for (what, wait) in [("a data file", 0), ("the logs", 1100)] {
        std::thread::sleep(Duration::from_millis(wait));
        let failed = get(&api, "/sales/by-status");
        assert_eq!(failed.status, 503, "{what}: {}", failed.text());
        assert!(
            failed.header("retry-after").is_some(),
            "{what}: {}",
            failed.text()
        );
    }
}

#[test]
fn a_lake_root_that_is_not_a_directory_url_with_a_bucket_is_refused() {
    let s3 = S3Server::start(&["lake"]);
    let store =
        duff_s3::object_store(&TransferSettings::default(), &s3.endpoint(), "lake").unwrap();
    for root in ["s3://lake/team/lake", "file:///srv/lake/"] {
        let url = url::Url::parse(root).unwrap();
        let refused = EmbeddedBackend::open_in_store(store.clone(), url, 1);
        assert!(refused.is_err(), "{root}");
    }
}

#[test]
fn duff_serve_serves_a_lake_in_s3() {
    let s3 = lake_in_s3();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_duff"));
    cmd.args([
        "serve",
        "--lake",
        "s3://lake/team/lake",
        "--addr",
        "127.0.0.1:0",
    ])
    .envs(s3.env())
    .env_remove("DUFF_API_KEY");
    let (mut child, addr, second) = super::serving(cmd);
    let target = "/sales/by-status";
    let (want, got) = (get(server(), target), get(&addr, target));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(second.contains("lake s3://lake/team/lake/"), "{second}");
    assert_eq!((got.status, got.body), (want.status, want.body));

    // An S3 URL without a bucket is refused before anything is served.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duff"))
        .args(["serve", "--lake", "s3:///lake", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no bucket"));
}
