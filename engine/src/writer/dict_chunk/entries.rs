//! A column chunk's dictionary: its values in first-occurrence order, each row's entry, and the
//! dictionary page's size as the parquet crate estimates it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, DictionaryArray, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Int32Type, TimeUnit};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use parquet::errors::ParquetError;
use parquet::file::statistics::{Statistics, ValueStatistics};

use crate::error::Error;
use crate::parse::bytes::short_eq;

/// The chunk's dictionary, in first-occurrence order.
pub(super) enum Entries {
    Bytes(ByteDict),
    Int32(IntDict<i32>),
    Int64(IntDict<i64>),
}

impl Entries {
    pub(super) fn len(&self) -> usize {
        match self {
            Entries::Bytes(d) => d.ranges.len(),
            Entries::Int32(d) => d.values.len(),
            Entries::Int64(d) => d.values.len(),
        }
    }

    /// The general writer's estimate of the dictionary page's size.
    pub(super) fn page_bytes(&self) -> usize {
        match self {
            Entries::Bytes(d) => d.page.len(),
            Entries::Int32(d) => 4 * d.values.len(),
            Entries::Int64(d) => 8 * d.values.len(),
        }
    }

    /// The values at `indices` as an array of `data_type` (the type they were written as).
    pub(super) fn array(&self, data_type: &DataType, indices: &[u32]) -> Result<ArrayRef, Error> {
        let ints = |d: &IntDict<i64>| -> Vec<i64> {
            indices.iter().map(|&i| d.values[i as usize]).collect()
        };
        let array: ArrayRef = match (self, data_type) {
            (Entries::Bytes(d), DataType::Utf8) => Arc::new(StringArray::from(
                indices
                    .iter()
                    .map(|&i| d.text(i))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            (Entries::Bytes(d), DataType::Dictionary(_, _)) => {
                let values = (0..d.ranges.len() as u32)
                    .map(|i| d.text(i))
                    .collect::<Result<Vec<_>, _>>()?;
                let keys = indices.iter().map(|&i| i as i32).collect::<Vec<_>>();
                Arc::new(DictionaryArray::<Int32Type>::try_new(
                    Int32Array::from(keys),
                    Arc::new(StringArray::from(values)),
                )?)
            }
            (Entries::Int32(d), DataType::Int32) => Arc::new(Int32Array::from(
                indices
                    .iter()
                    .map(|&i| d.values[i as usize])
                    .collect::<Vec<_>>(),
            )),
            (Entries::Int64(d), DataType::Int64) => Arc::new(Int64Array::from(ints(d))),
            (Entries::Int64(d), DataType::Timestamp(TimeUnit::Millisecond, tz)) => {
                Arc::new(TimestampMillisecondArray::from(ints(d)).with_timezone_opt(tz.clone()))
            }
            (Entries::Int64(d), DataType::Decimal128(precision, scale)) => {
                let values: Vec<i128> = indices
                    .iter()
                    .map(|&i| d.values[i as usize] as i128)
                    .collect();
                Arc::new(
                    Decimal128Array::from(values).with_precision_and_scale(*precision, *scale)?,
                )
            }
            (_, other) => return Err(unsupported_type(other)),
        };
        Ok(array)
    }
}

/// Byte-array entries, kept as the dictionary page holds them.
pub(super) struct ByteDict {
    /// The PLAIN-encoded dictionary page: each value after its 4-byte length.
    pub(super) page: Vec<u8>,
    /// Where each entry's value is in `page`.
    pub(super) ranges: Vec<std::ops::Range<usize>>,
    pub(super) index: HashTable<u32>,
    pub(super) hasher: DefaultHashBuilder,
}

impl ByteDict {
    pub(super) fn value(&self, entry: u32) -> &[u8] {
        &self.page[self.ranges[entry as usize].clone()]
    }

    pub(super) fn text(&self, entry: u32) -> Result<&str, Error> {
        std::str::from_utf8(self.value(entry))
            .map_err(|e| Error::Parquet(ParquetError::External(Box::new(e))))
    }

    /// `v`'s entry, added if new.
    #[inline]
    pub(super) fn entry(&mut self, v: &[u8]) -> u32 {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(v);
        let (page, ranges) = (&self.page, &self.ranges);
        if let Some(&entry) = self
            .index
            .find(hash, |&e| short_eq(&page[ranges[e as usize].clone()], v))
        {
            return entry;
        }
        let entry = self.ranges.len() as u32;
        self.page.extend_from_slice(&(v.len() as u32).to_le_bytes());
        let start = self.page.len();
        self.page.extend_from_slice(v);
        self.ranges.push(start..self.page.len());
        let (page, ranges, hasher) = (&self.page, &self.ranges, &self.hasher);
        self.index.insert_unique(hash, entry, |&e| {
            hasher.hash_one(&page[ranges[e as usize].clone()])
        });
        entry
    }
}

/// The integer types of dictionary columns, and where their dictionary is.
pub(super) trait IntValue: Copy + Ord + Default + std::hash::Hash {
    fn dict(entries: &mut Entries) -> &mut IntDict<Self>;
    /// PLAIN encoding: little-endian.
    fn put_plain(self, out: &mut Vec<u8>);
    fn statistics(values: ValueStatistics<Self>) -> Statistics;
    /// The value's slot in [`IntDict::recent`].
    fn recent_slot(self) -> usize;
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
            #[inline(always)]
            fn recent_slot(self) -> usize {
                // Fibonacci hashing: the top bits of the product mix every bit of the value.
                ((self as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    >> (64 - RECENT.trailing_zeros())) as usize
            }
        }
    };
}

int_value!(i32, Int32);
int_value!(i64, Int64);

/// Integer entries, with an index once there are more than a handful.
pub(super) struct IntDict<T> {
    pub(super) values: Vec<T>,
    pub(super) index: HashMap<T, u32>,
    /// Entries found lately, by a hash of their value: the few hundred values that make most
    /// of a column's rows (products, prices) are found here with one load and one compare,
    /// without a probe of `index`.
    recent: Box<[(T, u32); RECENT]>,
}

/// Slots of [`IntDict::recent`] (a power of two): 16 KiB of `i64` entries, within L1.
const RECENT: usize = 1 << 10;
/// A slot of [`IntDict::recent`] that holds no entry.
const NO_ENTRY: u32 = u32::MAX;

impl<T: IntValue> IntDict<T> {
    pub(super) fn new() -> Self {
        IntDict {
            values: Vec::new(),
            index: HashMap::new(),
            recent: Box::new([(T::default(), NO_ENTRY); RECENT]),
        }
    }

