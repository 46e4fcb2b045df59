//! # duff-s3
//!
//! The S3 side of the Duff engine, kept out of `duff-engine` so the core builds without the AWS
//! SDK: [`S3Source`] reads an object with parallel, ETag-pinned ranged GETs; [`S3Lake`] writes a
//! lake with multipart uploads completed at publication and a create-only manifest commit.
//! [`Location`] lets callers mix local paths and `s3://` URLs for inputs and lakes.
//!
//! Both adapters bridge the engine's blocking interface onto a Tokio runtime: create them inside
//! one, call the engine from a thread that is not a runtime worker (the main thread, or
//! `tokio::task::spawn_blocking`).

mod classify;
pub mod config;
pub mod lake;
pub mod source;
#[cfg(feature = "test-server")]
pub mod test_server;

use std::path::PathBuf;

use duff_engine::Error;

pub use classify::classify;
pub use config::{Endpoint, S3Url, TransferSettings, client, object_store};
pub use lake::S3Lake;
pub use source::S3Source;

/// Where an input or a lake lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on this machine: a file for an input, a directory for a lake.
    Local(PathBuf),
    /// An object (an input) or a key prefix (a lake) in S3.
    S3(S3Url),
}

impl Location {
    /// `s3://bucket/key` or a local path: anything that does not start with `s3://` is a path.
    /// Fails only on an `s3://` URL without a bucket.
    pub fn parse(s: &str) -> Result<Location, Error> {
        match S3Url::parse(s) {
            Some(url) => Ok(Location::S3(url?)),
            None => Ok(Location::Local(PathBuf::from(s))),
        }
    }

    /// Whether this location needs the AWS side (an S3 client and a runtime).
    pub fn is_s3(&self) -> bool {
        matches!(self, Location::S3(_))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3(u) => write!(f, "{u}"),
        }
    }
}
