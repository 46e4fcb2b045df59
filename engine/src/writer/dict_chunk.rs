//! Dictionary-encoded column chunks written directly rather than through the parquet crate's
//! column writer.
//!
//! That writer interns every value (hashing and comparing it), keeps a 64-bit index per row and
//! compares each value with the running min and max: 10–25 ns a row and column, about a fifth of
//! the engine's CPU over the fourteen dictionary-encoded columns of `orders` and `fact_orders`.
//! Here a row costs one table lookup (Arrow dictionary keys map to the chunk's entries once per
//! write; other values are looked up directly) and the statistics come from the dictionary, not
//! from the rows.
//!
//! The chunk is byte for byte what `ArrowWriter` writes (tested on whole files): the dictionary
//! in first-occurrence order, data pages cut after the same mini-batches (`write_batch_size`
//! rows) when they reach the page row or size limit, the same RLE and bit-packed runs, the same
//! compression, statistics and offset index. [`DictChunk::try_new`] declines settings under
//! which the general writer does something else (page statistics, bloom filters, …). What only
//! the data can trigger — a dictionary that outgrows its page limit, a mini-batch the general
//! writer would split — makes the chunk hand over to the general writer, which is given the
//! chunk's rows again, write for write, read back from the pages written so far
//! ([`ColumnEncoder`] does this).

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{
    DataType, Decimal128Type, FieldRef, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, compute_leaves};
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, Type as PhysicalType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, SerializedRowGroupWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

mod entries;
mod page;
mod truncate;

use super::rle::{self, RleEncoder};
use crate::error::Error;
use entries::{ByteDict, Entries, IntDict, IntValue, value_statistics};
use page::{DataPage, OpenPage, PageCodec};
use truncate::{is_utf8, truncated};

/// The encoder of one column chunk: direct while that is exact, else the general writer.
pub(crate) struct ColumnEncoder {
    field: FieldRef,
    direct: Option<Box<DictChunk>>,
    general: Box<ArrowColumnWriter>,
}

/// An encoded column chunk: from the general writer, or bytes in file order with their close
/// result.
pub(crate) enum EncodedChunk {
    Arrow(ArrowColumnChunk),
    Bytes {
        bytes: Bytes,
        close: ColumnCloseResult,
    },
}

impl EncodedChunk {
    pub(crate) fn append_to<W: std::io::Write + Send>(
        self,
        rg: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<(), ParquetError> {
        match self {
            EncodedChunk::Arrow(chunk) => chunk.append_to_row_group(rg),
            EncodedChunk::Bytes { bytes, close } => rg.append_column(&bytes, close),
        }
    }
}

impl ColumnEncoder {
    /// The encoder of `field`'s chunk (Parquet column `descr`), written directly when the
    /// settings and `first` (the chunk's first values) allow, else by `general`.
    pub(crate) fn new(
        field: FieldRef,
        descr: ColumnDescPtr,
        props: &WriterProperties,
        general: ArrowColumnWriter,
        first: Option<&dyn Array>,
    ) -> ColumnEncoder {
        let direct = first
            .and_then(|first| DictChunk::try_new(descr, props, first))
            .map(Box::new);
        ColumnEncoder {
            field,
            direct,
            general: Box::new(general),
        }
    }

    /// Whether the chunk is (still) written directly.
    #[cfg(test)]
    pub(crate) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    pub(crate) fn write(&mut self, array: &ArrayRef) -> Result<(), Error> {
        if let Some(direct) = &mut self.direct {
            match direct.write(array.as_ref())? {
                Written::Done => return Ok(()),
                Written::HandOff => {
                    let direct = self.direct.take().expect("direct");
                    direct.hand_off(&mut self.general, &self.field)?;
                }
            }
        }
        for leaf in compute_leaves(&self.field, array)? {
            self.general.write(&leaf)?;
        }
        Ok(())
    }

