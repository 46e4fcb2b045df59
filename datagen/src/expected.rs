//! The expected-counts sidecar: what a correct engine must report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::block::{BAD, CONFLICT, DUPLICATE, KEPT, KINDS};
use crate::config::Reason;

/// Exact counts for the bytes that were written.
/// Invariant: `rows == kept + exact_duplicates + quarantined`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Expected {
    /// Data records after the header, including bad rows and duplicates.
    pub rows: u64,
    /// Distinct valid order lines (first occurrence of each key).
    pub kept: u64,
    /// Byte-identical copies of earlier valid rows.
    pub exact_duplicates: u64,
    /// Bad rows plus key conflicts.
    pub quarantined: u64,
    /// Reason code -> count; only reasons that occur are present
    /// (`key_conflict` included).
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// File size in bytes (BOM and header included).
    pub bytes: u64,
    /// The [`GenConfig::seed`](crate::GenConfig::seed) the file was generated with.
    pub seed: u64,
}

impl Expected {
    /// Pretty JSON, as written next to a generated file.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("Expected serialises")
    }
}

/// Per-kind row counts, summed block by block.
#[derive(Default)]
pub(crate) struct Tally {
    kinds: [u64; KINDS],
    unterminated: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, kinds: &[u8]) {
        for &k in kinds {
            self.kinds[k as usize] += 1;
        }
    }

    pub(crate) fn add_unterminated(&mut self) {
        self.unterminated += 1;
    }

    pub(crate) fn finish(&self, bytes: u64, seed: u64) -> Expected {
        let mut by_reason = BTreeMap::new();
        let mut add = |reason: Reason, n: u64| {
            if n > 0 {
                by_reason.insert(reason.as_str().to_string(), n);
            }
        };
        add(Reason::KeyConflict, self.kinds[CONFLICT as usize]);
        add(Reason::UnterminatedQuote, self.unterminated);
        for (i, &reason) in Reason::ROW_KINDS.iter().enumerate() {
            add(reason, self.kinds[BAD as usize + i]);
        }
        let quarantined = by_reason.values().sum();
        let kept = self.kinds[KEPT as usize];
        let exact_duplicates = self.kinds[DUPLICATE as usize];
        Expected {
            rows: kept + exact_duplicates + quarantined,
            kept,
            exact_duplicates,
            quarantined,
            quarantined_by_reason: by_reason,
            bytes,
            seed,
        }
    }
}
