//! The state one attempt's stages share, and what reading its input hands to publication.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};

use super::observe::Observing;
use super::options::RunOptions;
use crate::assemble::RunConstants;
use crate::error::Error;
use crate::lake::manifest::{Counts, SourceInfo, Timings, WrittenFile};
use crate::lake::storage::{Lake, RowObserver, Stage};
use crate::schema::Table;
use crate::writer::parts::{Destination, Naming};

/// What every stage of one attempt shares.
pub(super) struct RunContext<'a> {
    pub(super) options: &'a RunOptions,
    pub(super) constants: RunConstants,
    /// The lake's observer of the rows written to `orders`: the pipeline takes it.
    pub(super) observer: Mutex<Option<Box<dyn RowObserver>>>,
    /// The stem of this attempt's file names.
    pub(super) stem: String,
    pub(super) stage: Arc<dyn Stage>,
    pub(super) partition: String,
    pub(super) threads: usize,
}

impl<'a> RunContext<'a> {
    /// Stages the attempt in `lake` and gathers what its stages need.
    pub(super) fn new(
        lake: &dyn Lake,
        options: &'a RunOptions,
        source: &SourceInfo,
        run_id: &str,
        pa_date: NaiveDate,
        ingested_at: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let stem = lake.attempt_stem(run_id);
        Ok(RunContext {
            options,
            constants: RunConstants {
                source_file: source.uri.clone(),
                run_id: run_id.to_string(),
                ingested_at_ms: ingested_at.timestamp_millis(),
                channel_names: options.channels.names(),
                channel_ids: options.channels.entries().iter().map(|e| e.0).collect(),
            },
            observer: Mutex::new(lake.observer(&stem, pa_date)),
            stage: Arc::from(lake.stage(&stem)?),
            stem,
            partition: format!("pa_date={pa_date}"),
            threads: options.effective_threads(),
        })
    }

    /// Where `table`'s files of this attempt go.
    pub(super) fn destination(&self, table: &Table, naming: Naming) -> Destination {
        Destination {
            stage: self.stage.clone(),
            dir: format!("{}/{}", table.prefix, self.partition),
            stem: self.stem.clone(),
            naming,
        }
    }
}

/// What reading the input produced, before publication.
pub(super) struct Processed {
    pub(super) counts: Counts,
    pub(super) extra_columns: Vec<String>,
    pub(super) outputs: Vec<WrittenFile>,
    pub(super) timings: Timings,
    pub(super) bytes_processed: u64,
    pub(super) dedup_keys: u64,
    pub(super) dedup_heap_bytes: u64,
    /// The lake's observer, waited for once the run is committed, before the lake settles.
    pub(super) observing: Option<Observing>,
}
