//! Where Parquet encoding time goes, column by column: runs the engine on a datagen file, reads
//! back its `orders` and `fact_orders` batches, and times encoding each column alone with the
//! engine's settings.
//!
//! `cargo run --release -p duff-benches --example encode_columns -- [input MB, default 64]`

use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use duff_benches::input;
use duff_engine::schema::{FACT_ORDERS, ORDERS, Table};
use duff_engine::writer::encode_batches;
use duff_engine::{LocalLake, ParquetOptions, RunOptions, RunOutcome, run_local};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

fn main() -> anyhow::Result<()> {
    let mb: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(64);
    let dir = tempfile::tempdir()?;
    let lake = LocalLake::open(dir.path())?;
    let RunOutcome::Succeeded(m) = run_local(
        &input(mb * 1_000_000),
        &lake,
        &RunOptions::default(),
        &|_| {},
    )?
    else {
        anyhow::bail!("bench input rejected")
    };
    let options = ParquetOptions::default();
    for table in [&ORDERS, &FACT_ORDERS] {
        let mut batches = Vec::new();
        for f in m.outputs.iter().filter(|f| f.table == table.name) {
            let file = std::fs::File::open(lake.root().join(&f.path))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
                .with_batch_size(options.batch_rows)
                .build()?;
            for b in reader {
                batches.push(b?);
            }
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let whole = time(|| encode_batches(table, &batches, &options).map(|_| ()))?;
        println!(
            "{}: {rows} rows, all columns {whole:.0} ms ({:.0} ns/row)",
            table.name,
            whole * 1e6 / rows as f64
        );
        let mut sum = 0.0;
        for (i, column) in table.columns.iter().enumerate() {
            let one: &'static Table = Box::leak(Box::new(Table {
                name: table.name,
                prefix: table.prefix,
                columns: Box::leak(Box::new([*column])),
            }));
            let schema =
                std::sync::Arc::new(Schema::new(vec![batches[0].schema().field(i).clone()]));
            let cols: Vec<RecordBatch> = batches
                .iter()
                .map(|b| RecordBatch::try_new(schema.clone(), vec![b.column(i).clone()]))
                .collect::<Result<_, _>>()?;
            let ms = time(|| encode_batches(one, &cols, &options).map(|_| ()))?;
            sum += ms;
            println!("  {:<22} {ms:7.1} ms", column.name);
        }
        println!("  {:<22} {sum:7.1} ms", "sum of columns");
    }
    Ok(())
}

/// Median of five runs, in milliseconds.
fn time(mut f: impl FnMut() -> Result<(), duff_engine::Error>) -> anyhow::Result<f64> {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        f()?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[2])
}
