//! `duff lake check`'s test of the current state: `order_lines` holds exactly the latest
//! version of every line of the folded runs' history, once.
//!
//! Keys are compared one window of `order_id` at a time. The windows are cut from the files'
//! key statistics so that each holds about [`CHECK_WINDOW_ROWS`] versions, and a window reads only
//! the files, row groups and rows within it: memory follows the window, not the lake (holding
//! every key of a lake of ten 1 GiB runs took 19.6 GB).

use std::collections::HashSet;

use duff_engine::manifest::RunStatus;
use duff_engine::storage::Lake;
use hashbrown::HashMap;

use crate::error::Error;
use crate::files::{DataFile, data_files, run_id_of_file};
use crate::fold::{KEY_COLUMNS, Key, for_each_key_of};
use crate::lake::DeltaLake;
use crate::marts::Names;
use crate::parquet_io::ParquetFile;
use crate::tables::ORDER_LINES;
use crate::workspace::Workspace;

/// Versions of order lines compared at once, by default (about 40 bytes each in memory).
pub const CHECK_WINDOW_ROWS: u64 = 8 << 20;

impl<L: Lake> DeltaLake<L> {
    /// Compares `order_lines` with the latest version of every line recomputed from `orders`
    /// (keys and versions only) and returns what differs. Runs not folded yet (a fold that
    /// crashed) are left out of the comparison and named.
    pub(crate) async fn check_current_state(
        &self,
        work: &Workspace,
        window_rows: u64,
    ) -> Result<Vec<String>, Error> {
        let root = work.root();
        let orders_def = crate::tables::COMMIT_ORDER[1];
        let orders = self.load_table(&orders_def).await?;
        let current = self.load_or_create(&ORDER_LINES).await?;
        let mut problems = Vec::new();
        let mut folded: HashSet<String> = HashSet::new();
        for record in self.runs_async().await? {
            let id = record.run_id;
            let generation = self.run_version(&orders, &orders_def, &id).await?;
            let done = self.run_version(&current, &ORDER_LINES, &id).await?;
            match (generation, done) {
                (Some(g), Some(d)) if d >= g => {
                    folded.insert(id);
                }
                (Some(_), _) if record.status == RunStatus::Succeeded => problems.push(format!(
                    "run {id}: not folded into order_lines yet (run `duff lake fold`)"
                )),
                _ => {}
            }
        }
        let history: Vec<DataFile> = data_files(&orders, &orders_def)?
            .into_iter()
            .filter(|f| run_id_of_file(&f.path).is_some_and(|id| folded.contains(id)))
            .collect();
        let current_files = data_files(&current, &ORDER_LINES)?;
        work.fetch(
            history
                .iter()
                .map(|f| format!("{}/{}", orders_def.prefix, f.path))
                .chain(
                    current_files
                        .iter()
                        .map(|f| format!("{}/{}", ORDER_LINES.prefix, f.path)),
                ),
        )
        .await?;
        let history_dir = root.join(orders_def.prefix);
        let current_dir = root.join(ORDER_LINES.prefix);
        let sized: Vec<(i64, i64, u64)> = history
            .iter()
            .chain(&current_files)
            .filter_map(|f| {
                let (lo, hi) = f.range?;
                Some((lo, hi, f.num_records().unwrap_or(0) as u64))
            })
            .collect();
        let mut runs = Names::default();
        let (mut wrong, mut twice, mut missing) = (0u64, 0u64, 0usize);
        let mut unreadable: std::collections::BTreeMap<String, String> = Default::default();
        for (lo, hi) in windows(&sized, window_rows) {
            let mut latest: HashMap<Key, (i64, u32)> = HashMap::new();
            for f in history.iter().filter(|f| f.overlaps((lo, hi))) {
                let path = history_dir.join(&f.path);
                let read = within(&path, (lo, hi)).and_then(|reader| {
                    for_each_key_of(reader, &path, |key, at, run| {
                        let newer = latest
                            .get(&key)
                            .is_none_or(|&(a, r)| (at, run) > (a, runs.name(r)));
                        if newer {
                            let run = runs.id(run);
                            latest.insert(key, (at, run));
                        }
                    })
                });
                if let Err(e) = read {
                    problems.push(format!("current state not checked: {e}"));
                    return Ok(problems);
                }
            }
            let mut seen: HashSet<Key> = HashSet::with_capacity(latest.len());
            for f in current_files.iter().filter(|f| f.overlaps((lo, hi))) {
                let path = current_dir.join(&f.path);
                let read = within(&path, (lo, hi)).and_then(|reader| {
                    for_each_key_of(reader, &path, |key, at, run| {
                        if !seen.insert(key) {
                            twice += 1;
                        }
                        if latest
                            .get(&key)
                            .is_none_or(|&(a, r)| (a, runs.name(r)) != (at, run))
                        {
                            wrong += 1;
                        }
                    })
                });
                if let Err(e) = read {
                    // Once per file, not once per window it overlaps.
                    unreadable
                        .entry(f.path.clone())
                        .or_insert_with(|| format!("order_lines/{}: unreadable: {e}", f.path));
                }
            }
            missing += latest.keys().filter(|k| !seen.contains(*k)).count();
        }
        problems.extend(unreadable.into_values());
        if twice > 0 {
            problems.push(format!("order_lines holds {twice} line(s) more than once"));
        }
        if wrong > 0 {
            problems.push(format!(
                "order_lines holds {wrong} line(s) that are not the latest version in orders"
            ));
        }
        if missing > 0 {
            problems.push(format!(
                "order_lines misses the latest version of {missing} line(s) of orders"
            ));
        }
        Ok(problems)
    }
}

