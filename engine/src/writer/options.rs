//! How tables are laid out in Parquet: the options a run is given, and the writer properties
//! derived from them and from each column's declared encoding.

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::schema::{Encoding as ColumnEncoding, Table};

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Snappy: fast to write and read; the default.
    #[default]
    Snappy,
    /// Zstandard at level 1: smaller files for a little more CPU.
    Zstd,
}

impl std::str::FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "snappy" => Ok(Codec::Snappy),
            "zstd" => Ok(Codec::Zstd),
            _ => Err(format!("unknown codec {s:?} (expected snappy or zstd)")),
        }
    }
}

/// What encodes `orders` and `fact_orders`, the two big tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoder {
    /// The engine's own: each column the two tables share encoded once and its pages spliced
    /// into both files, dictionary columns written directly (a few times faster).
    #[default]
    Engine,
    /// The parquet crate's `ArrowWriter` for each table, as for every other table: the
    /// reference the engine's encoder is tested against, and the way around it should a
    /// parquet upgrade break it.
    Arrow,
}

impl std::str::FromStr for Encoder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "engine" => Ok(Encoder::Engine),
            "arrow" => Ok(Encoder::Arrow),
            _ => Err(format!("unknown encoder {s:?} (expected engine or arrow)")),
        }
    }
}

/// How tables are laid out in Parquet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParquetOptions {
    /// How every table's pages are compressed.
    pub codec: Codec,
    /// Rows handed to the encoder at a time (fixed, for deterministic output).
    pub batch_rows: usize,
    /// A row group is closed once it holds this many rows (for orders and fact_orders, rounded
    /// up to a multiple of `batch_rows`)...
    pub row_group_rows: usize,
    /// ...or this many bytes: of data before encoding for orders and fact_orders (the same for
    /// any thread count; a row group is buffered encoded, so this bounds memory), encoded for
    /// the others.
    pub row_group_bytes: usize,
    /// A part file is closed once it reaches this many bytes; the next part starts.
    pub file_bytes: u64,
    /// What encodes `orders` and `fact_orders`.
    #[serde(default)]
    pub encoder: Encoder,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            codec: Codec::Snappy,
            batch_rows: 8 * 1024,
            row_group_rows: 1 << 20,
            row_group_bytes: 256 << 20,
            file_bytes: 512 << 20,
            encoder: Encoder::Engine,
        }
    }
}

impl ParquetOptions {
    pub(crate) fn properties(&self, table: &Table) -> WriterProperties {
        let compression = match self.codec {
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")),
        };
        let b = WriterProperties::builder()
            .set_compression(compression)
            .set_created_by(format!("duff-engine {}", env!("CARGO_PKG_VERSION")))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_max_row_group_bytes(Some(self.row_group_bytes))
            .set_write_batch_size(self.batch_rows);
        declared_encodings(b, table).build()
    }
}

/// `builder` with each column of `table` encoded as the table declares it: the one place a
/// declared encoding becomes a writer property, for a run's files and the lake's rewrites of
/// them alike.
pub fn declared_encodings(
    mut builder: WriterPropertiesBuilder,
    table: &Table,
) -> WriterPropertiesBuilder {
    for c in table.columns {
        let path = ColumnPath::from(c.name);
        builder = match c.encoding {
            ColumnEncoding::Dictionary => builder.set_column_dictionary_enabled(path, true),
            ColumnEncoding::Delta => builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
            ColumnEncoding::Plain => builder.set_column_dictionary_enabled(path, false),
        };
    }
    builder
}
