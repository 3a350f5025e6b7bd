//! One poll of one job: fetch its steps through the account's client. The
//! store/diff/rules stages hang off the result.

use crate::aliyun::{AliyunClient, ApiFailure};
use crate::config::JobConfig;
use crate::dts::api::{self, Fetched, ListJobStepRequest};

/// The `ListJobStep` request for a configured job.
pub fn request(job: &JobConfig) -> ListJobStepRequest<'_> {
    ListJobStepRequest {
        job_id: &job.id,
        region: &job.region,
        zero_etl: job.zero_etl,
        resource_group_id: job.resource_group_id.as_deref(),
    }
}

pub async fn fetch(client: &AliyunClient, job: &JobConfig) -> Result<Fetched, ApiFailure> {
    let span = tracing::info_span!("poll", job = %job.id, account = %job.account);
    let _entered = span.enter();
    api::list_job_step(client, &request(job)).await
}
