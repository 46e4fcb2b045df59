//! The Athena backend: `StartQueryExecution` with bound parameters and result reuse, polling
//! with backoff under a deadline (API Gateway gives up after 29 s), `GetQueryResults` over all
//! pages, Athena's text values converted to typed values.

use std::time::Duration;

use aws_sdk_athena::Client;
use aws_sdk_athena::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, ResultConfiguration, ResultReuseByAgeConfiguration,
    ResultReuseConfiguration,
};
use tokio::time::Instant;

use super::{Backend, athena_values};
use crate::error::ApiError;
use crate::reports::{self, Param, Report, dialect};
use crate::value::{Column, ResultSet};

/// Where and how queries run. [`AthenaConfig::from_env`] reads what the infra stack sets.
#[derive(Debug, Clone)]
pub struct AthenaConfig {
    /// The workgroup queries run in (its scan limit and result location apply).
    pub workgroup: String,
    /// The Glue database holding the lake's tables.
    pub database: String,
    /// `s3://…` for results, when the workgroup does not enforce its own.
    pub output_location: Option<String>,
    /// A query still running after this long is stopped and answered with 504.
    pub deadline: Duration,
    /// First wait before polling; doubled after every poll up to `max_poll`.
    pub first_poll: Duration,
    /// The longest wait between two polls.
    pub max_poll: Duration,
    /// Rows per `GetQueryResults` page (Athena's maximum is 1000).
    pub page_size: i32,
    /// Reuse a result of the same query up to this old (0 = never); never for a query with
    /// execution parameters.
    pub reuse_minutes: i32,
}

impl AthenaConfig {
    /// The environment variable holding [`AthenaConfig::workgroup`] (required).
    pub const ENV_WORKGROUP: &'static str = "DUFF_ATHENA_WORKGROUP";
    /// The environment variable holding [`AthenaConfig::database`] (required).
    pub const ENV_DATABASE: &'static str = "DUFF_ATHENA_DATABASE";
    /// The environment variable holding [`AthenaConfig::output_location`] (optional).
    pub const ENV_OUTPUT: &'static str = "DUFF_ATHENA_OUTPUT";

    /// The defaults for `workgroup` and `database`: a 25 s deadline (inside API Gateway's
    /// 29 s), polls from 100 ms doubling up to 1 s, pages of 1000 rows, results reused up to
    /// 5 minutes, the workgroup's own output location.
    pub fn new(workgroup: impl Into<String>, database: impl Into<String>) -> Self {
        AthenaConfig {
            workgroup: workgroup.into(),
            database: database.into(),
            output_location: None,
            // 25 s + one stop call + response, inside API Gateway's 29 s.
            deadline: Duration::from_secs(25),
            first_poll: Duration::from_millis(100),
            max_poll: Duration::from_secs(1),
            page_size: 1000,
            reuse_minutes: 5,
        }
    }

    /// Reads `DUFF_ATHENA_WORKGROUP`, `DUFF_ATHENA_DATABASE` (required) and
    /// `DUFF_ATHENA_OUTPUT` (optional, an `s3://` URL).
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let workgroup = var(Self::ENV_WORKGROUP)
            .ok_or_else(|| format!("{} is not set", Self::ENV_WORKGROUP))?;
        let database =
            var(Self::ENV_DATABASE).ok_or_else(|| format!("{} is not set", Self::ENV_DATABASE))?;
        let mut config = AthenaConfig::new(workgroup, database);
        if let Some(out) = var(Self::ENV_OUTPUT) {
            if !out.starts_with("s3://") {
                return Err(format!(
                    "{} must be an s3:// URL, got {out}",
                    Self::ENV_OUTPUT
                ));
            }
            config.output_location = Some(out);
        }
        Ok(config)
    }
}

/// [`Backend`] over Athena: one query execution per report, bounded by
/// [`AthenaConfig::deadline`] (then stopped and answered 504).
#[derive(Debug, Clone)]
pub struct AthenaBackend {
    client: Client,
    config: AthenaConfig,
    /// The last answer of [`reports::EVERY_RUN_FOLDED`], and when it was asked.
    folded: std::sync::Arc<tokio::sync::Mutex<Option<(Instant, bool)>>>,
}

/// How long an answer of "does the current state hold every run" is reused: one small query
/// per this long per instance, and a report may read marts this much behind a new run.
pub const FOLDED_STATE_TTL: Duration = Duration::from_secs(30);

impl AthenaBackend {
    /// Runs queries with `client` as `config` says. Makes no request until the first query.
    pub fn new(client: Client, config: AthenaConfig) -> Self {
        AthenaBackend {
            client,
            config,
            folded: Default::default(),
        }
    }

