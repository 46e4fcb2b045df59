//! Where the rows of orders and fact_orders are cut: into slices of `batch_rows` rows, each
//! written to a column in one call, and into row groups. One [`Cutter`] decides for all the
//! columns, from the rows alone, so every column closes its row groups after the same rows
//! and the files never depend on how the rows arrived (windows, ranges, threads).

use arrow::array::RecordBatch;

use crate::writer::options::ParquetOptions;

/// What every column does with a window's rows: decided once, by the [`Cutter`], for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Rows `offset..offset + len` of batch `batch` join the slice being gathered.
    Piece {
        batch: usize,
        offset: usize,
        len: usize,
    },
    /// A row group starts: the column takes its next writer.
    Open,
    /// The gathered slice (`batch_rows` rows, fewer only at the end) is written.
    Write,
    /// The row group is complete.
    Close,
}

/// Cuts the rows, as they come, into slices of `batch_rows` and row groups.
#[derive(Debug)]
pub(super) struct Cutter {
    batch_rows: usize,
    /// `row_group_rows` rounded up to whole slices.
    group_rows: usize,
    group_bytes: usize,
    pending_rows: usize,
    rows_in_group: usize,
    bytes_in_group: usize,
    open: bool,
}

impl Cutter {
    pub(super) fn new(options: &ParquetOptions) -> Cutter {
        let batch_rows = options.batch_rows;
        Cutter {
            batch_rows,
            group_rows: options.row_group_rows.div_ceil(batch_rows).max(1) * batch_rows,
            group_bytes: options.row_group_bytes,
            pending_rows: 0,
            rows_in_group: 0,
            bytes_in_group: 0,
            open: false,
        }
    }

    /// The steps for the rows of `batches` (orders batches), after those of earlier calls.
    pub(super) fn cut(&mut self, batches: &[(RecordBatch, RecordBatch)]) -> Vec<Step> {
        let mut steps = Vec::new();
        for (batch, (orders, _)) in batches.iter().enumerate() {
            let n = orders.num_rows();
            let mut offset = 0;
            while offset < n {
                let len = (self.batch_rows - self.pending_rows).min(n - offset);
                steps.push(Step::Piece { batch, offset, len });
                self.bytes_in_group += data_bytes(orders, offset, len);
                offset += len;
                self.pending_rows += len;
                if self.pending_rows < self.batch_rows {
                    continue;
                }
                self.write(&mut steps);
                if self.rows_in_group == self.group_rows || self.bytes_in_group >= self.group_bytes
                {
                    self.close(&mut steps);
                }
            }
        }
        steps
    }

    /// The steps after the last rows: the last slice and row group.
    pub(super) fn end(&mut self) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.pending_rows > 0 {
            self.write(&mut steps);
        }
        if self.open {
            self.close(&mut steps);
        }
        steps
    }

    fn write(&mut self, steps: &mut Vec<Step>) {
        if !self.open {
            steps.push(Step::Open);
            self.open = true;
        }
        steps.push(Step::Write);
        self.rows_in_group += self.pending_rows;
        self.pending_rows = 0;
    }

    fn close(&mut self, steps: &mut Vec<Step>) {
        steps.push(Step::Close);
        self.open = false;
        self.rows_in_group = 0;
        self.bytes_in_group = 0;
    }
}

