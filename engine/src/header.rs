//! The header row: required columns matched by name, in any order.

use crate::error::Error;
use crate::fields::{FieldSpan, QuoteError, field_text, split_fields};
use crate::rules::{Col, REQUIRED_COLUMNS};

/// Where each required column sits in a record, and what else the header holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    /// `index[c]` is the field position of [`REQUIRED_COLUMNS`]`[c]`.
    pub index: [usize; REQUIRED_COLUMNS.len()],
    /// Number of fields every record must have.
    pub field_count: usize,
    /// Columns that are not required, as written (trimmed); they are ignored.
    pub extra_columns: Vec<String>,
}

impl HeaderMap {
    #[inline]
    pub(crate) fn field(&self, spans: &[FieldSpan], c: Col) -> FieldSpan {
        spans[self.index[c as usize]]
    }
}

/// Reads the header record (its text without the line terminator or byte-order mark).
pub fn parse_header(record: &[u8]) -> Result<HeaderMap, Error> {
    let mut spans = Vec::new();
    split_fields(record, &mut spans).map_err(|e| {
        Error::HeaderQuoting(match e {
            QuoteError::Stray => "a quote inside an unquoted name",
            QuoteError::Unterminated => "an unterminated quote",
        })
    })?;
    let mut scratch = Vec::new();
    let mut names = Vec::with_capacity(spans.len());
    for &span in &spans {
        let text = field_text(record, span, &mut scratch);
        let name = std::str::from_utf8(text).map_err(|_| Error::HeaderNotUtf8)?;
        names.push(name.trim().to_string());
    }
    let mut index = [usize::MAX; REQUIRED_COLUMNS.len()];
    let mut extra_columns = Vec::new();
    for (pos, name) in names.iter().enumerate() {
        match REQUIRED_COLUMNS
            .iter()
            .position(|r| r.eq_ignore_ascii_case(name))
        {
            Some(c) if index[c] != usize::MAX => {
                return Err(Error::DuplicateColumn(REQUIRED_COLUMNS[c].to_string()));
            }
            Some(c) => index[c] = pos,
            None => extra_columns.push(name.clone()),
        }
    }
    let missing: Vec<String> = REQUIRED_COLUMNS
        .iter()
        .zip(index)
        .filter(|(_, i)| *i == usize::MAX)
        .map(|(n, _)| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingColumns {
            missing,
            found: names,
        });
    }
    Ok(HeaderMap {
        index,
        field_count: spans.len(),
        extra_columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "client_id,client_name,order_id,product_id,product_description,product_price,product_ccf,product_volume,point_of_sale_channel,status";

    #[test]
    fn canonical_order() {
        let h = parse_header(CANONICAL.as_bytes()).unwrap();
        assert_eq!(h.index, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(h.field_count, 10);
        assert!(h.extra_columns.is_empty());
    }

    #[test]
    fn any_order_case_spaces_quotes_and_extras() {
        let h = parse_header(
            br#"Status, Notes ,"CLIENT_ID",client_name,order_id,product_id,product_description,product_price,product_ccf,product_volume,Point_Of_Sale_Channel"#,
        )
        .unwrap();
        assert_eq!(h.index[0], 2);
        assert_eq!(h.index[9], 0);
        assert_eq!(h.index[8], 10);
        assert_eq!(h.field_count, 11);
        assert_eq!(h.extra_columns, ["Notes"]);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_header(b"client_id,order_id").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("client_name") && msg.contains("status"),
            "{msg}"
        );
        assert_eq!(e.code(), "missing_columns");
        let dup = format!("{CANONICAL},Status");
        assert_eq!(
            parse_header(dup.as_bytes()).unwrap_err().code(),
            "duplicate_column"
        );
        assert_eq!(
            parse_header(b"\"client_id,x").unwrap_err().code(),
            "header_quoting"
        );
        let mut bad = CANONICAL.as_bytes().to_vec();
        bad[3] = 0xff;
        assert_eq!(parse_header(&bad).unwrap_err().code(), "header_not_utf8");
    }
}