    async fn start(&self, sql: String, values: Vec<String>) -> Result<String, ApiError> {
        // Athena reuses a result when the "query strings match" (user guide, "Reuse query
        // results in Athena"); execution parameters are not among its conditions, so a query
        // with any would be answered with another client's result.
        let reuse = ResultReuseConfiguration::builder()
            .result_reuse_by_age_configuration(
                ResultReuseByAgeConfiguration::builder()
                    .enabled(self.config.reuse_minutes > 0 && values.is_empty())
                    .max_age_in_minutes(self.config.reuse_minutes.max(1))
                    .build(),
            )
            .build();
        let out = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.config.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&self.config.database)
                    .build(),
            )
            .set_execution_parameters((!values.is_empty()).then_some(values))
            .result_reuse_configuration(reuse)
            .set_result_configuration(
                self.config
                    .output_location
                    .as_ref()
                    .map(|o| ResultConfiguration::builder().output_location(o).build()),
            )
            .send()
            .await
            .map_err(sdk_error)?;
        out.query_execution_id
            .ok_or_else(|| ApiError::Internal("StartQueryExecution returned no id".into()))
    }

    /// Polls until the query leaves QUEUED/RUNNING; backoff doubles up to `max_poll`.
    async fn wait(&self, id: &str) -> Result<(), ApiError> {
        let mut delay = self.config.first_poll;
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.config.max_poll);
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(sdk_error)?;
            let status = out.query_execution.and_then(|q| q.status);
            let state = status.as_ref().and_then(|s| s.state.clone());
            let reason = || {
                status
                    .as_ref()
                    .and_then(|s| {
                        s.athena_error
                            .as_ref()
                            .and_then(|e| e.error_message.clone())
                            .or_else(|| s.state_change_reason.clone())
                    })
                    .unwrap_or_else(|| "no reason given".into())
            };
            match state {
                Some(QueryExecutionState::Succeeded) => return Ok(()),
                Some(QueryExecutionState::Failed) => {
                    let retryable = status
                        .as_ref()
                        .and_then(|s| s.athena_error.as_ref())
                        .is_some_and(|e| e.retryable);
                    return Err(ApiError::QueryFailed {
                        message: reason(),
                        retryable,
                    });
                }
                Some(QueryExecutionState::Cancelled) => {
                    return Err(ApiError::QueryCancelled(reason()));
                }
                Some(QueryExecutionState::Queued | QueryExecutionState::Running) | None => {}
                Some(other) => {
                    return Err(ApiError::Internal(format!(
                        "unknown query state {}",
                        other.as_str()
                    )));
                }
            }
        }
    }

    /// Every page of the results; the first row of the first page is the header.
    async fn fetch(&self, id: &str) -> Result<ResultSet, ApiError> {
        let mut result = ResultSet::default();
        let mut token: Option<String> = None;
        let mut first = true;
        loop {
            let page = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .max_results(self.config.page_size)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(sdk_error)?;
            let set = page.result_set.ok_or_else(|| {
                ApiError::Internal("GetQueryResults returned no result set".into())
            })?;
            add_page(&mut result, set, first)?;
            first = false;
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(result),
            }
        }
    }

    /// Best effort: a query we stopped waiting for should not keep scanning (and billing).
    async fn stop(&self, id: &str) {
        let stop = self
            .client
            .stop_query_execution()
            .query_execution_id(id)
            .send();
        if let Err(e) = tokio::time::timeout(Duration::from_secs(1), stop).await {
            tracing::warn!(query_execution_id = id, error = %e, "could not stop the query");
        }
    }
}

