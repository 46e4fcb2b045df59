//! Tables compared as Arrow rows: exact, value by value, and fast enough for the lakes of the
//! 100 MB tests, where rendering every value as text took most of the test's time.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::row::{OwnedRow, RowConverter, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;

use crate::common::{delta_files, partition_of};

/// A table's rows as a Delta reader sees them (its partition value last), in Arrow's row
/// format and sorted. Two lakes compare exactly, value by value, without rendering ~100 MB of
/// cells as text; a difference is printed as text.
pub struct SortedRows {
    converter: Option<RowConverter>,
    rows: Vec<OwnedRow>,
}

impl SortedRows {
    /// Reads `def` in `lake`, leaving out the columns named in `skip`.
    pub fn read(lake: &Path, def: &duff_delta::DeltaTableDef, skip: &[&str]) -> Self {
        let columns: Vec<Vec<ArrayRef>> = delta_files(lake, def)
            .into_par_iter()
            .flat_map_iter(|rel| {
                let pa_date = partition_of(&rel).to_string();
                let file = File::open(lake.join(&rel)).unwrap();
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
                reader.map(move |batch| {
                    let batch = batch.unwrap();
                    let schema = batch.schema();
                    let mut kept: Vec<ArrayRef> = batch
                        .columns()
                        .iter()
                        .zip(schema.fields())
                        .filter(|(_, f)| !skip.contains(&f.name().as_str()))
                        .map(|(c, _)| c.clone())
                        .collect();
                    let partition = vec![pa_date.as_str(); batch.num_rows()];
                    kept.push(Arc::new(StringArray::from(partition)));
                    kept
                })
            })
            .collect();
        let Some(first) = columns.first() else {
            return Self {
                converter: None,
                rows: Vec::new(),
            };
        };
        let fields = first
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields).unwrap();
        let mut rows: Vec<OwnedRow> = columns
            .par_iter()
            .flat_map_iter(|c| {
                let rows = converter.convert_columns(c).unwrap();
                rows.iter().map(|r| r.owned()).collect::<Vec<_>>()
            })
            .collect();
        rows.par_sort_unstable();
        Self {
            converter: Some(converter),
            rows,
        }
    }

    /// How many rows the table holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `i` in sort order, each value rendered as text (NULL as "∅").
    fn text(&self, i: usize) -> Vec<String> {
        let converter = self.converter.as_ref().unwrap();
        let columns = converter.convert_rows([self.rows[i].row()]).unwrap();
        let options = FormatOptions::default().with_null("∅");
        columns
            .iter()
            .map(|c| {
                ArrayFormatter::try_new(c.as_ref(), &options)
                    .unwrap()
                    .value(0)
                    .to_string()
            })
            .collect()
    }
}

impl PartialEq for SortedRows {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows
    }
}

impl std::fmt::Debug for SortedRows {
    /// The row count and the first rows: enough to see which a difference is about.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<Vec<String>> = (0..self.rows.len().min(3)).map(|i| self.text(i)).collect();
        write!(f, "{} rows, first {shown:?}", self.rows.len())
    }
}

/// The first row where two sorted tables differ, as text, if they do.
pub fn first_difference(a: &SortedRows, b: &SortedRows) -> Option<String> {
    let at = (0..a.len().max(b.len())).find(|&i| a.rows.get(i) != b.rows.get(i))?;
    let show = |t: &SortedRows| {
        if at < t.len() {
            format!("{:?}", t.text(at))
        } else {
            "(no row)".to_string()
        }
    };
    Some(format!(
        "row {at} of {}/{}:\n  {}\n  {}",
        a.len(),
        b.len(),
        show(a),
        show(b)
    ))
}
