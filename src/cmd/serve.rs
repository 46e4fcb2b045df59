//! `duff serve`: the reporting API and dashboard over a lake, local or in S3 (the embedded
//! engine stands in for Athena; the router is the one the API Lambda runs).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use duff_api::{EmbeddedBackend, loopback_only, router};
use duff_s3::{Endpoint, Location, TransferSettings};

use crate::cli::ServeArgs;

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let api_key = match &args.api_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the API key from {}", path.display()))?;
            let key = text.lines().next().unwrap_or("").trim().to_string();
            anyhow::ensure!(
                !key.is_empty(),
                "{}: no key on its first line",
                path.display()
            );
            Some(key)
        }
        None => std::env::var("DUFF_API_KEY").ok().filter(|k| !k.is_empty()),
    };
    let backend = match Location::parse(&args.lake)? {
        Location::Local(dir) => {
            anyhow::ensure!(
                dir.is_dir(),
                "no lake at {}: create one with `duff run <file.csv> --lake {}`",
                dir.display(),
                dir.display()
            );
            EmbeddedBackend::open(&dir, args.threads)?
        }
        Location::S3(url) => {
            let store = duff_s3::object_store(
                &TransferSettings::default(),
                &Endpoint::default(),
                &url.bucket,
            )?;
            EmbeddedBackend::open_in_store(store, url.directory_url()?, args.threads)?
        }
    };
    serve_backend(backend, args.addr, api_key)?;
    Ok(ExitCode::SUCCESS)
}

/// Serves the local lake in `lake` until Ctrl-C (the quickstart's last step).
pub fn serve_lake(
    lake: &Path,
    addr: SocketAddr,
    api_key: Option<String>,
    threads: usize,
) -> anyhow::Result<()> {
    serve_backend(EmbeddedBackend::open(lake, threads)?, addr, api_key)
}

/// Serves until Ctrl-C. Prints the URL first (with the real port when `addr` has port 0).
fn serve_backend(
    backend: EmbeddedBackend,
    addr: SocketAddr,
    api_key: Option<String>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (try --addr 127.0.0.1:0)"))?;
        let url = format!("http://{}/", listener.local_addr()?);
        // The banner is for whoever started the server: if its reader has gone (`| head -1`,
        // a script that read the URL), the server goes on serving; `println!` would panic.
        let mut banner = format!(
            "Dashboard: {url}\nAPI:       {url}openapi.json · lake {} · Ctrl-C stops\n",
            backend.location()
        );
        if api_key.is_some() {
            banner.push_str("Data routes need the key in the x-api-key header.\n");
        }
        // Line-buffered: a banner that ends its last line is written out whole.
        let _ = std::io::stdout().write_all(banner.as_bytes());
        if api_key.is_none() && !addr.ip().is_loopback() {
            eprintln!(
                "WARNING: serving on {addr} without an API key: anyone who can reach this \
                 address reads every report of the lake. Set DUFF_API_KEY or --api-key-file, \
                 or listen on 127.0.0.1."
            );
        }
        let mut app = router(backend, api_key);
        if addr.ip().is_loopback() {
            app = loopback_only(app);
        }
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        duff_api::serve(listener, app, ctrl_c)
            .await
            .context("serving")
    })
}