/// Adds one `GetQueryResults` page to `result`. The first page carries the column types (even
/// when there are no rows, so an empty result keeps its columns) and, as its first row, the
/// header, which is skipped. A first page without column metadata is an error: a SELECT always
/// has it, and defaulting to no columns would answer an empty result with `columns: []`.
fn add_page(
    result: &mut ResultSet,
    set: aws_sdk_athena::types::ResultSet,
    first: bool,
) -> Result<(), ApiError> {
    let mut rows = set.rows.unwrap_or_default().into_iter();
    if first {
        let infos = set
            .result_set_metadata
            .and_then(|m| m.column_info)
            .filter(|infos| !infos.is_empty())
            .ok_or_else(|| {
                ApiError::Internal("GetQueryResults returned no column metadata".into())
            })?;
        result.columns = infos
            .iter()
            .map(|c| athena_values::column(&c.name, &c.r#type, c.scale))
            .collect::<Result<Vec<Column>, _>>()?;
        rows.next(); // the header row
    }
    for row in rows {
        let data = row.data.unwrap_or_default();
        if data.len() != result.columns.len() {
            return Err(ApiError::Internal(format!(
                "row of {} values for {} columns",
                data.len(),
                result.columns.len()
            )));
        }
        result.rows.push(
            result
                .columns
                .iter()
                .zip(&data)
                .map(|(c, d)| athena_values::value(c, d.var_char_value.as_deref()))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(())
}

/// Transport errors, throttling and Athena's internal errors may pass; a rejected request
/// (invalid SQL, unknown workgroup or table) will not.
fn sdk_error<E, R>(e: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("unknown");
            let message = format!("{code}: {}", err.message().unwrap_or("no message"));
            match code {
                "TooManyRequestsException" | "InternalServerException" | "ThrottlingException" => {
                    ApiError::Unavailable(message)
                }
                _ => ApiError::QueryFailed {
                    message,
                    retryable: false,
                },
            }
        }
        _ => ApiError::Unavailable(format!("Athena: {}", aws_error_text(&e))),
    }
}

/// The whole chain of an SDK error (its `Display` is only the outermost layer).
fn aws_error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Backend for AthenaBackend {
    async fn query(
        &self,
        report: &'static Report,
        params: Vec<Param>,
    ) -> Result<ResultSet, ApiError> {
        let deadline = Instant::now() + self.config.deadline;
        let (sql, values) = dialect::to_athena(report.sql, &params);
        let timeout = ApiError::Timeout(self.config.deadline);
        let id = tokio::time::timeout_at(deadline, self.start(sql, values))
            .await
            .map_err(|_| timeout)??;
        let work = async {
            self.wait(&id).await?;
            self.fetch(&id).await
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => {
                tracing::debug!(report = report.name, query_execution_id = %id, "athena query done");
                result
            }
            Err(_) => {
                self.stop(&id).await;
                Err(ApiError::Timeout(self.config.deadline))
            }
        }
    }

    fn name(&self) -> &'static str {
        "athena"
    }

    /// Athena reads data, not the tables' logs: the marts are used when `folds` records every
    /// committed run ([`reports::EVERY_RUN_FOLDED`]), asked at most every
    /// [`FOLDED_STATE_TTL`]. A failed check answers from history.
    async fn reads_current_state(&self) -> bool {
        let mut cached = self.folded.lock().await;
        if let Some((at, folded)) = *cached
            && at.elapsed() < FOLDED_STATE_TTL
        {
            return folded;
        }
        let folded = match self.query(&reports::EVERY_RUN_FOLDED, Vec::new()).await {
            Ok(rs) => rs
                .rows
                .first()
                .and_then(|row| row.first())
                .is_some_and(|v| *v == crate::value::Value::Int(1)),
            Err(e) => {
                tracing::warn!(error = %e, "asking whether every run is folded; answering from history");
                false
            }
        };
        *cached = Some((Instant::now(), folded));
        folded
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_athena::types::{ColumnInfo, Datum, ResultSetMetadata, Row};

    use super::*;
    use crate::value::{ColumnType, Value};

    fn info(name: &str, ty: &str, scale: i32) -> ColumnInfo {
        ColumnInfo::builder()
            .name(name)
            .r#type(ty)
            .scale(scale)
            .build()
            .unwrap()
    }

    fn row(values: &[Option<&str>]) -> Row {
        Row::builder()
            .set_data(Some(
                values
                    .iter()
                    .map(|v| {
                        Datum::builder()
                            .set_var_char_value(v.map(String::from))
                            .build()
                    })
                    .collect(),
            ))
            .build()
    }

    fn page(infos: Option<Vec<ColumnInfo>>, rows: Vec<Row>) -> aws_sdk_athena::types::ResultSet {
        aws_sdk_athena::types::ResultSet::builder()
            .set_rows(Some(rows))
            .set_result_set_metadata(infos.map(|i| {
                ResultSetMetadata::builder()
                    .set_column_info(Some(i))
                    .build()
            }))
            .build()
    }

    #[test]
    fn an_empty_result_keeps_its_typed_columns() {
        let mut rs = ResultSet::default();
        let infos = vec![info("client_id", "bigint", 0), info("sales", "decimal", 4)];
        let header = row(&[Some("client_id"), Some("sales")]);
        add_page(&mut rs, page(Some(infos), vec![header]), true).unwrap();
        assert!(rs.rows.is_empty());
        assert_eq!(
            rs.columns,
            vec![
                Column::new("client_id", ColumnType::Integer),
                Column::decimal("sales", 4)
            ]
        );
    }

    #[test]
    fn the_header_is_skipped_on_the_first_page_only() {
        let mut rs = ResultSet::default();
        let infos = vec![info("sales", "decimal", 4)];
        let first = vec![row(&[Some("sales")]), row(&[Some("1.5")])];
        add_page(&mut rs, page(Some(infos.clone()), first), true).unwrap();
        add_page(&mut rs, page(Some(infos), vec![row(&[None])]), false).unwrap();
        assert_eq!(
            rs.rows,
            vec![vec![Value::Decimal("1.5000".into())], vec![Value::Null]]
        );
    }

    #[test]
    fn a_first_page_without_column_metadata_is_an_error_not_a_result_without_columns() {
        let mut rs = ResultSet::default();
        let header = row(&[Some("client_id")]);
        assert!(add_page(&mut rs, page(None, vec![header.clone()]), true).is_err());
        let mut rs = ResultSet::default();
        assert!(add_page(&mut rs, page(Some(vec![]), vec![header]), true).is_err());
    }
}
