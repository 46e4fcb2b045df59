//! Column chunks of the columns that hold a handful of distinct values by construction (status,
//! channel, and the run's lineage: source file, run id, ingestion time), written directly rather
//! than through the parquet crate's column writer.
//!
//! That writer interns every value of a dictionary-encoded column (hashing and comparing it) and
//! compares it with the running min and max: 10–25 ns a row, about a tenth of the engine's CPU
//! for seven columns of at most a few distinct values. Here a row costs a table lookup (Arrow
//! dictionary keys, or the few values seen, map to the chunk's dictionary indices) and the
//! statistics come from the dictionary, not from the rows.
//!
//! The chunk is byte for byte what `ArrowWriter` writes (tested on whole files): the dictionary
//! in first-occurrence order, data pages cut after the same mini-batches (`write_batch_size`
//! rows) when they reach the page row or size limit, the same RLE and bit-packed runs, the same
//! compression, statistics and offset index. [`SmallDictChunk::try_new`] declines the settings
//! and values under which the general writer would do anything else (page statistics, bloom
//! filters, values long enough for statistics truncation, …); the caller then uses that writer.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType};
use bytes::Bytes;
use hashbrown::HashMap;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, Type as PhysicalType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::error::Error;
use crate::rle::RleEncoder;

/// More distinct values than this in one chunk is not a small-domain column: an error, since the
/// chunk can no longer be written as the general writer would (its dictionary would overflow).
const MAX_ENTRIES: usize = 4096;
/// Longest byte value accepted: statistics truncation (64 bytes by default) never applies.
const MAX_VALUE_BYTES: usize = 64;

/// One column chunk of a small-domain column under construction.
pub(crate) struct SmallDictChunk {
    descr: ColumnDescPtr,
    compression: Compression,
    codec: PageCodec,
    batch_rows: usize,
    page_row_limit: usize,
    page_byte_limit: usize,
    entries: Entries,
    /// Rows in the open page; while they all hold one entry, that entry (and no `indices`).
    page_rows: usize,
    uniform: Option<u16>,
    /// Dictionary indices of the open page's rows, once they differ.
    indices: Vec<u16>,
    /// Rows of the open page per dictionary entry.
    page_counts: Vec<u32>,
    pages: Vec<DataPage>,
    rows: u64,
}

/// The chunk's dictionary, in first-occurrence order.
enum Entries {
    Bytes(Vec<Vec<u8>>),
    Int32(IntDict<i32>),
    Int64(IntDict<i64>),
}

/// The integer types of small-domain columns, and where their dictionary is.
trait IntValue: Copy + Ord + std::hash::Hash {
    fn dict(entries: &mut Entries) -> &mut IntDict<Self>;
    /// PLAIN encoding: little-endian.
    fn put_plain(self, out: &mut Vec<u8>);
    fn statistics(values: ValueStatistics<Self>) -> Statistics;
}