    pub(crate) fn close(self) -> Result<EncodedChunk, Error> {
        match self.direct {
            Some(direct) => {
                let (bytes, close) = direct.finish()?;
                Ok(EncodedChunk::Bytes { bytes, close })
            }
            None => Ok(EncodedChunk::Arrow(self.general.close()?)),
        }
    }
}

/// One dictionary-encoded column chunk under construction.
pub(crate) struct DictChunk {
    descr: ColumnDescPtr,
    compression: Compression,
    codec: PageCodec,
    batch_rows: usize,
    page_row_limit: usize,
    page_byte_limit: usize,
    dict_byte_limit: usize,
    /// Longest byte value the chunk's statistics keep whole (`None`: any).
    truncate_length: Option<usize>,
    entries: Entries,
    page: OpenPage,
    pages: Vec<DataPage>,
    rows: u64,
    /// Rows of each completed write, so the general writer can be given the same writes.
    writes: Vec<usize>,
}

/// What became of a write.
#[must_use]
pub(crate) enum Written {
    Done,
    /// The general writer would have done what this writer does not: hand the chunk over
    /// ([`DictChunk::hand_off`]) and give the general writer this write.
    HandOff,
}

impl DictChunk {
    /// A writer for `descr`'s chunk, or `None` when the settings or `first` (the chunk's first
    /// values) are outside what this writer reproduces exactly.
    pub(crate) fn try_new(
        descr: ColumnDescPtr,
        props: &WriterProperties,
        first: &dyn Array,
    ) -> Option<DictChunk> {
        let path = descr.path();
        let physical = descr.physical_type();
        let width = match physical {
            PhysicalType::BYTE_ARRAY => 0,
            PhysicalType::INT32 => 4,
            PhysicalType::INT64 => 8,
            _ => return None,
        };
        let batch_rows = props.write_batch_size().max(1);
        let dict_byte_limit = props.column_dictionary_page_size_limit(path);
        let settings_fit = props.writer_version() == WriterVersion::PARQUET_1_0
            && props.statistics_enabled(path) == EnabledStatistics::Chunk
            && props.dictionary_enabled(path)
            && props.bloom_filter_properties(path).is_none()
            && !props.offset_index_disabled()
            && props.content_defined_chunking().is_none()
            // The general writer never splits a mini-batch of fixed-width values for the
            // dictionary's byte budget (byte arrays are checked per mini-batch).
            && width * batch_rows <= dict_byte_limit
            && descr.max_def_level() == 0
            && descr.max_rep_level() == 0;
        if !settings_fit || !accepts(physical, first) {
            return None;
        }
        let compression = props.compression(path);
        let codec = PageCodec::new(compression)?;
        let entries = match physical {
            PhysicalType::BYTE_ARRAY => Entries::Bytes(ByteDict {
                page: Vec::new(),
                ranges: Vec::new(),
                index: HashTable::new(),
                hasher: DefaultHashBuilder::default(),
            }),
            PhysicalType::INT32 => Entries::Int32(IntDict::new()),
            _ => Entries::Int64(IntDict::new()),
        };
        Some(DictChunk {
            page_byte_limit: props.column_data_page_size_limit(path),
            page_row_limit: props.data_page_row_count_limit(),
            batch_rows,
            dict_byte_limit,
            truncate_length: props.statistics_truncate_length(),
            descr,
            compression,
            codec,
            entries,
            page: OpenPage::default(),
            pages: Vec::new(),
            rows: 0,
            writes: Vec::new(),
        })
    }

    /// Appends `array`'s values, cut into mini-batches as the general writer cuts one write.
    /// After [`Written::HandOff`] the chunk takes no more writes.
    pub(crate) fn write(&mut self, array: &dyn Array) -> Result<Written, Error> {
        if !accepts(self.descr.physical_type(), array) {
            return Ok(Written::HandOff);
        }
        let n = array.len();
        // Dictionary arrays: each key is resolved to an entry once per write.
        let mut by_key: Vec<u32> = Vec::new();
        let mut start = 0;
        while start < n {
            let len = self.batch_rows.min(n - start);
            let rows = start..start + len;
            let fits = match array.data_type() {
                DataType::Dictionary(_, _) => {
                    self.dictionary_rows(array, rows, &mut by_key);
                    true
                }
                DataType::Utf8 => self.string_rows(array.as_string::<i32>(), rows),
                DataType::Int32 => {
                    let values = array.as_primitive::<Int32Type>().values();
                    self.int_rows(&values[rows], |v| v)
                }
                DataType::Int64 => {
                    let values = array.as_primitive::<Int64Type>().values();
                    self.int_rows(&values[rows], |v| v)
                }
                DataType::Decimal128(_, _) => {
                    // As the general writer stores them: the low 64 bits (precision ≤ 18).
                    let values = array.as_primitive::<Decimal128Type>().values();
                    self.int_rows(&values[rows], |v| v as i64)
                }
                _ => {
                    let values = array.as_primitive::<TimestampMillisecondType>().values();
                    self.int_rows(&values[rows], |v| v)
                }
            };
            if !fits {
                return Ok(Written::HandOff);
            }
            if self.page.rows >= self.page_row_limit
                || self.estimated_page_bytes() >= self.page_byte_limit
            {
                self.flush_page()?;
            }
            // The general writer would fall back to plain encoding here.
            if self.entries.page_bytes() >= self.dict_byte_limit {
                return Ok(Written::HandOff);
            }
            start += len;
        }
        self.rows += n as u64;
        self.writes.push(n);
        Ok(Written::Done)
    }

