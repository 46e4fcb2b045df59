//! The engine's guarantees: a run is deterministic (the same bytes for any thread count or
//! window), idempotent (the same input again is skipped) and atomic (readers see all of it or
//! none).

use duff_datagen::{Dirt, GenConfig, Size};
use duff_engine::{Manifest, RunOptions, RunOutcome};

use crate::common::{self, snapshot, visible_data};

fn sample(dir: &std::path::Path, rows: u64) -> std::path::PathBuf {
    let cfg = GenConfig {
        seed: 7,
        size: Size::Rows(rows),
        dirt: Dirt::every_kind(0.003),
        ..GenConfig::default()
    };
    common::datagen(dir, "orders.csv", &cfg).0
}

/// The parts of a manifest that must not depend on how the work was scheduled.
fn stable(m: &Manifest) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap();
    let o = v.as_object_mut().unwrap();
    for volatile in [
        "started_at",
        "finished_at",
        "threads",
        "timings",
        "throughput",
        "peak_rss_bytes",
        "options",
    ] {
        o.remove(volatile);
    }
    v
}

#[test]
fn one_two_and_eight_threads_give_byte_identical_lakes() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 60_000);
    let mut lakes = Vec::new();
    for (threads, chunk_bytes) in [(1, 4 << 20), (2, 64 * 1024), (8, 3000), (2, 1 << 20)] {
        let lake = dir.path().join(format!("lake-{threads}-{chunk_bytes}"));
        let options = RunOptions {
            threads,
            chunk_bytes,
            ..common::fixed_options()
        };
        let RunOutcome::Succeeded(m) = common::run(&input, &lake, &options) else {
            panic!()
        };
        lakes.push((snapshot(&lake, false), stable(&m)));
    }
    assert!(
        lakes[0].0.len() >= 7,
        "expected every table: {:?}",
        lakes[0].0.keys()
    );
    for other in &lakes[1..] {
        assert_eq!(
            other.0.keys().collect::<Vec<_>>(),
            lakes[0].0.keys().collect::<Vec<_>>()
        );
        for (k, v) in &other.0 {
            assert!(v == &lakes[0].0[k], "{k} differs");
        }
        assert_eq!(other.1, lakes[0].1);
    }
}

#[test]
fn a_second_run_of_the_same_input_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 5_000);
    let lake = dir.path().join("lake");
    let RunOutcome::Succeeded(first) = common::run(&input, &lake, &RunOptions::default()) else {
        panic!()
    };
    let before = snapshot(&lake, true);
    let RunOutcome::Skipped(again) = common::run(&input, &lake, &RunOptions::default()) else {
        panic!()
    };
    assert_eq!(again, first, "the skip reports the committed manifest");
    assert_eq!(snapshot(&lake, true), before, "nothing changed");
}

#[test]
fn forced_reprocessing_with_fixed_timestamps_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 5_000);
    let lake = dir.path().join("lake");
    assert!(matches!(
        common::run(&input, &lake, &common::fixed_options()),
        RunOutcome::Succeeded(_)
    ));
    let before = snapshot(&lake, false);
    let forced = RunOptions {
        force: true,
        ..common::fixed_options()
    };
    assert!(matches!(
        common::run(&input, &lake, &forced),
        RunOutcome::Succeeded(_)
    ));
    assert_eq!(snapshot(&lake, false), before);
}

#[test]
fn a_changed_input_is_a_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        seed: 8,
        size: Size::Rows(2_000),
        dirt: Dirt::typical(),
        ..GenConfig::default()
    };
    let input = common::datagen(dir.path(), "orders.csv", &cfg).0;
    let lake = dir.path().join("lake");
    let RunOutcome::Succeeded(a) = common::run(&input, &lake, &RunOptions::default()) else {
        panic!()
    };
    let mut data = std::fs::read(&input).unwrap();
    data.extend_from_slice(b"42,Late Client,99999999,10001,Duff Lager,1.00,1,0.5,Retail,created\n");
    std::fs::write(&input, data).unwrap();
    let RunOutcome::Succeeded(b) = common::run(&input, &lake, &RunOptions::default()) else {
        panic!()
    };
    assert_ne!(a.run_id, b.run_id);
    assert_eq!(b.counts.rows_read, a.counts.rows_read + 1);
}

