//! A server that keeps running sees what is committed after it answered: the embedded backend
//! lists a table's files on every query (DataFusion's listing cache, on by default with no
//! expiry, would hide every file a later run adds, until a restart).

use std::time::Duration;

use duff_datagen::{GenConfig, Size};

use super::{get, spawn};
use crate::common;

#[test]
fn a_running_server_shows_the_runs_committed_after_its_first_answer() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let day = |d: &str| duff_engine::RunOptions {
        pa_date: Some(d.parse().unwrap()),
        ..common::fixed_options()
    };
    let input = |seed: u64| {
        let cfg = GenConfig {
            size: Size::Rows(500),
            seed,
            ..GenConfig::default()
        };
        common::datagen(dir.path(), &format!("orders-{seed}.csv"), &cfg).0
    };
    common::run_delta(&input(1), &lake, &day("2026-11-20"));
    let backend = duff_api::EmbeddedBackend::open(&lake, 2).unwrap();
    let api = spawn(duff_api::router(backend, None));
    let count = |target: &str| -> usize {
        let resp = get(&api, target);
        assert_eq!(resp.status, 200, "{target}: {}", resp.text());
        resp.json()["rows"].as_array().unwrap().len()
    };
    assert_eq!(count("/runs"), 1);
    let days = count("/sales/by-day?from=2026-11-01&to=2026-11-30");

    common::run_delta(&input(2), &lake, &day("2026-11-21"));
    // The backend follows the logs at most once a second.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(count("/runs"), 2, "the new run is listed");
    assert!(
        count("/sales/by-day?from=2026-11-01&to=2026-11-30") > days,
        "the new day is in the history's reports"
    );
}
