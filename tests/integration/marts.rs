//! The marts and the current dimensions equal an independent recomputation from history (the
//! latest version of every line or dimension row, grouped here with ordinary maps), after every
//! kind of change, crash and input order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use duff_datagen::Dirt;
use duff_delta::tables::CURRENT_DIMS;
use duff_delta::tables::MARTS;
use duff_delta::{COMMIT_ORDER, DeltaTableDef};

use crate::api::{money, units};
use crate::common::{delta_files, delta_rows, parquet_rows};
use crate::lake::{
    assert_check_finds, assert_check_healthy, derive_csv, duff_lake, duff_run, latest_of_history,
    must_succeed, sample, sample_of,
};

#[derive(Default)]
struct Group {
    orders: BTreeSet<i64>,
    lines: i64,
    units: i64,
    sales: i128,
    volume: i128,
}

/// `12.34` or `12.3400` → `12.3400`.
fn decimal(text: &str) -> String {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    money(units(&format!("{int}.{frac:0<4}")))
}

/// Every mart, recomputed from history: rows of strings in the mart's column order.
fn marts_from_history(latest: &[Vec<String>]) -> BTreeMap<&'static str, Vec<Vec<String>>> {
    let names: Vec<&str> = duff_engine::schema::ORDERS
        .columns
        .iter()
        .map(|c| c.name)
        .chain(["pa_date"])
        .collect();
    let at = |n: &str| names.iter().position(|c| *c == n).unwrap();
    let mut groups: BTreeMap<&'static str, BTreeMap<Vec<String>, Group>> = BTreeMap::new();
    let (order, ccf, price, volume) = (
        at("order_id"),
        at("product_ccf"),
        at("total_price"),
        at("total_volume"),
    );
    for row in latest {
        let v = |n: &str| row[at(n)].clone();
        // The line's numbers, read once for its seven groups.
        let order: i64 = row[order].parse().unwrap();
        let line_units: i64 = row[ccf].parse().unwrap();
        let sales = units(&decimal(&row[price]));
        let line_volume = units(&decimal(&row[volume]));
        let keys: [(&'static str, Vec<String>); 7] = [
            ("mart_clients", vec![v("client_id")]),
            (
                "mart_client_products",
                vec![v("client_id"), v("product_id")],
            ),
            ("mart_products", vec![v("product_id")]),
            ("mart_status", vec![v("status")]),
            ("mart_channels", vec![v("point_of_sale_channel")]),
            (
                "mart_daily_channels",
                vec![v("pa_date"), v("point_of_sale_channel")],
            ),
            ("mart_client_status", vec![v("client_id"), v("status")]),
        ];
        for (mart, key) in keys {
            let g = groups.entry(mart).or_default().entry(key).or_default();
            g.orders.insert(order);
            g.lines += 1;
            g.units += line_units;
            g.sales += sales;
            g.volume += line_volume;
        }
    }
    // Each client's top product: largest sales, then smallest product id.
    let mut top: BTreeMap<String, (i128, i64)> = BTreeMap::new();
    for (key, g) in groups.get("mart_client_products").into_iter().flatten() {
        let product: i64 = key[1].parse().unwrap();
        let best = top.entry(key[0].clone()).or_insert((g.sales, product));
        if (g.sales, -product) > (best.0, -best.1) {
            *best = (g.sales, product);
        }
    }
    let mut out = BTreeMap::new();
    for def in MARTS.iter() {
        let mut rows: Vec<Vec<String>> = groups
            .remove(def.name)
            .unwrap_or_default()
            .into_iter()
            .map(|(mut key, g)| {
                let client = key[0].clone();
                key.extend([
                    g.orders.len().to_string(),
                    g.lines.to_string(),
                    g.units.to_string(),
                    money(g.sales),
                    money(g.volume),
                ]);
                if def.name == "mart_clients" {
                    let (sales, product) = top[&client];
                    key.extend([product.to_string(), money(sales)]);
                }
                key
            })
            .collect();
        rows.sort();
        out.insert(def.name, rows);
    }
    out
}

