//! The current lines of the orders a fold touches, grouped by order.
//!
//! Files of `order_lines` keep their input's line order, and inputs list an order's lines
//! together in increasing order ids (as exports and datagen do); a file `duff lake optimize`
//! clustered by client holds one client range per row group, each in order-id order. So a
//! file is one or more *sequences* of row groups in order-id order, told apart by the row
//! groups' statistics, and a merge of all sequences by `order_id` yields each order's lines
//! together while holding one batch per sequence. A sequence that turns out not to be in
//! order-id order (an input listed out of order) is sorted in memory before the merge
//! ([`unsorted_sequences`]): memory follows that sequence's lines, not every line read.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use super::measures::{Line, Names};
use crate::error::Error;
use crate::parquet_io::ParquetFile;

/// Which state of the current state a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Current before the fold, superseded by it.
    Before,
    /// Current before and after.
    Both,
    /// Joins with the fold.
    After,
}

/// Which side a row is on, from its index in the file and its key; `None` skips the row.
pub(crate) type Sides<'a> = Box<dyn Fn(usize, (i64, i64)) -> Option<Side> + 'a>;

/// A Parquet file of order lines (the `orders` schema) and the side of each of its rows.
pub(crate) struct LineSource<'a> {
    pub path: PathBuf,
    /// The file's `pa_date` partition value.
    pub day: String,
    pub sides: Sides<'a>,
}

const COLUMNS: [&str; 8] = [
    "order_id",
    "client_id",
    "product_id",
    "status",
    "point_of_sale_channel",
    "product_ccf",
    "total_price",
    "total_volume",
];

/// Sequences to sort in memory before the merge: `(index in sources, index of the sequence)`.
pub(crate) type Presorted = HashSet<(usize, usize)>;

/// Calls `each(before, after)` once per order with a line in `sources`, in order-id order:
/// `before` its current lines before the fold, `after` those after it. Fails with
/// [`UNSORTED`] when a sequence not in `presorted` is not in order-id order.
pub(crate) fn stream_orders(
    sources: &[LineSource<'_>],
    names: &mut Names,
    presorted: &Presorted,
    mut each: impl FnMut(&[Line], &[Line]),
) -> Result<(), Error> {
    let mut cursors = Vec::with_capacity(sources.len());
    for (s, source) in sources.iter().enumerate() {
        let file = ParquetFile::open(&source.path)?;
        for (q, (groups, first_row)) in sequences(&file).into_iter().enumerate() {
            let mut cursor = Cursor::open(source, &file, Some(groups), first_row, names)?;
            if presorted.contains(&(s, q)) {
                cursor.presort(names)?;
            }
            cursors.push(cursor);
        }
    }
    // The next order id of each cursor, smallest first (ties: the cursor listed first).
    let mut next: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::with_capacity(cursors.len());
    for (i, c) in cursors.iter_mut().enumerate() {
        if let Some(order) = c.peek(names)? {
            next.push(Reverse((order, i)));
        }
    }
    let (mut before, mut after) = (Vec::new(), Vec::new());
    while let Some(&Reverse((order, _))) = next.peek() {
        before.clear();
        after.clear();
        while let Some(&Reverse((o, i))) = next.peek()
            && o == order
        {
            next.pop();
            let c = &mut cursors[i];
            while c.peek(names)? == Some(order) {
                let (line, side) = c.take();
                if side != Side::After {
                    before.push(line);
                }
                if side != Side::Before {
                    after.push(line);
                }
            }
            if let Some(o) = c.peek(names)? {
                next.push(Reverse((o, i)));
            }
        }
        each(&before, &after);
    }
    Ok(())
}

/// The file's row groups as sequences that follow one another in order-id order by their
/// statistics, each with the index of its first row in the file. A file in input order is one
/// sequence; a clustered file has one per row group.
fn sequences(file: &ParquetFile) -> Vec<(Vec<usize>, usize)> {
    let rows = file.row_group_rows();
    let ranges = file.int64_ranges("order_id");
    let mut sequences: Vec<(Vec<usize>, usize)> = Vec::new();
    let mut first_row = 0;
    let mut last_max: Option<i64> = None;
    for (group, range) in ranges.iter().enumerate() {
        // Without statistics, a row group continues the sequence; the cursor checks the order.
        let follows = match (last_max, range) {
            (Some(max), Some((min, _))) => *min >= max,
            _ => true,
        };
        match sequences.last_mut() {
            Some((groups, _)) if follows => groups.push(group),
            _ => sequences.push((vec![group], first_row)),
        }
        if let Some((_, max)) = range {
            last_max = Some(last_max.map_or(*max, |m| m.max(*max)));
            if !follows {
                last_max = Some(*max);
            }
        }
        first_row += rows[group];
    }
    sequences
}

/// The sequences of `sources` whose lines are not in order-id order, found by reading their
/// order ids alone.
pub(crate) fn unsorted_sequences(sources: &[LineSource<'_>]) -> Result<Presorted, Error> {
    let mut unsorted = Presorted::new();
    for (s, source) in sources.iter().enumerate() {
        let file = ParquetFile::open(&source.path)?;
        for (q, (groups, _)) in sequences(&file).into_iter().enumerate() {
            let mut last = i64::MIN;
            'batches: for batch in file.reader(Some(&["order_id"]), Some(groups))? {
                let batch =
                    batch.map_err(|e| Error::Invalid(format!("{}: {e}", source.path.display())))?;
                for &order in batch.column(0).as_primitive::<Int64Type>().values() {
                    if order < last {
                        unsorted.insert((s, q));
                        break 'batches;
                    }
                    last = order;
                }
            }
        }
    }
    Ok(unsorted)
}

/// A file's lines in file order, one batch at a time.
struct Cursor<'a> {
    source: &'a LineSource<'a>,
    reader: ParquetRecordBatchReader,
    day: u32,
    buffer: Vec<(Line, Side)>,
    at: usize,
    /// Rows of the file decoded so far.
    row: usize,
    last_order: i64,
    check_order: bool,
}

