//! The embedded backend: DataFusion over the lake's Delta tables, in a local directory or in
//! S3: Athena's stand-in locally, and the API Lambda's lake-direct backend.
//!
//! Each table is a listing table over `<lake>/<prefix>/`, partitioned by `pa_date` (so a
//! `pa_date` filter skips whole directories), read through [`CommittedOnly`]: a listing shows
//! exactly the files of the table's current Delta snapshot, as any Delta reader would read.
//! Every request first follows the tables' logs (one refresh serves the requests of the next
//! second), so a run committed while serving is visible within a second, and files of
//! uncommitted or losing attempts never are.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;

use duff_delta::CommittedOnly;
use object_store::ObjectStore;
use url::Url;

use super::{Backend, arrow_rows};
use crate::error::ApiError;
use crate::reports::{Param, Report};
use crate::tables::runs_arrow_schema;
use crate::value::ResultSet;

/// How long a refresh of the tables' logs serves later steps and requests: a request's check
/// of the current state and its query follow the logs once (in S3 a refresh lists every
/// table's `_delta_log/`), and a run committed while serving is visible a second later at most.
const REFRESH_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// [`Backend`] over a lake with DataFusion (a local directory, or an S3 prefix read through an
/// object store), reading only what the tables' Delta logs commit. Clones share the session and
/// the limit on queries at once.
#[derive(Clone)]
pub struct EmbeddedBackend {
    ctx: SessionContext,
    /// The lake root as a URL (`file:///…/` or `s3://bucket/prefix/`).
    root: Url,
    /// The lake's store as the tables' Delta logs say it is.
    committed: Arc<CommittedOnly>,
    /// Queries run at once; the others wait their turn. Each whole-lake aggregate holds GiBs of
    /// hash tables, so without a bound 16 concurrent dashboard loads on the 1 GiB lake grew the
    /// server past 16 GiB (`cargo bench -p duff-api --bench latency`).
    queries: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBackend")
            .field("root", &self.root.as_str())
            .finish()
    }
}

impl EmbeddedBackend {
    /// Registers every table of the lake in directory `root` (which must exist). `threads` = 0:
    /// all cores.
    pub fn open(root: &Path, threads: usize) -> Result<Self, ApiError> {
        let root = root.canonicalize().map_err(|e| {
            ApiError::Internal(format!("cannot open the lake {}: {e}", root.display()))
        })?;
        let url = Url::from_directory_path(&root)
            .map_err(|()| ApiError::Internal(format!("{}: not a directory", root.display())))?;
        let committed =
            CommittedOnly::local(&root).map_err(|e| ApiError::Internal(e.to_string()))?;
        Self::over(committed, url, threads)
    }

    /// Registers every table of the lake at `root` (`s3://bucket/prefix/`), read through
    /// `store`, an object store rooted at the bucket (`duff_s3::object_store`). Nothing is
    /// read until the first query; a lake whose tables do not exist yet answers with no rows.
    pub fn open_in_store(
        store: Arc<dyn ObjectStore>,
        root: Url,
        threads: usize,
    ) -> Result<Self, ApiError> {
        if !root.path().ends_with('/') || root.host_str().is_none() {
            return Err(ApiError::Internal(format!(
                "{root}: a lake root is a directory URL with a bucket (s3://bucket/prefix/)"
            )));
        }
        let committed = CommittedOnly::in_store(store, root.clone())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Self::over(committed, root, threads)
    }

    fn over(committed: CommittedOnly, root: Url, threads: usize) -> Result<Self, ApiError> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let mut config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_information_schema(false);
        // Evaluate filters while decoding Parquet (late materialisation): a client's page
        // decodes the wide columns only for its own rows.
        config.options_mut().execution.parquet.pushdown_filters = true;
        // No listing cache: DataFusion keeps a table's file list forever by default, and a
        // running server would never see the files later runs commit. Listings go through
        // `CommittedOnly`, which keeps only what the followed logs committed.
        let runtime = RuntimeEnvBuilder::new()
            .with_object_list_cache_limit(0)
            .build_arc()
            .map_err(query_error)?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let committed = Arc::new(committed);
        // DataFusion picks a store by the URL's scheme and authority: `file://`, `s3://bucket`.
        let store_url = Url::parse(&format!(
            "{}://{}",
            root.scheme(),
            root.host_str().unwrap_or_default()
        ))
        .map_err(|e| ApiError::Internal(format!("{root}: {e}")))?;
        ctx.register_object_store(&store_url, committed.clone());

