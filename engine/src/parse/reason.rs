//! Why a row was quarantined: one stable code per rule of the data contract.

use serde::{Deserialize, Serialize};

/// The reason a row was rejected. The string codes ([`Reason::code`]) are part of the data
/// contract: they are stored in `quarantine/`, counted in the run manifest and served by the API,
/// so they never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A quote inside an unquoted field, or text after a closing quote.
    BadQuoting,
    /// A quoted field that is still open at the end of the line it starts on and never closes
    /// into a well-formed record.
    UnterminatedQuote,
    /// The record does not have exactly as many fields as the header.
    FieldCount,
    /// The record is not valid UTF-8.
    InvalidUtf8,
    /// `client_id` is not a positive integer that fits 64 bits.
    InvalidClientId,
    /// `client_name` is empty or only blanks.
    EmptyClientName,
    /// `order_id` is not a positive integer that fits 64 bits.
    InvalidOrderId,
    /// `product_id` is not a positive integer that fits 64 bits.
    InvalidProductId,
    /// `product_description` is empty or only blanks.
    EmptyProductDescription,
    /// `product_price` is not a non-negative decimal that fits DECIMAL(18,4) exactly (at most
    /// four fraction digits).
    InvalidProductPrice,
    /// `product_ccf`, the units ordered, is not a positive integer that fits 64 bits.
    InvalidProductCcf,
    /// `product_volume` is not a positive decimal that fits DECIMAL(18,4) exactly.
    InvalidProductVolume,
    /// `point_of_sale_channel` is not one of the run's channels (matched case-insensitively).
    UnknownChannel,
    /// `status` is not one of the contract's statuses (matched case-insensitively).
    UnknownStatus,
    /// `price × units` or `volume × units` does not fit the total's DECIMAL(18,4).
    TotalOverflow,
    /// Same `(order_id, product_id)` as an earlier row of the file, with different content.
    KeyConflict,
}

impl Reason {
    /// Every reason, in the order rules are checked.
    pub const ALL: [Reason; 16] = [
        Reason::BadQuoting,
        Reason::UnterminatedQuote,
        Reason::FieldCount,
        Reason::InvalidUtf8,
        Reason::InvalidClientId,
        Reason::EmptyClientName,
        Reason::InvalidOrderId,
        Reason::InvalidProductId,
        Reason::EmptyProductDescription,
        Reason::InvalidProductPrice,
        Reason::InvalidProductCcf,
        Reason::InvalidProductVolume,
        Reason::UnknownChannel,
        Reason::UnknownStatus,
        Reason::TotalOverflow,
        Reason::KeyConflict,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::BadQuoting => "bad_quoting",
            Reason::UnterminatedQuote => "unterminated_quote",
            Reason::FieldCount => "field_count",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::InvalidClientId => "invalid_client_id",
            Reason::EmptyClientName => "empty_client_name",
            Reason::InvalidOrderId => "invalid_order_id",
            Reason::InvalidProductId => "invalid_product_id",
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

    /// Parses a code produced by [`Reason::code`].
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_serde() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
        }
        assert_eq!(Reason::from_code("nope"), None);
    }
}
