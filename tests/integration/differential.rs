//! The engine against the independent reference, on datagen files with every kind of dirt.

use duff_datagen::{Dirt, GenConfig, Size};
use duff_engine::rules::REQUIRED_COLUMNS;
use duff_engine::schema::{DIM_CLIENTS, FACT_ORDERS, ORDERS, QUARANTINE};
use duff_engine::{RunOptions, RunOutcome};

use crate::common::{self, columns, read_table};
use crate::reference::reference;

/// The orders columns that carry values: the input's columns, then the totals.
fn order_values() -> Vec<&'static str> {
    let mut v = REQUIRED_COLUMNS.to_vec();
    v.extend(["total_price", "total_volume"]);
    v
}

/// Runs one generated file through both implementations and compares everything observable.
fn compare(name: &str, cfg: GenConfig, options: RunOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (input, expected) = common::datagen(dir.path(), name, &cfg);
    let lake = dir.path().join("lake");
    let outcome = common::run(&input, &lake, &options);
    let RunOutcome::Succeeded(manifest) = outcome else {
        panic!("{name}: {outcome:?}")
    };

    let plain = if name.ends_with(".gz") {
        let mut d = flate2::read::MultiGzDecoder::new(std::fs::File::open(&input).unwrap());
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
        v
    } else {
        std::fs::read(&input).unwrap()
    };
    let reference = reference(&plain, &["Retail", "Online", "B2B"]);

    // Kept rows: same lines, same values, same order.
    let orders = read_table(&lake, &ORDERS);
    let mut with_line = order_values();
    with_line.push("source_line");
    let got: Vec<Vec<String>> = columns(&orders, &with_line);
    let want: Vec<Vec<String>> = reference
        .kept
        .iter()
        .map(|r| {
            let mut v = r.values.clone();
            v.push(r.line.to_string());
            v
        })
        .collect();
    assert_eq!(got.len(), want.len(), "{name}: kept rows");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "{name}: first differing kept row");
    }

    // Quarantine: same lines, same reasons, same kept lines for conflicts.
    let q = read_table(&lake, &QUARANTINE);
    let got_q: Vec<(u64, String, Option<u64>)> =
        columns(&q, &["source_line", "reason", "kept_line"])
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].clone(), r[2].parse().ok()))
            .collect();
    assert_eq!(got_q, reference.quarantine, "{name}: quarantine");

    // Counts: engine manifest = reference = datagen's sidecar; nothing lost, checked from Parquet.
    let c = &manifest.counts;
    assert_eq!(
        c.exact_duplicates, reference.exact_duplicates,
        "{name}: duplicates"
    );
    assert_eq!(c.rows_read, reference.rows_read, "{name}: rows read");
    assert_eq!(c.rows_read, expected.rows, "{name}: rows vs datagen");
    assert_eq!(c.rows_written, expected.kept, "{name}: kept vs datagen");
    assert_eq!(
        c.exact_duplicates, expected.exact_duplicates,
        "{name}: duplicates vs datagen"
    );
    assert_eq!(
        c.quarantined_by_reason, expected.quarantined_by_reason,
        "{name}: reasons vs datagen"
    );
    assert_eq!(
        orders.1.len() as u64 + c.exact_duplicates + q.1.len() as u64,
        c.rows_read,
        "{name}: read = written + duplicates + quarantined (from the Parquet files)"
    );
    assert!(manifest.nothing_lost);

    // The fact table mirrors the orders (most of its columns are the orders' encoded pages,
    // spliced): every shared column, and the status and channel ids of the orders' names.
    let fact = read_table(&lake, &FACT_ORDERS);
    let shared = [
        ("order_id", "order_id"),
        ("product_id", "product_id"),
        ("client_id", "client_id"),
        ("units", "product_ccf"),
        ("unit_price", "product_price"),
        ("total_price", "total_price"),
        ("total_volume", "total_volume"),
        ("source_file", "source_file"),
        ("source_line", "source_line"),
        ("ingested_at", "ingested_at"),
        ("run_id", "run_id"),
    ];
    let (fact_names, orders_names): (Vec<&str>, Vec<&str>) = shared.into_iter().unzip();
    assert_eq!(
        columns(&fact, &fact_names),
        columns(&orders, &orders_names),
        "{name}: fact vs orders"
    );
    let status_id = |s: &str| {
        ["created", "delivered", "broken"]
            .iter()
            .position(|x| *x == s)
    };
    let channel_id = |c: &str| ["Retail", "Online", "B2B"].iter().position(|x| *x == c);
    let want_ids: Vec<Vec<String>> = columns(&orders, &["status", "point_of_sale_channel"])
        .into_iter()
        .map(|r| {
            vec![
                (status_id(&r[0]).expect("known status") + 1).to_string(),
                (channel_id(&r[1]).expect("known channel") + 1).to_string(),
            ]
        })
        .collect();
    assert_eq!(
        columns(&fact, &["status_id", "channel_id"]),
        want_ids,
        "{name}: fact ids"
    );
    let mut dim: Vec<(i64, String)> = columns(
        &read_table(&lake, &DIM_CLIENTS),
        &["client_id", "client_name"],
    )
    .into_iter()
    .map(|r| (r[0].parse().unwrap(), r[1].clone()))
    .collect();
    dim.sort();
    let mut want_dim: Vec<(i64, String)> = reference.clients.into_iter().collect();
    want_dim.sort();
    assert_eq!(dim, want_dim, "{name}: dim_clients");
}

