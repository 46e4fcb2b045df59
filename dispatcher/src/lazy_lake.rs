//! A lake opened on first use.
//!
//! Opening a Delta lake reads every table's log. A Lambda's cold start, and an invocation that
//! routes nothing to it (an ignored key, a test event), must not pay for that or fail on it.

use std::sync::{Arc, Mutex};

use duff_engine::Error;
use duff_engine::manifest::Manifest;
use duff_engine::storage::{Commit, Lake, Stage};

type Open = Box<dyn Fn() -> Result<Arc<dyn Lake>, Error> + Send + Sync>;

/// Opens the lake with `open` the first time it is needed (again after a failed open), then
/// forwards every call to it. Must be called off async threads, like any blocking lake.
pub struct OpenOnUse {
    uri: String,
    open: Open,
    lake: Mutex<Option<Arc<dyn Lake>>>,
}

impl OpenOnUse {
    pub fn new(uri: String, open: Open) -> OpenOnUse {
        OpenOnUse {
            uri,
            open,
            lake: Mutex::new(None),
        }
    }

    fn lake(&self) -> Result<Arc<dyn Lake>, Error> {
        let mut slot = self.lake.lock().expect("no panic while opening");
        if let Some(lake) = slot.as_ref() {
            return Ok(lake.clone());
        }
        let lake = (self.open)()?;
        *slot = Some(lake.clone());
        Ok(lake)
    }
}

impl Lake for OpenOnUse {
    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, Error> {
        self.lake()?.read_manifest(run_id)
    }

    fn attempt_stem(&self, run_id: &str) -> String {
        match self.lake() {
            Ok(lake) => lake.attempt_stem(run_id),
            // The run fails at its first write, which opens the lake again and says why.
            Err(_) => run_id.to_string(),
        }
    }

    fn committed_pa_date(&self, run_id: &str) -> Result<Option<chrono::NaiveDate>, Error> {
        self.lake()?.committed_pa_date(run_id)
    }

    fn stage(&self, stem: &str) -> Result<Box<dyn Stage>, Error> {
        self.lake()?.stage(stem)
    }

    fn settle(&self) -> Result<(), Error> {
        self.lake()?.settle()
    }

    fn commit(&self, manifest: &Manifest, overwrite: bool) -> Result<Commit, Error> {
        self.lake()?.commit(manifest, overwrite)
    }
}
