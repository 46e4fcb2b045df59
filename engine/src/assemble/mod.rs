//! Turning a parsed range and its dedup verdicts into Arrow batches for every table.

pub(crate) mod members;

use std::sync::Arc;

use crate::dedup::Verdict;
use crate::error::Error;
use crate::parse::bytes::short_eq;
use crate::parse::number::{PRECISION, SCALE};
use crate::parse::range::{ChunkRows, StrCol, ValidRows};
use crate::parse::reason::Reason;
use crate::parse::rules::STATUSES;
use crate::schema::{
    DIM_CHANNELS, DIM_CLIENTS, DIM_PRODUCTS, DIM_STATUS, FACT_ORDERS, ORDERS, QUARANTINE,
};
use arrow::array::{
    ArrayRef, BinaryArray, Decimal128Array, DictionaryArray, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::Int32Type;
use members::{Members, RangeMembers};

/// Values shared by every row of a run.
pub(crate) struct RunConstants {
    pub source_file: String,
    pub run_id: String,
    pub ingested_at_ms: i64,
    /// Canonical channel names and ids, by position.
    pub channel_names: Vec<String>,
    pub channel_ids: Vec<i32>,
}

/// A quarantined row with its absolute line.
pub(crate) struct QuarantineRow {
    pub line: u64,
    pub reason: Reason,
    pub detail: String,
    pub raw: Vec<u8>,
    pub kept_line: Option<u64>,
}

/// What one range contributes to the run.
pub(crate) struct Assembled {
    pub orders: RecordBatch,
    pub fact: RecordBatch,
    pub quarantine: Vec<QuarantineRow>,
    pub records: u64,
    pub blank_lines: u64,
    pub exact_duplicates: u64,
    /// Clients and products at their last occurrence among the kept rows of the range.
    pub clients: RangeMembers<String>,
    pub products: RangeMembers<ProductInfo>,
}

/// The dimensions' members known before a window.
pub(crate) struct Dimensions {
    pub clients: Members<String>,
    pub products: Members<ProductInfo>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProductInfo {
    pub description: String,
    pub price: i64,
    pub volume: i64,
}

fn decimal(values: &[i64]) -> ArrayRef {
    let wide: Vec<i128> = values.iter().map(|&v| v as i128).collect();
    Arc::new(
        Decimal128Array::from(wide)
            .with_precision_and_scale(PRECISION, SCALE as i8)
            .expect("valid precision"),
    )
}

fn strings(col: StrCol) -> Result<ArrayRef, Error> {
    let offsets = OffsetBuffer::new(ScalarBuffer::from(col.offsets));
    Ok(Arc::new(StringArray::try_new(
        offsets,
        col.values.into(),
        None,
    )?))
}

/// A dictionary column: `keys[i]` indexes `values`.
fn dictionary(keys: Vec<i32>, values: &[&str]) -> Result<ArrayRef, Error> {
    let values: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
        Int32Array::from(keys),
        values,
    )?))
}

fn constant(value: &str, n: usize) -> Result<ArrayRef, Error> {
    dictionary(vec![0; n], &[value])
}

fn timestamps(ms: i64, n: usize) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(vec![ms; n]).with_timezone("+00:00"))
}

/// Row `i` of a string column.
fn bytes(c: &StrCol, i: usize) -> &[u8] {
    &c.values[c.offsets[i] as usize..c.offsets[i + 1] as usize]
}

/// Keeps the rows marked in `keep`, in place: the columns are still plain vectors here, so
/// dropping rows before they become Arrow arrays saves filtering (copying) both tables' batches.
fn compact(v: &mut ValidRows, keep: &[bool]) {
    retain(&mut v.client_id, keep);
    retain(&mut v.order_id, keep);
    retain(&mut v.product_id, keep);
    retain(&mut v.ccf, keep);
    retain(&mut v.price, keep);
    retain(&mut v.volume, keep);
    retain(&mut v.total_price, keep);
    retain(&mut v.total_volume, keep);
    retain(&mut v.channel, keep);
    retain(&mut v.status, keep);
    retain(&mut v.line_rel, keep);
    retain_strings(&mut v.client_name, keep);
    retain_strings(&mut v.description, keep);
}