        // Every table of the lake: history, the current state, its marts, and `runs`.
        for def in &duff_delta::ALL_TABLES {
            let mut options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            if def.partitioned {
                options = options.with_table_partition_cols(vec![(
                    duff_engine::schema::PARTITION_COLUMN.to_string(),
                    DataType::Utf8,
                )]);
            }
            let schema = def
                .engine_table
                .map_or_else(runs_arrow_schema, |t| t.arrow_schema());
            // A trailing slash makes it a directory even before the first run creates it.
            let dir = root
                .join(&format!("{}/", def.prefix))
                .map_err(|e| ApiError::Internal(format!("{root}: {e}")))?;
            register(&ctx, def.name, &dir, options, schema)?;
        }
        Ok(EmbeddedBackend {
            ctx,
            root,
            committed,
            queries: Arc::new(tokio::sync::Semaphore::new(threads)),
        })
    }

    /// Where the lake is: `file:///…/` or `s3://bucket/prefix/`.
    pub fn location(&self) -> &str {
        self.root.as_str()
    }

    /// How many queries run at once (one per thread the backend was opened with).
    pub fn queries_at_once(&self) -> usize {
        self.queries.available_permits()
    }

    /// Runs SQL with `$n` placeholders bound to `params` and returns Arrow batches (used by the
    /// Athena stand-in in the tests, which speaks Athena's wire protocol over this engine).
    pub async fn sql_batches(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>), ApiError> {
        let values: Vec<ScalarValue> = params
            .iter()
            .map(|p| match p {
                Param::Int(v) => ScalarValue::Int64(Some(*v)),
                Param::Text(s) => ScalarValue::Utf8(Some(s.clone())),
            })
            .collect();
        let _turn = self
            .queries
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("the query limiter is closed".into()))?;
        self.committed
            .refresh_within(REFRESH_REUSE)
            .await
            .map_err(|e| ApiError::QueryFailed {
                retryable: e.is_retryable(),
                message: format!("reading the lake's tables: {e}"),
            })?;
        let df = self
            .ctx
            .sql(sql)
            .await
            .and_then(|df| df.with_param_values(values))
            .map_err(query_error)?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(query_error)?;
        Ok((schema, batches))
    }
}

fn register(
    ctx: &SessionContext,
    name: &str,
    dir: &Url,
    options: ListingOptions,
    schema: arrow::datatypes::SchemaRef,
) -> Result<(), ApiError> {
    let url = ListingTableUrl::parse(dir.as_str()).map_err(query_error)?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(query_error)?;
    ctx.register_table(name, Arc::new(table))
        .map_err(query_error)?;
    Ok(())
}

/// I/O and store failures may pass (a file replaced while read, S3 throttling); anything else
/// is a bug or a lake that breaks the contract, and retrying will not help.
fn query_error(e: DataFusionError) -> ApiError {
    use datafusion::parquet::errors::ParquetError;
    let retryable = match e.find_root() {
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => true,
        // A Parquet read that failed on the store (S3 throttling past the client's retries).
        DataFusionError::ParquetError(p) => match p.as_ref() {
            ParquetError::External(inner) => inner
                .downcast_ref::<object_store::Error>()
                .is_some_and(|e| {
                    !matches!(
                        e,
                        object_store::Error::NotFound { .. }
                            | object_store::Error::PermissionDenied { .. }
                    )
                }),
            _ => false,
        },
        _ => false,
    };
    ApiError::QueryFailed {
        message: e.to_string(),
        retryable,
    }
}

impl Backend for EmbeddedBackend {
    async fn query(
        &self,
        report: &'static Report,
        params: Vec<Param>,
    ) -> Result<ResultSet, ApiError> {
        let (schema, batches) = self.sql_batches(report.sql, &params).await?;
        arrow_rows::to_result_set(&schema, &batches)
    }

    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn reads_current_state(&self) -> bool {
        // Follows the logs first: a lake whose last fold stopped between its two commits
        // answers from history until the next fold rebuilds the marts.
        match self.committed.refresh_within(REFRESH_REUSE).await {
            Ok(()) => self.committed.marts_reflect_current_state(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the lake's tables; answering from history");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_as_many_queries_at_once_as_it_has_threads_and_gives_each_turn_back() {
        let lake = tempfile::tempdir().unwrap();
        let backend = EmbeddedBackend::open(lake.path(), 3).unwrap();
        assert_eq!(backend.queries_at_once(), 3);
        let (_, batches) = backend.sql_batches("SELECT 1 AS one", &[]).await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        let bad = backend.sql_batches("SELECT nope FROM nowhere", &[]).await;
        assert!(bad.is_err());
        assert_eq!(backend.queries_at_once(), 3, "every turn is given back");
    }

    #[tokio::test]
    async fn a_query_past_the_limit_waits_for_a_turn() {
        let lake = tempfile::tempdir().unwrap();
        let backend = Arc::new(EmbeddedBackend::open(lake.path(), 2).unwrap());
        // Two slow queries hold both turns.
        let held = backend.queries.clone().acquire_many_owned(2).await.unwrap();
        let third = {
            let backend = backend.clone();
            tokio::spawn(async move { backend.sql_batches("SELECT 1 AS one", &[]).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !third.is_finished(),
            "the third query waits while both turns are held"
        );
        drop(held);
        let (_, batches) = tokio::time::timeout(std::time::Duration::from_secs(30), third)
            .await
            .expect("it runs once a turn is free")
            .unwrap()
            .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }
}