fn dirty(seed: u64, rows: u64) -> GenConfig {
    GenConfig {
        seed,
        size: Size::Rows(rows),
        dirt: Dirt::every_kind(0.004),
        ..GenConfig::default()
    }
}

fn small_ranges() -> RunOptions {
    RunOptions {
        threads: 2,
        chunk_bytes: 16 * 1024,
        max_record_bytes: 4096,
        ..common::fixed_options()
    }
}

#[test]
fn every_kind_of_dirt() {
    compare("dirty.csv", dirty(1, 30_000), small_ranges());
}

#[test]
fn typical_dirt_default_options() {
    let cfg = GenConfig {
        seed: 2,
        size: Size::Rows(40_000),
        dirt: Dirt::typical(),
        ..GenConfig::default()
    };
    compare("typical.csv", cfg, common::fixed_options());
}

#[test]
fn crlf_bom_shuffled_and_extra_columns_without_final_newline() {
    let cfg = GenConfig {
        crlf: true,
        bom: true,
        shuffle_columns: true,
        extra_columns: true,
        header_case_noise: true,
        final_newline: false,
        ..dirty(3, 20_000)
    };
    compare("messy.csv", cfg, small_ranges());
}

#[test]
fn gzip_stream_in_small_windows() {
    compare("dirty.csv.gz", dirty(4, 20_000), small_ranges());
}

/// Windows barely longer than the record limit: every window of the stream starts with the
/// previous buffer's tail, and most records cross a window boundary.
#[test]
fn gzip_stream_in_tiny_windows_on_one_and_three_threads() {
    for threads in [1, 3] {
        let options = RunOptions {
            threads,
            chunk_bytes: 300,
            max_record_bytes: 1024,
            ..common::fixed_options()
        };
        compare("tiny-windows.csv.gz", dirty(9, 3_000), options);
    }
}

#[test]
fn single_thread_tiny_ranges() {
    let options = RunOptions {
        threads: 1,
        chunk_bytes: 700,
        max_record_bytes: 1024,
        ..common::fixed_options()
    };
    compare("tiny-ranges.csv", dirty(5, 8_000), options);
}

/// 250 000 rows of nearly as many clients: the dictionary of `client_id` (shared by both
/// tables) overflows its page within a row group of 180 000 rows.
fn many_clients(seed: u64) -> GenConfig {
    GenConfig {
        seed,
        size: Size::Rows(250_000),
        clients: 2_000_000,
        dirt: Dirt::typical(),
        ..GenConfig::default()
    }
}

/// Runs `cfg` into a lake under `dir` with `options`; the lake's path.
fn run_into(dir: &std::path::Path, cfg: &GenConfig, options: &RunOptions) -> std::path::PathBuf {
    let (input, _) = common::datagen(dir, "input.csv", cfg);
    let lake = dir.join("lake");
    let outcome = common::run(&input, &lake, options);
    assert!(matches!(outcome, RunOutcome::Succeeded(_)), "{outcome:?}");
    lake
}