/// Keeps `col[i]` where `keep[i]`.
fn retain<T: Copy>(col: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    col.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// Keeps row `i` of a string column where `keep[i]`.
fn retain_strings(col: &mut StrCol, keep: &[bool]) {
    // A run of kept rows moves in one copy: a copy per row cost a call per row.
    let (mut rows, mut end, mut i) = (0, 0, 0);
    while i < keep.len() {
        if !keep[i] {
            i += 1;
            continue;
        }
        let first = i;
        while i < keep.len() && keep[i] {
            i += 1;
        }
        // Offsets at or after `first` are not rewritten yet: `rows <= first`.
        let (from, to) = (col.offsets[first] as usize, col.offsets[i] as usize);
        col.values.copy_within(from..to, end);
        let shift = (from - end) as i32;
        for r in first..i {
            rows += 1;
            col.offsets[rows] = col.offsets[r + 1] - shift;
        }
        end += to - from;
    }
    col.values.truncate(end);
    col.offsets.truncate(rows + 1);
}

/// Builds the batches of one range. `first_line` is the absolute line of the range's start;
/// `drops` are the rows dedup did not keep, in row order.
pub(crate) fn assemble(
    chunk: ChunkRows,
    drops: Vec<(u32, Verdict)>,
    first_line: u64,
    buf: &[u8],
    k: &RunConstants,
    known: &Dimensions,
) -> Result<Assembled, Error> {
    let mut v = chunk.valid;
    let mut quarantine: Vec<QuarantineRow> = chunk
        .bad
        .into_iter()
        .map(|b| QuarantineRow {
            line: first_line + b.line_rel,
            reason: b.reason,
            detail: b.detail,
            raw: b.raw,
            kept_line: None,
        })
        .collect();
    let mut keep = vec![true; v.len()];
    let mut exact_duplicates = 0;
    for &(row, verdict) in &drops {
        let i = row as usize;
        keep[i] = false;
        match verdict {
            Verdict::Duplicate => exact_duplicates += 1,
            Verdict::Conflict { kept_line } => {
                let (at, len) = v.raw[i];
                quarantine.push(QuarantineRow {
                    line: first_line + v.line_rel[i],
                    reason: Reason::KeyConflict,
                    detail: format!(
                        "order_id {} product_id {} was first seen on line {kept_line} with different values",
                        v.order_id[i], v.product_id[i]
                    ),
                    raw: buf[at..at + len as usize].to_vec(),
                    kept_line: Some(kept_line),
                });
            }
        }
    }
    quarantine.sort_by_key(|q| q.line);
    if !drops.is_empty() {
        compact(&mut v, &keep);
    }
    let n = v.len();

    let text = |c: &StrCol, i: usize| String::from_utf8_lossy(bytes(c, i)).into_owned();
    let clients = known.clients.of_range(
        &v.client_id,
        |i, name| short_eq(name.as_bytes(), bytes(&v.client_name, i)),
        |i| text(&v.client_name, i),
    );
    let products = known.products.of_range(
        &v.product_id,
        |i, p| {
            p.price == v.price[i]
                && p.volume == v.volume[i]
                && short_eq(p.description.as_bytes(), bytes(&v.description, i))
        },
        |i| ProductInfo {
            description: text(&v.description, i),
            price: v.price[i],
            volume: v.volume[i],
        },
    );

    let lines: Vec<i64> = v
        .line_rel
        .iter()
        .map(|&l| (first_line + l) as i64)
        .collect();
    let channel_keys: Vec<i32> = v.channel.iter().map(|&c| c as i32).collect();
    let status_keys: Vec<i32> = v.status.iter().map(|&s| s as i32).collect();
    let channel_names: Vec<&str> = k.channel_names.iter().map(String::as_str).collect();
    let status_names: Vec<&str> = STATUSES.iter().map(|s| s.1).collect();
    let channel_ids: Vec<i32> = v
        .channel
        .iter()
        .map(|&c| k.channel_ids[c as usize])
        .collect();
    let status_ids: Vec<i32> = v.status.iter().map(|&s| STATUSES[s as usize].0).collect();

    let client_id: ArrayRef = Arc::new(Int64Array::from(v.client_id));
    let order_id: ArrayRef = Arc::new(Int64Array::from(v.order_id));
    let product_id: ArrayRef = Arc::new(Int64Array::from(v.product_id));
    let ccf: ArrayRef = Arc::new(Int64Array::from(v.ccf));
    let price = decimal(&v.price);
    let volume = decimal(&v.volume);
    let total_price = decimal(&v.total_price);
    let total_volume = decimal(&v.total_volume);
    let source_file = constant(&k.source_file, n)?;
    let source_line: ArrayRef = Arc::new(Int64Array::from(lines));
    let ingested_at = timestamps(k.ingested_at_ms, n);
    let run_id = constant(&k.run_id, n)?;

    let orders = RecordBatch::try_new(
        ORDERS.arrow_schema(),
        vec![
            client_id.clone(),
            strings(v.client_name)?,
            order_id.clone(),
            product_id.clone(),
            strings(v.description)?,
            price.clone(),
            ccf.clone(),
            volume,
            dictionary(channel_keys, &channel_names)?,
            dictionary(status_keys, &status_names)?,
            total_price.clone(),
            total_volume.clone(),
            source_file.clone(),
            source_line.clone(),
            ingested_at.clone(),
            run_id.clone(),
        ],
    )?;
    let fact = RecordBatch::try_new(
        FACT_ORDERS.arrow_schema(),
        vec![
            order_id,
            product_id,
            client_id,
            Arc::new(Int32Array::from(status_ids)),
            Arc::new(Int32Array::from(channel_ids)),
            ccf,
            price,
            total_price,
            total_volume,
            source_file,
            source_line,
            ingested_at,
            run_id,
        ],
    )?;
    Ok(Assembled {
        orders,
        fact,
        quarantine,
        records: chunk.records,
        blank_lines: chunk.blank_lines,
        exact_duplicates,
        clients,
        products,
    })
}

/// The quarantine batch of a list of rows (in line order).
pub(crate) fn quarantine_batch(
    rows: &[QuarantineRow],
    k: &RunConstants,
) -> Result<RecordBatch, Error> {
    let n = rows.len();
    let reasons: Vec<&str> = crate::parse::reason::Reason::ALL
        .iter()
        .map(|r| r.code())
        .collect();
    let reason_keys: Vec<i32> = rows
        .iter()
        .map(|r| Reason::ALL.iter().position(|x| *x == r.reason).unwrap() as i32)
        .collect();
    Ok(RecordBatch::try_new(
        QUARANTINE.arrow_schema(),
        vec![
            constant(&k.source_file, n)?,
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.line as i64),
            )),
            dictionary(reason_keys, &reasons)?,
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.detail.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| String::from_utf8_lossy(&r.raw)),
            )),
            Arc::new(BinaryArray::from_iter_values(
                rows.iter().map(|r| r.raw.as_slice()),
            )),
            Arc::new(Int64Array::from_iter(
                rows.iter().map(|r| r.kept_line.map(|l| l as i64)),
            )),
            timestamps(k.ingested_at_ms, n),
            constant(&k.run_id, n)?,
        ],
    )?)
}

