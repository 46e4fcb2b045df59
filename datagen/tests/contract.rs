//! The generator against the data contract, read back by an independent
//! checker (`checker/mod.rs`).

mod checker;

use duff_datagen::{Dirt, Error, Expected, GenConfig, Reason, Size, generate, generate_to_path};

fn run(cfg: &GenConfig) -> (Vec<u8>, Expected) {
    let mut out = Vec::new();
    let expected = generate(cfg, &mut out).expect("generate");
    (out, expected)
}

fn rows(n: u64, dirt: Dirt) -> GenConfig {
    GenConfig {
        size: Size::Rows(n),
        dirt,
        ..GenConfig::default()
    }
}

/// The checker's reading of `data` must equal what the generator promised.
fn assert_agrees(data: &[u8], expected: &Expected) {
    assert_eq!(expected.bytes, data.len() as u64);
    assert_eq!(
        expected.rows,
        expected.kept + expected.exact_duplicates + expected.quarantined
    );
    assert_eq!(
        expected.quarantined,
        expected.quarantined_by_reason.values().sum::<u64>()
    );
    let counts = checker::check(data);
    assert_eq!(counts.rows, expected.rows, "rows");
    assert_eq!(counts.kept, expected.kept, "kept");
    assert_eq!(counts.exact_duplicates, expected.exact_duplicates, "dups");
    assert_eq!(counts.by_reason, expected.quarantined_by_reason, "reasons");
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = rows(80_000, Dirt::every_kind(0.01));
    let (a, ea) = run(&cfg);
    let (b, eb) = run(&cfg);
    assert!(a == b, "same seed gave different bytes");
    assert_eq!(ea, eb);
    let (c, ec) = run(&GenConfig { seed: 43, ..cfg });
    assert!(a != c);
    assert_eq!(ec.seed, 43);
}

#[test]
fn thread_count_does_not_change_output() {
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    for size in [Size::Rows(150_000), Size::Bytes(20_000_000)] {
        let cfg = GenConfig {
            size,
            dirt: Dirt::typical(),
            ..GenConfig::default()
        };
        let one = pool(1).install(|| run(&cfg));
        let four = pool(4).install(|| run(&cfg));
        assert!(one.0 == four.0, "bytes differ for {size:?}");
        assert_eq!(one.1, four.1);
    }
}

#[test]
fn rows_are_honoured() {
    for n in [0, 1, 2, 7, 65_536, 65_537] {
        for tail in [false, true] {
            let mut dirt = Dirt::every_kind(0.01);
            dirt.unterminated_quote_at_end = tail;
            let (data, expected) = run(&rows(n, dirt));
            assert_eq!(expected.rows, n, "Rows({n}) tail={tail}");
            assert_agrees(&data, &expected);
            let tails = expected.quarantined_by_reason.get("unterminated_quote");
            assert_eq!(tails.is_some(), tail && n > 0);
        }
    }
}

#[test]
fn bytes_are_honoured() {
    for n in [0, 50, 1_000, 123_457, 7_000_001] {
        let cfg = GenConfig {
            size: Size::Bytes(n),
            dirt: Dirt::typical(),
            ..GenConfig::default()
        };
        let (data, expected) = run(&cfg);
        assert_agrees(&data, &expected);
        let records = checker::split(&data);
        let last_start = records.last().unwrap().start as u64;
        assert!(expected.bytes >= n, "Bytes({n}) wrote {}", expected.bytes);
        if expected.rows > 0 {
            assert!(last_start < n, "Bytes({n}) wrote a row too many");
        }
    }
}

#[test]
fn every_reason_appears_and_counts_agree() {
    let (data, expected) = run(&rows(200_000, Dirt::every_kind(0.01)));
    assert_agrees(&data, &expected);
    for reason in Reason::ALL {
        let n = expected.quarantined_by_reason.get(reason.as_str());
        assert!(n.is_some_and(|&n| n > 0), "{reason} missing");
    }
    assert!(expected.exact_duplicates > 0);
    // The tail row is the very end of the file, with no line end.
    assert!(!data.ends_with(b"\n"));
}