/// Many clients, small row groups and small part files: several row groups per table and
/// several parts, all spliced into fact_orders.
#[test]
fn many_clients_small_row_groups_and_parts() {
    let cfg = many_clients(6);
    let options = RunOptions {
        parquet: duff_engine::ParquetOptions {
            row_group_rows: 180_000,
            file_bytes: 1 << 20,
            ..Default::default()
        },
        ..common::fixed_options()
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = run_into(dir.path(), &cfg, &options);
    let files = common::table_files(&lake, &FACT_ORDERS);
    assert!(files.len() >= 2, "fact parts: {files:?}");
    let groups = chunks(&files, "client_id");
    // 180 000 rows round up to 22 batches of 8192.
    assert_eq!(groups[0].0, 180_224, "row groups: {groups:?}");
    assert!(
        groups.iter().all(|&(_, dictionary, _)| dictionary),
        "{groups:?}"
    );
    compare("many-clients.csv", cfg, options);
}

/// A client per row: the client columns' dictionaries outgrow their page in a full row group,
/// so their chunks fall back to plain pages mid-way — written by the general writer after the
/// direct one hands them over, and client_id's spliced into fact_orders — and the files are
/// still byte for byte what `ArrowWriter` writes.
#[test]
fn overflowing_dictionaries_are_written_as_arrow_writer_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("unique-clients.csv");
    let mut csv = String::from(
        "client_id,client_name,order_id,product_id,product_description,product_price,\
         product_ccf,product_volume,point_of_sale_channel,status\n",
    );
    for i in 0..200_000u64 {
        let (channel, status) = (
            ["Retail", "Online", "B2B"][i as usize % 3],
            ["created", "delivered"][i as usize % 2],
        );
        csv.push_str(&format!(
            "{},Client number {i},{},{},Keg {},{}.50,{},{}.25,{channel},{status}\n",
            1_000_000 + i,
            i + 1,
            i % 300 + 1,
            i % 300,
            i % 90 + 1,
            i % 24 + 1,
            i % 50 + 1,
        ));
    }
    std::fs::write(&input, csv).unwrap();
    let parquet = duff_engine::ParquetOptions {
        row_group_rows: 22 * 8192,
        ..Default::default()
    };
    let options = RunOptions {
        parquet: parquet.clone(),
        ..common::fixed_options()
    };
    let lake = dir.path().join("lake");
    let outcome = common::run(&input, &lake, &options);
    assert!(matches!(outcome, RunOutcome::Succeeded(_)), "{outcome:?}");
    for (table, column) in [
        (&ORDERS, "client_name"),
        (&ORDERS, "client_id"),
        (&FACT_ORDERS, "client_id"),
    ] {
        let chunks = chunks(&common::table_files(&lake, table), column);
        // The first row group (180 224 clients) overflows; the last one is too small to.
        assert!(
            chunks[0].1 && chunks[0].2,
            "{}.{column}: {chunks:?}",
            table.name
        );
    }
    assert_files_equal_what_arrow_writer_writes(&lake, &parquet);
}

/// Per row group of `files`, `column`'s chunk: rows, whether it has a dictionary, and whether
/// it has plain data pages.
fn chunks(files: &[std::path::PathBuf], column: &str) -> Vec<(i64, bool, bool)> {
    let mut out = Vec::new();
    for file in files {
        let reader =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(file).unwrap())
                .unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&reader).clone();
        for rg in meta.row_groups() {
            let chunk = rg
                .columns()
                .iter()
                .find(|c| c.column_path().string() == column)
                .unwrap();
            out.push((
                rg.num_rows(),
                chunk.dictionary_page_offset().is_some(),
                has_plain_data_pages(chunk),
            ));
        }
    }
    out
}

/// Whether a chunk holds plain-encoded data pages (its dictionary outgrew its page). `PLAIN`
/// among the chunk's encodings says nothing: every dictionary page is plain-encoded.
fn has_plain_data_pages(chunk: &parquet::file::metadata::ColumnChunkMetaData) -> bool {
    chunk
        .page_encoding_stats_mask()
        .is_some_and(|data_pages| data_pages.is_set(parquet::basic::Encoding::PLAIN))
}

/// The files of orders and fact_orders are byte for byte what the parquet crate's own
/// `ArrowWriter` writes for the same rows and row groups: splicing shared columns into
/// fact_orders, and writing the dictionary columns directly, change nothing a reader can see, page offsets and page index included (readers that do not
/// use the page index would not notice wrong ones). With either codec.
#[test]
fn spliced_files_equal_what_arrow_writer_writes() {
    for codec in [
        duff_engine::writer::Codec::Snappy,
        duff_engine::writer::Codec::Zstd,
    ] {
        files_equal_what_arrow_writer_writes(codec);
    }
}