/// Bytes of data in rows `offset..offset + len` of an orders batch, before encoding: computed
/// from the values alone, so where row groups close depends on the rows only.
fn data_bytes(batch: &RecordBatch, offset: usize, len: usize) -> usize {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;
    batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8 => {
                let offsets = c.as_string::<i32>().value_offsets();
                (offsets[offset + len] - offsets[offset]) as usize + 4 * len
            }
            DataType::Dictionary(key, _) => key.primitive_width().unwrap_or(4) * len,
            other => other.primitive_width().unwrap_or(8) * len,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use proptest::prelude::*;

    use super::*;

    /// Rows with strings of the given lengths, and an id column.
    fn rows(lengths: &[usize]) -> RecordBatch {
        let names: StringArray = lengths.iter().map(|&n| Some("x".repeat(n))).collect();
        let ids = Int64Array::from_iter_values(0..lengths.len() as i64);
        RecordBatch::try_from_iter([
            ("name", Arc::new(names) as ArrayRef),
            ("id", Arc::new(ids) as ArrayRef),
        ])
        .unwrap()
    }

    /// What the steps do, whatever the batches: slices as global row ranges, opens and closes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Event {
        Open,
        Write(usize, usize),
        Close,
    }

    /// Cuts `all` delivered in windows of batches (`splits`: rows per batch, per window).
    fn events(all: &RecordBatch, windows: &[Vec<usize>], options: &ParquetOptions) -> Vec<Event> {
        let mut cutter = Cutter::new(options);
        let mut events = Vec::new();
        let (mut at, mut slice_start, mut slice_end) = (0, 0, 0);
        let mut apply = |steps: Vec<Step>, starts: &[usize], events: &mut Vec<Event>| {
            for step in steps {
                match step {
                    Step::Piece { batch, offset, len } => {
                        let start = starts[batch] + offset;
                        assert_eq!(start, slice_end, "pieces follow each other");
                        slice_end = start + len;
                    }
                    Step::Open => events.push(Event::Open),
                    Step::Write => {
                        events.push(Event::Write(slice_start, slice_end));
                        slice_start = slice_end;
                    }
                    Step::Close => events.push(Event::Close),
                }
            }
        };
        for window in windows {
            let mut batches = Vec::new();
            let mut starts = Vec::new();
            for &n in window {
                let batch = all.slice(at, n);
                starts.push(at);
                at += n;
                batches.push((batch.clone(), batch));
            }
            let steps = cutter.cut(&batches);
            apply(steps, &starts, &mut events);
        }
        apply(cutter.end(), &[], &mut events);
        events
    }

    fn options(batch_rows: usize, row_group_rows: usize, row_group_bytes: usize) -> ParquetOptions {
        ParquetOptions {
            batch_rows,
            row_group_rows,
            row_group_bytes,
            ..ParquetOptions::default()
        }
    }

    #[test]
    fn slices_are_whole_batches_and_groups_close_at_rows_or_bytes() {
        // 10 rows of 1 + 4 + 8 = 13 data bytes each.
        let all = rows(&[1; 10]);
        let by_rows = events(&all, &[vec![3, 4], vec![3]], &options(2, 3, 1 << 20));
        use Event::*;
        // 3 rows round up to 2 whole slices: groups of 4 rows.
        assert_eq!(
            by_rows,
            [
                Open,
                Write(0, 2),
                Write(2, 4),
                Close,
                Open,
                Write(4, 6),
                Write(6, 8),
                Close,
                Open,
                Write(8, 10),
                Close,
            ]
        );
        // 26 bytes: a group closes after the first slice that reaches them.
        let by_bytes = events(&all, &[vec![10]], &options(2, 100, 26));
        assert_eq!(
            by_bytes,
            [
                Open,
                Write(0, 2),
                Close,
                Open,
                Write(2, 4),
                Close,
                Open,
                Write(4, 6),
                Close,
                Open,
                Write(6, 8),
                Close,
                Open,
                Write(8, 10),
                Close,
            ]
        );
        // The last slice may be short; no rows, no group.
        let short = events(&rows(&[1; 5]), &[vec![5]], &options(2, 100, 1 << 20));
        assert_eq!(short, [Open, Write(0, 2), Write(2, 4), Write(4, 5), Close]);
        assert_eq!(events(&rows(&[]), &[vec![0]], &options(2, 3, 100)), []);
    }

    proptest! {
        /// However the rows arrive — windows of batches of any sizes — the slices and row groups
        /// are the same as when they come in one batch.
        #[test]
        fn cuts_do_not_depend_on_how_rows_arrive(
            lengths in proptest::collection::vec(0usize..40, 0..300),
            cuts in proptest::collection::vec((0usize..300, any::<bool>()), 0..20),
            batch_rows in 1usize..20,
            row_group_rows in 1usize..60,
            row_group_bytes in 1usize..2000,
        ) {
            let all = rows(&lengths);
            let n = lengths.len();
            let options = options(batch_rows, row_group_rows, row_group_bytes);
            let whole = events(&all, &[vec![n]], &options);
            // Batch boundaries at the cut points; a `true` also ends the window there.
            let mut points: Vec<(usize, bool)> = cuts.iter().map(|&(at, w)| (at.min(n), w)).collect();
            points.sort();
            let mut windows = vec![Vec::new()];
            let mut last = 0;
            for (at, ends_window) in points.into_iter().chain([(n, false)]) {
                windows.last_mut().unwrap().push(at - last);
                last = at;
                if ends_window {
                    windows.push(Vec::new());
                }
            }
            prop_assert_eq!(events(&all, &windows, &options), whole);
        }
    }
}
