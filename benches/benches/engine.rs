//! `cargo bench -p duff-benches`: one group per concern, each with a baseline measured beside it.
//!
//! - `parse`: splitting alone (simd-csv records, strict fields; 1 thread), the field splitter
//!   alone with this machine's block scanner and with the portable one, then split + typed
//!   parse + validate, 1 and 2 threads, against the `csv` crate only reading records (a lower
//!   bound for a naive reader).
//! - `dedup`: the same with the sharded dedup added.
//! - `parquet_encode`: encoding a run's orders and fact_orders batches with the engine's writer
//!   (shared columns encoded once, dictionary columns written directly), against the parquet
//!   crate's `ArrowWriter` with the same settings, and with its defaults.
//! - `end_to_end`: the whole job into a fresh local lake, 1 and 2 threads.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use duff_benches::{input, pool};
use duff_engine::decode::{DecodeOptions, decode_bytes};
use duff_engine::fields::{FieldSpan, QuoteError, split_fields, split_fields_portable};
use duff_engine::schema::{FACT_ORDERS, ORDERS};
use duff_engine::storage::{ObjectWriter, Stage};
use duff_engine::writer::{WrittenFile, encode_batches, write_orders_and_fact};
use duff_engine::{Error, LocalLake, ParquetOptions, RunOptions, RunOutcome, run_local};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

const INPUT_BYTES: u64 = 64_000_000;

fn parse(c: &mut Criterion) {
    // The first group criterion runs: set the allocator up as the `duff` binary does.
    duff_alloc::tune();
    let data = std::fs::read(input(INPUT_BYTES)).unwrap();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    g.bench_function("csv_crate_records_1t", |b| {
        b.iter(|| {
            let mut r = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(&data[..]);
            let mut rec = csv::ByteRecord::new();
            let mut n = 0u64;
            while r.read_byte_record(&mut rec).unwrap() {
                n += 1;
            }
            n
        })
    });
    // Splitting alone: simd-csv finds the records, the strict splitter their fields.
    g.bench_function("split_records_fields_1t", |b| {
        b.iter(|| {
            let mut splitter = simd_csv::SplitterBuilder::new().from_reader(&data[..]);
            let (mut spans, mut fields) = (Vec::new(), 0usize);
            while let Some(record) = splitter.split_record().unwrap() {
                if split_fields(record, &mut spans).is_ok() {
                    fields += spans.len();
                }
            }
            fields
        })
    });
    // The field splitter alone, on the file's lines: this machine's block scanner (SSE2 on
    // x86-64) against the portable one that arm64 runs.
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    type Split = fn(&[u8], &mut Vec<FieldSpan>) -> Result<(), QuoteError>;
    let splitters: [(&str, Split); 2] = [
        ("split_fields_1t", split_fields),
        ("split_fields_portable_1t", split_fields_portable),
    ];
    for (label, split) in splitters {
        g.bench_function(label, |b| {
            b.iter(|| {
                let (mut spans, mut fields) = (Vec::new(), 0usize);
                for line in &lines {
                    if split(line, &mut spans).is_ok() {
                        fields += spans.len();
                    }
                }
                fields
            })
        });
    }
    for (label, dedup) in [("parse_validate", false), ("parse_validate_dedup", true)] {
        for threads in [1, 2] {
            let p = pool(threads);
            let options = DecodeOptions {
                dedup,
                ..DecodeOptions::default()
            };
            g.bench_with_input(
                BenchmarkId::new(label, format!("{threads}t")),
                &threads,
                |b, _| b.iter(|| p.install(|| decode_bytes(&data, &options).unwrap())),
            );
        }
    }
    g.finish();
}

fn parquet_encode(c: &mut Criterion) {
    // The orders and fact_orders batches of one real run, read back from its lake.
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::open(dir.path()).unwrap();
    let outcome = run_local(&input(INPUT_BYTES), &lake, &RunOptions::default(), &|_| {}).unwrap();
    let RunOutcome::Succeeded(m) = outcome else {
        panic!("bench input rejected")
    };
    let read = |table: &str| -> Vec<RecordBatch> {
        let file = m.outputs.iter().find(|f| f.table == table).unwrap();
        let file = std::fs::File::open(lake.root().join(&file.path)).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .with_batch_size(8192)
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let (orders, fact) = (read("orders"), read("fact_orders"));
    let both: Vec<_> = orders.iter().cloned().zip(fact.iter().cloned()).collect();
    let rows: usize = orders.iter().map(|b| b.num_rows()).sum();

    let mut g = c.benchmark_group("parquet_encode");
    g.throughput(Throughput::Elements(rows as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let engine = ParquetOptions::default();
    // The engine's writer: shared columns encoded once, dictionary columns written directly,
    // into memory like the baselines. It runs as in a run, on two encoder threads and a file
    // thread, so its wall time is set beside single-threaded baselines: compare CPU, not only
    // wall time, before reading the ratio as per-core efficiency.
    g.bench_function("orders_and_fact_engine_writer", |b| {
        b.iter(|| write_orders_and_fact(Arc::new(MemoryStage), &both, &engine).unwrap())
    });
    // What it replaces: parquet's ArrowWriter, same settings, each table encoded on its own.
    g.bench_function("orders_and_fact_arrow_writer", |b| {
        b.iter(|| {
            let orders = encode_batches(&ORDERS, &orders, &engine).unwrap();
            let fact = encode_batches(&FACT_ORDERS, &fact, &engine).unwrap();
            (orders, fact)
        })
    });
    g.bench_function("orders_arrow_writer", |b| {
        b.iter(|| encode_batches(&ORDERS, &orders, &engine).unwrap())
    });
    g.bench_function("orders_arrow_writer_parquet_defaults", |b| {
        b.iter(|| {
            let mut w =
                parquet::arrow::ArrowWriter::try_new(Vec::new(), ORDERS.arrow_schema(), None)
                    .unwrap();
            for batch in &orders {
                w.write(batch).unwrap();
            }
            w.into_inner().unwrap()
        })
    });
    g.finish();
}

/// A stage whose files are written into memory and dropped: encoding without the disk.
struct MemoryStage;

impl Stage for MemoryStage {
    fn create(&self, _rel: &str) -> Result<Box<dyn ObjectWriter>, Error> {
        Ok(Box::new(MemoryFile(Vec::new())))
    }
    fn publish(&self, _files: &[WrittenFile]) -> Result<(), Error> {
        Ok(())
    }
    fn abort(&self) {}
}

struct MemoryFile(Vec<u8>);

impl std::io::Write for MemoryFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for MemoryFile {
    fn finish(self: Box<Self>) -> Result<u64, Error> {
        Ok(self.0.len() as u64)
    }
}

fn end_to_end(c: &mut Criterion) {
    let path = input(INPUT_BYTES);
    let bytes = std::fs::metadata(&path).unwrap().len();
    let mut g = c.benchmark_group("end_to_end");
    g.throughput(Throughput::Bytes(bytes))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for threads in [1, 2] {
        g.bench_with_input(
            BenchmarkId::new("run_local", format!("{threads}t")),
            &threads,
            |b, &threads| {
                b.iter_with_setup(
                    || tempfile::tempdir().unwrap(),
                    |dir| {
                        let lake = LocalLake::open(dir.path()).unwrap();
                        let options = RunOptions {
                            threads,
                            ..RunOptions::default()
                        };
                        run_local(&path, &lake, &options, &|_| {}).unwrap()
                    },
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, parse, parquet_encode, end_to_end);
criterion_main!(benches);
