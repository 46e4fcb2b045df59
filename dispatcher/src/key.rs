//! Object keys as events carry them, and which keys the dispatcher acts on.
//!
//! S3 event notifications URL-encode the key form-style: a space arrives as `+`, a real `+` as
//! `%2B`, non-ASCII as percent-encoded UTF-8 (AWS: "The object key name value is URL encoded.
//! For example, `red flower.jpg` becomes `red+flower.jpg`"). S3's EventBridge events encode the
//! key the same way: AWS's own Powertools (`S3EventBridgeNotificationObject.key`) and OpenSearch
//! Data Prepper (`S3EventBridgeNotification.Object.getUrlDecodedKey`) both form-decode it, so
//! both event kinds go through [`decode_event_key`]. Keys from ListObjectsV2 (the backfill) are
//! raw and are never decoded: decoding twice would turn a real `%41` into `A`.

use percent_encoding::percent_decode_str;

use crate::error::DispatchError;

/// Decodes an event's key: `+` → space first, then percent-decoding, then strict UTF-8.
pub fn decode_event_key(encoded: &str) -> Result<String, DispatchError> {
    // Order matters: a literal `+` arrives as `%2B` and must survive as `+`.
    let spaced = encoded.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| {
            DispatchError::InvalidEvent(format!("object key {encoded:?} is not UTF-8 once decoded"))
        })
}

/// Whether a key names an input file: `.csv` or `.csv.gz`, case-insensitive.
pub fn is_csv(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.ends_with(".csv") || lower.ends_with(".csv.gz")
}

/// A readable, valid AWS Batch job name (≤ 128 of `[A-Za-z0-9_-]`, starting with a letter or
/// digit), deterministic per run: `duff-<file stem>-<run id>`, the stem sanitised and cut.
pub fn job_name(key: &str, run_id: &str) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    let lower = file.to_ascii_lowercase();
    let stem_len = [".csv.gz", ".csv"]
        .iter()
        .find(|s| lower.ends_with(*s))
        .map_or(file.len(), |s| file.len() - s.len());
    let stem: String = file[..stem_len]
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let run: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    if stem.is_empty() {
        format!("duff-{run}")
    } else {
        format!("duff-{stem}-{run}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_spaces_plus_unicode_and_percent() {
        let cases = [
            ("inbox/orders+2024.csv", "inbox/orders 2024.csv"),
            ("inbox/a%2Bb.csv", "inbox/a+b.csv"),
            ("inbox/%C3%BCber+caf%C3%A9.csv", "inbox/über café.csv"),
            ("inbox/100%25+done.csv", "inbox/100% done.csv"),
            ("inbox/%E5%AE%A2%E6%88%B7.csv.gz", "inbox/客户.csv.gz"),
            ("inbox/plain.csv", "inbox/plain.csv"),
            // A stray `%` that is not an escape stays as it is (S3 would have sent `%25`).
            ("inbox/50%off.csv", "inbox/50%off.csv"),
        ];
        for (encoded, raw) in cases {
            assert_eq!(decode_event_key(encoded).unwrap(), raw, "{encoded}");
        }
    }

    #[test]
    fn rejects_keys_that_are_not_utf8() {
        let e = decode_event_key("inbox/%FF%FE.csv").unwrap_err();
        assert!(matches!(e, DispatchError::InvalidEvent(_)));
    }

    #[test]
    fn csv_suffixes_are_case_insensitive() {
        for key in ["a.csv", "a.CSV", "x/y.Csv.Gz", "b.csv.gz"] {
            assert!(is_csv(key), "{key}");
        }
        for key in ["a.txt", "a.csv.zip", "a.gz", "inbox/", "csv", "a.csvx"] {
            assert!(!is_csv(key), "{key}");
        }
    }

    #[test]
    fn job_names_are_valid_for_batch_and_deterministic() {
        let long = format!("inbox/{}.csv", "ü x+".repeat(100));
        for key in [
            "inbox/orders 2024.csv",
            "inbox/客户.csv.gz",
            &long,
            "inbox/.csv",
        ] {
            let name = job_name(key, "0123456789abcdef0123");
            assert!(name.len() <= 128, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{name}"
            );
            assert!(name.starts_with("duff-") && name.ends_with("-0123456789abcdef0123"));
            assert_eq!(name, job_name(key, "0123456789abcdef0123"));
        }
        assert_eq!(
            job_name("inbox/orders 2024.CSV", "abc"),
            "duff-orders_2024-abc"
        );
    }
}