/// `Entries` and `Statistics` name their variants alike (`Int32`, `Int64`).
macro_rules! int_value {
    ($t:ty, $variant:ident) => {
        impl IntValue for $t {
            fn dict(entries: &mut Entries) -> &mut IntDict<$t> {
                let Entries::$variant(dict) = entries else {
                    unreachable!("checked by accepts")
                };
                dict
            }
            fn put_plain(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn statistics(values: ValueStatistics<$t>) -> Statistics {
                Statistics::$variant(values)
            }
        }
    };
}

int_value!(i32, Int32);
int_value!(i64, Int64);

/// Integer dictionary entries, with an index once there are more than a handful.
struct IntDict<T> {
    values: Vec<T>,
    index: HashMap<T, u16>,
}

impl<T: IntValue> IntDict<T> {
    /// The dictionary page's values into `plain`, and the chunk's statistics.
    fn plain_and_statistics(&self, plain: &mut Vec<u8>, signed: bool) -> Statistics {
        self.values.iter().for_each(|v| v.put_plain(plain));
        let (min, max) = (self.values.iter().min(), self.values.iter().max());
        T::statistics(value_statistics(min.copied(), max.copied(), signed))
    }

    fn new() -> Self {
        IntDict {
            values: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// `v`'s entry, added (with a zero page count) if new; `None` past [`MAX_ENTRIES`].
    #[inline]
    fn entry(&mut self, v: T, page_counts: &mut Vec<u32>) -> Option<u16> {
        // A handful of values: a scan beats hashing.
        let found = if self.values.len() <= 8 {
            self.values.iter().position(|&e| e == v).map(|i| i as u16)
        } else {
            self.index.get(&v).copied()
        };
        if found.is_some() {
            return found;
        }
        if self.values.len() >= MAX_ENTRIES {
            return None;
        }
        let entry = self.values.len() as u16;
        self.values.push(v);
        self.index.insert(v, entry);
        page_counts.push(0);
        Some(entry)
    }
}

struct DataPage {
    page: CompressedPage,
    rows: usize,
    unencoded_bytes: Option<i64>,
}

impl SmallDictChunk {
    /// A writer for `descr`'s chunk, or `None` when the settings or `first` (the chunk's first
    /// values) are outside what this writer reproduces exactly.
    pub(crate) fn try_new(
        descr: ColumnDescPtr,
        props: &WriterProperties,
        first: &dyn Array,
    ) -> Option<SmallDictChunk> {
        let path = descr.path();
        let width = match descr.physical_type() {
            PhysicalType::BYTE_ARRAY => MAX_VALUE_BYTES + 4,
            PhysicalType::INT32 => 4,
            PhysicalType::INT64 => 8,
            _ => return None,
        };
        let settings_fit = props.writer_version() == WriterVersion::PARQUET_1_0
            && props.statistics_enabled(path) == EnabledStatistics::Chunk
            && props.dictionary_enabled(path)
            && props.bloom_filter_properties(path).is_none()
            && !props.offset_index_disabled()
            && props.content_defined_chunking().is_none()
            && props.statistics_truncate_length().is_none_or(|n| n >= MAX_VALUE_BYTES)
            // The dictionary never falls back to plain, and mini-batches are never split by
            // the dictionary's byte budget.
            && props.column_dictionary_page_size_limit(path) > MAX_ENTRIES * width
            && props.write_batch_size() * 8 <= props.column_dictionary_page_size_limit(path)
            && descr.max_def_level() == 0
            && descr.max_rep_level() == 0;
        if !settings_fit || !accepts(descr.physical_type(), first) {
            return None;
        }
        let compression = props.compression(path);
        let codec = PageCodec::new(compression)?;
        let entries = match descr.physical_type() {
            PhysicalType::BYTE_ARRAY => Entries::Bytes(Vec::new()),
            PhysicalType::INT32 => Entries::Int32(IntDict::new()),
            _ => Entries::Int64(IntDict::new()),
        };
        Some(SmallDictChunk {
            page_byte_limit: props.column_data_page_size_limit(path),
            page_row_limit: props.data_page_row_count_limit(),
            batch_rows: props.write_batch_size().max(1),
            descr,
            compression,
            codec,
            entries,
            page_rows: 0,
            uniform: None,
            indices: Vec::new(),
            page_counts: Vec::new(),
            pages: Vec::new(),
            rows: 0,
        })
    }

    /// Appends `array`'s values, cut into mini-batches as the general writer cuts one write.
    pub(crate) fn write(&mut self, array: &dyn Array) -> Result<(), Error> {
        if !accepts(self.descr.physical_type(), array) {
            return Err(unsupported(
                &self.descr,
                "a value type or length it cannot encode",
            ));
        }
        let n = array.len();
        // Dictionary arrays: each key is resolved to an entry once per write.
        let mut by_key: Vec<u16> = Vec::new();
        let mut start = 0;
        while start < n {
            let len = self.batch_rows.min(n - start);
            match array.data_type() {
                DataType::Dictionary(_, _) => {
                    let dict = array.as_dictionary::<Int32Type>();
                    let values = dict.values().as_string::<i32>();
                    if by_key.is_empty() {
                        by_key = vec![u16::MAX; values.len()];
                    }
                    let keys = &dict.keys().values()[start..start + len];
                    if let Some(&key) = same(keys) {
                        let entry = self.bytes_entry(values.value(key as usize).as_bytes())?;
                        self.push_run(entry, len);
                    } else {
                        self.materialize();
                        for &key in keys {
                            let key = key as usize;
                            let mut entry = by_key[key];
                            if entry == u16::MAX {
                                entry = self.bytes_entry(values.value(key).as_bytes())?;
                                by_key[key] = entry;
                            }
                            self.push(entry);
                        }
                    }
                }
                DataType::Int32 => {
                    let values = array.as_primitive::<Int32Type>().values();
                    self.int_rows(&values[start..start + len])?;
                }
                DataType::Int64 => {
                    let values = array.as_primitive::<Int64Type>().values();
                    self.int_rows(&values[start..start + len])?;
                }
                _ => {
                    let values = array.as_primitive::<TimestampMillisecondType>().values();
                    self.int_rows(&values[start..start + len])?;
                }
            }
            if self.page_rows >= self.page_row_limit
                || self.estimated_page_bytes() >= self.page_byte_limit
            {
                self.flush_page()?;
            }
            start += len;
        }
        self.rows += n as u64;
        Ok(())
    }

    /// One row of a page whose rows differ (see [`Self::materialize`]).
    #[inline]
    fn push(&mut self, entry: u16) {
        self.indices.push(entry);
        self.page_rows += 1;
        self.page_counts[entry as usize] += 1;
    }

    /// `count` rows holding `entry`: the lineage columns are one value throughout, and their
    /// pages are then a single RLE run, written without touching the rows.
    fn push_run(&mut self, entry: u16, count: usize) {
        if self.page_rows == 0 {
            self.uniform = Some(entry);
        } else if self.uniform != Some(entry) {
            self.materialize();
            self.indices.extend(std::iter::repeat_n(entry, count));
        }
        self.page_rows += count;
        self.page_counts[entry as usize] += count as u32;
    }

    /// From here on the open page's rows are kept one by one.
    fn materialize(&mut self) {
        if let Some(entry) = self.uniform.take() {
            self.indices
                .extend(std::iter::repeat_n(entry, self.page_rows));
        }
    }

    /// Rows of an integer column: one run when they all hold one value, else one by one.
    fn int_rows<T: IntValue>(&mut self, values: &[T]) -> Result<(), Error> {
        if let Some(&v) = same(values) {
            let entry = self.int_entry(v)?;
            self.push_run(entry, values.len());
            return Ok(());
        }
        self.materialize();
        for &v in values {
            let entry = self.int_entry(v)?;
            self.push(entry);
        }
        Ok(())
    }

    #[inline]
    fn int_entry<T: IntValue>(&mut self, v: T) -> Result<u16, Error> {
        T::dict(&mut self.entries)
            .entry(v, &mut self.page_counts)
            .ok_or_else(|| too_many(&self.descr))
    }

    fn new_entry(&mut self, len: usize) -> Result<u16, Error> {
        if len >= MAX_ENTRIES {
            return Err(too_many(&self.descr));
        }
        self.page_counts.push(0);
        Ok(len as u16)
    }

    fn bytes_entry(&mut self, value: &[u8]) -> Result<u16, Error> {
        let Entries::Bytes(entries) = &self.entries else {
            unreachable!("checked by accepts")
        };
        if let Some(i) = entries.iter().position(|e| e == value) {
            return Ok(i as u16);
        }
        let entry = self.new_entry(entries.len())?;
        if let Entries::Bytes(entries) = &mut self.entries {
            entries.push(value.to_vec());
        }
        Ok(entry)
    }

    fn entry_count(&self) -> usize {
        self.page_counts.len()
    }

    fn bit_width(&self) -> u8 {
        let max = self.entry_count().saturating_sub(1) as u64;
        (64 - max.leading_zeros()) as u8
    }

    /// The general writer's estimate of the open page's encoded size.
    fn estimated_page_bytes(&self) -> usize {
        let indices = RleEncoder::max_buffer_size(self.bit_width(), self.page_rows);
        // The byte-array encoder counts the bit-width byte, the primitive one does not.
        match self.entries {
            Entries::Bytes(_) => indices + 1,
            _ => indices,
        }
    }

    fn flush_page(&mut self) -> Result<(), Error> {
        let bit_width = self.bit_width();
        let mut buf = Vec::with_capacity(1 + self.estimated_page_bytes());
        buf.push(bit_width);
        let encoded = match self.uniform {
            Some(entry) => RleEncoder::run(bit_width, entry as u64, self.page_rows, buf),
            None => {
                let mut rle = RleEncoder::new(bit_width, buf);
                for &i in &self.indices {
                    rle.put(i as u64);
                }
                rle.finish()
            }
        };
        let unencoded_bytes = match &self.entries {
            Entries::Bytes(entries) => Some(
                entries
                    .iter()
                    .zip(&self.page_counts)
                    .map(|(e, &count)| e.len() as i64 * count as i64)
                    .sum(),
            ),
            _ => None,
        };
        let page = Page::DataPage {
            buf: self.codec.compress(&encoded)?,
            num_values: self.page_rows as u32,
            encoding: Encoding::RLE_DICTIONARY,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        self.pages.push(DataPage {
            page: CompressedPage::new(page, encoded.len()),
            rows: self.page_rows,
            unencoded_bytes,
        });
        self.indices.clear();
        self.uniform = None;
        self.page_rows = 0;
        self.page_counts.fill(0);
        Ok(())
    }

    /// The chunk's bytes (dictionary page first) and its close result, as the general writer
    /// would return them for that layout.
    pub(crate) fn finish(mut self) -> Result<(Bytes, ColumnCloseResult), Error> {
        if self.rows == 0 {
            return Err(unsupported(&self.descr, "an empty chunk"));
        }
        if self.page_rows > 0 {
            self.flush_page()?;
        }
        let (plain, statistics) = self.dictionary();
        let dictionary = Page::DictionaryPage {
            buf: self.codec.compress(&plain)?,
            num_values: self.entry_count() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        let mut sink = TrackedWrite::new(Vec::new());
        let mut writer = SerializedPageWriter::new(&mut sink);
        let dict_spec = writer.write_page(CompressedPage::new(dictionary, plain.len()))?;
        let mut offsets = OffsetIndexBuilder::new();
        let (mut compressed, mut uncompressed, mut written) = (
            dict_spec.compressed_size as i64,
            dict_spec.uncompressed_size as i64,
            dict_spec.bytes_written,
        );
        let mut first_data_page = None;
        let mut unencoded_total: Option<i64> = None;
        let page_count = self.pages.len() as i32;
        for page in self.pages {
            let spec = writer.write_page(page.page)?;
            first_data_page.get_or_insert(spec.offset as i64);
            offsets.append_row_count(page.rows as i64);
            offsets.append_unencoded_byte_array_data_bytes(page.unencoded_bytes);
            offsets.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            if let Some(b) = page.unencoded_bytes {
                *unencoded_total.get_or_insert(0) += b;
            }
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            written += spec.bytes_written;
        }
        writer.close()?;
        let bytes = Bytes::from(sink.into_inner()?);

        let encodings = [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
        let page_stats = vec![
            PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            },
            PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: Encoding::RLE_DICTIONARY,
                count: page_count,
            },
        ];
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(self.compression)
            .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
            .set_page_encoding_stats(page_stats)
            .set_total_compressed_size(compressed)
            .set_total_uncompressed_size(uncompressed)
            .set_num_values(self.rows as i64)
            .set_data_page_offset(first_data_page.unwrap_or(0))
            .set_dictionary_page_offset(Some(dict_spec.offset as i64))
            .set_statistics(statistics)
            .set_unencoded_byte_array_data_bytes(unencoded_total)
            .build()?;
        let close = ColumnCloseResult {
            bytes_written: written,
            rows_written: self.rows,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(offsets.build()),
        };
        Ok((bytes, close))
    }

    /// The dictionary page's PLAIN-encoded values, and the chunk's statistics (every entry
    /// occurs in the chunk, so min and max over the entries are those over the rows).
    fn dictionary(&self) -> (Vec<u8>, Statistics) {
        let signed = self.descr.sort_order().is_signed();
        let mut plain = Vec::new();
        let statistics = match &self.entries {
            Entries::Bytes(entries) => {
                for e in entries {
                    plain.extend_from_slice(&(e.len() as u32).to_le_bytes());
                    plain.extend_from_slice(e);
                }
                let min = entries.iter().min().map(|e| ByteArray::from(e.clone()));
                let max = entries.iter().max().map(|e| ByteArray::from(e.clone()));
                Statistics::ByteArray(value_statistics(min, max, signed))
            }
            Entries::Int32(dict) => dict.plain_and_statistics(&mut plain, signed),
            Entries::Int64(dict) => dict.plain_and_statistics(&mut plain, signed),
        };
        (plain, statistics)
    }
}

/// The value every element of `values` holds, if they all hold one.
#[inline]
fn same<T: PartialEq>(values: &[T]) -> Option<&T> {
    let first = values.first()?;
    values.iter().all(|v| v == first).then_some(first)
}

fn value_statistics<T>(min: Option<T>, max: Option<T>, signed: bool) -> ValueStatistics<T> {
    ValueStatistics::new(min, max, None, Some(0), false).with_backwards_compatible_min_max(signed)
}

/// Whether `array` is a type this writer encodes for `physical`, without nulls, and (for
/// strings) with every dictionary value short enough to escape statistics truncation.
fn accepts(physical: PhysicalType, array: &dyn Array) -> bool {
    if array.null_count() > 0 {
        return false;
    }
    match (physical, array.data_type()) {
        (PhysicalType::BYTE_ARRAY, DataType::Dictionary(key, value))
            if **key == DataType::Int32 && **value == DataType::Utf8 =>
        {
            let values = array.as_dictionary::<Int32Type>().values();
            values.null_count() == 0
                && values.len() < u16::MAX as usize
                && (0..values.len())
                    .all(|i| values.as_string::<i32>().value(i).len() <= MAX_VALUE_BYTES)
        }
        (PhysicalType::INT32, DataType::Int32) => true,
        (PhysicalType::INT64, DataType::Int64) => true,
        (PhysicalType::INT64, DataType::Timestamp(TimeUnit::Millisecond, _)) => true,
        _ => false,
    }
}

fn too_many(descr: &ColumnDescPtr) -> Error {
    unsupported(descr, "more distinct values than it is made for")
}

fn unsupported(descr: &ColumnDescPtr, what: &str) -> Error {
    Error::Parquet(ParquetError::General(format!(
        "column {}: the small-dictionary writer was given {what}",
        descr.path()
    )))
}

/// Page compression exactly as the parquet crate's codecs do it.
enum PageCodec {
    Uncompressed,
    Snappy(Box<snap::raw::Encoder>),
    Zstd(zstd::bulk::Compressor<'static>),
}

impl PageCodec {
    fn new(compression: Compression) -> Option<PageCodec> {
        Some(match compression {
            Compression::UNCOMPRESSED => PageCodec::Uncompressed,
            Compression::SNAPPY => PageCodec::Snappy(Box::new(snap::raw::Encoder::new())),
            Compression::ZSTD(level) => {
                PageCodec::Zstd(zstd::bulk::Compressor::new(level.compression_level()).ok()?)
            }
            _ => return None,
        })
    }

    fn compress(&mut self, data: &[u8]) -> Result<Bytes, Error> {
        let out = match self {
            PageCodec::Uncompressed => data.to_vec(),
            PageCodec::Snappy(encoder) => {
                let mut out = vec![0; snap::raw::max_compress_len(data.len())];
                let n = encoder
                    .compress(data, &mut out)
                    .map_err(|e| ParquetError::External(Box::new(e)))?;
                out.truncate(n);
                out
            }
            PageCodec::Zstd(compressor) => compressor
                .compress(data)
                .map_err(|e| ParquetError::External(Box::new(e)))?,
        };
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
        TimestampMillisecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::ZstdLevel;
    use proptest::prelude::*;

    use super::*;

    fn props(batch: usize, page_rows: usize, page_bytes: usize, codec: u8) -> WriterProperties {
        let compression = match codec {
            0 => Compression::UNCOMPRESSED,
            1 => Compression::SNAPPY,
            _ => Compression::ZSTD(ZstdLevel::try_new(1).unwrap()),
        };
        WriterProperties::builder()
            .set_compression(compression)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_write_batch_size(batch)
            .set_data_page_row_count_limit(page_rows)
            .set_data_page_size_limit(page_bytes)
            .build()
    }

    /// The file `ArrowWriter` writes for `writes` (one write call each, one row group), and the
    /// same file with its chunk written by [`SmallDictChunk`].
    fn both(writes: &[ArrayRef], props: &WriterProperties) -> (Vec<u8>, Vec<u8>) {
        let field = Field::new("c", writes[0].data_type().clone(), false);
        let schema = Arc::new(Schema::new(vec![field]));
        let batch = |a: &ArrayRef| RecordBatch::try_new(schema.clone(), vec![a.clone()]).unwrap();
        let mut reference =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
        for a in writes {
            reference.write(&batch(a)).unwrap();
        }
        let reference = reference.into_inner().unwrap();

        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
        let (mut file, _) = writer.into_serialized_writer().unwrap();
        let descr = file.schema_descr().column(0);
        let mut chunk = SmallDictChunk::try_new(descr, props, writes[0].as_ref())
            .expect("the direct path applies");
        for a in writes {
            chunk.write(a.as_ref()).unwrap();
        }
        let (bytes, close) = chunk.finish().unwrap();
        let mut group = file.next_row_group().unwrap();
        group.append_column(&bytes, close).unwrap();
        group.close().unwrap();
        (reference, file.into_inner().unwrap())
    }

    /// `codes` as arrays of `kind`, cut into writes of `cuts` rows (cycled). String writes
    /// each carry the domain in a different order, as concatenated or re-sliced arrays can.
    fn arrays(kind: u8, domain: usize, codes: &[usize], cuts: &[usize]) -> Vec<ArrayRef> {
        let text = |k: usize| format!("{k:03}-{}", "é".repeat(k % 30));
        let mut out = Vec::new();
        let (mut at, mut cut) = (0, 0);
        while at < codes.len() {
            let n = cuts[cut % cuts.len()].min(codes.len() - at);
            let part = &codes[at..at + n];
            let array: ArrayRef = match kind {
                0 => {
                    let shift = cut % domain;
                    let values: Vec<String> =
                        (0..domain).map(|i| text((i + shift) % domain)).collect();
                    let keys: Vec<i32> = part
                        .iter()
                        .map(|&c| ((c + domain - shift) % domain) as i32)
                        .collect();
                    Arc::new(
                        DictionaryArray::<Int32Type>::try_new(
                            Int32Array::from(keys),
                            Arc::new(StringArray::from(values)),
                        )
                        .unwrap(),
                    )
                }
                1 => Arc::new(Int32Array::from_iter_values(
                    part.iter().map(|&c| c as i32 * 7919 - 1000),
                )),
                2 => Arc::new(Int64Array::from_iter_values(
                    part.iter().map(|&c| c as i64 * -104_729 + 5),
                )),
                _ => Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        part.iter().map(|&c| 1_795_000_000_000 + c as i64),
                    )
                    .with_timezone("+00:00"),
                ),
            };
            out.push(array);
            at += n;
            cut += 1;
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Byte for byte the general writer's file, whatever the values, runs, write sizes,
        /// mini-batch size, page limits and codec.
        #[test]
        fn writes_what_arrow_writer_writes(
            kind in 0u8..4,
            domain in prop_oneof![1usize..4, 1usize..300],
            runs in prop::collection::vec((any::<prop::sample::Index>(), 1usize..30), 1..150),
            cuts in prop::collection::vec(1usize..1500, 1..5),
            batch in prop_oneof![Just(8192usize), 1usize..1024],
            page_rows in prop_oneof![Just(20_000usize), 1usize..3000],
            page_bytes in prop_oneof![Just(1usize << 20), 8usize..400],
            codec in 0u8..3,
        ) {
            let codes: Vec<usize> = runs
                .iter()
                .flat_map(|(code, n)| std::iter::repeat_n(code.index(domain), *n))
                .collect();
            let writes = arrays(kind, domain, &codes, &cuts);
            let (reference, ours) = both(&writes, &props(batch, page_rows, page_bytes, codec));
            prop_assert!(reference == ours, "{} bytes by ArrowWriter, {} here", reference.len(), ours.len());
        }
    }

    /// Every page size limit around the estimates of a few pages: the cuts fall after the same
    /// mini-batches as the general writer's, for each value type.
    #[test]
    fn pages_cut_on_size_where_arrow_writer_cuts_them() {
        let codes: Vec<usize> = (0..600).map(|i| (i * 7 + i / 13) % 5).collect();
        for kind in 0..4 {
            for page_bytes in 8..120 {
                let writes = arrays(kind, 5, &codes, &[97, 250]);
                let props = props(1 + page_bytes % 7, 20_000, page_bytes, 1);
                let (reference, ours) = both(&writes, &props);
                assert!(
                    reference == ours,
                    "kind {kind}, page limit {page_bytes} bytes"
                );
            }
        }
    }

    #[test]
    fn a_big_constant_chunk_is_written_as_arrow_writer_writes_it() {
        let codes = vec![0; 300_000];
        let writes = arrays(0, 1, &codes, &[8192]);
        let (reference, ours) = both(&writes, &props(8192, 20_000, 1 << 20, 1));
        assert!(reference == ours);
    }

    /// The Parquet descriptor of a one-column file of `data_type`.
    fn descriptor(data_type: DataType, props: &WriterProperties) -> ColumnDescPtr {
        let schema = Arc::new(Schema::new(vec![Field::new("c", data_type, false)]));
        let writer = ArrowWriter::try_new(Vec::new(), schema, Some(props.clone())).unwrap();
        writer
            .into_serialized_writer()
            .unwrap()
            .0
            .schema_descr()
            .column(0)
    }

    #[test]
    fn declines_what_it_cannot_write_exactly() {
        let chunk_props = props(8192, 20_000, 1 << 20, 1);
        let descr = descriptor(DataType::Int32, &chunk_props);
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        assert!(SmallDictChunk::try_new(descr.clone(), &chunk_props, ints.as_ref()).is_some());
        // Nulls, a type of another physical width, page statistics.
        let nulls: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
        assert!(SmallDictChunk::try_new(descr.clone(), &chunk_props, nulls.as_ref()).is_none());
        let wide: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(SmallDictChunk::try_new(descr.clone(), &chunk_props, wide.as_ref()).is_none());
        let page_stats = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        assert!(SmallDictChunk::try_new(descr, &page_stats, ints.as_ref()).is_none());

        // Strings long enough for statistics truncation.
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        let strings = arrays(0, 2, &[0, 1], &[2]);
        let descr = descriptor(strings[0].data_type().clone(), &chunk_props);
        let long: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(
                Int32Array::from(vec![0]),
                Arc::new(StringArray::from(vec![long])),
            )
            .unwrap(),
        );
        assert!(SmallDictChunk::try_new(descr.clone(), &chunk_props, long.as_ref()).is_none());
        // A long value arriving later is refused, not written differently.
        let mut chunk = SmallDictChunk::try_new(descr, &chunk_props, strings[0].as_ref()).unwrap();
        chunk.write(strings[0].as_ref()).unwrap();
        assert!(chunk.write(long.as_ref()).is_err());
    }
}
