//! What to generate: size, catalog sizes, dialect switches and dirt rates.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How much to write. Both variants count data records only from the first
/// row after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// Exactly this many data records (header excluded, dirty rows included).
    Rows(u64),
    /// Stop at the first record boundary at or after this many bytes
    /// (BOM and header included). An `unterminated_quote` tail row, when
    /// asked for, is appended after that boundary.
    Bytes(u64),
}

/// Why the engine rejects a row. The `snake_case` strings ([`Reason::as_str`],
/// also the serde form) are the engine's reason codes, byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The record does not have as many fields as the header.
    FieldCount,
    /// The record is not valid UTF-8.
    InvalidUtf8,
    /// A `"` inside an unquoted field, or text after a closing quote.
    BadQuoting,
    /// A quoted field that never closes (only ever the file's last row).
    UnterminatedQuote,
    /// `client_id` is not a positive 64-bit integer.
    InvalidClientId,
    /// `order_id` is not a positive 64-bit integer.
    InvalidOrderId,
    /// `product_id` is not a positive 64-bit integer.
    InvalidProductId,
    /// `client_name` is empty or blank once trimmed.
    EmptyClientName,
    /// `product_description` is empty or blank once trimmed.
    EmptyProductDescription,
    /// `product_price` is not a decimal that fits DECIMAL(18,4) without rounding.
    InvalidProductPrice,
    /// `product_ccf` (units per line) is not a positive 64-bit integer.
    InvalidProductCcf,
    /// `product_volume` is zero or not a decimal that fits DECIMAL(18,4) without rounding.
    InvalidProductVolume,
    /// `point_of_sale_channel` is none of the accepted channels.
    UnknownChannel,
    /// `status` is none of `created`, `delivered`, `broken`.
    UnknownStatus,
    /// `price × ccf` or `volume × ccf` does not fit the total's DECIMAL(18,4).
    TotalOverflow,
    /// Same `(order_id, product_id)` as an earlier valid row of the file, with different content.
    KeyConflict,
}

impl Reason {
    /// Every reason code the engine can report.
    pub const ALL: [Reason; 16] = [
        Reason::FieldCount,
        Reason::InvalidUtf8,
        Reason::BadQuoting,
        Reason::UnterminatedQuote,
        Reason::InvalidClientId,
        Reason::InvalidOrderId,
        Reason::InvalidProductId,
        Reason::EmptyClientName,
        Reason::EmptyProductDescription,
        Reason::InvalidProductPrice,
        Reason::InvalidProductCcf,
        Reason::InvalidProductVolume,
        Reason::UnknownChannel,
        Reason::UnknownStatus,
        Reason::TotalOverflow,
        Reason::KeyConflict,
    ];

    /// The kinds that can be sprinkled anywhere at a per-row rate
    /// ([`Dirt::bad_rows`] keys). `UnterminatedQuote` is excluded because it
    /// can only be the file's last row, `KeyConflict` because it has its own
    /// rate ([`Dirt::key_conflicts`]).
    pub const ROW_KINDS: [Reason; 14] = [
        Reason::FieldCount,
        Reason::InvalidUtf8,
        Reason::BadQuoting,
        Reason::InvalidClientId,
        Reason::InvalidOrderId,
        Reason::InvalidProductId,
        Reason::EmptyClientName,
        Reason::EmptyProductDescription,
        Reason::InvalidProductPrice,
        Reason::InvalidProductCcf,
        Reason::InvalidProductVolume,
        Reason::UnknownChannel,
        Reason::UnknownStatus,
        Reason::TotalOverflow,
    ];

    /// The engine's reason code.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FieldCount => "field_count",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::BadQuoting => "bad_quoting",
            Reason::UnterminatedQuote => "unterminated_quote",
            Reason::InvalidClientId => "invalid_client_id",
            Reason::InvalidOrderId => "invalid_order_id",
            Reason::InvalidProductId => "invalid_product_id",
            Reason::EmptyClientName => "empty_client_name",
            Reason::EmptyProductDescription => "empty_product_description",
            Reason::InvalidProductPrice => "invalid_product_price",
            Reason::InvalidProductCcf => "invalid_product_ccf",
            Reason::InvalidProductVolume => "invalid_product_volume",
            Reason::UnknownChannel => "unknown_channel",
            Reason::UnknownStatus => "unknown_status",
            Reason::TotalOverflow => "total_overflow",
            Reason::KeyConflict => "key_conflict",
        }
    }

    /// Inverse of [`Reason::as_str`].
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == code)
    }

    /// Position in [`Reason::ROW_KINDS`], if this is a per-row kind.
    pub(crate) fn row_kind_index(self) -> Option<usize> {
        Reason::ROW_KINDS.iter().position(|&r| r == self)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How dirty the file is. Every rate is a fraction of all data rows, drawn
/// independently per row, so counts are approximate but [`crate::Expected`]
/// reports exactly what was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dirt {
    /// Byte-for-byte copies of earlier valid rows of the same block.
    pub exact_duplicates: f64,
    /// Rows reusing the key of an earlier valid row with another status or ccf.
    pub key_conflicts: f64,
    /// Per-kind rate of rows failing exactly one rule; keys must be in
    /// [`Reason::ROW_KINDS`].
    pub bad_rows: BTreeMap<Reason, f64>,
    /// End the file with one row whose client_name opens a quote that never
    /// closes (and no line end after it).
    pub unterminated_quote_at_end: bool,
}