/// Every mart as the lake holds it, decimals written with four places.
fn marts_in_lake(lake: &Path) -> BTreeMap<&'static str, Vec<Vec<String>>> {
    let mut out = BTreeMap::new();
    for def in MARTS.iter() {
        let columns = def.engine_table.unwrap().columns;
        let mut rows: Vec<Vec<String>> = Vec::new();
        for rel in delta_files(lake, def) {
            for row in parquet_rows(&lake.join(rel)) {
                let row = row
                    .iter()
                    .zip(columns)
                    .map(|(v, c)| match c.ty {
                        duff_engine::schema::ColumnType::DecimalSum => decimal(v),
                        _ => v.clone(),
                    })
                    .collect();
                rows.push(row);
            }
        }
        rows.sort();
        out.insert(def.name, rows);
    }
    out
}

/// Each current dimension and the history table of its slices.
fn current_dims_and_history() -> [(DeltaTableDef, DeltaTableDef); 2] {
    let history = |name: &str| *COMMIT_ORDER.iter().find(|d| d.name == name).unwrap();
    [
        (CURRENT_DIMS[0], history("dim_clients")),
        (CURRENT_DIMS[1], history("dim_products")),
    ]
}

/// A current dimension recomputed from history: for each key (the first column), the row of
/// the committed runs' slices with the largest `ingested_at`, then `run_id`.
fn current_dim_from_history(lake: &Path, history: &DeltaTableDef) -> Vec<Vec<String>> {
    let columns = history.engine_table.unwrap().columns;
    let at = |n: &str| columns.iter().position(|c| c.name == n).unwrap();
    let (ingested, run) = (at("ingested_at"), at("run_id"));
    let mut latest: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for mut row in delta_rows(lake, history) {
        row.pop(); // pa_date
        let key: i64 = row[0].parse().unwrap();
        let newer = latest
            .get(&key)
            .is_none_or(|old| (&row[ingested], &row[run]) > (&old[ingested], &old[run]));
        if newer {
            latest.insert(key, row);
        }
    }
    latest.into_values().collect()
}

/// Asserts that every mart equals its recomputation from history, and so does every current
/// dimension of the star schema.
pub fn assert_marts_match_history(lake: &Path) {
    assert_marts_match(lake, &latest_of_history(lake));
}

/// [`assert_marts_match_history`] given the latest version of every line (`latest_of_history`),
/// for a test that has it already: on a 100 MB lake it takes seconds.
pub fn assert_marts_match(lake: &Path, latest: &[Vec<String>]) {
    let expected = marts_from_history(latest);
    let actual = marts_in_lake(lake);
    for def in MARTS.iter() {
        assert!(
            !expected[def.name].is_empty(),
            "{}: a lake with lines",
            def.name
        );
        assert_eq!(actual[def.name], expected[def.name], "{}", def.name);
    }
    for (current, history) in current_dims_and_history() {
        let expected = current_dim_from_history(lake, &history);
        assert!(!expected.is_empty(), "{}: a lake with lines", current.name);
        let mut actual: Vec<Vec<String>> = delta_rows(lake, &current)
            .into_iter()
            .map(|mut row| {
                row.pop(); // not partitioned: an empty pa_date
                row
            })
            .collect();
        actual.sort_by_key(|row| row[0].parse::<i64>().unwrap());
        assert_eq!(actual, expected, "{}", current.name);
    }
}

#[test]
fn a_crash_between_the_current_state_and_the_marts_is_repaired_by_the_next_fold() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    must_succeed(duff_run(&a, &lake, None, &[]));
    assert_marts_match_history(&lake);
    let b = dir.path().join("redelivery.csv");
    derive_csv(&a, &b, |i, header, f| {
        let status = crate::lake::column_index(header, "status");
        f[status] = "broken".into();
        f.len() == header.len() && i % 4 == 0
    });
    let out = duff_run(
        &b,
        &lake,
        Some("before_marts_commit"),
        &["--ingested-at", "2026-11-23T10:00:00Z"],
    );
    assert!(!out.status.success());
    assert_check_finds(&lake, "the marts reflect order_lines version");
    // In order_lines but not in the marts: not recorded as folded.
    assert_eq!(delta_rows(&lake, &duff_delta::FOLDS).len(), 1);
    must_succeed(duff_lake(&["fold", "--lake", lake_arg]));
    assert_marts_match_history(&lake);
    assert_eq!(
        delta_rows(&lake, &duff_delta::FOLDS).len(),
        2,
        "the fold completed by `duff lake fold` is recorded"
    );
    assert_check_healthy(&lake);
}

