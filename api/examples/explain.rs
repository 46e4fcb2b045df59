//! Runs a report (by name) or a SQL file over a lake with the embedded engine, prints the row
//! count and time, then DataFusion's `EXPLAIN ANALYZE` (the physical plan with metrics) — for
//! finding out why a report is slow.
//!
//! ```sh
//! cargo run --release -p duff-api --example explain -- <lake> sales_by_status 0001-01-01 9999-12-31 0 101
//! cargo run --release -p duff-api --example explain -- <lake> query.sql 42 "''"
//! ```
//! Parameters bind to `$1`, `$2`…: integers as BIGINT, anything else as text (`''` is empty).

use std::path::Path;
use std::time::Instant;

use arrow::array::AsArray;
use duff_api::EmbeddedBackend;
use duff_api::reports::{self, Param};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [lake, what, params @ ..] = args.as_slice() else {
        eprintln!("usage: explain <lake> <report-name | file.sql> [param...]");
        std::process::exit(2);
    };
    let backend = EmbeddedBackend::open(Path::new(lake), 0).expect("a lake");
    let sql = match reports::all().into_iter().find(|r| r.name == what) {
        Some(report) => report.sql.to_string(),
        None => std::fs::read_to_string(what).expect("a report name or a SQL file"),
    };
    let params: Vec<Param> = params
        .iter()
        .map(|p| match p.parse::<i64>() {
            Ok(v) => Param::Int(v),
            Err(_) if p == "''" => Param::Text(String::new()),
            Err(_) => Param::Text(p.clone()),
        })
        .collect();
    let started = Instant::now();
    let (_, batches) = backend
        .sql_batches(&sql, &params)
        .await
        .expect("the query runs");
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!("{rows} rows in {:.3} s", started.elapsed().as_secs_f64());
    let (_, plan) = backend
        .sql_batches(&format!("EXPLAIN ANALYZE {sql}"), &params)
        .await
        .expect("EXPLAIN ANALYZE runs");
    for batch in plan {
        for i in 0..batch.num_rows() {
            println!("{}", batch.column(1).as_string::<i32>().value(i));
        }
    }
}
