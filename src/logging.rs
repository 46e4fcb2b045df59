//! Structured logs on stderr: human text locally, JSON for machines (`--log-format json`).

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// The workspace's crates, as `tracing` targets.
const PRODUCT_CRATES: [&str; 7] = [
    "duff",
    "duff_engine",
    "duff_delta",
    "duff_s3",
    "duff_api",
    "duff_dispatcher",
    "duff_datagen",
];

pub fn init(format: LogFormat, verbose: u8) {
    // -v and -vv speak for the product's crates; the libraries under them (the Delta kernel
    // logs every snapshot at info) stay at warnings unless RUST_LOG asks.
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let default = if verbose == 0 {
        "warn".to_string()
    } else {
        PRODUCT_CRATES
            .iter()
            .fold("warn".to_string(), |all, c| format!("{all},{c}={level}"))
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
