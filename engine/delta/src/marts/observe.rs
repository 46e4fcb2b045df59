//! The marts of one run, aggregated while the engine writes its `orders` rows, so that the
//! fold of a run whose orders are all new adds them to the marts instead of reading the
//! run's files back ([`RunMarts::usable_for`] says when that is exact).
//!
//! A run's rows count each order once per group only if its lines come together; the
//! observer checks that order ids never decrease (as exports and datagen list them) and
//! gives up otherwise, as it does on a value the marts cannot hold. Giving up costs nothing
//! but the fold's speed: the fold then reads the files, as for any other run.

use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use duff_engine::storage::RowObserver;

use super::measures::Names;
use super::run_sums::{RunSums, Unsummable};
use super::sums::Marts;

/// The marts of one attempt's rows.
#[derive(Debug, Default)]
pub(crate) struct RunMarts {
    /// The attempt's file stem: its files are named `<stem>-…`.
    pub stem: String,
    /// The attempt's `pa_date` partition value.
    pub day: String,
    /// Rows seen.
    pub rows: u64,
    pub marts: Marts,
    pub names: Names,
}

impl RunMarts {
    /// Whether these are the marts of the files `(name, day, rows)` of a run: every file is
    /// this attempt's and in its partition, and they hold the rows seen, no more, no fewer.
    pub fn usable_for<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a str, &'a str, Option<usize>)>,
    ) -> bool {
        let prefix = format!("{}-", self.stem);
        let mut rows = 0u64;
        for (path, day, count) in files {
            let name = path.rsplit('/').next().unwrap_or(path);
            let Some(count) = count else {
                return false;
            };
            if !name.starts_with(&prefix) || day != self.day {
                return false;
            }
            rows += count as u64;
        }
        rows == self.rows
    }
}

/// Where a finished observer leaves its marts for the fold: one attempt's at a time.
pub(crate) type RunMartsSlot = Arc<Mutex<Option<RunMarts>>>;

/// Sums an attempt's rows into [`RunMarts`], left in `slot` when the attempt's rows are all
/// seen.
pub(crate) struct MartsObserver {
    slot: RunMartsSlot,
    stem: String,
    day: String,
    /// The largest order id of the current state when the run started: a run whose first
    /// order id is not above it likely shares orders with it, and its fold reads files.
    newest: Option<i64>,
    first_seen: bool,
    /// `None` once the rows cannot be summed exactly here.
    sums: Option<RunSums>,
}

impl MartsObserver {
    pub fn new(slot: RunMartsSlot, stem: &str, day: &str, newest: Option<i64>) -> Self {
        // What an earlier attempt left (it failed after its rows were seen) is of no use.
        slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        MartsObserver {
            slot,
            stem: stem.to_string(),
            day: day.to_string(),
            newest,
            first_seen: false,
            sums: Some(RunSums::default()),
        }
    }

    fn give_up(&mut self, why: Unsummable) {
        tracing::debug!(
            stem = self.stem,
            why = why.0,
            "the run's marts are left to the fold"
        );
        self.sums = None;
    }
}

impl RowObserver for MartsObserver {
    fn rows(&mut self, orders: &RecordBatch) {
        if !self.first_seen && orders.num_rows() > 0 {
            self.first_seen = true;
            let first = orders
                .column_by_name("order_id")
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .map(|ids| ids.value(0));
            if let (Some(first), Some(newest)) = (first, self.newest)
                && first <= newest
            {
                return self.give_up(Unsummable(format!(
                    "its first order id {first} is not above the current state's {newest}"
                )));
            }
        }
        if let Some(sums) = &mut self.sums
            && let Err(why) = sums.add(orders)
        {
            self.give_up(why);
        }
    }

    fn finish(mut self: Box<Self>) {
        let Some(sums) = self.sums.take() else {
            return;
        };
        let rows = sums.rows;
        match sums.finish(&self.day) {
            Ok((marts, names)) => {
                let run = RunMarts {
                    stem: std::mem::take(&mut self.stem),
                    day: std::mem::take(&mut self.day),
                    rows,
                    marts,
                    names,
                };
                *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(run);
            }
            Err(why) => self.give_up(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marts::run_sums::tests::batch;

    /// What an observer leaves for the fold after rows of orders `ids`, with the current
    /// state's largest order id `newest`.
    fn observed(ids: &[i64], newest: Option<i64>) -> Option<RunMarts> {
        let slot = RunMartsSlot::default();
        let mut observer = Box::new(MartsObserver::new(slot.clone(), "s", "2026-11-22", newest));
        let rows: Vec<_> = ids.iter().map(|&o| (o, (1, o, 0, 0, 1, 1))).collect();
        observer.rows(&batch(&rows));
        observer.finish();
        slot.lock().unwrap().take()
    }

    #[test]
    fn a_run_that_starts_within_the_current_state_is_left_to_the_fold() {
        assert_eq!(observed(&[101, 102], Some(100)).map(|r| r.rows), Some(2));
        assert_eq!(observed(&[1, 2], None).map(|r| r.rows), Some(2));
        assert!(observed(&[100, 102], Some(100)).is_none());
        assert!(observed(&[5, 102], Some(100)).is_none());
        // Decreasing ids: refused by the sums.
        assert!(observed(&[102, 101], Some(100)).is_none());
    }

    #[test]
    fn observed_marts_are_used_only_for_the_files_of_their_attempt() {
        let run = RunMarts {
            stem: "0123456789abcdef0123-0000beef".into(),
            day: "2026-11-22".into(),
            rows: 30,
            ..RunMarts::default()
        };
        let file = |name: &'static str| format!("pa_date=2026-11-22/{name}");
        let (a, b) = (
            file("0123456789abcdef0123-0000beef-0.parquet"),
            file("0123456789abcdef0123-0000beef-1.parquet"),
        );
        let other = file("0123456789abcdef0123-0000cafe-0.parquet");
        let day = "2026-11-22";
        assert!(run.usable_for([(a.as_str(), day, Some(10)), (b.as_str(), day, Some(20))]));
        // Rows missing or extra, unknown, another attempt's file, another partition.
        assert!(!run.usable_for([(a.as_str(), day, Some(10))]));
        assert!(!run.usable_for([(a.as_str(), day, Some(10)), (b.as_str(), day, Some(21))]));
        assert!(!run.usable_for([(a.as_str(), day, Some(10)), (b.as_str(), day, None)]));
        assert!(!run.usable_for([(a.as_str(), day, Some(10)), (other.as_str(), day, Some(20))]));
        assert!(!run.usable_for([
            (a.as_str(), day, Some(10)),
            (b.as_str(), "2026-11-23", Some(20))
        ]));
    }
}
