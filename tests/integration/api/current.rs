//! Reports over every date read the current state and its marts; the same reports in their
//! history form (ranking every version of every line) must give the very same rows, on a lake
//! with re-deliveries, a key moved between clients, a failed run and an uncommitted one.

use duff_api::Backend;
use duff_api::reports::{self, Param};

#[test]
fn every_report_reads_the_same_rows_from_the_current_state_as_from_history() {
    let backend = super::embedded();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(
        rt.block_on(backend.reads_current_state()),
        "a folded lake has its marts"
    );
    let mut compared = 0;
    for client in [super::lake().client, super::NEW_CLIENT] {
        for report in reports::all() {
            let Some(current) = report.current else {
                continue;
            };
            let rest: Vec<Param> = current
                .params
                .iter()
                .map(|p| match *p {
                    "client_id" => Param::Int(client),
                    "status" => Param::from(""),
                    "offset" => Param::Int(0),
                    "limit" => Param::Int(1_000_000),
                    other => panic!("{}: parameter {other}", current.name),
                })
                .collect();
            let mut dated = vec![
                Param::from(duff_api::params::MIN_DATE),
                Param::from(duff_api::params::MAX_DATE),
            ];
            dated.extend(rest.clone());
            let history = rt.block_on(backend.query(report, dated)).unwrap();
            let now = rt.block_on(backend.query(current, rest)).unwrap();
            let names = |rs: &duff_api::value::ResultSet| {
                rs.columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(&now), names(&history), "{}", report.name);
            assert!(!history.rows.is_empty(), "{}: rows to compare", report.name);
            assert_eq!(now.rows, history.rows, "{} (client {client})", report.name);
            compared += 1;
        }
    }
    assert!(compared >= 2 * 17, "{compared}");
}