/// A lake whose part files of one table stop accepting bytes after `limit` of them, the way an
/// S3 upload fails: the stage records the storage error and the writer sees an I/O error.
struct FailingLake {
    inner: duff_engine::LocalLake,
    table_prefix: &'static str,
    limit: usize,
}

struct FailingStage {
    inner: Box<dyn duff_engine::storage::Stage>,
    table_prefix: &'static str,
    limit: usize,
    failure: std::sync::Arc<std::sync::Mutex<Option<duff_engine::StorageError>>>,
}

struct FailingFile {
    inner: Box<dyn duff_engine::storage::ObjectWriter>,
    written: usize,
    limit: usize,
    failure: std::sync::Arc<std::sync::Mutex<Option<duff_engine::StorageError>>>,
}

fn throttled(rel: &str) -> duff_engine::StorageError {
    duff_engine::StorageError {
        kind: duff_engine::StorageErrorKind::Transient,
        uri: rel.to_string(),
        operation: "UploadPart".into(),
        message: "SlowDown".into(),
    }
}

impl duff_engine::Lake for FailingLake {
    fn uri(&self) -> String {
        self.inner.uri()
    }
    fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, duff_engine::Error> {
        duff_engine::Lake::read_manifest(&self.inner, run_id)
    }
    fn stage(
        &self,
        run_id: &str,
    ) -> Result<Box<dyn duff_engine::storage::Stage>, duff_engine::Error> {
        Ok(Box::new(FailingStage {
            inner: self.inner.stage(run_id)?,
            table_prefix: self.table_prefix,
            limit: self.limit,
            failure: Default::default(),
        }))
    }
    fn commit(
        &self,
        manifest: &Manifest,
        overwrite: bool,
    ) -> Result<duff_engine::storage::Commit, duff_engine::Error> {
        self.inner.commit(manifest, overwrite)
    }
}

impl duff_engine::storage::Stage for FailingStage {
    fn create(
        &self,
        rel: &str,
    ) -> Result<Box<dyn duff_engine::storage::ObjectWriter>, duff_engine::Error> {
        let inner = self.inner.create(rel)?;
        if !rel.starts_with(self.table_prefix) {
            return Ok(inner);
        }
        Ok(Box::new(FailingFile {
            inner,
            written: 0,
            limit: self.limit,
            failure: self.failure.clone(),
        }))
    }
    fn publish(
        &self,
        files: &[duff_engine::writer::WrittenFile],
    ) -> Result<(), duff_engine::Error> {
        self.inner.publish(files)
    }
    fn abort(&self) {
        self.inner.abort()
    }
    fn take_failure(&self) -> Option<duff_engine::Error> {
        self.failure
            .lock()
            .unwrap()
            .take()
            .map(duff_engine::Error::Storage)
    }
}

impl std::io::Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() > self.limit {
            self.failure
                .lock()
                .unwrap()
                .get_or_insert_with(|| throttled("part"));
            return Err(throttled("part").into_io());
        }
        self.written += buf.len();
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl duff_engine::storage::ObjectWriter for FailingFile {
    fn finish(self: Box<Self>) -> Result<u64, duff_engine::Error> {
        self.inner.finish()
    }
}

