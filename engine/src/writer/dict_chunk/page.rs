//! The pages of a dictionary-encoded column chunk: the rows of the page being filled, a
//! finished data page, and page compression exactly as the parquet crate's codecs do it.

use bytes::Bytes;
use parquet::basic::Compression;
use parquet::column::page::CompressedPage;
use parquet::errors::ParquetError;

use crate::error::Error;

/// The rows of the page being filled.
#[derive(Default)]
pub(super) struct OpenPage {
    pub(super) rows: usize,
    /// While all rows hold one entry, that entry (and no `indices`).
    pub(super) uniform: Option<u32>,
    /// Dictionary indices of the rows, once they differ.
    pub(super) indices: Vec<u32>,
    /// Byte arrays: the bytes of the rows' values (the offset index reports them).
    pub(super) value_bytes: i64,
}

impl OpenPage {
    #[inline]
    pub(super) fn push(&mut self, entry: u32) {
        self.indices.push(entry);
        self.rows += 1;
    }

    /// `count` rows holding `entry`: the lineage columns are one value throughout, and their
    /// pages are then a single RLE run, written without touching the rows.
    pub(super) fn push_run(&mut self, entry: u32, count: usize) {
        if self.rows == 0 {
            self.uniform = Some(entry);
        } else if self.uniform != Some(entry) {
            self.materialize();
            self.indices.extend(std::iter::repeat_n(entry, count));
        }
        self.rows += count;
    }

    /// From here on the rows are kept one by one.
    pub(super) fn materialize(&mut self) {
        if let Some(entry) = self.uniform.take() {
            self.indices.extend(std::iter::repeat_n(entry, self.rows));
        }
    }
}

pub(super) struct DataPage {
    pub(super) page: CompressedPage,
    pub(super) rows: usize,
    pub(super) unencoded_bytes: Option<i64>,
}

/// Page compression exactly as the parquet crate's codecs do it.
pub(super) enum PageCodec {
    Uncompressed,
    Snappy(Box<snap::raw::Encoder>),
    Zstd(zstd::bulk::Compressor<'static>),
}

impl PageCodec {
    pub(super) fn new(compression: Compression) -> Option<PageCodec> {
        Some(match compression {
            Compression::UNCOMPRESSED => PageCodec::Uncompressed,
            Compression::SNAPPY => PageCodec::Snappy(Box::new(snap::raw::Encoder::new())),
            Compression::ZSTD(level) => {
                PageCodec::Zstd(zstd::bulk::Compressor::new(level.compression_level()).ok()?)
            }
            _ => return None,
        })
    }

    pub(super) fn compress(&mut self, data: &[u8]) -> Result<Bytes, Error> {
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

    /// A page's contents from its compressed bytes (`len` bytes uncompressed).
    pub(super) fn decompress(
        compression: Compression,
        data: &[u8],
        len: usize,
    ) -> Result<Vec<u8>, Error> {
        let external =
            |e: Box<dyn std::error::Error + Send + Sync>| Error::Parquet(ParquetError::External(e));
        match compression {
            Compression::SNAPPY => snap::raw::Decoder::new()
                .decompress_vec(data)
                .map_err(|e| external(Box::new(e))),
            Compression::ZSTD(_) => {
                zstd::bulk::decompress(data, len).map_err(|e| external(Box::new(e)))
            }
            _ => Ok(data.to_vec()),
        }
    }
}
