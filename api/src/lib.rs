//! # duff-api
//!
//! The reporting API over the Duff lake: report SQL written once ([`reports`]), two backends
//! that run it ([`backend::athena`] in AWS, [`backend::embedded`] — DataFusion over a local lake),
//! one `axum` [`router()`] served by `duff serve` locally and by `lambda_http` in AWS, the
//! dashboard at `/` and the OpenAPI document.
//!
//! ```no_run
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use duff_api::{EmbeddedBackend, router};
//!
//! let backend = EmbeddedBackend::open("lake".as_ref(), 0)?;
//! let app = router(backend, None);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Every report reads only committed runs (the files in each Delta table's log, of runs whose
//! `runs` row says `succeeded`) and the latest version of each order line. Parameters are validated into typed values
//! ([`params`]) and bound, never spliced into SQL.

pub mod backend;
pub mod dashboard;
pub mod error;
pub mod gateway;
pub mod openapi;
pub mod params;
pub mod render;
pub mod reports;
pub mod router;
pub mod tables;
pub mod value;

pub use backend::Backend;
pub use backend::athena::{AthenaBackend, AthenaConfig};
pub use backend::choice::BackendChoice;
pub use backend::embedded::EmbeddedBackend;
pub use error::ApiError;
pub use gateway::API_KEY_HEADER;
pub use router::{loopback_only, router, serve};
pub use tables::RUNS_COLUMNS;
