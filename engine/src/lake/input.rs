//! Local input files: identity (which fixes the run id) and bytes (memory map or gzip stream).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{DateTime, NaiveDate, Utc};
use memmap2::Mmap;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::lake::manifest::SourceInfo;
use crate::lake::storage::{InputBytes, Source};

/// A local input file and its identity.
#[derive(Debug, Clone)]
pub struct LocalInput {
    /// The file's canonical (absolute, symlinks resolved) path.
    pub path: PathBuf,
    /// The file's size on disk, in bytes (compressed, for a gzip file).
    pub size: u64,
    /// The file's modification time: the local stand-in for an upload time.
    pub modified: DateTime<Utc>,
    /// The modification time in nanoseconds since the Unix epoch (0 if before it): the
    /// version stamp of the run's identity.
    pub modified_nanos: u128,
    /// Whether the file is read as gzip: its name ends in `.gz`, in any case.
    pub gzip: bool,
}

impl LocalInput {
    /// Takes the identity of the regular file at `path` (nothing is read yet); fails with
    /// [`Error::Io`] when it is missing, unreadable or not a regular file.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let path = path.canonicalize().map_err(|e| Error::io(path, e))?;
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(Error::io(
                &path,
                std::io::Error::other("not a regular file"),
            ));
        }
        let mtime = meta.modified().map_err(|e| Error::io(&path, e))?;
        let modified_nanos = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        Ok(LocalInput {
            size: meta.len(),
            modified: DateTime::<Utc>::from(mtime),
            modified_nanos,
            gzip: name.ends_with(".gz"),
            path,
        })
    }

    /// The file's URI, `file:///abs/path`, as recorded in [`SourceInfo::uri`].
    pub fn uri(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// The UTC date of the file's last modification: the local stand-in for the upload date.
    pub fn default_pa_date(&self) -> NaiveDate {
        self.modified.date_naive()
    }
}

impl Source for LocalInput {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            uri: self.uri(),
            size_bytes: self.size,
            version: format!("mtime-ns:{}", self.modified_nanos),
            gzip: self.gzip,
        }
    }

    fn modified(&self) -> DateTime<Utc> {
        self.modified
    }

    fn open(&self) -> Result<InputBytes, Error> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        if self.gzip {
            let decoder =
                flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
            return Ok(InputBytes::Stream(Box::new(decoder)));
        }
        if self.size == 0 {
            return Ok(InputBytes::Empty);
        }
        // SAFETY: the map is read-only; the contract with the uploader is that an input file is
        // not modified while it is processed (S3 objects are immutable; the ETag/mtime is pinned).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&self.path, e))?;
        Ok(InputBytes::Mapped(map))
    }
}

/// The run id of an input: a hash of its identity, so the same object always gets the same id
/// (and the same output keys), and a new version of it gets a new one.
pub fn run_id_for(source: &SourceInfo) -> String {
    let mut h = Sha256::new();
    for part in [
        "duff-run-v1",
        &source.uri,
        &source.size_bytes.to_string(),
        &source.version,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_depends_on_every_part_of_the_identity() {
        let a = SourceInfo {
            uri: "s3://b/k".into(),
            size_bytes: 10,
            version: "e1".into(),
            gzip: false,
        };
        let id = run_id_for(&a);
        assert_eq!(id.len(), 20);
        assert_eq!(id, run_id_for(&a.clone()));
        for b in [
            SourceInfo {
                uri: "s3://b/k2".into(),
                ..a.clone()
            },
            SourceInfo {
                size_bytes: 11,
                ..a.clone()
            },
            SourceInfo {
                version: "e2".into(),
                ..a.clone()
            },
        ] {
            assert_ne!(run_id_for(&b), id);
        }
    }
}
