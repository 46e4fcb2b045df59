//! The emulator's stand-ins for `batch.yaml` (`infra/emulator/`): the stack exports the names
//! the dispatch stack imports, and the job definition runs the same command with the same
//! environment and retry rule as the template's, so the end-to-end test runs the job as AWS
//! would.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::cfn_lint;
use super::template::{Template, render, scalar};

fn emulator_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/emulator")
}

fn exports(t: &Template) -> BTreeSet<String> {
    t.root["Outputs"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|o| o.get("Export").map(|e| render(&e["Name"])))
        .collect()
}

#[test]
fn the_batch_stand_in_exports_what_batch_yaml_exports_and_passes_cfn_lint() {
    let stand_in = Template::load_path(&emulator_dir().join("batch-exports.yaml"));
    assert_eq!(exports(&stand_in), exports(&Template::load("batch.yaml")));
    let (code, output) = cfn_lint::run(&[emulator_dir().join("batch-exports.yaml")]);
    assert!(code & !8 == 0, "cfn-lint (exit {code}):\n{output}");
}

#[test]
fn the_emulator_job_definition_runs_what_batch_yaml_runs() {
    let text = std::fs::read_to_string(emulator_dir().join("job-definition.json")).unwrap();
    let ours: Value = serde_json::from_str(&text).unwrap();
    let batch = Template::load("batch.yaml");
    let theirs = batch.resource("JobDefinition");
    let container = &theirs["ContainerProperties"];

    assert_eq!(ours["containerProperties"]["command"], container["Command"]);
    assert_eq!(ours["parameters"], theirs["Parameters"]);
    let names = |vars: &Value, key: &str| -> Vec<String> {
        vars.as_array()
            .unwrap()
            .iter()
            .map(|v| v[key].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&ours["containerProperties"]["environment"], "name"),
        names(&container["Environment"], "Name")
    );
    let fixed = |vars: &Value, name: &str, value: &str| -> Option<String> {
        vars.as_array()?
            .iter()
            .find(|v| v[name] == "DUFF_LOG_FORMAT")
            .and_then(|v| scalar(&v[value]))
    };
    assert_eq!(
        fixed(&ours["containerProperties"]["environment"], "name", "value"),
        fixed(&container["Environment"], "Name", "Value")
    );
    // The retry rule the exit codes rely on: 75 retries, and so many attempts.
    assert_eq!(
        ours["retryStrategy"]["evaluateOnExit"][0]["onExitCode"],
        "75"
    );
    assert_eq!(
        ours["retryStrategy"]["attempts"]
            .as_u64()
            .map(|a| a.to_string()),
        scalar(&theirs["RetryStrategy"]["Attempts"])
    );
}
