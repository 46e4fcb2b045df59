//! Splicing one encoded column chunk into a second Parquet file: a page store that keeps the
//! pages it is given, and the chunk re-addressed for its place and name in the other file.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::column::page_store::{PageKey, PageStore, PageStoreArgs, PageStoreFactory};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::schema::types::ColumnDescPtr;

use crate::error::Error;

/// A chunk's bytes in file order (the dictionary page first) and its close result addressed
/// for that layout, from the pages as the column writer produced them.
///
/// The Arrow column writer hands its page store the data pages first and the dictionary page
/// (header, then data) when it is written, at the close or at a fallback to plain encoding; its
/// offsets assume that order ([`ColumnCloseResult::update_dictionary_location`]). Any mismatch
/// is an error, never a silently wrong file.
pub(crate) fn relocate(
    blobs: Vec<Bytes>,
    close: &ColumnCloseResult,
) -> Result<(Bytes, ColumnCloseResult), Error> {
    let total: usize = blobs.iter().map(Bytes::len).sum();
    if total as i64 != close.metadata.compressed_size() {
        return Err(splice_error("page sizes do not add up to the chunk's size"));
    }
    // The dictionary page is two blobs, header and data, starting at its recorded offset.
    let dictionary = match close.metadata.dictionary_page_offset() {
        None => None,
        Some(offset) => {
            let mut at = 0i64;
            let first = blobs.iter().position(|b| {
                let here = at;
                at += b.len() as i64;
                here == offset
            });
            let first = first
                .filter(|&i| i + 1 < blobs.len())
                .ok_or_else(|| splice_error("no dictionary page at its recorded offset"))?;
            Some(first)
        }
    };
    let mut out = Vec::with_capacity(total);
    if let Some(d) = dictionary {
        out.extend_from_slice(&blobs[d]);
        out.extend_from_slice(&blobs[d + 1]);
    }
    let dictionary_len = out.len();
    for (i, b) in blobs.iter().enumerate() {
        if dictionary.is_none_or(|d| i != d && i != d + 1) {
            out.extend_from_slice(b);
        }
    }
    let close = close.clone().update_dictionary_location(dictionary_len)?;
    Ok((Bytes::from(out), close))
}

/// The same chunk described as a column of another schema (e.g. `product_ccf` as `units`).
/// Copies what `SerializedRowGroupWriter::append_column` keeps of the metadata.
pub(crate) fn retarget(
    close: &ColumnCloseResult,
    descr: ColumnDescPtr,
) -> Result<ColumnCloseResult, Error> {
    let m = &close.metadata;
    let mut b = ColumnChunkMetaData::builder(descr)
        .set_compression_codec(m.compression_codec())
        .set_encodings_mask(*m.encodings_mask())
        .set_total_compressed_size(m.compressed_size())
        .set_total_uncompressed_size(m.uncompressed_size())
        .set_num_values(m.num_values())
        .set_data_page_offset(m.data_page_offset())
        .set_dictionary_page_offset(m.dictionary_page_offset())
        .set_unencoded_byte_array_data_bytes(m.unencoded_byte_array_data_bytes())
        .set_repetition_level_histogram(m.repetition_level_histogram().cloned())
        .set_definition_level_histogram(m.definition_level_histogram().cloned());
    if let Some(s) = m.statistics() {
        b = b.set_statistics(s.clone());
    }
    if let Some(s) = m.page_encoding_stats() {
        b = b.set_page_encoding_stats(s.clone());
    }
    let mut out = close.clone();
    out.metadata = b.build()?;
    Ok(out)
}

pub(crate) fn splice_error(what: &str) -> Error {
    Error::Parquet(ParquetError::General(format!(
        "sharing encoded columns between orders and fact_orders: {what}"
    )))
}

/// The pages a column writer gave its store, in the order given.
pub(crate) type Pages = Arc<Mutex<Vec<Bytes>>>;

/// A page store that keeps what it was given: the column writer takes its pages back to write
/// the orders file, and the same pages are spliced into the fact file.
#[derive(Debug, Default)]
pub(crate) struct TeePages {
    /// The stores of the open row group, by column index.
    stores: Mutex<Vec<(usize, Pages)>>,
}

impl TeePages {
    /// The open row group's stores; the next row group gets new ones.
    pub(crate) fn take(&self) -> Vec<(usize, Pages)> {
        std::mem::take(&mut *self.stores.lock().expect("tee lock"))
    }
}

impl PageStoreFactory for TeePages {
    fn create(&self, args: &PageStoreArgs<'_>) -> parquet::errors::Result<Box<dyn PageStore>> {
        let blobs = Arc::new(Mutex::new(Vec::new()));
        self.stores
            .lock()
            .expect("tee lock")
            .push((args.column_index(), blobs.clone()));
        Ok(Box::new(TeeStore { blobs }))
    }
}

struct TeeStore {
    blobs: Pages,
}

impl PageStore for TeeStore {
    fn put(&mut self, value: Bytes) -> parquet::errors::Result<PageKey> {
        let mut blobs = self.blobs.lock().expect("tee lock");
        blobs.push(value);
        Ok(PageKey::new(blobs.len() as u64 - 1))
    }

    fn take(&mut self, key: PageKey) -> parquet::errors::Result<Bytes> {
        let blobs = self.blobs.lock().expect("tee lock");
        (0..blobs.len())
            .find(|&i| PageKey::new(i as u64) == key)
            .map(|i| blobs[i].clone())
            .ok_or_else(|| ParquetError::General("unknown page key".into()))
    }

    fn memory_size(&self) -> usize {
        self.blobs
            .lock()
            .expect("tee lock")
            .iter()
            .map(Bytes::len)
            .sum()
    }
}
