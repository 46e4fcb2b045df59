//! Glue tables against the lake's Delta tables: exactly one per table of
//! `duff_delta::ALL_TABLES`, at its location, registered for Athena's native Delta reader
//! (`table_type = DELTA`, no partition projection, no Glue partitions), its columns the table's
//! Delta schema; and the `runs` columns against real run manifests.

use std::collections::BTreeSet;

use duff_api::RUNS_COLUMNS;
use duff_api::tables::{PA_DATE_GLUE_TYPE, RUNS_TABLE};
use duff_delta::runs::MANIFEST_COLUMN;
use duff_delta::{ALL_TABLES, DeltaTableDef};
use duff_engine::schema::PARTITION_COLUMN;
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

/// The Glue (Hive) spelling of a Delta type, from the Delta protocol's JSON form of a schema
/// (what the table's log holds): `"long"`, `"decimal(18,4)"`, `{"type": "struct", ..}`, ...
fn glue_type(ty: &Value) -> String {
    if let Some(name) = ty.as_str() {
        return match name {
            "long" => "bigint".into(),
            "integer" => "int".into(),
            "short" => "smallint".into(),
            "byte" => "tinyint".into(),
            "string" | "boolean" | "binary" | "date" | "timestamp" | "double" | "float" => {
                name.into()
            }
            d if d.starts_with("decimal(") => d.replace(' ', ""),
            other => panic!("Delta type {other} has no Glue spelling here"),
        };
    }
    match ty["type"].as_str() {
        Some("struct") => format!(
            "struct<{}>",
            struct_fields(ty)
                .iter()
                .map(|(n, t)| format!("{n}:{t}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some("array") => format!("array<{}>", glue_type(&ty["elementType"])),
        Some("map") => format!(
            "map<{},{}>",
            glue_type(&ty["keyType"]),
            glue_type(&ty["valueType"])
        ),
        _ => panic!("unexpected Delta type {ty}"),
    }
}

fn struct_fields(ty: &Value) -> Vec<(String, String)> {
    ty["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("a Delta struct has fields: {ty}"))
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                glue_type(&f["type"]),
            )
        })
        .collect()
}

/// The table's Delta schema (the one its log is created with), as Glue columns.
fn delta_columns(def: &DeltaTableDef) -> Vec<(String, String)> {
    let schema = def.schema().unwrap_or_else(|e| panic!("{}: {e}", def.name));
    let json = serde_json::to_value(&schema).expect("a Delta schema serializes");
    struct_fields(&json)
}

/// The same columns spelled by the code's own Glue names: the engine's `ColumnType::glue` (plus
/// `pa_date`) for engine tables and marts, the API's `RUNS_COLUMNS` (plus `manifest`) for runs.
fn code_columns(def: &DeltaTableDef) -> Vec<(String, String)> {
    let pair = |n: &str, t: &str| (n.to_string(), t.to_string());
    match def.engine_table {
        Some(table) => table
            .columns
            .iter()
            .map(|c| (c.name.to_string(), c.ty.glue()))
            .chain(
                def.partitioned
                    .then(|| pair(PARTITION_COLUMN, PA_DATE_GLUE_TYPE)),
            )
            .collect(),
        None => RUNS_COLUMNS
            .iter()
            .map(|(n, t)| pair(n, t))
            .chain([pair(MANIFEST_COLUMN, "string")])
            .collect(),
    }
}

/// The Delta schemas in Glue spelling are the Glue names the rest of the code uses (the engine's
/// column types, the API's runs contract): one definition, whichever way it is read.
#[test]
fn delta_schemas_are_the_codes_glue_columns() {
    let mut problems = Vec::new();
    for def in &ALL_TABLES {
        problems.extend(column_diff(
            def.name,
            &delta_columns(def),
            &code_columns(def),
        ));
    }
    assert!(
        problems.is_empty(),
        "Delta schemas (as \"template\") vs the code's Glue names:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn glue_tables_are_the_lakes_delta_tables() {
    let catalog = Template::load("catalog.yaml");
    let tables = glue_tables(&catalog);
    let mut problems = Vec::new();
    for def in &ALL_TABLES {
        let name = def.name;
        let found: Vec<_> = tables.iter().filter(|(n, _)| *n == name).collect();
        let input = match found.as_slice() {
            [(_, input)] => input,
            [] => {
                problems.push(format!("table {name}: no AWS::Glue::Table in catalog.yaml"));
                continue;
            }
            _ => {
                problems.push(format!(
                    "table {name}: {} AWS::Glue::Table resources, expected one",
                    found.len()
                ));
                continue;
            }
        };
        let sd = &input["StorageDescriptor"];
        let prefix = def.prefix;
        for (what, got, want) in [
            (
                "Location",
                render(&sd["Location"]),
                format!("s3://{LAKE}/{prefix}/"),
            ),
            (
                "TableType",
                render(&input["TableType"]),
                "EXTERNAL_TABLE".into(),
            ),
            // Exactly Athena's native Delta registration: no projection.*, no
            // storage.location.template, no classification, no Spark provider.
            (
                "Parameters",
                input["Parameters"].to_string(),
                r#"{"table_type":"DELTA"}"#.into(),
            ),
            // Delta partitions live in the log; Glue holds none.
            (
                "PartitionKeys",
                input["PartitionKeys"].to_string(),
                "[]".into(),
            ),
        ] {
            if got != want {
                problems.push(format!("table {name}: {what} is {got}, expected {want}"));
            }
        }
        let sd_keys: BTreeSet<&str> = sd
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for key in sd_keys.difference(&BTreeSet::from(["Location", "Columns"])) {
            problems.push(format!(
                "table {name}: StorageDescriptor.{key} is set; a Delta table has only its \
                 location and columns (the log says the rest)"
            ));
        }
        problems.extend(column_diff(
            name,
            &columns(&sd["Columns"]),
            &delta_columns(def),
        ));
    }
    let known: BTreeSet<_> = ALL_TABLES.iter().map(|t| t.name).collect();
    for (name, _) in &tables {
        if !known.contains(name) {
            problems.push(format!(
                "table {name}: in catalog.yaml but not a Delta table of the lake \
                 (duff_delta::ALL_TABLES)"
            ));
        }
    }
    for t in Template::all().iter().filter(|t| t.file != "catalog.yaml") {
        for (name, _) in glue_tables(t) {
            problems.push(format!(
                "table {name}: declared in {}; every Glue table belongs in catalog.yaml",
                t.file
            ));
        }
    }
    let workgroup = catalog.resource("WorkGroup");
    let engine =
        render(&workgroup["WorkGroupConfiguration"]["EngineVersion"]["SelectedEngineVersion"]);
    if engine != "Athena engine version 3" {
        problems.push(format!(
            "WorkGroup: engine {engine:?}; Athena reads Delta tables on engine version 3 only"
        ));
    }
    assert!(
        problems.is_empty(),
        "catalog.yaml vs the lake's Delta tables:\n  {}",
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
/// backend reads with too) plus the manifest's JSON, and every contract column is a key of a
/// real serialized manifest holding a value of the column's type (the runs row is decoded from
/// that JSON: a key the manifest lacks would be a column of nulls).
#[test]
fn runs_table_equals_the_run_manifest() {
    let catalog = Template::load("catalog.yaml");
    let tables = glue_tables(&catalog);
    let (_, runs) = tables
        .iter()
        .find(|(n, _)| *n == RUNS_TABLE)
        .expect("catalog.yaml has a runs table");
    let contract: Vec<_> = RUNS_COLUMNS
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .chain([(MANIFEST_COLUMN.to_string(), "string".to_string())])
        .collect();
    let mut problems = column_diff(
        RUNS_TABLE,
        &columns(&runs["StorageDescriptor"]["Columns"]),
        &contract,
    );

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