impl Dirt {
    /// A clean file.
    pub fn none() -> Dirt {
        Dirt {
            exact_duplicates: 0.0,
            key_conflicts: 0.0,
            bad_rows: BTreeMap::new(),
            unterminated_quote_at_end: false,
        }
    }

    /// What a real feed looks like: 2% re-sent rows, 0.3% conflicting
    /// updates and 0.05% of each bad-row kind.
    pub fn typical() -> Dirt {
        Dirt {
            exact_duplicates: 0.02,
            key_conflicts: 0.003,
            bad_rows: Reason::ROW_KINDS.iter().map(|&r| (r, 0.0005)).collect(),
            unterminated_quote_at_end: false,
        }
    }

    /// Every kind of dirt at `rate` (duplicates and conflicts included) plus
    /// the unterminated tail row: for tests that want each reason code present.
    pub fn every_kind(rate: f64) -> Dirt {
        Dirt {
            exact_duplicates: rate,
            key_conflicts: rate,
            bad_rows: Reason::ROW_KINDS.iter().map(|&r| (r, rate)).collect(),
            unterminated_quote_at_end: true,
        }
    }

    /// Sum of all per-row rates.
    pub fn total_rate(&self) -> f64 {
        self.exact_duplicates + self.key_conflicts + self.bad_rows.values().sum::<f64>()
    }

    fn validate(&self) -> Result<(), Error> {
        let rates = [
            ("exact_duplicates", self.exact_duplicates),
            ("key_conflicts", self.key_conflicts),
        ];
        for (name, rate) in rates
            .into_iter()
            .chain(self.bad_rows.iter().map(|(r, &v)| (r.as_str(), v)))
        {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Error::InvalidConfig(format!(
                    "dirt rate {name} = {rate} is not within 0..=1"
                )));
            }
        }
        if let Some(r) = self.bad_rows.keys().find(|r| r.row_kind_index().is_none()) {
            return Err(Error::InvalidConfig(format!(
                "{r} cannot be a per-row rate (see Reason::ROW_KINDS)"
            )));
        }
        let total = self.total_rate();
        if total > 1.0 + 1e-9 {
            return Err(Error::InvalidConfig(format!(
                "dirt rates add up to {total} > 1"
            )));
        }
        Ok(())
    }
}

impl Default for Dirt {
    fn default() -> Dirt {
        Dirt::none()
    }
}

/// Everything that determines the output; equal configs give equal bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Everything random derives from it, and so does the file's range of order ids: files of
    /// different seeds never share an order id, and a larger seed has larger ids (real ids are
    /// unique across files and grow over time).
    pub seed: u64,
    /// How much to write: a number of records or of bytes.
    pub size: Size,
    /// Distinct clients in the catalog (Zipf-skewed order counts).
    pub clients: u32,
    /// Distinct products in the catalog (Zipf-skewed popularity).
    pub products: u32,
    /// Which bad rows, duplicates and conflicts to mix in, and how often.
    pub dirt: Dirt,
    /// Records end with CRLF instead of LF (embedded newlines stay LF).
    pub crlf: bool,
    /// Start the file with a UTF-8 byte order mark.
    pub bom: bool,
    /// End the last record with a line end.
    pub final_newline: bool,
    /// Permute the column order (rows follow the header).
    pub shuffle_columns: bool,
    /// Add `sales_rep` and `notes` columns the engine must ignore.
    pub extra_columns: bool,
    /// Header names in random case with surrounding spaces (` Client_ID `).
    pub header_case_noise: bool,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            seed: 42,
            size: Size::Rows(10_000),
            clients: 10_000,
            products: 500,
            dirt: Dirt::none(),
            crlf: false,
            bom: false,
            final_newline: true,
            shuffle_columns: false,
            extra_columns: false,
            header_case_noise: false,
        }
    }
}

impl GenConfig {
    /// Rejects configs that cannot be generated (empty catalogs, bad rates).
    pub fn validate(&self) -> Result<(), Error> {
        if self.clients == 0 || self.products == 0 {
            return Err(Error::InvalidConfig(
                "clients and products must be at least 1".into(),
            ));
        }
        self.dirt.validate()
    }
}