fn files_equal_what_arrow_writer_writes(codec: duff_engine::writer::Codec) {
    let cfg = many_clients(7);
    let parquet = duff_engine::ParquetOptions {
        row_group_rows: 22 * 8192,
        codec,
        ..Default::default()
    };
    let options = RunOptions {
        parquet: parquet.clone(),
        ..common::fixed_options()
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = run_into(dir.path(), &cfg, &options);
    assert_files_equal_what_arrow_writer_writes(&lake, &parquet);
}

/// Each orders and fact_orders file of `lake` (one part each) is what `ArrowWriter` writes for
/// its rows with `parquet`'s settings.
fn assert_files_equal_what_arrow_writer_writes(
    lake: &std::path::Path,
    parquet: &duff_engine::ParquetOptions,
) {
    let codec = parquet.codec;
    for table in [&ORDERS, &FACT_ORDERS] {
        let [file] = &common::table_files(lake, table)[..] else {
            panic!("{}: one part expected", table.name)
        };
        let written = std::fs::read(file).unwrap();
        let batches = read_batches(file, parquet.batch_rows);
        let reference = duff_engine::writer::encode_batches(table, &batches, parquet).unwrap();
        assert!(
            reference == written,
            "{} ({codec:?}): {} bytes written, {} by ArrowWriter",
            table.name,
            written.len(),
            reference.len()
        );
    }
}

/// A table file's batches, read back `batch_rows` rows at a time.
fn read_batches(file: &std::path::Path, batch_rows: usize) -> Vec<arrow::array::RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(file).unwrap(),
    )
    .unwrap()
    .with_batch_size(batch_rows)
    .build()
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// `write_orders_and_fact` (what the Parquet-encoding bench measures) writes, from a run's rows
/// read back in batches of another size, the very bytes the run wrote; rows of two different
/// lengths are refused.
#[test]
fn write_orders_and_fact_writes_what_a_run_writes() {
    use duff_engine::Lake;
    let cfg = GenConfig {
        seed: 8,
        size: Size::Rows(60_000),
        dirt: Dirt::typical(),
        ..GenConfig::default()
    };
    let options = common::fixed_options();
    let dir = tempfile::tempdir().unwrap();
    let lake = run_into(dir.path(), &cfg, &options);
    let [orders_file] = &common::table_files(&lake, &ORDERS)[..] else {
        panic!("one orders part expected")
    };
    let [fact_file] = &common::table_files(&lake, &FACT_ORDERS)[..] else {
        panic!("one fact_orders part expected")
    };
    let batches: Vec<_> = read_batches(orders_file, 5_000)
        .into_iter()
        .zip(read_batches(fact_file, 5_000))
        .collect();

    let out = duff_engine::LocalLake::open(dir.path().join("rewritten")).unwrap();
    let stage: std::sync::Arc<dyn duff_engine::storage::Stage> =
        out.stage("encode").unwrap().into();
    let files =
        duff_engine::writer::write_orders_and_fact(stage.clone(), &batches, &options.parquet)
            .unwrap();
    stage.publish(&files).unwrap();
    let tables: Vec<_> = files.iter().map(|f| f.table.as_str()).collect();
    assert_eq!(tables, ["orders", "fact_orders"]);
    for (file, run_file) in files.iter().zip([orders_file, fact_file]) {
        let rewritten = std::fs::read(out.root().join(&file.path)).unwrap();
        assert!(
            rewritten == std::fs::read(run_file).unwrap(),
            "{}: not the run's bytes",
            file.table
        );
        let rows: usize = batches.iter().map(|(orders, _)| orders.num_rows()).sum();
        assert!(rows > 50_000, "{rows} kept rows");
        assert_eq!(file.rows, rows as u64, "{}", file.table);
    }

    let (orders, fact) = &batches[0];
    let short = (orders.clone(), fact.slice(0, fact.num_rows() - 1));
    let stage = out.stage("refused").unwrap().into();
    let refused = duff_engine::writer::write_orders_and_fact(stage, &[short], &options.parquet);
    assert!(refused.is_err(), "{refused:?}");
}