/// Raised when a file is not in order-id order; the caller falls back to sorting.
pub(crate) const UNSORTED: &str = "not in order-id order";

impl<'a> Cursor<'a> {
    /// The lines of `row_groups` (all when `None`) of `file`, whose first row is `first_row`.
    fn open(
        source: &'a LineSource<'a>,
        file: &ParquetFile,
        row_groups: Option<Vec<usize>>,
        first_row: usize,
        names: &mut Names,
    ) -> Result<Self, Error> {
        let reader = file.reader(Some(&COLUMNS), row_groups)?;
        Ok(Cursor {
            source,
            reader,
            day: names.id(&source.day),
            buffer: Vec::new(),
            at: 0,
            row: first_row,
            last_order: i64::MIN,
            check_order: true,
        })
    }

    /// The order id of the next line, reading a batch when needed; `None` at the end.
    fn peek(&mut self, names: &mut Names) -> Result<Option<i64>, Error> {
        while self.at == self.buffer.len() {
            self.buffer.clear();
            self.at = 0;
            let Some(batch) = self.reader.next() else {
                return Ok(None);
            };
            let batch = batch
                .map_err(|e| Error::Invalid(format!("{}: {e}", self.source.path.display())))?;
            self.decode(&batch, names)?;
        }
        Ok(Some(self.buffer[self.at].0.order))
    }

    /// Reads every line of the sequence and sorts them by order id (stable: an order's lines
    /// keep their file order).
    fn presort(&mut self, names: &mut Names) -> Result<(), Error> {
        self.check_order = false;
        let mut all = Vec::new();
        while self.peek(names)?.is_some() {
            all.push(self.take());
        }
        all.sort_by_key(|(line, _)| line.order);
        self.buffer = all;
        self.at = 0;
        Ok(())
    }

    fn take(&mut self) -> (Line, Side) {
        let item = self.buffer[self.at];
        self.at += 1;
        item
    }

    fn decode(&mut self, batch: &RecordBatch, names: &mut Names) -> Result<(), Error> {
        let path = &self.source.path;
        let base = self.row;
        self.row += batch.num_rows();
        self.buffer.reserve(batch.num_rows());
        let (sides, buffer) = (&self.source.sides, &mut self.buffer);
        let (check_order, last_order) = (self.check_order, &mut self.last_order);
        decode_lines(batch, self.day, names, path, |i, line| {
            if check_order && line.order < *last_order {
                return Err(Error::Invalid(format!("{}: {UNSORTED}", path.display())));
            }
            *last_order = line.order;
            if let Some(side) = sides(base + i, (line.order, line.product)) {
                buffer.push((line, side));
            }
            Ok(())
        })
    }
}

