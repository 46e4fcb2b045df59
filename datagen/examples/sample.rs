//! Prints a small dirty sample to stdout and its expected counts to stderr:
//! `cargo run -p duff-datagen --example sample [rows] [seed] [crlf|bom|shuffle|extra|noise|no-final-newline]...`

use duff_datagen::{Dirt, GenConfig, Size, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args.next().map_or(30, |a| a.parse().expect("rows"));
    let seed: u64 = args.next().map_or(42, |a| a.parse().expect("seed"));
    let mut cfg = GenConfig {
        seed,
        size: Size::Rows(rows),
        dirt: Dirt::every_kind(0.02),
        ..GenConfig::default()
    };
    for flag in args {
        match flag.as_str() {
            "crlf" => cfg.crlf = true,
            "bom" => cfg.bom = true,
            "shuffle" => cfg.shuffle_columns = true,
            "extra" => cfg.extra_columns = true,
            "noise" => cfg.header_case_noise = true,
            "no-final-newline" => cfg.final_newline = false,
            other => panic!("unknown flag {other}"),
        }
    }
    let mut out = Vec::new();
    let expected = generate(&cfg, &mut out).expect("generate");
    println!("{}", String::from_utf8_lossy(&out));
    eprintln!("{}", expected.to_json());
}
