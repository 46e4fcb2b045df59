//! The header row: found after any byte-order mark and blank lines, and its required columns
//! matched by name, in any order.

use simd_csv::TotalReaderBuilder;

use super::fields::{FieldSpan, QuoteError, field_text, split_fields};
use super::rules::{Col, REQUIRED_COLUMNS};
use crate::error::Error;

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

/// The header record of an input, and where its data starts.
pub(crate) struct Header {
    pub map: HeaderMap,
    /// First byte after the header's line end.
    pub data_start: usize,
    /// Line number of the first line after the header.
    pub first_data_line: u64,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads the header record at the start of `buf` (the input's first bytes; `eof` when they are
/// all of it). A header longer than `max_record`, or unterminated before the end of `buf`, is
/// `LineTooLong`.
pub(crate) fn read_header(buf: &[u8], eof: bool, max_record: usize) -> Result<Header, Error> {
    let mut at = if buf.starts_with(BOM) { BOM.len() } else { 0 };
    let mut line = 1;
    while at < buf.len() && matches!(buf[at], b'\n' | b'\r') {
        line += (buf[at] == b'\n') as u64;
        at += 1;
    }
    if at >= buf.len() {
        return Err(Error::EmptyFile);
    }
    let mut reader = TotalReaderBuilder::new()
        .has_headers(false)
        .from_bytes(&buf[at..]);
    let record = reader.split_record().ok_or(Error::EmptyFile)?;
    let end = at + record.len();
    let terminated = record.ends_with(b"\n");
    if record.len() > max_record || (!terminated && !eof) {
        return Err(Error::LineTooLong {
            line,
            max_bytes: max_record,
        });
    }
    let content = record.strip_suffix(b"\n").unwrap_or(record);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    let header_newlines = memchr::memchr_iter(b'\n', record).count() as u64;
    Ok(Header {
        map: parse_header(content)?,
        data_start: end,
        first_data_line: line + header_newlines,
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
