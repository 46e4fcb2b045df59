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

/// The README's example queries for analysts (its `sql` block) run on a lake and return rows:
/// the tables and columns they name are the lake's.
#[test]
fn the_readmes_queries_for_analysts_run_on_the_lake() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("```sql\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a sql block");
    let client = super::lake().client.to_string();
    let queries: Vec<String> = block
        .split(';')
        .map(|q| {
            q.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|q| !q.trim().is_empty())
        .collect();
    assert!(queries.len() >= 3, "{queries:?}");
    let backend = super::embedded();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for query in queries {
        // The example client and month are the README's; the test lake has its own.
        let query = query.replace("103100", &client).replace(
            "'2026-11-01' AND '2026-11-30'",
            "'1970-01-01' AND '9999-12-31'",
        );
        let (_, batches) = rt
            .block_on(backend.sql_batches(&query, &[]))
            .unwrap_or_else(|e| panic!("{query}\n{e}"));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "no rows:\n{query}");
    }
}
