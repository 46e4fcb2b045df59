//! Rough generation throughput: `cargo run --release -p duff-datagen --example speed [MB] [threads]`.
//! Not a test on purpose: timings on shared 2-core machines are too noisy
//! to assert on.

use std::time::Instant;

use duff_datagen::{Dirt, GenConfig, Size, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: u64 = args.next().map_or(200, |a| a.parse().expect("MB"));
    let threads: usize = args.next().map_or(0, |a| a.parse().expect("threads"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    for dirt in [Dirt::none(), Dirt::typical()] {
        let cfg = GenConfig {
            size: Size::Bytes(mb * 1_000_000),
            dirt,
            ..GenConfig::default()
        };
        let start = Instant::now();
        let expected = pool
            .install(|| generate(&cfg, std::io::sink()))
            .expect("generate");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{} threads, {:.0} MB, {} rows, {} dirty: {:.2} s = {:.0} MB/s",
            pool.current_num_threads(),
            expected.bytes as f64 / 1e6,
            expected.rows,
            expected.exact_duplicates + expected.quarantined,
            secs,
            expected.bytes as f64 / 1e6 / secs
        );
    }
}
