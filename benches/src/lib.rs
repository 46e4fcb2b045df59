//! Shared pieces of the benchmarks: datagen inputs cached under `target/bench-data/`.
//!
//! Data shape of every input: `duff datagen` defaults with `Dirt::typical()` — 10 000 clients
//! (Zipf-skewed), 500 products, orders of 1–6 lines, ~98 bytes per row, ~10% of client names
//! quoted (commas), ~1% with embedded newlines, ~2% exact duplicates, ~0.3% key conflicts,
//! ~0.7% invalid rows of every kind. Seed 1.

use std::path::PathBuf;

use duff_datagen::{Dirt, GenConfig, Size};

/// `target/bench-data`, honouring `CARGO_TARGET_DIR`.
pub fn data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data")
}

/// A datagen file of about `bytes` bytes, generated once and reused.
pub fn input(bytes: u64) -> PathBuf {
    let dir = data_dir();
    // `ids2`: the generator gives each seed its own range of order ids (a cached file from
    // before that would not be what this code generates).
    let path = dir.join(format!("orders-{}MB-seed1-ids2.csv", bytes / 1_000_000));
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("create bench-data");
        let cfg = GenConfig {
            seed: 1,
            size: Size::Bytes(bytes),
            dirt: Dirt::typical(),
            ..GenConfig::default()
        };
        let tmp = path.with_extension("tmp");
        duff_datagen::generate_to_path(&cfg, &tmp).expect("generate bench input");
        std::fs::rename(&tmp, &path).expect("publish bench input");
        let _ = std::fs::rename(
            duff_datagen::sidecar_path(&tmp),
            duff_datagen::sidecar_path(&path),
        );
    }
    path
}

/// A rayon pool of `threads` workers.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// Logs on stderr when `RUST_LOG` asks for them (the lake's commits, the fold's stages and
/// timings; `duff_s3=debug`: the S3 test server's every request).
pub fn log_to_stderr_if_asked() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
}