/// The keys and versions of the rows of the file at `path` whose `order_id` is in `[lo, hi]`.
fn within(
    path: &std::path::Path,
    (lo, hi): (i64, i64),
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, Error> {
    ParquetFile::open(path)?.reader_within("order_id", lo..=hi, Some(&KEY_COLUMNS))
}

/// Consecutive windows `[lo, hi]` of `order_id` covering every value, each holding about
/// `max_rows` of the rows of `files` (`(min, max, rows)`, rows assumed spread evenly over
/// their range; a denser stretch is cut into equal parts).
fn windows(files: &[(i64, i64, u64)], max_rows: u64) -> Vec<(i64, i64)> {
    // Cut points: each range starts a stretch and ends one (exclusive bounds, as i128).
    let mut cuts: Vec<i128> = files
        .iter()
        .flat_map(|&(lo, hi, _)| [i128::from(lo), i128::from(hi) + 1])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut windows = Vec::new();
    let mut start = i128::from(i64::MIN);
    let mut held = 0u64;
    for stretch in cuts.windows(2) {
        let (a, b) = (stretch[0], stretch[1]);
        let rows: u64 = files
            .iter()
            .filter(|&&(lo, hi, _)| i128::from(lo) < b && i128::from(hi) >= a)
            .map(|&(lo, hi, n)| {
                let span = i128::from(hi) - i128::from(lo) + 1;
                (i128::from(n) * (b - a) / span) as u64
            })
            .sum();
        let parts = rows.div_ceil(max_rows).max(1);
        for k in 0..parts {
            let part_start = a + (b - a) * i128::from(k) / i128::from(parts);
            let part_rows = rows / parts;
            if held > 0 && held + part_rows > max_rows && part_start > start {
                windows.push((start as i64, (part_start - 1) as i64));
                start = part_start;
                held = 0;
            }
            held += part_rows;
        }
    }
    windows.push((start as i64, i64::MAX));
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers_every_value_once(windows: &[(i64, i64)]) {
        assert_eq!(windows.first().unwrap().0, i64::MIN);
        assert_eq!(windows.last().unwrap().1, i64::MAX);
        for pair in windows.windows(2) {
            assert!(pair[0].0 <= pair[0].1);
            assert_eq!(pair[0].1 + 1, pair[1].0);
        }
    }

    #[test]
    fn windows_cover_every_order_id_and_hold_about_the_limit() {
        // Three runs of disjoint id ranges, and a re-delivery over the first.
        let files = [
            (0, 999, 1000),
            (1000, 1999, 1000),
            (2000, 2999, 1000),
            (0, 199, 200),
        ];
        let w = windows(&files, 1000);
        covers_every_value_once(&w);
        // 1200 rows in 0..=999: cut inside it (where the re-delivery ends), then one window
        // per later run.
        assert_eq!(
            w,
            vec![(i64::MIN, 199), (200, 999), (1000, 1999), (2000, i64::MAX)]
        );
        let one = windows(&files, 1 << 20);
        assert_eq!(one, vec![(i64::MIN, i64::MAX)]);
        covers_every_value_once(&windows(&[], 10));
        covers_every_value_once(&windows(&[(i64::MIN, i64::MAX, 100)], 10));
    }

    #[test]
    fn a_dense_range_is_cut_into_windows_of_the_limit() {
        let w = windows(&[(0, 9999, 100_000)], 10_000);
        covers_every_value_once(&w);
        let inside: Vec<&(i64, i64)> = w
            .iter()
            .filter(|(lo, hi)| *lo >= 0 && *hi <= 9999)
            .collect();
        assert!(inside.len() >= 8, "{w:?}");
    }
}