pub(crate) fn dim_clients_batch(
    clients: &[(i64, String)],
    k: &RunConstants,
) -> Result<RecordBatch, Error> {
    let n = clients.len();
    Ok(RecordBatch::try_new(
        DIM_CLIENTS.arrow_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(clients.iter().map(|c| c.0))),
            Arc::new(StringArray::from_iter_values(
                clients.iter().map(|c| c.1.as_str()),
            )),
            timestamps(k.ingested_at_ms, n),
            constant(&k.run_id, n)?,
        ],
    )?)
}

pub(crate) fn dim_products_batch(
    products: &[(i64, ProductInfo)],
    k: &RunConstants,
) -> Result<RecordBatch, Error> {
    let n = products.len();
    let prices: Vec<i64> = products.iter().map(|p| p.1.price).collect();
    let volumes: Vec<i64> = products.iter().map(|p| p.1.volume).collect();
    Ok(RecordBatch::try_new(
        DIM_PRODUCTS.arrow_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(products.iter().map(|p| p.0))),
            Arc::new(StringArray::from_iter_values(
                products.iter().map(|p| p.1.description.as_str()),
            )),
            decimal(&prices),
            decimal(&volumes),
            timestamps(k.ingested_at_ms, n),
            constant(&k.run_id, n)?,
        ],
    )?)
}

pub(crate) fn dim_status_batch() -> Result<RecordBatch, Error> {
    Ok(RecordBatch::try_new(
        DIM_STATUS.arrow_schema(),
        vec![
            Arc::new(Int32Array::from_iter_values(STATUSES.iter().map(|s| s.0))),
            Arc::new(StringArray::from_iter_values(STATUSES.iter().map(|s| s.1))),
        ],
    )?)
}

pub(crate) fn dim_channels_batch(k: &RunConstants) -> Result<RecordBatch, Error> {
    Ok(RecordBatch::try_new(
        DIM_CHANNELS.arrow_schema(),
        vec![
            Arc::new(Int32Array::from(k.channel_ids.clone())),
            Arc::new(StringArray::from_iter_values(k.channel_names.iter())),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Compacting a string column in place gives the rows a plain filter keeps.
        #[test]
        fn retain_strings_keeps_the_kept_rows(
            rows in prop::collection::vec(("[a-z]{0,5}", any::<bool>()), 0..60)
        ) {
            let mut col = StrCol::with_capacity(rows.len(), 0);
            for (text, _) in &rows {
                col.push(text.as_bytes());
            }
            let keep: Vec<bool> = rows.iter().map(|r| r.1).collect();
            retain_strings(&mut col, &keep);
            let kept: Vec<&str> = rows.iter().filter(|r| r.1).map(|r| r.0.as_str()).collect();
            prop_assert_eq!(col.offsets.len(), kept.len() + 1);
            let got: Vec<&[u8]> = (0..kept.len()).map(|i| bytes(&col, i)).collect();
            let want: Vec<&[u8]> = kept.iter().map(|k| k.as_bytes()).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(col.values.len(), kept.iter().map(|k| k.len()).sum::<usize>());
        }
    }
}
