//! Helpers shared by the integration tests: make inputs, run the engine, read the lake back.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::util::display::{ArrayFormatter, FormatOptions};
use duff_datagen::{Expected, GenConfig};
use duff_engine::schema::Table;
use duff_engine::{LocalLake, RunOptions, RunOutcome, run_local};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Writes a datagen file into `dir` and returns its path and expected counts.
pub fn datagen(dir: &Path, name: &str, cfg: &GenConfig) -> (PathBuf, Expected) {
    let path = dir.join(name);
    let file = File::create(&path).unwrap();
    let expected = if name.ends_with(".gz") {
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let e = duff_datagen::generate(cfg, &mut enc).unwrap();
        enc.finish().unwrap();
        e
    } else {
        duff_datagen::generate(cfg, std::io::BufWriter::new(file)).unwrap()
    };
    (path, expected)
}

/// Options that make a run's output fully reproducible.
pub fn fixed_options() -> RunOptions {
    RunOptions {
        pa_date: Some("2026-11-22".parse().unwrap()),
        ingested_at: Some("2026-11-22T10:00:00Z".parse().unwrap()),
        ..RunOptions::default()
    }
}

pub fn run(input: &Path, lake: &Path, options: &RunOptions) -> RunOutcome {
    let lake = LocalLake::open(lake).unwrap();
    run_local(input, &lake, options, &|_| {}).unwrap()
}

/// The index of an `orders` column in the rows [`delta_rows`] returns.
pub fn orders_column(name: &str) -> usize {
    duff_engine::schema::ORDERS
        .columns
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("no orders column {name}"))
}

/// The Parquet files of a table, in part order.
pub fn table_files(lake: &Path, table: &Table) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let root = lake.join(table.prefix);
    let Ok(partitions) = std::fs::read_dir(&root) else {
        return files;
    };
    for p in partitions {
        for f in std::fs::read_dir(p.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    let part = |p: &PathBuf| -> (String, u64) {
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        match stem.rsplit_once('-') {
            Some((run, n)) => (
                format!("{}/{run}", p.parent().unwrap().display()),
                n.parse().unwrap_or(0),
            ),
            None => (p.display().to_string(), 0),
        }
    };
    files.sort_by_key(part);
    files
}

/// Every row of a table, each value rendered as text (NULL as "∅"), with column names.
pub fn read_table(lake: &Path, table: &Table) -> (Vec<String>, Vec<Vec<String>>) {
    let names: Vec<String> = table.columns.iter().map(|c| c.name.to_string()).collect();
    let mut rows = Vec::new();
    for file in table_files(lake, table) {
        rows.extend(parquet_rows(&file));
    }
    (names, rows)
}

/// The rows of one Parquet file, each value rendered as text (NULL as "∅").
pub fn parquet_rows(file: &Path) -> Vec<Vec<String>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let options = FormatOptions::default().with_null("∅");
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    rows
}

/// Processes a file into a lake of Delta tables, as `duff run` does.
pub fn run_delta(input: &Path, lake: &Path, options: &RunOptions) -> RunOutcome {
    let lake = duff_delta::DeltaLake::open_local(lake).unwrap();
    let input = duff_engine::input::LocalInput::open(input).unwrap();
    duff_engine::run(&input, &lake, options, &|_| {}).unwrap()
}

/// The committed files of a Delta table (paths relative to the lake root), as its log says.
pub fn delta_files(lake: &Path, def: &duff_delta::DeltaTableDef) -> Vec<String> {
    let committed = duff_delta::CommittedOnly::local(&lake.canonicalize().unwrap()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(committed.refresh())
        .unwrap();
    committed.files_of(def)
}

/// The `pa_date` partition value in a data file's path (empty for unpartitioned tables).
pub fn partition_of(rel: &str) -> &str {
    rel.split('/')
        .find_map(|s| s.strip_prefix("pa_date="))
        .unwrap_or("")
}

/// What a Delta reader sees in a table: every row of its committed files, rendered as text,
/// with the partition date last, sorted.
pub fn delta_rows(lake: &Path, def: &duff_delta::DeltaTableDef) -> Vec<Vec<String>> {
    use rayon::prelude::*;
    // Files in parallel: the long S3 tests read ~100 MB of lake back this way, at the end of
    // the test run when the other test thread is idle.
    let mut rows: Vec<Vec<String>> = delta_files(lake, def)
        .into_par_iter()
        .flat_map_iter(|rel| {
            let pa_date = partition_of(&rel).to_string();
            parquet_rows(&lake.join(&rel))
                .into_iter()
                .map(move |mut row| {
                    row.push(pa_date.clone());
                    row
                })
        })
        .collect();
    // Equal rows are identical: an unstable sort gives the same order.
    rows.par_sort_unstable();
    rows
}

/// The history tables of the lake (every Delta table but `runs`).
pub fn history_tables() -> impl Iterator<Item = &'static duff_delta::DeltaTableDef> {
    duff_delta::COMMIT_ORDER
        .iter()
        .filter(|d| d.engine_table.is_some())
}

/// Picks columns by name from rows read with [`read_table`].
pub fn columns(table: &(Vec<String>, Vec<Vec<String>>), wanted: &[&str]) -> Vec<Vec<String>> {
    let idx: Vec<usize> = wanted
        .iter()
        .map(|w| {
            table
                .0
                .iter()
                .position(|n| n == w)
                .unwrap_or_else(|| panic!("no column {w}"))
        })
        .collect();
    table
        .1
        .iter()
        .map(|r| idx.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

/// Relative path → file bytes, for every file under the lake (optionally skipping `_runs`).
pub fn snapshot(lake: &Path, with_manifests: bool) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if lake.exists() {
        walk(lake, lake, &mut out);
    }
    if !with_manifests {
        out.retain(|k, _| !k.starts_with("_runs/"));
    }
    out
}

/// The files a reader would see: everything but staging and manifests.
pub fn visible_data(lake: &Path) -> Vec<String> {
    snapshot(lake, false)
        .into_keys()
        .filter(|k| !k.starts_with("_staging/"))
        .collect()
}