/// A later run renames clients and re-describes products: the current dimensions hold their
/// latest versions. A crash between the marts' commit and theirs is named by `duff lake check`
/// and repaired by the next fold.
#[test]
fn the_current_dimensions_follow_renames_and_survive_a_crash_before_their_commit() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    must_succeed(duff_run(&a, &lake, None, &[]));
    assert_marts_match_history(&lake);
    let b = dir.path().join("renames.csv");
    derive_csv(&a, &b, |i, header, f| {
        let at = |n: &str| crate::lake::column_index(header, n);
        let keep = f.len() == header.len() && i % 5 == 0;
        if keep {
            f[at("client_name")] = format!("Renamed {}", f[at("client_id")].trim());
            f[at("product_description")] = format!("New {}", f[at("product_id")].trim());
        }
        keep
    });
    let out = duff_run(
        &b,
        &lake,
        Some("before_dims_commit"),
        &["--ingested-at", "2026-11-23T10:00:00Z"],
    );
    assert!(!out.status.success());
    assert_check_finds(&lake, "the current dimensions reflect order_lines version");
    must_succeed(duff_lake(&["fold", "--lake", lake_arg]));
    assert_marts_match_history(&lake);
    let clients = delta_rows(&lake, &CURRENT_DIMS[0]);
    let renamed = clients
        .iter()
        .filter(|r| r[1].starts_with("Renamed "))
        .count();
    assert!(
        renamed > 10 && renamed < clients.len(),
        "{renamed} of {} clients renamed",
        clients.len()
    );
    let products = delta_rows(&lake, &CURRENT_DIMS[1]);
    assert!(products.iter().any(|r| r[1].starts_with("New ")));
    assert_check_healthy(&lake);
}

/// How each fold of a `duff run` with [`JSON_LOG`] changed the marts: from the rows the
/// engine saw ("rows seen") or from the files ("files read").
fn marts_from(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["marts_from"].as_str().map(str::to_string))
        .collect()
}

const JSON_LOG: [&str; 3] = ["-v", "--log-format", "json"];

#[test]
fn runs_of_new_orders_add_the_marts_their_rows_made_and_they_equal_history() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let first = sample(dir.path(), 3_000);
    let out = duff_run(&first, &lake, None, &JSON_LOG);
    assert_eq!(marts_from(&out), ["rows seen"]);
    must_succeed(out);
    assert_marts_match_history(&lake);
    // Another seed, another id range: new orders of the same clients and products, added
    // to marts that hold their groups already.
    let second = sample_of(dir.path(), "second.csv", 18, 2_000, Dirt::typical());
    let out = duff_run(&second, &lake, None, &JSON_LOG);
    assert_eq!(marts_from(&out), ["rows seen"]);
    must_succeed(out);
    assert_marts_match_history(&lake);
    // Lines the lake holds, delivered again: the fold reads what they supersede.
    let again = dir.path().join("again.csv");
    derive_csv(&first, &again, |i, header, f| {
        f.len() == header.len() && i % 3 == 0
    });
    let out = duff_run(
        &again,
        &lake,
        None,
        &[&JSON_LOG[..], &["--ingested-at", "2026-11-23T10:00:00Z"]].concat(),
    );
    assert_eq!(marts_from(&out), ["files read"]);
    must_succeed(out);
    assert_marts_match_history(&lake);
}

#[test]
fn an_order_whose_lines_are_apart_in_the_file_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample_of(dir.path(), "orders.csv", 17, 3_000, Dirt::none());
    let text = std::fs::read_to_string(&a).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // The first line of an order with several lines moves to the end of the file.
    let order = |l: &str| -> Option<i64> {
        let fields: Vec<&str> = l.split(',').collect();
        (fields.len() == 10)
            .then(|| fields[2].parse().ok())
            .flatten()
    };
    let at = (1..lines.len() - 1)
        .find(|&i| order(lines[i]).is_some() && order(lines[i]) == order(lines[i + 1]))
        .expect("an order of several lines");
    let moved = lines.remove(at);
    lines.push(moved);
    let apart = dir.path().join("apart.csv");
    std::fs::write(&apart, lines.join("\n") + "\n").unwrap();
    let lake = dir.path().join("lake");
    let out = duff_run(&apart, &lake, None, &JSON_LOG);
    assert_eq!(marts_from(&out), ["files read"]);
    must_succeed(out);
    assert_marts_match_history(&lake);
}