/// A table's files failing mid-run (orders and fact_orders are written by the thread that
/// splices their shared columns, the quarantine by its own): the run stops with the storage
/// error, retryable — without reading the rest of the input when the failure comes early —
/// nothing is committed or visible, and a clean rerun publishes everything.
#[test]
fn a_lake_write_failing_mid_run_fails_the_run_retryably_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 60_000);
    let options = RunOptions {
        parquet: duff_engine::ParquetOptions {
            row_group_rows: 8192,
            ..Default::default()
        },
        // Windows of 512 KiB: a window's rows are encoded while the next is read, so the
        // failure shows a window or two after it happened.
        chunk_bytes: 64 * 1024,
        max_record_bytes: 64 * 1024,
        ..common::fixed_options()
    };
    for table_prefix in ["orders/", "model/fact_orders/", "quarantine/"] {
        let root = dir
            .path()
            .join(format!("lake-{}", table_prefix.replace('/', "-")));
        let lake = FailingLake {
            inner: duff_engine::LocalLake::open(&root).unwrap(),
            table_prefix,
            limit: 64 * 1024,
        };
        let read = std::sync::atomic::AtomicU64::new(0);
        let err = duff_engine::run(
            &duff_engine::input::LocalInput::open(&input).unwrap(),
            &lake,
            &options,
            &|p| read.store(p.bytes_done, std::sync::atomic::Ordering::Relaxed),
        )
        .expect_err(table_prefix);
        let size = std::fs::metadata(&input).unwrap().len();
        // The quarantine's few rows are one row group, written at the end.
        if table_prefix != "quarantine/" {
            let read = read.into_inner();
            assert!(
                read < size / 2,
                "{table_prefix}: read {read} of {size} bytes"
            );
        }
        assert_eq!(err.code(), "storage_transient", "{table_prefix}: {err}");
        assert!(err.is_retryable(), "{table_prefix}: {err}");
        assert!(
            visible_data(&root).is_empty(),
            "{table_prefix}: {:?}",
            visible_data(&root)
        );
        assert!(lake.inner.manifests().unwrap().is_empty(), "{table_prefix}");
        assert!(matches!(
            common::run(&input, &root, &options),
            RunOutcome::Succeeded(_)
        ));
    }
}

/// A poison input (every attempt killed by memory, a timeout or a crash) is given up: its run
/// is committed `failed` (`gave_up`) without reading it and holds no rows; every later
/// attempt skips it; a run already committed is not given up.
#[test]
fn giving_up_commits_a_failed_run_without_rows_and_later_attempts_skip_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 2_000);
    let lake_dir = dir.path().join("lake");
    let lake = duff_engine::LocalLake::open(&lake_dir).unwrap();
    let source = duff_engine::input::LocalInput::open(&input).unwrap();
    let options = RunOptions::default();
    let RunOutcome::Failed(gave_up) = duff_engine::give_up(&source, &lake, &options, 3).unwrap()
    else {
        panic!("a given-up run is failed")
    };
    assert_eq!(gave_up.error_code.as_deref(), Some("gave_up"));
    assert!(gave_up.error.as_deref().unwrap().contains("3 attempts"));
    assert_eq!(gave_up.counts.rows_read, 0, "the input is not read");
    assert!(gave_up.outputs.is_empty());
    assert!(visible_data(&lake_dir).is_empty(), "no rows visible");
    let RunOutcome::Skipped(again) = common::run(&input, &lake_dir, &options) else {
        panic!("a later attempt skips the given-up run")
    };
    assert_eq!(again.error_code.as_deref(), Some("gave_up"));

    let other = dir.path().join("lake2");
    let RunOutcome::Succeeded(done) = common::run(&input, &other, &options) else {
        panic!()
    };
    let lake2 = duff_engine::LocalLake::open(&other).unwrap();
    let RunOutcome::Skipped(kept) = duff_engine::give_up(&source, &lake2, &options, 3).unwrap()
    else {
        panic!("a committed run is not given up")
    };
    assert_eq!(kept, done);
}

/// A run whose `stop_at` has passed stops before its next window with `out_of_time`
/// (retryable), commits and publishes nothing, and the input runs whole later.
#[test]
fn a_run_past_its_stop_time_stops_cleanly_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 2_000);
    let lake_dir = dir.path().join("lake");
    let lake = duff_engine::LocalLake::open(&lake_dir).unwrap();
    let stopped = duff_engine::run_local(
        &input,
        &lake,
        &RunOptions {
            stop_at: Some(std::time::Instant::now()),
            ..RunOptions::default()
        },
        &|_| {},
    );
    match stopped {
        Err(e) => {
            assert_eq!(e.code(), "out_of_time");
            assert!(e.is_retryable() && !e.is_file_level());
        }
        Ok(outcome) => panic!("{outcome:?}"),
    }
    assert!(visible_data(&lake_dir).is_empty(), "nothing published");
    assert!(
        lake.read_manifest(&only_run_id_of(&input))
            .unwrap()
            .is_none()
    );
    let RunOutcome::Succeeded(m) = common::run(&input, &lake_dir, &RunOptions::default()) else {
        panic!()
    };
    assert!(m.nothing_lost && m.counts.rows_read > 0);
}

