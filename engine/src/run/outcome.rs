//! What a run reports: its progress as it goes, its outcome at the end.

use crate::lake::manifest::Manifest;

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Processed and published.
    Succeeded(Manifest),
    /// A file-level problem; a `failed` manifest was committed and nothing else was published.
    Failed(Manifest),
    /// The run's manifest already existed: nothing was done.
    Skipped(Manifest),
}

impl RunOutcome {
    /// The manifest of the run, whichever the outcome: for `Skipped`, the one committed earlier.
    pub fn manifest(&self) -> &Manifest {
        match self {
            RunOutcome::Succeeded(m) | RunOutcome::Failed(m) | RunOutcome::Skipped(m) => m,
        }
    }
}

/// Progress of a run, reported after each window.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Input bytes processed (decompressed bytes for gzip).
    pub bytes_done: u64,
    /// Total input bytes, when known up front.
    pub bytes_total: Option<u64>,
    /// Data records read so far, good and bad.
    pub rows_read: u64,
}
