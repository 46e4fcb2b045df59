//! Glue tables and the runs table against the code; partition projection settings.

use std::collections::BTreeSet;

use duff_api::RUNS_COLUMNS;
use duff_api::tables::{PA_DATE_GLUE_TYPE, RUNS_TABLE};
use duff_engine::lake::RUNS_DIR;
use duff_engine::schema::{PARTITION_COLUMN, TABLES};
use duff_engine::{LocalLake, RunOutcome, run_local};
use serde_json::Value;

use super::LAKE;
use super::hive;
use super::template::{Template, one_or_many, render};

pub fn glue_tables(t: &Template) -> Vec<(&str, &Value)> {
    t.resources("AWS::Glue::Table")
        .map(|(_, p)| (p["TableInput"]["Name"].as_str().unwrap(), &p["TableInput"]))
        .collect()
}

fn columns(v: &Value) -> Vec<(String, String)> {
    one_or_many(v)
        .into_iter()
        .map(|c| (render(&c["Name"]), render(&c["Type"])))
        .collect()
}

/// The differences between two column lists, each naming the table and the column.
fn column_diff(
    table: &str,
    template: &[(String, String)],
    code: &[(String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, ty) in code {
        match template.iter().find(|(n, _)| n == name) {
            None => out.push(format!(
                "table {table}: column {name} ({ty}) is missing from the template"
            )),
            Some((_, t)) if t != ty => out.push(format!(
                "table {table}: column {name} is {t} in the template but {ty} in the code"
            )),
            _ => {}
        }
    }
    for (name, ty) in template {
        if !code.iter().any(|(n, _)| n == name) {
            out.push(format!(
                "table {table}: column {name} ({ty}) is in the template but not in the code"
            ));
        }
    }
    let order = |cols: &[(String, String)]| cols.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
    if out.is_empty() && order(template) != order(code) {
        out.push(format!(
            "table {table}: columns in a different order: template {:?}, code {:?}",
            order(template),
            order(code)
        ));
    }
    out
}

#[test]
fn glue_tables_equal_the_engine_schema() {
    let catalog = Template::load("catalog.yaml");
    let tables = glue_tables(&catalog);
    let mut problems = Vec::new();
    for table in TABLES {
        let Some((_, input)) = tables.iter().find(|(n, _)| *n == table.name) else {
            problems.push(format!(
                "table {}: no AWS::Glue::Table in catalog.yaml",
                table.name
            ));
            continue;
        };
        let sd = &input["StorageDescriptor"];
        let code: Vec<_> = table
            .columns
            .iter()
            .map(|c| (c.name.to_string(), c.ty.glue()))
            .collect();
        problems.extend(column_diff(table.name, &columns(&sd["Columns"]), &code));

        let partition = vec![(PARTITION_COLUMN.to_string(), PA_DATE_GLUE_TYPE.to_string())];
        if columns(&input["PartitionKeys"]) != partition {
            problems.push(format!(
                "table {}: partition keys must be exactly pa_date string",
                table.name
            ));
        }
        let prefix = table.prefix;
        let expect = [
            (
                "Location",
                render(&sd["Location"]),
                format!("s3://{LAKE}/{prefix}/"),
            ),
            (
                "InputFormat",
                render(&sd["InputFormat"]),
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into(),
            ),
            (
                "SerializationLibrary",
                render(&sd["SerdeInfo"]["SerializationLibrary"]),
                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe".into(),
            ),
        ];
        let p = &input["Parameters"];
        let projection = [
            ("projection.enabled", "true".to_string()),
            ("projection.pa_date.type", "date".into()),
            ("projection.pa_date.format", "yyyy-MM-dd".into()),
            ("projection.pa_date.range", "2020-01-01,NOW".into()),
            ("projection.pa_date.interval", "1".into()),
            ("projection.pa_date.interval.unit", "DAYS".into()),
            (
                "storage.location.template",
                format!("s3://{LAKE}/{prefix}/pa_date=${{pa_date}}/"),
            ),
        ];
        for (what, got, want) in expect {
            if got != want {
                problems.push(format!(
                    "table {}: {what} is {got:?}, expected {want:?}",
                    table.name
                ));
            }
        }
        for (key, want) in projection {
            let got = render(&p[key]);
            if got != want {
                problems.push(format!(
                    "table {}: parameter {key} is {got:?}, expected {want:?}",
                    table.name
                ));
            }
        }
    }
    let known: BTreeSet<_> = TABLES.iter().map(|t| t.name).chain([RUNS_TABLE]).collect();
    for (name, _) in &tables {
        if !known.contains(name) {
            problems.push(format!(
                "table {name}: in catalog.yaml but the engine writes no such table"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "catalog.yaml vs the engine's schema:\n  {}",
        problems.join("\n  ")
    );
}

/// Manifests of a succeeded and of a failed run (only failed ones carry error_code and error).
fn real_manifests() -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let header = duff_engine::rules::REQUIRED_COLUMNS.join(",");
    // Ten good rows, one quarantined (under the 10% limit), one extra column: every counter,
    // the per-reason map and extra_columns get a value.
    let mut csv = format!("{header},note\n");
    for order in 1..=10 {
        csv.push_str(&format!(
            "1,Ann,{order},100,Duff,1.5,2,0.355,Retail,created,x\n"
        ));
    }
    csv.push_str("oops,Ann,11,100,Duff,1.5,2,0.355,Retail,created,x\n");
    let good = dir.path().join("good.csv");
    std::fs::write(&good, csv).unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "client_id,client_name\n1,Ann\n").unwrap();
    let lake = LocalLake::open(dir.path().join("lake")).unwrap();
    let mut out = Vec::new();
    for (file, want_failed) in [(good, false), (bad, true)] {
        let m = match run_local(&file, &lake, &crate::common::fixed_options(), &|_| {}).unwrap() {
            RunOutcome::Succeeded(m) if !want_failed => m,
            RunOutcome::Failed(m) if want_failed => m,
            other => panic!("unexpected outcome for {}: {other:?}", file.display()),
        };
        out.push(serde_json::to_value(&m).unwrap());
    }
    let by_reason = &out[0]["counts"]["quarantined_by_reason"];
    assert!(
        by_reason.as_object().is_some_and(|m| !m.is_empty()),
        "{by_reason}"
    );
    out
}

/// The runs table equals the API's contract (`duff_api::RUNS_COLUMNS`, which the embedded
/// backend reads with too), and every contract column is a key of a real serialized manifest
/// holding a value of the column's type.
#[test]
fn runs_table_equals_the_run_manifest() {
    let catalog = Template::load("catalog.yaml");
    let tables = glue_tables(&catalog);
    let (_, runs) = tables
        .iter()
        .find(|(n, _)| *n == RUNS_TABLE)
        .expect("catalog.yaml has a runs table");
    let sd = &runs["StorageDescriptor"];
    let contract: Vec<_> = RUNS_COLUMNS
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let mut problems = column_diff(RUNS_TABLE, &columns(&sd["Columns"]), &contract);
    for (what, got, want) in [
        (
            "Location",
            render(&sd["Location"]),
            format!("s3://{LAKE}/{RUNS_DIR}/"),
        ),
        (
            "SerDe",
            render(&sd["SerdeInfo"]["SerializationLibrary"]),
            "org.openx.data.jsonserde.JsonSerDe".into(),
        ),
        (
            "PartitionKeys",
            runs["PartitionKeys"].to_string(),
            "null".into(),
        ),
    ] {
        if got != want {
            problems.push(format!("table runs: {what} is {got}, expected {want}"));
        }
    }

    // Every column is a key of a real manifest, with a value of the column's type.
    let manifests = real_manifests();
    for (name, ty) in RUNS_COLUMNS {
        let ty = hive::parse(ty).unwrap_or_else(|e| panic!("runs.{name}: {e}"));
        let values: Vec<&Value> = manifests.iter().filter_map(|m| m.get(name)).collect();
        if values.is_empty() {
            problems.push(format!(
                "table runs: column {name} is not a key of duff_engine::Manifest (serialized)"
            ));
        }
        problems.extend(
            values
                .iter()
                .filter_map(|v| hive::mismatch(&format!("table runs: column {name}"), &ty, v)),
        );
    }
    assert!(
        problems.is_empty(),
        "the runs table vs the run manifest:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn partition_projection_types_are_valid() {
    let mut problems = Vec::new();
    for t in Template::all() {
        for (name, input) in glue_tables(&t) {
            let Some(params) = input["Parameters"].as_object() else {
                continue;
            };
            let partitions: Vec<String> = columns(&input["PartitionKeys"])
                .into_iter()
                .map(|c| c.0)
                .collect();
            for (key, v) in params {
                let Some(col) = key
                    .strip_prefix("projection.")
                    .and_then(|k| k.strip_suffix(".type"))
                else {
                    continue;
                };
                let ty = render(v);
                if !["enum", "integer", "date", "injected"].contains(&ty.as_str()) {
                    problems.push(format!(
                        "table {name}: {key} = {ty} is not a projection type"
                    ));
                }
                if !partitions.iter().any(|p| p == col) {
                    problems.push(format!(
                        "table {name}: projection on {col}, which is not a partition key"
                    ));
                }
                if ty == "date" {
                    let unit = render(&params[&format!("projection.{col}.interval.unit")]);
                    if ![
                        "YEARS",
                        "MONTHS",
                        "WEEKS",
                        "DAYS",
                        "HOURS",
                        "MINUTES",
                        "SECONDS",
                        "MILLISECONDS",
                    ]
                    .contains(&unit.as_str())
                    {
                        problems.push(format!("table {name}: interval unit {unit}"));
                    }
                    if render(&params[&format!("projection.{col}.range")])
                        .split(',')
                        .count()
                        != 2
                    {
                        problems.push(format!("table {name}: date range must be \"start,end\""));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
