//! [`Jobs`] over AWS Batch: one SubmitJob per object, nothing waited for, and DescribeJobs when
//! a later event finds the job's claim still held.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_batch::Client;
use aws_sdk_batch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_batch::types::{
    ContainerOverrides, EvaluateOnExit, JobStatus, ResourceRequirement, ResourceType, RetryAction,
    RetryStrategy,
};
use duff_s3::Endpoint;

use crate::config::BatchTarget;
use crate::error::DispatchError;
use crate::sizing::{JobSize, size_for};
use crate::traits::{JobRequest, JobState, Jobs, SubmittedJob};

/// Attempts per SubmitJob, including the first. The SDK's standard mode retries throttling
/// (429 `TooManyRequestsException`), 5xx and connection failures with jittered backoff.
pub const SUBMIT_ATTEMPTS: u32 = 5;

/// The Batch client: the standard AWS configuration chain, `endpoint` overriding it (tests,
/// and `AWS_ENDPOINT_URL_BATCH` works as usual).
pub async fn batch_client(endpoint: &Endpoint) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(SUBMIT_ATTEMPTS));
    if let Some(url) = &endpoint.url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &endpoint.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some((id, secret)) = &endpoint.credentials {
        loader = loader.credentials_provider(aws_sdk_batch::config::Credentials::new(
            id, secret, None, None, "duff",
        ));
    }
    Client::new(&loader.load().await)
}

/// [`Jobs`] over AWS Batch, submitting to one queue and job definition; inputs bigger than the
/// definition's size get container overrides ([`crate::sizing`]).
pub struct BatchJobs {
    client: Client,
    target: BatchTarget,
}

impl BatchJobs {
    /// Submits to `target` with `client` (see [`batch_client`]).
    pub fn new(client: Client, target: BatchTarget) -> BatchJobs {
        BatchJobs { client, target }
    }
}

/// The job's retry strategy, the same as the job definition's (infra/templates/batch.yaml):
/// retry what `duff job` calls retryable (exit 75) and lost hosts or Spot capacity, stop on
/// anything else (a rejected input exits 2 and must not run three times).
pub fn retry_strategy() -> RetryStrategy {
    let on = |action: RetryAction| EvaluateOnExit::builder().action(action);
    RetryStrategy::builder()
        .attempts(3)
        .evaluate_on_exit(on(RetryAction::Retry).on_exit_code("75").build())
        .evaluate_on_exit(on(RetryAction::Retry).on_status_reason("Host EC2*").build())
        .evaluate_on_exit(
            on(RetryAction::Retry)
                .on_status_reason("Your Spot Task was interrupted*")
                .build(),
        )
        .evaluate_on_exit(on(RetryAction::Exit).on_reason("*").build())
        .build()
}

impl Jobs for BatchJobs {
    async fn submit(&self, job: &JobRequest) -> Result<SubmittedJob, DispatchError> {
        // The definition's command: job --bucket Ref::bucket --key Ref::key --etag Ref::etag
        // --pa-date Ref::pa_date. Every parameter is always given: a missing one would reach
        // the command as the literal text `Ref::…`.
        let mut request = self.client.submit_job();
        if let Some(size) = size_for(job.size, job.gzip, self.target.job_size) {
            tracing::info!(
                key = %job.key,
                bytes = job.size,
                vcpus = size.vcpus,
                memory_mib = size.memory_mib,
                "input needs a bigger job than the definition's"
            );
            request = request.container_overrides(overrides(size));
        }
        let output = request
            .job_name(&job.name)
            .job_queue(&self.target.queue)
            .job_definition(&self.target.definition)
            .parameters("bucket", &job.bucket)
            .parameters("key", &job.key)
            .parameters("etag", &job.etag)
            .parameters("pa_date", job.pa_date.to_string())
            .retry_strategy(retry_strategy())
            .send()
            .await
            .map_err(classify)?;
        let job_id = output.job_id().unwrap_or_default().to_string();
        if job_id.is_empty() {
            return Err(DispatchError::Batch {
                message: "SubmitJob answered without a job id".into(),
                retryable: true,
            });
        }
        Ok(SubmittedJob {
            job_id,
            job_name: output.job_name().unwrap_or(&job.name).to_string(),
        })
    }

    async fn state(&self, job_id: &str) -> Result<JobState, DispatchError> {
        let output = self
            .client
            .describe_jobs()
            .jobs(job_id)
            .send()
            .await
            .map_err(classify)?;
        let Some(job) = output.jobs().iter().find(|j| j.job_id() == Some(job_id)) else {
            return Ok(JobState::Unknown);
        };
        Ok(match job.status() {
            Some(status @ (JobStatus::Succeeded | JobStatus::Failed)) => JobState::Ended {
                status: status.as_str().to_string(),
                reason: job.status_reason().unwrap_or_default().to_string(),
            },
            _ => JobState::Active,
        })
    }
}

/// Fargate takes the vCPU and memory of a job as resource requirements.
fn overrides(size: JobSize) -> ContainerOverrides {
    let requirement = |kind: ResourceType, value: u32| {
        ResourceRequirement::builder()
            .r#type(kind)
            .value(value.to_string())
            .build()
    };
    ContainerOverrides::builder()
        .resource_requirements(requirement(ResourceType::Vcpu, size.vcpus))
        .resource_requirements(requirement(ResourceType::Memory, size.memory_mib))
        .build()
}

/// What is left after the SDK's retries: throttling and 5xx may pass later; a rejected
/// request (unknown queue, access denied, invalid parameters) will not.
fn classify<E>(err: SdkError<E, aws_sdk_batch::config::http::HttpResponse>) -> DispatchError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            status == 429 || status >= 500
        }
        SdkError::ConstructionFailure(_) => false,
        // Timeouts, connection failures, unreadable responses.
        _ => true,
    };
    DispatchError::Batch {
        message: DisplayErrorContext(&err).to_string(),
        retryable,
    }
}