    /// Rows `rows` of a dictionary array.
    fn dictionary_rows(
        &mut self,
        array: &dyn Array,
        rows: std::ops::Range<usize>,
        by_key: &mut Vec<u32>,
    ) {
        let dict = array.as_dictionary::<Int32Type>();
        let values = dict.values().as_string::<i32>();
        if by_key.is_empty() {
            *by_key = vec![u32::MAX; values.len()];
        }
        let Entries::Bytes(entries) = &mut self.entries else {
            unreachable!("checked by accepts")
        };
        let mut entry_of = |key: usize| {
            if by_key[key] == u32::MAX {
                by_key[key] = entries.entry(values.value(key).as_bytes());
            }
            by_key[key]
        };
        let keys = &dict.keys().values()[rows];
        let page = &mut self.page;
        if let Some(&key) = same(keys) {
            page.push_run(entry_of(key as usize), keys.len());
            page.value_bytes += values.value_length(key as usize) as i64 * keys.len() as i64;
            return;
        }
        page.materialize();
        for &key in keys {
            page.push(entry_of(key as usize));
            page.value_bytes += values.value_length(key as usize) as i64;
        }
    }

    /// Rows `rows` of a string array; `false` where the general writer would split the
    /// mini-batch (its values could outgrow the dictionary's byte budget).
    fn string_rows(&mut self, array: &StringArray, rows: std::ops::Range<usize>) -> bool {
        let Entries::Bytes(entries) = &mut self.entries else {
            unreachable!("checked by accepts")
        };
        let offsets = array.value_offsets();
        let data = array.value_data();
        let (from, to) = (offsets[rows.start] as usize, offsets[rows.end] as usize);
        if to - from + 4 * rows.len() > self.dict_byte_limit.saturating_sub(entries.page.len()) {
            return false;
        }
        let page = &mut self.page;
        page.materialize();
        page.value_bytes += (to - from) as i64;
        for w in offsets[rows.start..=rows.end].windows(2) {
            let v = &data[w[0] as usize..w[1] as usize];
            page.push(entries.entry(v));
        }
        true
    }

    /// Rows of an integer column: one run when they all hold one value, else one by one.
    fn int_rows<S: Copy + PartialEq, T: IntValue>(
        &mut self,
        values: &[S],
        convert: impl Fn(S) -> T,
    ) -> bool {
        let dict = T::dict(&mut self.entries);
        if let Some(&v) = same(values) {
            let entry = dict.entry(convert(v));
            self.page.push_run(entry, values.len());
            return true;
        }
        self.page.materialize();
        for &v in values {
            let entry = dict.entry(convert(v));
            self.page.push(entry);
        }
        true
    }

    fn bit_width(&self) -> u8 {
        let max = self.entries.len().saturating_sub(1) as u64;
        (64 - max.leading_zeros()) as u8
    }