fn only_run_id_of(input: &std::path::Path) -> String {
    use duff_engine::Source;
    duff_engine::input::run_id_for(&duff_engine::input::LocalInput::open(input).unwrap().info())
}

/// The encodings found in each column of a table's files: `(column, encodings)`.
pub(crate) fn encodings_by_column(files: &[std::path::PathBuf]) -> Vec<(String, Vec<String>)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut by_column: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for file in files {
        let reader = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap();
        for group in reader.metadata().row_groups() {
            for chunk in group.columns() {
                let entry = by_column.entry(chunk.column_path().string()).or_default();
                entry.extend(chunk.encodings().map(|e| format!("{e:?}")));
            }
        }
    }
    by_column
        .into_iter()
        .map(|(c, e)| (c, e.into_iter().collect()))
        .collect()
}

#[test]
fn the_arrow_encoder_writes_the_same_rows_with_the_encodings_the_schema_declares() {
    use duff_engine::schema::{FACT_ORDERS, ORDERS};
    use duff_engine::writer::Encoder;

    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), 30_000);
    // Several row groups and parts, so cuts are compared too.
    let options = |encoder| RunOptions {
        parquet: duff_engine::ParquetOptions {
            row_group_rows: 10_000,
            file_bytes: 256 << 10,
            encoder,
            ..duff_engine::ParquetOptions::default()
        },
        ..common::fixed_options()
    };
    let mut lakes = Vec::new();
    for encoder in [Encoder::Engine, Encoder::Arrow] {
        let lake = dir.path().join(format!("lake-{encoder:?}"));
        let RunOutcome::Succeeded(m) = common::run(&input, &lake, &options(encoder)) else {
            panic!("{encoder:?}: the run failed")
        };
        assert_eq!(
            m.options["parquet"]["encoder"],
            format!("{encoder:?}").to_lowercase()
        );
        // Only the engine's encoder splices pages into files.
        assert_eq!(
            m.timings.splice_busy_ms > 0.0,
            encoder == Encoder::Engine,
            "{encoder:?}"
        );
        lakes.push(lake);
    }
    for table in [&ORDERS, &FACT_ORDERS] {
        let [engine, arrow] = [&lakes[0], &lakes[1]].map(|lake| common::read_table(lake, table));
        assert!(
            engine.1.len() > 25_000,
            "{}: {} rows",
            table.name,
            engine.1.len()
        );
        assert_eq!(
            engine, arrow,
            "{}: the two encoders' rows differ",
            table.name
        );
        let [engine, arrow] = [&lakes[0], &lakes[1]]
            .map(|lake| encodings_by_column(&common::table_files(lake, table)));
        assert_eq!(
            engine, arrow,
            "{}: the two encoders' encodings differ",
            table.name
        );
        assert_encoded_as_declared(table, &engine);
    }
}

/// Asserts that each column of `encodings` (see [`encodings_by_column`]) holds the encoding
/// `table` declares for it, and only that one's kind.
pub(crate) fn assert_encoded_as_declared(
    table: &duff_engine::schema::Table,
    encodings: &[(String, Vec<String>)],
) {
    use duff_engine::schema::Encoding;
    assert!(!encodings.is_empty(), "{}: no column", table.name);
    for (column, encodings) in encodings {
        let declared = table.columns.iter().find(|c| c.name == column).unwrap();
        let has = |e: &str| encodings.iter().any(|x| x == e);
        let dictionary = has("RLE_DICTIONARY") || has("PLAIN_DICTIONARY");
        let context = format!("{}.{column}: {encodings:?}", table.name);
        match declared.encoding {
            Encoding::Dictionary => assert!(dictionary, "{context}"),
            Encoding::Delta => assert!(has("DELTA_BINARY_PACKED") && !dictionary, "{context}"),
            Encoding::Plain => assert!(!dictionary && !has("DELTA_BINARY_PACKED"), "{context}"),
        }
    }
}
