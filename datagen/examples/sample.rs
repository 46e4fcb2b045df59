//! Prints a small dirty sample and its expected counts:
//! `cargo run -p duff-datagen --example sample [rows] [seed]`.

use duff_datagen::{Dirt, GenConfig, Size, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args.next().map_or(30, |a| a.parse().expect("rows"));
    let seed: u64 = args.next().map_or(42, |a| a.parse().expect("seed"));
    let cfg = GenConfig {
        seed,
        size: Size::Rows(rows),
        dirt: Dirt::every_kind(0.02),
        ..GenConfig::default()
    };
    let mut out = Vec::new();
    let expected = generate(&cfg, &mut out).expect("generate");
    println!("{}", String::from_utf8_lossy(&out));
    eprintln!("{}", expected.to_json());
}