    /// The dictionary page's values into `plain`, and the chunk's statistics.
    pub(super) fn plain_and_statistics(&self, plain: &mut Vec<u8>, signed: bool) -> Statistics {
        self.values.iter().for_each(|v| v.put_plain(plain));
        let (min, max) = (self.values.iter().min(), self.values.iter().max());
        T::statistics(value_statistics(min.copied(), max.copied(), signed))
    }

    /// `v`'s entry, added if new.
    #[inline]
    pub(super) fn entry(&mut self, v: T) -> u32 {
        // A handful of values: a scan beats hashing.
        if self.values.len() <= 8 {
            if let Some(i) = self.values.iter().position(|&e| e == v) {
                return i as u32;
            }
            return self.add(v);
        }
        let at = v.recent_slot();
        let slot = self.recent[at];
        if slot.0 == v && slot.1 != NO_ENTRY {
            return slot.1;
        }
        let entry = match self.index.get(&v) {
            Some(&entry) => entry,
            None => self.add(v),
        };
        self.recent[at] = (v, entry);
        entry
    }

    fn add(&mut self, v: T) -> u32 {
        let entry = self.values.len() as u32;
        self.values.push(v);
        self.index.insert(v, entry);
        entry
    }
}

pub(super) fn value_statistics<T>(
    min: Option<T>,
    max: Option<T>,
    signed: bool,
) -> ValueStatistics<T> {
    ValueStatistics::new(min, max, None, Some(0), false).with_backwards_compatible_min_max(signed)
}

pub(super) fn unsupported_type(data_type: &DataType) -> Error {
    Error::Parquet(ParquetError::General(format!(
        "the dictionary chunk writer cannot rebuild a {data_type} array"
    )))
}
