//! The current lines of the orders a fold touches, grouped by order.
//!
//! Files of `order_lines` keep their input's line order, and inputs list an order's lines
//! together in increasing order ids (as exports and datagen do), so a merge of the files by
//! `order_id` yields each order's lines together while holding one batch per file. When a
//! file is not in order-id order, the lines are collected and sorted instead: the same
//! result, with memory proportional to the lines read.

use std::path::PathBuf;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use super::{Line, Names};
use crate::error::Error;

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

/// Calls `each(before, after)` once per order with a line in `sources`: `before` its current
/// lines before the fold, `after` those after it.
pub(crate) fn stream_orders(
    sources: &[LineSource<'_>],
    names: &mut Names,
    mut each: impl FnMut(&[Line], &[Line]),
) -> Result<(), Error> {
    let mut cursors = Vec::with_capacity(sources.len());
    for s in sources {
        cursors.push(Cursor::open(s, names)?);
    }
    let (mut before, mut after) = (Vec::new(), Vec::new());
    loop {
        let mut min = None::<i64>;
        for c in cursors.iter_mut() {
            if let Some(order) = c.peek(names)? {
                min = Some(min.map_or(order, |m: i64| m.min(order)));
            }
        }
        let Some(order) = min else { break };
        before.clear();
        after.clear();
        for c in cursors.iter_mut() {
            while c.peek(names)? == Some(order) {
                let (line, side) = c.take();
                if side != Side::After {
                    before.push(line);
                }
                if side != Side::Before {
                    after.push(line);
                }
            }
        }
        each(&before, &after);
    }
    Ok(())
}

/// Like [`stream_orders`] for files in any line order: every line is held and sorted.
pub(crate) fn stream_orders_unsorted(
    sources: &[LineSource<'_>],
    names: &mut Names,
    mut each: impl FnMut(&[Line], &[Line]),
) -> Result<(), Error> {
    let mut all: Vec<(Line, Side)> = Vec::new();
    for s in sources {
        let mut c = Cursor::open(s, names)?;
        c.check_order = false;
        while c.peek(names)?.is_some() {
            all.push(c.take());
        }
    }
    all.sort_by_key(|(l, _)| l.order);
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for group in all.chunk_by(|a, b| a.0.order == b.0.order) {
        before.clear();
        after.clear();
        for (line, side) in group {
            if *side != Side::After {
                before.push(*line);
            }
            if *side != Side::Before {
                after.push(*line);
            }
        }
        each(&before, &after);
    }
    Ok(())
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
    fn open(source: &'a LineSource<'a>, names: &mut Names) -> Result<Self, Error> {
        let reader = crate::fold::open_columns(&source.path, &COLUMNS)?;
        Ok(Cursor {
            source,
            reader,
            day: names.id(&source.day),
            buffer: Vec::new(),
            at: 0,
            row: 0,
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

    fn take(&mut self) -> (Line, Side) {
        let item = self.buffer[self.at];
        self.at += 1;
        item
    }

    fn decode(&mut self, batch: &RecordBatch, names: &mut Names) -> Result<(), Error> {
        let path = &self.source.path;
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
        let base = self.row;
        self.row += batch.num_rows();
        for i in 0..batch.num_rows() {
            let order = orders.value(i);
            if self.check_order && order < self.last_order {
                return Err(Error::Invalid(format!("{}: {UNSORTED}", path.display())));
            }
            self.last_order = order;
            let Some(side) = (self.source.sides)(base + i, (order, products.value(i))) else {
                continue;
            };
            let line = Line {
                order,
                client: clients.value(i),
                product: products.value(i),
                status: statuses[i],
                channel: channels[i],
                day: self.day,
                units: units.value(i),
                sales: sales.value(i),
                volume: volumes.value(i),
            };
            self.buffer.push((line, side));
        }
        Ok(())
    }
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