#[test]
fn dialects_keep_the_contract() {
    let dialects = [
        (true, false, true, false, false, false),
        (false, true, false, false, false, false),
        (false, false, true, true, false, false),
        (false, false, true, false, true, false),
        (false, false, true, false, false, true),
        (true, true, false, true, true, true),
    ];
    for (i, (crlf, bom, final_newline, shuffle, extra, noise)) in dialects.into_iter().enumerate() {
        for tail in [false, true] {
            let mut dirt = Dirt::every_kind(0.005);
            dirt.unterminated_quote_at_end = tail;
            let cfg = GenConfig {
                seed: i as u64,
                size: Size::Rows(30_000),
                dirt,
                crlf,
                bom,
                final_newline,
                shuffle_columns: shuffle,
                extra_columns: extra,
                header_case_noise: noise,
                ..GenConfig::default()
            };
            let (data, expected) = run(&cfg);
            assert_agrees(&data, &expected);
            assert_eq!(data.starts_with(b"\xEF\xBB\xBF"), bom);
            let ends_with_eol = data.ends_with(b"\n");
            assert_eq!(ends_with_eol, final_newline && !tail, "dialect {i}");
            if crlf && ends_with_eol {
                assert!(data.ends_with(b"\r\n"));
            }
            let header = &checker::split(&data)[0];
            assert_eq!(header.fields.len(), if extra { 12 } else { 10 });
        }
    }
}

#[test]
fn no_final_newline_never_ends_on_a_duplicate() {
    let mut dirt = Dirt::none();
    dirt.exact_duplicates = 0.9;
    for seed in 0..40 {
        for size in [Size::Rows(3 + seed), Size::Bytes(500 + 37 * seed)] {
            let cfg = GenConfig {
                seed,
                size,
                dirt: dirt.clone(),
                final_newline: false,
                ..GenConfig::default()
            };
            let (data, expected) = run(&cfg);
            assert!(!data.ends_with(b"\n"));
            let records = checker::split(&data);
            let last = &records.last().unwrap().raw;
            let earlier = records[1..records.len() - 1].iter().any(|r| &r.raw == last);
            assert!(!earlier, "seed {seed}: last row repeats an earlier one");
            assert_agrees(&data, &expected);
        }
    }
}

#[test]
fn typical_dirt_rates_are_roughly_right() {
    let (data, e) = run(&rows(300_000, Dirt::typical()));
    assert_agrees(&data, &e);
    let frac = |n: u64| n as f64 / e.rows as f64;
    assert!((0.017..0.023).contains(&frac(e.exact_duplicates)), "{e:?}");
    let conflicts = e.quarantined_by_reason["key_conflict"];
    assert!((0.002..0.004).contains(&frac(conflicts)), "{e:?}");
    for reason in Reason::ROW_KINDS {
        let n = e.quarantined_by_reason.get(reason.as_str()).copied();
        assert!(
            n.is_some_and(|n| (60..=250).contains(&n)),
            "{reason}: {n:?}"
        );
    }
}

#[test]
fn names_and_products_look_real() {
    let (data, e) = run(&rows(200_000, Dirt::none()));
    assert_eq!(e.kept, 200_000);
    let records = checker::split(&data);
    let h = checker::header(&records[0]);
    let mut names = std::collections::HashMap::new();
    let mut per_client = std::collections::HashMap::<Vec<u8>, u64>::new();
    let (mut noisy_channel, mut retail) = (0, 0);
    for r in &records[1..] {
        names.insert(r.fields[h.pos[0]].clone(), r.fields[h.pos[1]].clone());
        *per_client.entry(r.fields[h.pos[0]].clone()).or_default() += 1;
        let channel = &r.fields[h.pos[8]];
        retail += u64::from(channel.eq_ignore_ascii_case(b"retail"));
        noisy_channel += u64::from(
            !["Retail", "Online", "B2B"].contains(&std::str::from_utf8(channel).unwrap()),
        );
    }
    let share =
        |p: fn(&[u8]) -> bool| names.values().filter(|n| p(n)).count() as f64 / names.len() as f64;
    let comma = share(|n| n.contains(&b','));
    let newline = share(|n| n.contains(&b'\n'));
    let quote = share(|n| n.contains(&b'"'));
    assert!((0.07..0.13).contains(&comma), "comma names {comma}");
    assert!((0.003..0.02).contains(&newline), "newline names {newline}");
    assert!((0.003..0.02).contains(&quote), "quoted names {quote}");
    let retail = retail as f64 / 200_000.0;
    assert!((0.4..0.6).contains(&retail), "retail share {retail}");
    let noisy = noisy_channel as f64 / 200_000.0;
    assert!((0.01..0.03).contains(&noisy), "channel case noise {noisy}");
    // Zipf: the busiest client places far more orders than the median one.
    let mut counts: Vec<u64> = per_client.into_values().collect();
    counts.sort_unstable();
    assert!(counts[counts.len() - 1] > 50 * counts[counts.len() / 2]);
}