    /// The general writer's estimate of the open page's encoded size.
    fn estimated_page_bytes(&self) -> usize {
        let indices = RleEncoder::max_buffer_size(self.bit_width(), self.page.rows);
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
        let page = std::mem::take(&mut self.page);
        let encoded = match page.uniform {
            Some(entry) => RleEncoder::run(bit_width, entry as u64, page.rows, buf),
            None => {
                let mut rle = RleEncoder::new(bit_width, buf);
                rle.put_all(&page.indices);
                rle.finish()
            }
        };
        let unencoded_bytes = match &self.entries {
            Entries::Bytes(_) => Some(page.value_bytes),
            _ => None,
        };
        let data_page = Page::DataPage {
            buf: self.codec.compress(&encoded)?,
            num_values: page.rows as u32,
            encoding: Encoding::RLE_DICTIONARY,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        self.pages.push(DataPage {
            page: CompressedPage::new(data_page, encoded.len()),
            rows: page.rows,
            unencoded_bytes,
        });
        // Keep the index buffer's capacity for the next page.
        let mut indices = page.indices;
        indices.clear();
        self.page.indices = indices;
        Ok(())
    }

    /// Gives `general` (a fresh writer of this column chunk) every completed write again, read
    /// back from the pages: the chunk it then closes is the one it would have written alone.
    pub(crate) fn hand_off(
        self,
        general: &mut ArrowColumnWriter,
        field: &FieldRef,
    ) -> Result<(), Error> {
        let rows: usize = self.writes.iter().sum();
        let mut indices: Vec<u32> = Vec::with_capacity(rows);
        for page in &self.pages {
            if indices.len() >= rows {
                break;
            }
            let encoded = PageCodec::decompress(
                self.compression,
                page.page.data(),
                page.page.uncompressed_size(),
            )?;
            let decoded = encoded
                .split_first()
                .and_then(|(&width, runs)| rle::decode(width, runs, page.rows, &mut indices));
            if decoded.is_none() {
                return Err(unsupported(&self.descr, "a page it cannot read back"));
            }
        }
        match self.page.uniform {
            Some(entry) => indices.extend(std::iter::repeat_n(entry, self.page.rows)),
            None => indices.extend_from_slice(&self.page.indices),
        }
        if indices.len() < rows {
            return Err(unsupported(&self.descr, "fewer rows than it was given"));
        }
        let mut at = 0;
        for &n in &self.writes {
            let array = self
                .entries
                .array(field.data_type(), &indices[at..at + n])?;
            for leaf in compute_leaves(field, &array)? {
                general.write(&leaf)?;
            }
            at += n;
        }
        Ok(())
    }

    /// The chunk's bytes (dictionary page first) and its close result, as the general writer
    /// would return them for that layout.
    pub(crate) fn finish(mut self) -> Result<(Bytes, ColumnCloseResult), Error> {
        if self.rows == 0 {
            return Err(unsupported(&self.descr, "an empty chunk"));
        }
        if self.page.rows > 0 {
            self.flush_page()?;
        }
        let (plain, statistics) = self.dictionary();
        let dictionary = Page::DictionaryPage {
            buf: self.codec.compress(&plain)?,
            num_values: self.entries.len() as u32,
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
    fn dictionary(&mut self) -> (Vec<u8>, Statistics) {
        let signed = self.descr.sort_order().is_signed();
        let mut plain = Vec::new();
        let statistics = match &mut self.entries {
            Entries::Bytes(d) => {
                let values = || (0..d.ranges.len() as u32).map(|e| d.value(e));
                let (min, max) = (values().min(), values().max());
                let statistics = match (min, max) {
                    (Some(min), Some(max)) => {
                        truncated(min, max, self.truncate_length, is_utf8(&self.descr), signed)
                    }
                    _ => Statistics::ByteArray(value_statistics(None, None, signed)),
                };
                plain = std::mem::take(&mut d.page);
                statistics
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

/// Whether `array` is a type this writer encodes for `physical`, without nulls.
fn accepts(physical: PhysicalType, array: &dyn Array) -> bool {
    if array.null_count() > 0 {
        return false;
    }
    match (physical, array.data_type()) {
        (PhysicalType::BYTE_ARRAY, DataType::Dictionary(key, value))
            if **key == DataType::Int32 && **value == DataType::Utf8 =>
        {
            array.as_dictionary::<Int32Type>().values().null_count() == 0
        }
        (PhysicalType::BYTE_ARRAY, DataType::Utf8) => true,
        (PhysicalType::INT32, DataType::Int32) => true,
        (PhysicalType::INT64, DataType::Int64) => true,
        (PhysicalType::INT64, DataType::Decimal128(_, _)) => true,
        (PhysicalType::INT64, DataType::Timestamp(TimeUnit::Millisecond, _)) => true,
        _ => false,
    }
}

fn unsupported(descr: &ColumnDescPtr, what: &str) -> Error {
    Error::Parquet(ParquetError::General(format!(
        "column {}: the dictionary chunk writer was given {what}",
        descr.path()
    )))
}

#[cfg(test)]
mod tests;
