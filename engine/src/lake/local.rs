//! A lake on the local file system: staging, atomic publication, manifests.
//!
//! A run writes everything under `_staging/<run_id>/`, mirroring the final layout. Publishing
//! renames each staged file into place and then writes `_runs/<run_id>.json`. The manifest is the
//! commit: readers consider only the files of runs with a `succeeded` manifest (every file name
//! starts with its run id), so a crash before or during publication exposes nothing, and the
//! retry, which writes the same names, converges on exactly what one run would have left.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::manifest::{Manifest, WrittenFile};
use super::storage::{Commit, Lake, ObjectWriter, Stage};
use crate::error::Error;

/// The directory under the lake root holding the committed manifests, `<run_id>.json`.
pub const RUNS_DIR: &str = "_runs";
/// The directory under the lake root where attempts write their files before publication, one
/// subdirectory per attempt; nothing in it is committed.
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

    /// The lake's root directory (canonical): output paths in manifests are relative to it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the manifest of `run_id` is (or would be) committed: `<root>/_runs/<run_id>.json`.
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

    /// The staging directory of the attempt with file stem `stem`: `<root>/_staging/<stem>`.
    pub fn staging_dir(&self, stem: &str) -> PathBuf {
        self.root.join(STAGING_DIR).join(stem)
    }

    /// Writes the manifest atomically (temporary file, fsync, then link or rename).
    fn write_manifest(&self, manifest: &Manifest, overwrite: bool) -> Result<Commit, Error> {
        let path = self.manifest_path(&manifest.run_id);
        create_parent(&path)?;
        // A unique temporary name: concurrent attempts of the same run must not share it.
        let tmp = path.with_extension(format!(
            "json.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        // One line of JSON: the `runs` table reads `_runs/` as newline-delimited JSON (Athena's
        // JSON SerDe and the embedded engine both need one object per line).
        let mut json = serde_json::to_vec(manifest).expect("manifest serialises");
        json.push(b'\n');
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        let placed = if overwrite {
            fs::rename(&tmp, &path)
        } else {
            // link(2) fails if the name exists: a create-only commit.
            let linked = fs::hard_link(&tmp, &path);
            let _ = fs::remove_file(&tmp);
            linked
        };
        match placed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let existing = self
                    .read_manifest(&manifest.run_id)?
                    .ok_or_else(|| Error::io(&path, std::io::Error::other("manifest vanished")))?;
                return Ok(Commit::AlreadyCommitted(Box::new(existing)));
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::io(&path, e));
            }
        }
        if let Some(dir) = path.parent().and_then(|d| fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(Commit::Written)
    }
}

impl Lake for LocalLake {
    fn uri(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, Error> {
        LocalLake::read_manifest(self, run_id)
    }

    fn stage(&self, stem: &str) -> Result<Box<dyn Stage>, Error> {
        let dir = self.staging_dir(stem);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Box::new(LocalStage {
            root: self.root.clone(),
            dir,
            stem: stem.to_string(),
        }))
    }

    fn commit(&self, manifest: &Manifest, overwrite: bool) -> Result<Commit, Error> {
        self.write_manifest(manifest, overwrite)
    }
}

/// An attempt's staging directory, `_staging/<stem>/`, mirroring the final layout.
struct LocalStage {
    root: PathBuf,
    dir: PathBuf,
    /// The attempt's file stem (the run id unless the lake gives attempts their own).
    stem: String,
}

impl Stage for LocalStage {
    fn create(&self, rel: &str) -> Result<Box<dyn ObjectWriter>, Error> {
        let path = self.dir.join(rel);
        create_parent(&path)?;
        let file = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Box::new(LocalFile::new(file, path)))
    }

    fn publish(&self, files: &[WrittenFile]) -> Result<(), Error> {
        let mut dirs = BTreeSet::new();
        for (i, file) in files.iter().enumerate() {
            let from = self.dir.join(&file.path);
            let to = self.root.join(&file.path);
            create_parent(&to)?;
            fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
            if i == 0 {
                crate::failpoint::hit("mid_publish");
            }
            if let Some(parent) = to.parent() {
                dirs.insert(parent.to_path_buf());
            }
        }
        let keep: BTreeSet<PathBuf> = files.iter().map(|f| self.root.join(&f.path)).collect();
        for dir in dirs {
            let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            for entry in entries {
                let path = entry.map_err(|e| Error::io(&dir, e))?.path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.is_some_and(|n| is_file_of_run(&n, &self.stem)) && !keep.contains(&path) {
                    tracing::info!(path = %path.display(), "removing a stale part of this run");
                    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        self.abort();
        Ok(())
    }

    fn abort(&self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// True for `<run_id>.parquet` and `<run_id>-<n>.parquet`.
pub fn is_file_of_run(name: &str, run_id: &str) -> bool {
    name.strip_prefix(run_id).is_some_and(|rest| {
        rest == ".parquet"
            || rest
                .strip_prefix('-')
                .and_then(|r| r.strip_suffix(".parquet"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

struct LocalFile {
    out: BufWriter<fs::File>,
    path: PathBuf,
    /// Bytes written, and bytes whose writeback to disk has been started.
    written: u64,
    writeback_from: u64,
}

/// A part file is made durable by the fsync in `finish`, but the kernel is asked to start
/// writing it back every this many bytes, so that fsync has little left to wait for: it took
/// ~80 ms at the end of every 1 GiB run, with both cores idle.
const WRITEBACK_STEP: u64 = 8 << 20;

impl LocalFile {
    fn new(file: fs::File, path: PathBuf) -> LocalFile {
        LocalFile {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            written: 0,
            writeback_from: 0,
        }
    }

    fn start_writeback(&mut self) {
        let in_file = self.written - self.out.buffer().len() as u64;
        if in_file - self.writeback_from < WRITEBACK_STEP {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor and integer arguments; SYNC_FILE_RANGE_WRITE only
            // starts writeback and is a hint: its result does not matter (fsync decides).
            unsafe {
                libc::sync_file_range(
                    self.out.get_ref().as_raw_fd(),
                    self.writeback_from as libc::off64_t,
                    (in_file - self.writeback_from) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.writeback_from = in_file;
    }
}

impl Write for LocalFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        self.start_writeback();
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)?;
        self.written += buf.len() as u64;
        self.start_writeback();
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl ObjectWriter for LocalFile {
    fn finish(self: Box<Self>) -> Result<u64, Error> {
        let LocalFile { out, path, .. } = *self;
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        Ok(file.metadata().map_err(|e| Error::io(&path, e))?.len())
    }
}

/// Creates the directories `path` will live in.
fn create_parent(path: &Path) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_file_names_are_recognised_exactly() {
        assert!(is_file_of_run("abc.parquet", "abc"));
        assert!(is_file_of_run("abc-0.parquet", "abc"));
        assert!(is_file_of_run("abc-12.parquet", "abc"));
        assert!(!is_file_of_run("abcd-0.parquet", "abc"));
        assert!(!is_file_of_run("abc-.parquet", "abc"));
        assert!(!is_file_of_run("abc-x.parquet", "abc"));
        assert!(!is_file_of_run("abc-0.parquet.tmp", "abc"));
    }
}