#[test]
fn lines_of_an_order_out_of_order_give_the_same_marts() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 3_000);
    let lake = dir.path().join("lake");
    // The same lines, in reverse: order ids decrease through the file.
    let reversed = dir.path().join("reversed.csv");
    let text = std::fs::read_to_string(&a).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    std::fs::write(&reversed, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
    must_succeed(duff_run(&reversed, &lake, None, &[]));
    assert_marts_match_history(&lake);
    // A re-delivery of every third line, folded into the reversed file's current state.
    let b = dir.path().join("redelivery.csv");
    derive_csv(&a, &b, |i, header, f| {
        let client = crate::lake::column_index(header, "client_id");
        if i % 6 == 0 {
            f[client] = "424242".into();
        }
        f.len() == header.len() && i % 3 == 0
    });
    must_succeed(duff_run(
        &b,
        &lake,
        None,
        &["--ingested-at", "2026-11-23T10:00:00Z"],
    ));
    assert_marts_match_history(&lake);
}

#[test]
fn lake_check_finds_a_mart_that_is_not_the_aggregate_of_the_current_state() {
    use arrow::array::{ArrayRef, Int64Array, RecordBatch};
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 2_000);
    let lake = dir.path().join("lake");
    must_succeed(duff_run(&a, &lake, None, &[]));
    let def = MARTS.iter().find(|d| d.name == "mart_status").unwrap();
    let rel = delta_files(&lake, def).remove(0);
    let path = lake.join(rel);
    let file = std::fs::File::open(&path).unwrap();
    let batch: RecordBatch =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
    let at = batch.schema().index_of("orders").unwrap();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let orders = columns[at]
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .iter()
        .map(|v| v.map(|v| v + 1))
        .collect::<Int64Array>();
    columns[at] = std::sync::Arc::new(orders);
    let wrong = RecordBatch::try_new(batch.schema(), columns).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        wrong.schema(),
        None,
    )
    .unwrap();
    w.write(&wrong).unwrap();
    w.close().unwrap();
    let out = duff_lake(&["check", "--lake", lake.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("mart_status: ") && report.contains("differ from a recomputation"),
        "{report}"
    );
}

/// `duff datagen --redeliver-from`: a fifth of an earlier file's orders, each line with its
/// next status, folded over the earlier run: the current state and every mart equal a
/// recomputation from history, and the re-delivered lines carry their new status.
#[test]
fn a_datagen_redelivery_moves_whole_orders_to_their_next_status() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(dir.path(), 6_000);
    let lake = dir.path().join("lake");
    must_succeed(duff_run(&a, &lake, None, &[]));
    let b = dir.path().join("redelivery.csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duff"))
        .args(["datagen", "--redeliver-from", a.to_str().unwrap()])
        .args(["--out", b.to_str().unwrap(), "--seed", "3"])
        .output()
        .unwrap();
    must_succeed(out);
    must_succeed(duff_run(
        &b,
        &lake,
        None,
        &[
            "--ingested-at",
            "2026-11-23T10:00:00Z",
            "--pa-date",
            "2026-11-23",
        ],
    ));
    let current = delta_rows(&lake, &duff_delta::ORDER_LINES);
    assert_eq!(current, latest_of_history(&lake));
    assert_marts_match_history(&lake);
    // Every re-delivered line is current, with its new status.
    let mut reader = csv::Reader::from_path(&b).unwrap();
    let header = reader.headers().unwrap().clone();
    let at = |n: &str| crate::lake::column_index(&header, n);
    let (o, p, st) = (at("order_id"), at("product_id"), at("status"));
    // A key sent twice (a key conflict in the earlier file): the first line is kept.
    let mut sent: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in reader.byte_records() {
        let r = r.unwrap();
        let text = |i: usize| String::from_utf8_lossy(&r[i]).trim().to_string();
        sent.entry((text(o), text(p))).or_insert(text(st));
    }
    assert!(sent.len() > 100, "{} lines re-delivered", sent.len());
    let col = crate::common::orders_column;
    let (co, cp, cs) = (col("order_id"), col("product_id"), col("status"));
    let mut seen = 0;
    for row in &current {
        if let Some(status) = sent.get(&(row[co].clone(), row[cp].clone())) {
            seen += 1;
            assert_eq!(&row[cs], status, "{row:?}");
        }
    }
    // A re-delivered line that conflicts with itself (a key conflict in the earlier file)
    // is quarantined, not current.
    assert!(
        seen * 10 >= sent.len() * 9,
        "{seen} of {} current",
        sent.len()
    );
}
