//! The one dialect shim between the two backends.
//!
//! Reports use DataFusion's numbered placeholders (`$1`, `$2`…, a number may repeat). Athena
//! (Trino) binds positional `?` markers from `ExecutionParameters`, one value per marker in
//! order, each value written as a SQL literal (`42`, `'2026-11-22'`). [`to_athena`] rewrites the
//! markers and lists the values in marker order. It skips string literals and quoted
//! identifiers, so a `$1` inside quotes stays text. Values are never spliced into the SQL.

use super::Param;

/// One token of SQL text, as far as placeholders care.
enum Piece<'a> {
    Text(&'a str),
    Placeholder(usize),
}

/// Splits SQL into text and `$n` placeholders, leaving quoted text intact.
fn pieces(sql: &str) -> Vec<Piece<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                // `''` inside a literal is an escaped quote: the scan just re-enters.
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = (i + 1..bytes.len())
                    .find(|&j| !bytes[j].is_ascii_digit())
                    .unwrap_or(bytes.len());
                out.push(Piece::Text(&sql[start..i]));
                out.push(Piece::Placeholder(sql[i + 1..end].parse().unwrap_or(0)));
                i = end;
                start = end;
            }
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&sql[start.min(sql.len())..]));
    out
}

/// The placeholder numbers of `sql` in order of appearance (repeats included).
pub fn placeholders(sql: &str) -> Vec<usize> {
    pieces(sql)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(n) => Some(n),
            Piece::Text(_) => None,
        })
        .collect()
}

/// A parameter as an Athena `ExecutionParameters` entry: a SQL literal.
pub fn athena_literal(p: &Param) -> String {
    match p {
        Param::Int(v) => v.to_string(),
        Param::Text(s) => format!("'{}'", s.replace('\'', "''")),
    }
}

/// Rewrites `$n` to `?` and returns the execution parameters in marker order.
///
/// Athena takes `?` markers in the `WHERE` clause only ("Currently, ? parameters can be placed
/// only in the WHERE clause": Athena user guide, "Use parameterized queries", considerations
/// and limitations). A page bound (`OFFSET $n`, `LIMIT $n`) is therefore written into the text
/// as an integer literal; it is always an integer the API validated, never user text.
/// Panics if the SQL names a parameter that was not given, or binds text to a page bound (bugs
/// caught by the unit tests).
pub fn to_athena(sql: &str, params: &[Param]) -> (String, Vec<String>) {
    let mut text = String::with_capacity(sql.len());
    let mut values = Vec::new();
    for piece in pieces(sql) {
        match piece {
            Piece::Text(t) => text.push_str(t),
            Piece::Placeholder(n) => {
                let p = params
                    .get(n.wrapping_sub(1))
                    .unwrap_or_else(|| panic!("${n} is not bound ({} given)", params.len()));
                if ends_with_page_keyword(&text) {
                    let Param::Int(bound) = p else {
                        panic!("${n} is a page bound bound to text");
                    };
                    text.push_str(&bound.to_string());
                } else {
                    text.push('?');
                    values.push(athena_literal(p));
                }
            }
        }
    }
    (text, values)
}

/// Whether SQL text ends with the keyword `OFFSET` or `LIMIT` (then whitespace).
fn ends_with_page_keyword(text: &str) -> bool {
    let word = text
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or("");
    word.eq_ignore_ascii_case("OFFSET") || word.eq_ignore_ascii_case("LIMIT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_positional_markers_in_order() {
        let (sql, values) = to_athena(
            "SELECT * FROM t WHERE a = $2 AND (b = $1 OR $2 = '') OFFSET $3 LIMIT $10",
            &[
                Param::Int(7),
                "x".into(),
                Param::Int(0),
                Param::Int(4),
                Param::Int(5),
                Param::Int(6),
                Param::Int(7),
                Param::Int(8),
                Param::Int(9),
                Param::Int(100),
            ],
        );
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE a = ? AND (b = ? OR ? = '') OFFSET 0 LIMIT 100"
        );
        assert_eq!(values, ["'x'", "7", "'x'"]);
    }

    #[test]
    fn page_bounds_are_literals_whatever_the_case_and_spacing() {
        let (sql, values) = to_athena(
            "SELECT x FROM t WHERE y = $1 ORDER BY x offset\n  $2 limit $3",
            &["o".into(), Param::Int(20), Param::Int(11)],
        );
        assert_eq!(
            sql,
            "SELECT x FROM t WHERE y = ? ORDER BY x offset\n  20 limit 11"
        );
        assert_eq!(values, ["'o'"]);
        // A column whose name ends in `limit` is not the keyword.
        let (sql, values) = to_athena("SELECT 1 WHERE credit_limit = $1", &[Param::Int(5)]);
        assert_eq!(sql, "SELECT 1 WHERE credit_limit = ?");
        assert_eq!(values, ["5"]);
    }

    #[test]
    #[should_panic(expected = "page bound bound to text")]
    fn text_for_a_page_bound_is_a_bug() {
        to_athena("SELECT 1 LIMIT $1", &["10; DROP".into()]);
    }

    #[test]
    fn quoted_text_is_left_alone() {
        let sql = "SELECT '$1', 'it''s $2', \"$3\" FROM t WHERE x = $1";
        assert_eq!(placeholders(sql), [1]);
        let (out, values) = to_athena(sql, &[Param::Int(1)]);
        assert_eq!(out, "SELECT '$1', 'it''s $2', \"$3\" FROM t WHERE x = ?");
        assert_eq!(values, ["1"]);
    }

    #[test]
    fn text_values_are_quoted_literals() {
        assert_eq!(athena_literal(&"2026-11-22".into()), "'2026-11-22'");
        assert_eq!(athena_literal(&"o'brien".into()), "'o''brien'");
        assert_eq!(athena_literal(&Param::Int(-3)), "-3");
    }

    #[test]
    #[should_panic(expected = "$2 is not bound")]
    fn a_missing_parameter_is_a_bug() {
        to_athena("SELECT $2", &[Param::Int(1)]);
    }
}
