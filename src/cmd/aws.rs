//! The AWS side of the CLI: one Tokio runtime and one S3 client, built once per process and
//! only when a location is on S3.

use duff_delta::DeltaLake;
use duff_engine::input::LocalInput;
use duff_engine::{Lake, Source};
use duff_s3::{Endpoint, Location, S3Lake, S3Source, S3Url, TransferSettings};

use crate::cli::S3Args;

pub struct Aws {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
    settings: TransferSettings,
    fold_lease: std::time::Duration,
}

impl S3Args {
    pub fn settings(&self) -> anyhow::Result<TransferSettings> {
        let settings = TransferSettings {
            read_chunk_bytes: self.s3_read_chunk_mib << 20,
            read_concurrency: self.s3_read_concurrency,
            part_bytes: self.s3_part_mib << 20,
            upload_concurrency: self.s3_upload_concurrency,
            max_attempts: self.s3_max_attempts,
            ..TransferSettings::default()
        };
        settings.validate()?;
        Ok(settings)
    }
}

impl Aws {
    pub fn connect(args: &S3Args) -> anyhow::Result<Aws> {
        let settings = args.settings()?;
        // I/O only: the engine's parsing runs on its own rayon pool.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("duff-io")
            .enable_all()
            .build()?;
        let client = runtime.block_on(duff_s3::client(&settings, &Endpoint::default()));
        Ok(Aws {
            runtime,
            client,
            settings,
            fold_lease: std::time::Duration::from_secs(args.fold_lease_secs),
        })
    }

    /// Looks an object up; with `etag`, that exact version.
    pub fn source(&self, url: S3Url, etag: Option<&str>) -> Result<S3Source, duff_engine::Error> {
        self.runtime.block_on(S3Source::head(
            self.client.clone(),
            self.settings.clone(),
            url,
            etag,
        ))
    }

    /// Whether a lake of Delta tables exists under the prefix (its `runs` table has a log).
    pub fn holds_a_lake(&self, url: &S3Url) -> anyhow::Result<bool> {
        let root = url.directory_url()?;
        let prefix = format!("{}runs/_delta_log/", root.path().trim_start_matches('/'));
        let listed = self.runtime.block_on(
            self.client
                .list_objects_v2()
                .bucket(&url.bucket)
                .prefix(prefix)
                .max_keys(1)
                .send(),
        )?;
        Ok(listed.key_count().unwrap_or(0) > 0)
    }

    /// The lake of Delta tables under an S3 prefix: data files written by multipart uploads,
    /// the Delta log through `object_store`.
    pub fn lake(&self, url: S3Url) -> Result<DeltaLake<S3Lake>, duff_engine::Error> {
        let files = {
            let _entered = self.runtime.enter();
            S3Lake::new(self.client.clone(), self.settings.clone(), url.clone())?
        };
        let store = duff_s3::object_store(&self.settings, &Endpoint::default(), &url.bucket)?;
        let lake = DeltaLake::open_in_store(files, url.directory_url()?, store)?;
        Ok(lake.with_fold_lease(self.fold_lease))
    }
}

/// Connects to AWS when any of `locations` is on S3.
pub fn connect_if_needed<'a>(
    args: &S3Args,
    mut locations: impl Iterator<Item = &'a Location>,
) -> anyhow::Result<Option<Aws>> {
    if locations.any(Location::is_s3) {
        Aws::connect(args).map(Some)
    } else {
        Ok(None)
    }
}

/// Opens a lake at a local path (Delta tables) or an S3 prefix.
pub fn open_lake(location: &Location, aws: Option<&Aws>) -> anyhow::Result<Box<dyn Lake>> {
    Ok(match location {
        Location::Local(path) => Box::new(DeltaLake::open_local(path)?),
        Location::S3(url) => Box::new(aws.expect("connected for S3").lake(url.clone())?),
    })
}

/// Opens the Delta lake at a local path or an S3 prefix, for maintenance.
pub fn open_delta_lake(location: &Location, aws: Option<&Aws>) -> anyhow::Result<AnyDeltaLake> {
    Ok(match location {
        Location::Local(path) => AnyDeltaLake::Local(DeltaLake::open_local(path)?),
        Location::S3(url) => AnyDeltaLake::S3(aws.expect("connected for S3").lake(url.clone())?),
    })
}

/// A lake of Delta tables, local or in S3.
pub enum AnyDeltaLake {
    Local(DeltaLake<duff_engine::LocalLake>),
    S3(DeltaLake<S3Lake>),
}

/// Opens an input at a local path or an S3 URL.
pub fn open_source(
    location: &Location,
    aws: Option<&Aws>,
    etag: Option<&str>,
) -> Result<Box<dyn Source>, duff_engine::Error> {
    Ok(match location {
        Location::Local(path) => Box::new(LocalInput::open(path)?),
        Location::S3(url) => Box::new(aws.expect("connected for S3").source(url.clone(), etag)?),
    })
}