/// Calls `each(row, line)` for every row of `batch` (columns of the `orders` schema) in
/// order, its day `day`; `path` names the rows' file in errors.
pub(super) fn decode_lines(
    batch: &RecordBatch,
    day: u32,
    names: &mut Names,
    path: &Path,
    mut each: impl FnMut(usize, Line) -> Result<(), Error>,
) -> Result<(), Error> {
    let column = |name: &str| -> Result<&ArrayRef, Error> {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::Invalid(format!("{}: no column {name}", path.display())))
    };
    let orders = column("order_id")?.as_primitive::<Int64Type>();
    let clients = column("client_id")?.as_primitive::<Int64Type>();
    let products = column("product_id")?.as_primitive::<Int64Type>();
    let units = column("product_ccf")?.as_primitive::<Int64Type>();
    let sales = column("total_price")?.as_primitive::<Decimal128Type>();
    let volumes = column("total_volume")?.as_primitive::<Decimal128Type>();
    let statuses = interned(column("status")?, names)?;
    let channels = interned(column("point_of_sale_channel")?, names)?;
    // DECIMAL(18,4) values fit 64 bits; a wider one is not a line of this lake.
    let narrow = |value: i128, column: &str| {
        i64::try_from(value).map_err(|_| {
            Error::Invalid(format!(
                "{}: {column} {value} is wider than DECIMAL(18,4)",
                path.display()
            ))
        })
    };
    for i in 0..batch.num_rows() {
        each(
            i,
            Line {
                order: orders.value(i),
                client: clients.value(i),
                product: products.value(i),
                status: statuses[i],
                channel: channels[i],
                day,
                units: units.value(i),
                sales: narrow(sales.value(i), "total_price")?,
                volume: narrow(volumes.value(i), "total_volume")?,
            },
        )?;
    }
    Ok(())
}

