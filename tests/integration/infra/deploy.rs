//! `infra/deploy.sh`: the dry run prints every step in order and runs nothing.

use std::process::Command;

/// `deploy.sh --dry-run` with stand-ins for aws, docker and cargo that record any call.
fn dry_run(args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls.log");
    for tool in ["aws", "docker", "cargo", "cargo-lambda"] {
        let path = dir.path().join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n",
                calls.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/deploy.sh"))
        .args(args)
        .env("PATH", path)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("DUFF_STACK_PREFIX")
        .output()
        .expect("run bash");
    let called = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        called.is_empty(),
        "the dry run called external tools:\n{called}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every one of `steps` is in the dry run's output `out`, in this order.
fn assert_in_order(out: &str, steps: &[&str]) {
    let mut from = 0;
    for step in steps {
        let at = out[from..]
            .find(step)
            .unwrap_or_else(|| panic!("dry run: {step:?} missing or out of order in:\n{out}"));
        from += at + step.len();
    }
}

/// A dry run for account 123456789012 in eu-west-1.
const DRY_RUN_IN_AN_ACCOUNT: [&str; 5] = [
    "--dry-run",
    "--account",
    "123456789012",
    "--region",
    "eu-west-1",
];

#[test]
fn deploy_dry_run_lists_every_step_in_order_and_calls_nothing() {
    let (ok, out, err) = dry_run(&[&DRY_RUN_IN_AN_ACCOUNT[..], &["--prefix", "duff-ci"]].concat());
    assert!(ok, "deploy.sh --dry-run failed:\n{out}\n{err}");
    let steps = [
        "+ cargo lambda build --release --arm64 --output-format zip",
        "-p duff-dispatcher --bin duff-dispatcher-lambda",
        "-p duff-api --bin duff-api-lambda",
        "+ docker buildx build --platform linux/arm64 --file",
        "+ aws sts get-caller-identity",
        "+ aws cloudformation deploy --region eu-west-1 --stack-name duff-ci-storage",
        "+ docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/duff-ci/job:",
        "+ aws s3 cp",
        "+ aws cloudformation deploy --region eu-west-1 --stack-name duff-ci-catalog",
        "+ aws cloudformation deploy --region eu-west-1 --stack-name duff-ci-batch",
        "+ aws cloudformation deploy --region eu-west-1 --stack-name duff-ci-dispatch",
        "+ aws cloudformation deploy --region eu-west-1 --stack-name duff-ci-api",
        "ApiAuth=IAM",
        "ApiBackend=Athena",
        "API URL:",
        "Readers:  aws iam attach-user-policy --user-name <user> --policy-arn <api.ApiReadersPolicyArn>",
        "Try:      curl --aws-sigv4 \"aws:amz:eu-west-1:execute-api\"",
        "healthz\"",
        "Requests: aws logs tail --region eu-west-1 --follow <api.AccessLogGroupName>",
    ];
    assert_in_order(&out, &steps);
    for stack in ["storage", "catalog", "batch", "dispatch", "api"] {
        assert!(out.contains(&format!(
            "--template-file {}/infra/templates/{stack}.yaml",
            env!("CARGO_MANIFEST_DIR")
        )));
    }
    assert!(out.contains("--capabilities CAPABILITY_IAM"));
    assert!(!out.contains("ApiKeyId"), "no key in IAM mode: {out}");

    // With the API key: the key's value is never fetched nor printed, the user is told how.
    let (ok, out, err) = dry_run(&[&DRY_RUN_IN_AN_ACCOUNT[..], &["--api-auth", "key"]].concat());
    assert!(
        ok,
        "deploy.sh --dry-run --api-auth key failed:\n{out}\n{err}"
    );
    assert_in_order(
        &out,
        &[
            "ApiAuth=API_KEY",
            "API key:  aws apigateway get-api-key --region eu-west-1 --api-key <api.ApiKeyId>",
            "Try:      curl -H \"x-api-key: $(aws apigateway get-api-key",
        ],
    );
    assert!(!out.contains("+ aws apigateway get-api-key"), "{out}");
    let (ok, _, err) = dry_run(&["--dry-run", "--region", "eu-west-1", "--api-auth", "open"]);
    assert!(!ok && err.contains("--api-auth 'open'"), "{err}");

    // The API over the lake directly.
    let (ok, out, err) =
        dry_run(&[&DRY_RUN_IN_AN_ACCOUNT[..], &["--api-backend", "lake"]].concat());
    assert!(
        ok,
        "deploy.sh --dry-run --api-backend lake failed:\n{out}\n{err}"
    );
    assert!(out.contains("ApiBackend=Lake"), "{out}");
    let (ok, _, err) = dry_run(&[
        "--dry-run",
        "--region",
        "eu-west-1",
        "--api-backend",
        "duckdb",
    ]);
    assert!(!ok && err.contains("--api-backend 'duckdb'"), "{err}");

    let (ok, help, _) = dry_run(&["--help"]);
    assert!(ok && help.contains("Usage: infra/deploy.sh") && help.contains("--dry-run"));
    let (ok, _, err) = dry_run(&["--dry-run", "--region", "eu-west-1", "--bogus"]);
    assert!(!ok && err.contains("unknown option"), "{err}");
    let (ok, _, err) = dry_run(&["--dry-run"]);
    assert!(!ok && err.contains("region"), "{err}");
}

#[test]
fn the_emulator_dry_run_prints_every_substitution_and_builds_no_image() {
    let (ok, out, err) = dry_run(&[
        "--dry-run",
        "--endpoint-url",
        "http://127.0.0.1:4566",
        "--api-auth",
        "key",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("Target: the local AWS emulator at http://127.0.0.1:4566"));
    assert!(
        out.contains("region=us-east-1"),
        "the emulator's default region"
    );
    let substitutions: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("emulator substitution:"))
        .collect();
    for made in [
        "Lambdas built for",
        "no job image",
        "no VPC",
        "no image pushed",
        "Batch API",
        "MaximumConcurrency",
        "is served at http://",
    ] {
        assert!(
            substitutions.iter().any(|l| l.contains(made)),
            "no substitution about {made:?} in {substitutions:#?}"
        );
    }
    assert_in_order(
        &out,
        &[
            "+ cargo build --locked",
            "+ python3 -m zipfile",
            "+ aws cloudformation deploy --region us-east-1 --stack-name duff-storage",
            "+ aws batch create-job-queue",
            "+ aws batch register-job-definition",
            "infra/emulator/batch-exports.yaml",
            "--stack-name duff-dispatch",
            "+ aws lambda update-event-source-mapping",
            "--stack-name duff-api",
        ],
    );
    for never in ["docker", "cargo lambda", "ecr", "ec2 describe"] {
        assert!(
            !out.contains(&format!("+ {never}")) && !out.contains(&format!("aws {never}")),
            "{never}:\n{out}"
        );
    }
    assert!(
        !out.contains("templates/batch.yaml"),
        "batch.yaml is not deployed to the emulator"
    );

    // Zipping prebuilt binaries belongs to the emulator; AWS runs arm64 zips from cargo lambda.
    let (ok, _, err) = dry_run(&[
        "--dry-run",
        "--region",
        "eu-west-1",
        "--lambda-binaries",
        "/tmp",
    ]);
    assert!(
        !ok && err.contains("--lambda-binaries goes with --endpoint-url"),
        "{err}"
    );
    let (ok, _, err) = dry_run(&["--dry-run", "--endpoint-url", "127.0.0.1:4566"]);
    assert!(!ok && err.contains("expected http(s)://host:port"), "{err}");
}
