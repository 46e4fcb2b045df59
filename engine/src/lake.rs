//! A lake on the local file system: staging, atomic publication, manifests.
//!
//! A run writes everything under `_staging/<run_id>/`, mirroring the final layout. Publishing
//! renames each staged file into place and then writes `_runs/<run_id>.json`. The manifest is the
//! commit: readers consider only the files of runs with a `succeeded` manifest (every file name
//! starts with its run id), so a crash before or during publication exposes nothing, and the
//! retry, which writes the same names, converges on exactly what one run would have left.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::Manifest;
use crate::writer::create_parent;

pub const RUNS_DIR: &str = "_runs";
pub const STAGING_DIR: &str = "_staging";

/// A lake rooted at a local directory.
#[derive(Debug, Clone)]
pub struct LocalLake {
    root: PathBuf,
}

impl LocalLake {
    /// Opens (creating if needed) the lake at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, Error> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        Ok(LocalLake { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest_path(&self, run_id: &str) -> PathBuf {
        self.root.join(RUNS_DIR).join(format!("{run_id}.json"))
    }

    /// The manifest of a run, if it was committed.
    pub fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, Error> {
        let path = self.manifest_path(run_id);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| Error::Manifest { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Every committed manifest, oldest run first.
    pub fn manifests(&self) -> Result<Vec<Manifest>, Error> {
        let dir = self.root.join(RUNS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
                out.push(
                    serde_json::from_slice(&bytes)
                        .map_err(|source| Error::Manifest { path, source })?,
                );
            }
        }
        out.sort_by(|a: &Manifest, b: &Manifest| {
            (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id))
        });
        Ok(out)
    }

    pub fn staging_dir(&self, run_id: &str) -> PathBuf {
        self.root.join(STAGING_DIR).join(run_id)
    }

    /// Removes what an earlier, interrupted attempt of the run left in staging.
    pub fn reset_staging(&self, run_id: &str) -> Result<PathBuf, Error> {
        let dir = self.staging_dir(run_id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(dir)
    }

    pub fn discard_staging(&self, run_id: &str) {
        let _ = fs::remove_dir_all(self.staging_dir(run_id));
    }

    /// Moves one staged file (path relative to the lake root) into place.
    pub fn publish_file(&self, run_id: &str, rel: &str) -> Result<(), Error> {
        let from = self.staging_dir(run_id).join(rel);
        let to = self.root.join(rel);
        create_parent(&to)?;
        fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
        Ok(())
    }

    /// Writes the manifest atomically (temporary file, fsync, rename): the commit point.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), Error> {
        let path = self.manifest_path(&manifest.run_id);
        create_parent(&path)?;
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        if let Some(dir) = path.parent().and_then(|d| fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
