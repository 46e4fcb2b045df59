//! A table's committed data files as their `add` actions describe them, what their names say
//! (the run, the attempt), and reading their bytes and footers.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use deltalake_core::kernel::{Action, Remove};
use deltalake_core::{DeltaTable, DeltaTableError};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::file::metadata::ParquetMetaDataReader;

use crate::error::Error;
use crate::tables::DeltaTableDef;

/// A committed data file, as its `add` action describes it.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    pub(crate) path: String,
    pub(crate) size: i64,
    pub(crate) partition_values: HashMap<String, Option<String>>,
    pub(crate) stats: Option<String>,
    /// `order_id` bounds, when the statistics have them.
    pub(crate) range: Option<(i64, i64)>,
}

impl DataFile {
    /// The row count in its statistics.
    pub(crate) fn num_records(&self) -> Option<usize> {
        let stats: serde_json::Value = serde_json::from_str(self.stats.as_deref()?).ok()?;
        stats["numRecords"].as_u64().map(|n| n as usize)
    }

    pub(crate) fn overlaps(&self, (lo, hi): (i64, i64)) -> bool {
        self.range.is_none_or(|(a, b)| a <= hi && b >= lo)
    }

    /// The `remove` of this file at `now`: a data change, or (compaction) rows moving to
    /// another file.
    pub(crate) fn remove(&self, now: i64, data_change: bool) -> Action {
        Action::Remove(Remove {
            path: self.path.clone(),
            data_change,
            deletion_timestamp: Some(now),
            extended_file_metadata: Some(true),
            partition_values: Some(self.partition_values.clone()),
            size: Some(self.size),
            ..Default::default()
        })
    }
}

/// Whether the table's log has a commit (or a checkpoint) yet.
pub(crate) async fn table_exists(table: &DeltaTable) -> bool {
    use futures::StreamExt;
    let store = table.log_store().object_store(None);
    let log = StorePath::from("_delta_log");
    let mut listing = store.list(Some(&log));
    while let Some(entry) = listing.next().await {
        if entry.is_ok_and(|meta| {
            meta.location
                .filename()
                .is_some_and(|n| n.ends_with(".json") || n.ends_with(".parquet"))
        }) {
            return true;
        }
    }
    false
}

/// Whether a load failed because there is no table at the location yet.
pub(crate) fn is_missing_table(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_) => true,
        // The kernel's error type is not re-exported; its variant shows in the message.
        DeltaTableError::KernelError(k) => k.to_string().starts_with("Invalid table location"),
        _ => false,
    }
}

/// The committed files of a table, with their key bounds.
pub(crate) fn data_files(table: &DeltaTable, def: &DeltaTableDef) -> Result<Vec<DataFile>, Error> {
    let state = table
        .snapshot()
        .map_err(|e| Error::delta(def.name, "snapshot", e))?;
    Ok(state
        .log_data()
        .iter()
        .map(|f| {
            let stats = f.stats();
            DataFile {
                path: f.path().to_string(),
                size: f.size(),
                partition_values: f.partition_values_map(),
                range: stats.as_deref().and_then(order_id_range),
                stats,
            }
        })
        .collect())
}

/// `order_id`'s bounds in an `add` action's statistics.
fn order_id_range(stats: &str) -> Option<(i64, i64)> {
    let stats: serde_json::Value = serde_json::from_str(stats).ok()?;
    Some((
        stats["minValues"]["order_id"].as_i64()?,
        stats["maxValues"]["order_id"].as_i64()?,
    ))
}

/// True for the files of any attempt of `run_id`: `<run_id>-…` or `<run_id>.…` in any
/// partition directory.
pub fn belongs_to_run(path: &str, run_id: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_prefix(run_id)
        .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('.'))
}

/// The run id a file is named after (`<run_id>-…` or `<run_id>.…`), if it is a run's file.
pub fn run_id_of_file(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let end = name.find(['-', '.'])?;
    let id = &name[..end];
    (id.len() == 20 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// 32 random bits that tell attempts of one run apart.
pub(crate) fn attempt_nonce() -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}

pub(crate) async fn get(store: &dyn ObjectStore, path: &StorePath) -> Result<Bytes, Error> {
    let result = store.get(path).await.map_err(|source| Error::ObjectStore {
        path: path.to_string(),
        operation: "get",
        source: Box::new(source),
    })?;
    result.bytes().await.map_err(|source| Error::ObjectStore {
        path: path.to_string(),
        operation: "get",
        source: Box::new(source),
    })
}

/// Reads a Parquet file's footer with two ranged reads (length, then metadata).
pub(crate) async fn read_footer(
    store: &dyn ObjectStore,
    rel: &str,
    size: u64,
) -> Result<parquet::file::metadata::ParquetMetaData, Error> {
    let path = StorePath::from(rel);
    let store_error = |source: object_store::Error| Error::ObjectStore {
        path: rel.to_string(),
        operation: "read footer",
        source: Box::new(source),
    };
    if size < 12 {
        return Err(Error::Invalid(format!(
            "{rel}: {size} bytes is no Parquet file"
        )));
    }
    let tail = store
        .get_range(&path, size - 8..size)
        .await
        .map_err(store_error)?;
    let len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
    if &tail[4..] != b"PAR1" || len + 8 > size {
        return Err(Error::Invalid(format!("{rel}: not a Parquet file")));
    }
    let footer = store
        .get_range(&path, size - 8 - len..size - 8)
        .await
        .map_err(store_error)?;
    ParquetMetaDataReader::decode_metadata(&footer).map_err(|source| Error::Parquet {
        path: rel.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_a_run_are_recognised_whatever_the_attempt() {
        assert!(belongs_to_run(
            "pa_date=2026-11-22/abc-1f2e3d4c-0.parquet",
            "abc"
        ));
        assert!(belongs_to_run("abc-1f2e3d4c.parquet", "abc"));
        assert!(belongs_to_run("pa_date=2026-11-22/abc.parquet", "abc"));
        assert!(!belongs_to_run("pa_date=2026-11-22/abcd-0.parquet", "abc"));
        assert!(!belongs_to_run("abc/x-0.parquet", "abc"));
    }

    #[test]
    fn a_files_run_id_is_read_from_its_name() {
        let id = "0123456789abcdef0123";
        assert_eq!(
            run_id_of_file(&format!("pa_date=2026-11-22/{id}-1f2e3d4c-0.parquet")),
            Some(id)
        );
        assert_eq!(run_id_of_file(&format!("{id}-1f2e3d4c.parquet")), Some(id));
        assert_eq!(run_id_of_file("pa_date=2026-11-22/part-0001.parquet"), None);
        assert_eq!(run_id_of_file("0123.parquet"), None);
    }
}
