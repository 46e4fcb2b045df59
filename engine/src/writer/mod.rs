//! The Parquet writers. Every table is written by a thread of its own, fed batches in file
//! order (`table`); `orders` and `fact_orders`, which share most of their columns, are encoded
//! together, each shared column once (`star`), their dictionary columns by the engine's own
//! column encoder (`dict_chunk`, `rle`) and their encoded pages spliced into both tables' files
//! (`splice`); `lines` is what a run writes those two tables with, the engine's encoder or,
//! with [`Encoder::Arrow`], `ArrowWriter`. `parts` names and rolls over each table's part
//! files; `options` holds the layout a run asks for.

pub(crate) mod dict_chunk;
pub(crate) mod lines;
pub(crate) mod options;
pub(crate) mod parts;
pub(crate) mod rle;
pub(crate) mod splice;
pub(crate) mod star;
pub(crate) mod table;

pub use crate::lake::manifest::WrittenFile;
pub use options::{Codec, Encoder, ParquetOptions, declared_encodings};
pub use star::write_orders_and_fact;
pub use table::encode_batches;