/// The interned id of every row of a string column (dictionary-encoded or plain).
fn interned(array: &ArrayRef, names: &mut Names) -> Result<Vec<u32>, Error> {
    if let DataType::Dictionary(key, value) = array.data_type()
        && **key == DataType::Int32
        && **value == DataType::Utf8
    {
        // The engine's encoding: intern each distinct value once.
        let dict = array.as_dictionary::<Int32Type>();
        let values = dict.values().as_string::<i32>();
        let ids: Vec<u32> = (0..values.len())
            .map(|i| names.id(values.value(i)))
            .collect();
        return Ok(dict
            .keys()
            .values()
            .iter()
            .map(|k| ids[*k as usize])
            .collect());
    }
    let strings = arrow::compute::cast(array, &DataType::Utf8)
        .map_err(|e| Error::Invalid(format!("a string column: {e}")))?;
    let strings = strings.as_string::<i32>();
    Ok((0..strings.len())
        .map(|i| names.id(strings.value(i)))
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow::array::{Decimal128Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// The columns the marts read, in plain Arrow types.
    pub(crate) fn line_schema() -> Arc<Schema> {
        let int = |name: &str| Field::new(name, DataType::Int64, false);
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let money = |name: &str| Field::new(name, DataType::Decimal128(38, 4), false);
        Arc::new(Schema::new(vec![
            int("order_id"),
            int("client_id"),
            int("product_id"),
            text("status"),
            text("point_of_sale_channel"),
            int("product_ccf"),
            money("total_price"),
            money("total_volume"),
        ]))
    }

    /// A file of the given row groups, each a list of `(order_id, client_id)`.
    fn file_of(path: &std::path::Path, groups: &[&[(i64, i64)]]) {
        priced_file(path, groups, |_| 10_000);
    }

    /// [`file_of`], with each row group's `total_price` from its row index.
    fn priced_file(
        path: &std::path::Path,
        groups: &[&[(i64, i64)]],
        price: impl Fn(usize) -> i128,
    ) {
        let schema = line_schema();
        let properties = WriterProperties::builder().build();
        let file = std::fs::File::create(path).unwrap();
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties)).unwrap();
        for rows in groups {
            let n = rows.len();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                    Arc::new(Int64Array::from_iter_values(0..n as i64)),
                    Arc::new(StringArray::from(vec!["open"; n])),
                    Arc::new(StringArray::from(vec!["Retail"; n])),
                    Arc::new(Int64Array::from(vec![1; n])),
                    Arc::new(
                        Decimal128Array::from_iter_values((0..n).map(&price))
                            .with_precision_and_scale(38, 4)
                            .unwrap(),
                    ),
                    Arc::new(
                        Decimal128Array::from(vec![10_000; n])
                            .with_precision_and_scale(38, 4)
                            .unwrap(),
                    ),
                ],
            )
            .unwrap();
            writer.write(&batch).unwrap();
            writer.flush().unwrap();
        }
        writer.close().unwrap();
    }

    #[test]
    fn a_sequence_out_of_order_is_found_and_sorted_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (sorted, shuffled) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        file_of(&sorted, &[&[(1, 10), (4, 10)]]);
        file_of(&shuffled, &[&[(3, 20), (1, 21), (2, 20), (1, 22)]]);
        let source = |path: &std::path::Path| LineSource {
            path: path.to_path_buf(),
            day: "2026-11-23".into(),
            sides: Box::new(|_, _| Some(Side::After)),
        };
        let sources = [source(&sorted), source(&shuffled)];
        let mut names = Names::default();
        let unsorted = stream_orders(&sources, &mut names, &Presorted::new(), |_, _| {});
        assert!(
            matches!(&unsorted, Err(Error::Invalid(m)) if m.ends_with(UNSORTED)),
            "{unsorted:?}"
        );
        let presorted = unsorted_sequences(&sources).unwrap();
        assert_eq!(presorted, Presorted::from([(1, 0)]));
        let mut seen: Vec<(i64, Vec<i64>)> = Vec::new();
        stream_orders(&sources, &mut names, &presorted, |_, after| {
            seen.push((after[0].order, after.iter().map(|l| l.client).collect()));
        })
        .unwrap();
        // Order 1's lines: the sorted file's first, then the shuffled file's in file order.
        assert_eq!(
            seen,
            vec![
                (1, vec![10, 21, 22]),
                (2, vec![20]),
                (3, vec![20]),
                (4, vec![10]),
            ]
        );
    }

    #[test]
    fn a_clustered_file_is_merged_as_sequences_of_row_groups_in_order_id_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clustered.parquet");
        // Two client ranges, each in order-id order; order 3 has a line in each, and the
        // second range's last two row groups follow one another.
        file_of(
            &path,
            &[
                &[(1, 10), (2, 10), (3, 11)],
                &[(1, 20), (3, 20)],
                &[(4, 21), (9, 21)],
            ],
        );
        let file = ParquetFile::open(&path).unwrap();
        assert_eq!(sequences(&file), vec![(vec![0], 0), (vec![1, 2], 3)]);

        let source = LineSource {
            path: path.clone(),
            day: "2026-11-23".into(),
            sides: Box::new(|_, _| Some(Side::After)),
        };
        let mut seen: Vec<(i64, Vec<i64>)> = Vec::new();
        stream_orders(
            &[source],
            &mut Names::default(),
            &Presorted::new(),
            |before, after| {
                assert!(before.is_empty());
                seen.push((after[0].order, after.iter().map(|l| l.client).collect()));
            },
        )
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (1, vec![10, 20]),
                (2, vec![10]),
                (3, vec![11, 20]),
                (4, vec![21]),
                (9, vec![21]),
            ]
        );
    }

    #[test]
    fn a_line_wider_than_the_lake_fails_the_marts_mid_stream_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.parquet");
        // Past the first batches handed to the marts: the failure comes while they are added.
        let rows: Vec<(i64, i64)> = (0..100_000).map(|i| (i, i % 10)).collect();
        priced_file(&path, &[&rows], |i| {
            if i == 99_999 { 10_i128.pow(20) } else { 10_000 }
        });
        let source = LineSource {
            path: path.clone(),
            day: "2026-11-23".into(),
            sides: Box::new(|_, _| Some(Side::After)),
        };
        let mut marts = super::super::sums::Marts::default();
        let failed = marts.apply_sources(&[source], &mut Names::default());
        assert!(
            matches!(&failed, Err(Error::Invalid(m))
                if m.contains("wide.parquet") && m.contains("wider than DECIMAL(18,4)")),
            "{failed:?}"
        );
    }
}
