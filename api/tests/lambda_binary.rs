//! The real `duff-api-lambda` binary: it refuses to start, with a message naming the setting,
//! when its environment is incomplete (the whole binary behind API Gateway runs in the
//! end-to-end test on the emulator, `tests/integration/emulator.rs`, which uses this build).

use std::process::Command;

fn start_with(vars: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_duff-api-lambda"))
        .env_clear()
        .envs([
            ("AWS_LAMBDA_FUNCTION_NAME", "duff-api"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
            ("AWS_REGION", "us-east-1"),
        ])
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "it started: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_lambda_binary_refuses_to_start_without_its_configuration() {
    let stderr = start_with(&[("DUFF_API_BACKEND", "lake")]);
    assert!(
        stderr.contains("DUFF_API_BACKEND=lake needs DUFF_LAKE"),
        "{stderr}"
    );
    let stderr = start_with(&[("DUFF_API_BACKEND", "lake"), ("DUFF_LAKE", "/tmp/lake")]);
    assert!(stderr.contains("is not an s3:// URL"), "{stderr}");
    let stderr = start_with(&[("DUFF_API_BACKEND", "duckdb")]);
    assert!(stderr.contains("expected athena or lake"), "{stderr}");
}
