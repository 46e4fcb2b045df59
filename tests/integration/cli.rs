//! The `duff` command as a user runs it.

use std::process::Command;

fn duff(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_duff"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn help_documents_every_option_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["run", "datagen", "quickstart"] {
        let out = duff(&[sub, "--help"], dir.path());
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        for line in help
            .lines()
            .filter(|l| l.trim_start().starts_with("--") && !l.contains("--help"))
        {
            let option = line.split_whitespace().next().unwrap();
            let flag_only = !line.contains('<');
            let documented = help.split(option).nth(1).unwrap_or("");
            let block = documented.split("\n  -").next().unwrap_or("");
            assert!(
                flag_only
                    || block.contains("[default")
                    || option == "--rows"
                    || option == "--size"
                    || option == "--pa-date"
                    || option == "--ingested-at"
                    || option == "--lake"
                    || option == "--redeliver-from",
                "duff {sub}: {option} does not state its default:\n{block}"
            );
        }
    }
}

#[test]
fn datagen_run_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = duff(
        &[
            "datagen",
            "--out",
            "in/orders.csv",
            "--rows",
            "3000",
            "--seed",
            "9",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("in/orders.csv.expected.json").exists());

    let out = duff(
        &["run", "in/orders.csv", "--lake", "lake", "--json"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("in/orders.csv.expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["counts"]["rows_written"], expected["kept"]);
    assert_eq!(manifest["status"], "succeeded");

    let out = duff(&["run", "in/orders.csv", "--lake", "lake"], dir.path());
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run_id = manifest["run_id"].as_str().unwrap();
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(run_id) && l.contains("skipped")),
        "the run named as skipped: {stdout}"
    );
    // Nothing ran again: the lake holds the one run, as first committed.
    let lake = duff_delta::DeltaLake::open_local(dir.path().join("lake")).unwrap();
    let runs = lake.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].finished_at,
        manifest["finished_at"].as_str().unwrap()
    );

    std::fs::write(dir.path().join("bad.csv"), "order_id,status\n1,created\n").unwrap();
    let out = duff(&["run", "bad.csv", "--lake", "lake"], dir.path());
    assert_eq!(out.status.code(), Some(2), "a rejected input exits 2");
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing required column"));

    let out = duff(&["run", "missing.csv", "--lake", "lake"], dir.path());
    assert_eq!(out.status.code(), Some(1), "an unreadable input exits 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.csv"));

    let out = duff(
        &[
            "run",
            "in/orders.csv",
            "--lake",
            "lake2",
            "--channels",
            "Retail,retail",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listed twice"));

    let out = duff(
        &[
            "run",
            "in/orders.csv",
            "--lake",
            "lake2",
            "--row-group-rows",
            "0",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--row-group-rows must be at least 1"));

    let out = duff(
        &[
            "run",
            "in/orders.csv",
            "--lake",
            "lake2",
            "--row-group-mib",
            "0",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--row-group-mib must be at least 1"));

    // ArrowWriter instead of the engine's encoder: the same rows, recorded in the manifest.
    let out = duff(
        &[
            "run",
            "in/orders.csv",
            "--lake",
            "lake3",
            "--json",
            "--parquet-encoder",
            "arrow",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let arrow: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(arrow["options"]["parquet"]["encoder"], "arrow");
    assert_eq!(manifest["options"]["parquet"]["encoder"], "engine");
    assert_eq!(arrow["counts"], manifest["counts"]);
}

/// `-v` shows the product's info logs, not those of the libraries under it (the Delta
/// kernel logs every snapshot at info).
#[test]
fn verbose_logs_are_the_products_own() {
    let dir = tempfile::tempdir().unwrap();
    let made = duff(
        &[
            "datagen", "--out", "in/o.csv", "--rows", "500", "--seed", "3",
        ],
        dir.path(),
    );
    assert!(made.status.success());
    let out = duff(
        &["run", "in/o.csv", "--lake", "lake", "--no-progress", "-v"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("run committed"), "{stderr}");
    assert!(stderr.contains("duff_delta"), "{stderr}");
    assert!(!stderr.contains("kernel"), "{stderr}");
}

/// A command line that does not parse exits 64 (EX_USAGE), never 2: 2 means "input rejected"
/// to `duff run` and `duff job` (no retry, a failed run recorded) and "problems found" to
/// `duff lake check`. Zero is out of range wherever it would mean nothing sensible.
#[test]
fn a_command_line_that_does_not_parse_exits_64_and_names_the_option() {
    let dir = tempfile::tempdir().unwrap();
    for (args, option) in [
        (
            &["run", "x.csv", "--lake", "l", "--max-gzip-ratio", "0"][..],
            "--max-gzip-ratio",
        ),
        (
            &["lake", "check", "--lake", "l", "--window-rows", "0"][..],
            "--window-rows",
        ),
        (
            &["lake", "optimize", "--lake", "l", "--row-group-rows", "0"][..],
            "--row-group-rows",
        ),
        (
            &["run", "x.csv", "--lake", "l", "--no-such-option"][..],
            "--no-such-option",
        ),
        (&["job", "--no-such-option"][..], "--no-such-option"),
        (
            &["run", "x.csv", "--lake", "l", "--parquet-encoder", "fast"][..],
            "--parquet-encoder",
        ),
    ] {
        let out = duff(args, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(option), "{args:?}: {stderr}");
    }
    let out = duff(&["lake", "check", "--help"], dir.path());
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn quickstart_generates_processes_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let out = duff(
        &["quickstart", "--rows", "5000", "--dir", "qs", "--no-serve"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("published"), "{stdout}");
    let lake = duff_delta::DeltaLake::open_local(dir.path().join("qs/lake")).unwrap();
    assert_eq!(
        lake.runs().unwrap().len(),
        1,
        "one run recorded in the runs table"
    );
    let first = lake.runs().unwrap().remove(0);
    let again = duff(
        &["quickstart", "--rows", "5000", "--dir", "qs", "--no-serve"],
        dir.path(),
    );
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&first.run_id) && l.contains("skipped")),
        "the run named as skipped: {stdout}"
    );
    // The same sample, not processed again.
    assert_eq!(lake.runs().unwrap(), vec![first]);
}

/// Every test the fault table (`docs/faults.md`, linked from the README) points at exists,
/// where the row says: the table is the user's map of outcomes, and a renamed test would leave
/// it pointing at nothing.
#[test]
fn the_fault_table_points_at_tests_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("`docs/faults.md`"),
        "the README links the fault table"
    );
    let table = std::fs::read_to_string(root.join("docs/faults.md")).unwrap();
    let mut named = 0;
    for row in table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| fault"))
    {
        let tests = row.rsplit('|').nth(1).unwrap();
        for name in tests.split(", ").map(|t| t.trim().trim_matches('`')) {
            if name == "—" || name.is_empty() {
                continue;
            }
            // A crate's integration tests, or its unit tests (`<module>::tests::<test>`).
            let (dir, path) = if let Some(rest) = name.strip_prefix("duff-dispatcher ") {
                (root.join("dispatcher/tests"), rest)
            } else if let Some(rest) = name.strip_prefix("duff-delta ") {
                (root.join("engine/delta/src"), rest)
            } else {
                (root.join("tests/integration"), name)
            };
            let (module, function) = path.rsplit_once("::").unwrap();
            let module = module
                .strip_suffix("::tests")
                .unwrap_or(module)
                .replace("::", "/");
            let file = [format!("{module}.rs"), format!("{module}/mod.rs")]
                .into_iter()
                .map(|f| dir.join(f))
                .find(|f| f.exists())
                .unwrap_or_else(|| panic!("{name}: no file for {module} in {}", dir.display()));
            let source = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", file.display()));
            assert!(
                source.contains(&format!("fn {function}(")),
                "{name}: no such test in {}",
                file.display()
            );
            named += 1;
        }
    }
    assert!(named >= 20, "{named} tests named");
}