#[test]
fn reason_codes_are_the_engines_strings() {
    let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        codes,
        [
            "field_count",
            "invalid_utf8",
            "bad_quoting",
            "unterminated_quote",
            "invalid_client_id",
            "invalid_order_id",
            "invalid_product_id",
            "empty_client_name",
            "empty_product_description",
            "invalid_product_price",
            "invalid_product_ccf",
            "invalid_product_volume",
            "unknown_channel",
            "unknown_status",
            "total_overflow",
            "key_conflict",
        ]
    );
    for r in Reason::ALL {
        assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        assert_eq!(Reason::from_code(r.as_str()), Some(r));
    }
}

#[test]
fn bad_configs_are_rejected() {
    let bad = [
        GenConfig {
            clients: 0,
            ..GenConfig::default()
        },
        GenConfig {
            products: 0,
            ..GenConfig::default()
        },
        rows(10, Dirt::every_kind(0.2)),
        rows(10, {
            let mut d = Dirt::none();
            d.bad_rows.insert(Reason::KeyConflict, 0.1);
            d
        }),
        rows(10, {
            let mut d = Dirt::none();
            d.exact_duplicates = f64::NAN;
            d
        }),
    ];
    for cfg in bad {
        assert!(matches!(
            generate(&cfg, std::io::sink()),
            Err(Error::InvalidConfig(_))
        ));
    }
}

#[test]
fn tiny_catalogs_still_work() {
    let cfg = GenConfig {
        clients: 1,
        products: 1,
        ..rows(5_000, Dirt::every_kind(0.01))
    };
    let (data, expected) = run(&cfg);
    assert_agrees(&data, &expected);
}

#[test]
fn file_and_sidecar() {
    let dir = std::env::temp_dir().join(format!("duff-datagen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("orders.csv");
    let expected = generate_to_path(&rows(1_000, Dirt::typical()), &csv).unwrap();
    let sidecar = std::fs::read_to_string(duff_datagen::sidecar_path(&csv)).unwrap();
    let parsed: Expected = serde_json::from_str(&sidecar).unwrap();
    assert_eq!(parsed, expected);
    assert_eq!(std::fs::metadata(&csv).unwrap().len(), expected.bytes);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checker_notices_tampering() {
    let (data, expected) = run(&rows(200, Dirt::none()));
    let text = String::from_utf8(data).unwrap();
    let tampered = text.replacen(",Retail,", ",Wholesale,", 1);
    assert_ne!(tampered, text);
    let result = std::panic::catch_unwind(|| assert_agrees(tampered.as_bytes(), &expected));
    assert!(result.is_err(), "checker missed an unknown channel");
    let counts = checker::check(tampered.as_bytes());
    assert_eq!(counts.by_reason.get("unknown_channel"), Some(&1));
}

/// Real order ids are unique across files and grow over time: files of different seeds share
/// no order id, and the larger seed has the larger ids.
#[test]
fn files_of_different_seeds_share_no_order_id_and_later_seeds_have_larger_ids() {
    let ids = |seed: u64| -> (u64, u64, std::collections::HashSet<u64>) {
        let (data, _) = run(&GenConfig {
            seed,
            ..rows(20_000, Dirt::none())
        });
        let records = checker::split(&data);
        let h = checker::header(&records[0]);
        let order = h.pos[2];
        let ids: std::collections::HashSet<u64> = records[1..]
            .iter()
            .map(|r| {
                std::str::from_utf8(&r.fields[order])
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        (*ids.iter().min().unwrap(), *ids.iter().max().unwrap(), ids)
    };
    let (lo3, hi3, ids3) = ids(3);
    let (lo4, hi4, ids4) = ids(4);
    assert!(ids3.is_disjoint(&ids4));
    assert!(hi3 < lo4, "seed 3: {lo3}..={hi3}, seed 4: {lo4}..={hi4}");
    assert!(i64::try_from(hi4).is_ok());
}
