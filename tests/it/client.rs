//! The Alibaba Cloud client against the simulator over real HTTP: signatures,
//! retries, typed errors, credentials, rate limits.

use chrono::Utc;
use dtswatch::aliyun::{ApiError, ErrorClass};
use dtswatch::config::JobType;
use dtswatch::dts::State;
use dtswatch::dts::api::{self, ListJobStepRequest};
use dtswatch::sim::metadata::MetadataServer;
use dtswatch::sim::{Fault, SimJob, SimOptions, SimStep, Simulator};

use crate::helpers::{TestConfig, client, isolated_env};

const SEED_JOB: &str = "k2gm967v16f";

fn request() -> ListJobStepRequest<'static> {
    ListJobStepRequest {
        job_id: SEED_JOB,
        region: "cn-hangzhou",
        zero_etl: None,
        resource_group_id: None,
        priority: dtswatch::aliyun::Priority::Poll,
    }
}

/// The demo account on `sim`, watching the seed job.
fn seed_config(sim: &Simulator) -> TestConfig {
    TestConfig::new(&sim.endpoint()).job(SEED_JOB)
}

async fn seed_simulator() -> Simulator {
    Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .expect("simulator starts")
}

#[tokio::test]
async fn a_correct_v1_poll_succeeds_and_reads_the_seed() {
    let sim = seed_simulator().await;
    let config = seed_config(&sim).build();
    let fetched = api::list_job_step(&client(&config, &isolated_env()), &request())
        .await
        .expect("poll succeeds");
    assert_eq!(
        fetched.request_id.as_deref(),
        Some("621BB4F8-3016-4FAA-8D5A-5D3163CC****")
    );
    assert_eq!(fetched.attempts, 1);
    let step = &fetched.snapshot.steps[0];
    assert_eq!(&*step.name, "预检查");
    assert_eq!(step.state, State::Finished);
    assert_eq!(step.latency_ms, Some(1));
    assert_eq!(
        step.sub_steps[0].err_msg.as_deref(),
        Some("UncaughtException:java.lang.NullPointerException")
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].signature, "v1");
    assert_eq!(requests[0].outcome, "Success");
    assert_eq!(requests[0].job_id.as_deref(), Some(SEED_JOB));
}

#[tokio::test]
async fn a_correct_v3_poll_succeeds() {
    let sim = seed_simulator().await;
    let config = seed_config(&sim).account_line("signature = \"v3\"").build();
    let fetched = api::list_job_step(&client(&config, &isolated_env()), &request())
        .await
        .expect("poll succeeds");
    assert_eq!(fetched.snapshot.steps.len(), 1);
    assert_eq!(sim.requests()[0].signature, "v3");
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_without_retries() {
    let sim = seed_simulator().await;
    let keys = "access_key_id = \"dtswatch-demo\"\naccess_key_secret = \"not-the-secret\"";
    for signature in ["v1", "v3"] {
        let config = seed_config(&sim)
            .keys(&format!("{keys}\nsignature = \"{signature}\""))
            .build();
        let failure = api::list_job_step(&client(&config, &isolated_env()), &request())
            .await
            .unwrap_err();
        assert_eq!(failure.error.code(), "SignatureDoesNotMatch", "{signature}");
        assert_eq!(failure.error.class(), ErrorClass::Auth);
        assert_eq!(failure.attempts, 1, "auth errors are not retried");
        assert!(!failure.error.to_string().contains("not-the-secret"));
    }
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn an_unknown_access_key_is_an_auth_error() {
    let sim = seed_simulator().await;
    let config = seed_config(&sim)
        .keys("access_key_id = \"nobody\"\naccess_key_secret = \"x\"")
        .build();
    let failure = api::list_job_step(&client(&config, &isolated_env()), &request())
        .await
        .unwrap_err();
    assert_eq!(failure.error.code(), "InvalidAccessKeyId.NotFound");
    assert!(matches!(failure.error, ApiError::Api { status: 404, .. }));
    assert_eq!(failure.attempts, 1);
}

#[tokio::test]
async fn throttling_twice_then_success_backs_off_and_succeeds() {
    let sim = seed_simulator().await;
    sim.inject(None, Fault::Throttling, 2);
    let config = seed_config(&sim).build();
    let fetched = api::list_job_step(&client(&config, &isolated_env()), &request())
        .await
        .expect("third try succeeds");
    assert_eq!(fetched.attempts, 3);
    assert_eq!(fetched.retried, ["Throttling.User", "Throttling.User"]);
    let outcomes: Vec<String> = sim.requests().into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["Throttling.User", "Throttling.User", "Success"]);
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried() {
    let sim = seed_simulator().await;
    sim.inject(None, Fault::ServiceUnavailable, 1);
    sim.inject(None, Fault::BadGateway, 1);
    sim.inject(None, Fault::Slow(std::time::Duration::from_secs(5)), 1);
    let config = seed_config(&sim).build();
    let client = client(&config, &isolated_env());
    let fetched = api::list_job_step(&client, &request())
        .await
        .expect("fourth try succeeds");
    assert_eq!(
        fetched.retried,
        ["ServiceUnavailable", "HTTP502", "Timeout"]
    );
}

#[tokio::test]
async fn retries_stop_after_the_configured_attempts() {
    let sim = seed_simulator().await;
    sim.inject(None, Fault::InternalError, 10);
    let config = seed_config(&sim).build();
    let failure = api::list_job_step(&client(&config, &isolated_env()), &request())
        .await
        .unwrap_err();
    assert_eq!(failure.error.code(), "InternalError");
    assert_eq!(failure.attempts, 4);
    assert_eq!(sim.requests().len(), 4);
}

#[tokio::test]
async fn a_malformed_body_is_a_clear_parse_error_and_the_next_poll_works() {
    let sim = seed_simulator().await;
    sim.inject(None, Fault::Malformed, 1);
    let config = seed_config(&sim).build();
    let client = client(&config, &isolated_env());
    let failure = api::list_job_step(&client, &request()).await.unwrap_err();
    assert_eq!(failure.error.class(), ErrorClass::Malformed);
    assert_eq!(failure.attempts, 1);
    assert!(
        failure
            .error
            .to_string()
            .starts_with("unreadable response (HTTP 200)"),
        "{}",
        failure.error
    );
    api::list_job_step(&client, &request())
        .await
        .expect("the next poll works");
}

#[tokio::test]
async fn success_false_in_a_200_is_an_api_error() {
    let sim = seed_simulator().await;
    let config = seed_config(&sim).build();
    let client = client(&config, &isolated_env());
    let failure = api::list_job_step(
        &client,
        &ListJobStepRequest {
            job_id: "no-such-job",
            ..request()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(failure.error.code(), "InvalidJobId");
    assert_eq!(failure.error.class(), ErrorClass::Client);
    assert!(
        failure
            .error
            .to_string()
            .contains("The specified DTS job no-such-job does not exist."),
        "{}",
        failure.error
    );
    assert_eq!(failure.attempts, 1);
}

#[tokio::test]
async fn clock_skew_is_retried_once_then_reported() {
    let sim = seed_simulator().await;
    sim.set_clock_offset(chrono::Duration::minutes(20));
    let config = seed_config(&sim).build();
    let failure = api::list_job_step(&client(&config, &isolated_env()), &request())
        .await
        .unwrap_err();
    assert_eq!(failure.error.code(), "InvalidTimeStamp.Expired");
    assert_eq!(failure.attempts, 2);
    // The message says whose clock, by how much (from DTS's Date header), and what fixes it.
    let message = failure.error.to_string();
    assert!(message.contains("the local clock ("), "{message}");
    assert!(
        message.contains("behind DTS's")
            && (message.contains(" 20m ") || message.contains(" 19m59s ")),
        "{message}"
    );
    assert!(message.contains("NTP"), "{message}");
}

#[tokio::test]
async fn sts_credentials_come_from_the_metadata_service_and_are_refreshed() {
    let sim = seed_simulator().await;
    // Ten minutes of validity is inside the 15-minute refresh margin: every call fetches anew.
    let metadata = MetadataServer::start(&sim, "dtswatch-role", chrono::Duration::minutes(10))
        .await
        .unwrap();
    let config = seed_config(&sim)
        .keys(&format!("metadata_url = \"{}\"", metadata.url()))
        .build();
    let client = client(&config, &isolated_env());
    api::list_job_step(&client, &request())
        .await
        .expect("first poll");
    api::list_job_step(&client, &request())
        .await
        .expect("second poll");
    assert_eq!(metadata.issued(), 2);
    let requests = sim.requests();
    assert_eq!(requests[0].access_key_id, "STS.sim1");
    assert_eq!(requests[1].access_key_id, "STS.sim2");
    assert!(
        requests[0]
            .security_token
            .as_deref()
            .unwrap()
            .starts_with("CAIS+sim/token=1")
    );
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_call_retried_once() {
    let sim = seed_simulator().await;
    let metadata = MetadataServer::start(&sim, "dtswatch-role", chrono::Duration::hours(1))
        .await
        .unwrap();
    let config = seed_config(&sim)
        .keys(&format!(
            "metadata_url = \"{}\"\nsignature = \"v3\"",
            metadata.url()
        ))
        .build();
    let client = client(&config, &isolated_env());
    api::list_job_step(&client, &request())
        .await
        .expect("first poll");
    assert_eq!(metadata.issued(), 1, "fresh credentials are cached");
    let first_token = sim.requests()[0].security_token.clone().unwrap();
    sim.expire_token(&first_token);
    let fetched = api::list_job_step(&client, &request())
        .await
        .expect("refreshed and retried");
    assert_eq!(fetched.retried, ["InvalidSecurityToken.Expired"]);
    assert_eq!(metadata.issued(), 2);
}

#[tokio::test]
async fn static_sts_tokens_are_sent_and_signed() {
    let sim = seed_simulator().await;
    sim.issue_sts(
        "STS.static",
        "static-secret",
        "CAIS+token/with=special&chars",
        Utc::now() + chrono::Duration::hours(1),
    );
    for signature in ["v1", "v3"] {
        let keys = format!(
            "access_key_id = \"STS.static\"\naccess_key_secret = \"static-secret\"\nsecurity_token = \"CAIS+token/with=special&chars\"\nsignature = \"{signature}\""
        );
        let config = seed_config(&sim).keys(&keys).build();
        api::list_job_step(&client(&config, &isolated_env()), &request())
            .await
            .expect(signature);
    }
}

#[tokio::test]
async fn the_account_rate_limit_spaces_requests_out() {
    let sim = seed_simulator().await;
    let config = seed_config(&sim).account_line("max_rps = 4").build();
    let client = std::sync::Arc::new(client(&config, &isolated_env()));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        calls.spawn(async move { api::list_job_step(&client, &request()).await.map(|_| ()) });
    }
    while let Some(result) = calls.join_next().await {
        result.expect("task").expect("poll");
    }
    let times: Vec<_> = sim.requests().iter().map(|r| r.at).collect();
    let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    // Eight requests at four per second need at least one full second between the first and the last.
    assert!(
        span >= chrono::Duration::milliseconds(950),
        "requests spanned only {span}"
    );
}

/// `max_rps` is a limit as DTS counts it: no one-second window of arrivals
/// at the server holds more than `max_rps` requests (it used to send bursts
/// of `max_rps` a second apart, and a window on DTS's side held up to twice that).
#[tokio::test]
async fn no_second_of_arrivals_holds_more_than_max_rps() {
    let sim = seed_simulator().await;
    let config = seed_config(&sim).account_line("max_rps = 5").build();
    let client = std::sync::Arc::new(client(&config, &isolated_env()));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..15 {
        let client = client.clone();
        calls.spawn(async move { api::list_job_step(&client, &request()).await.map(|_| ()) });
    }
    while let Some(result) = calls.join_next().await {
        result.expect("task").expect("poll");
    }
    let mut times: Vec<_> = sim.requests().iter().map(|r| r.at).collect();
    times.sort();
    assert_eq!(times.len(), 15);
    let second = chrono::Duration::seconds(1);
    for start in &times {
        let in_window = times
            .iter()
            .filter(|t| *t >= start && **t < *start + second)
            .count();
        assert!(
            in_window <= 5,
            "{in_window} requests arrived within a second of {start}: {times:?}"
        );
    }
}

#[tokio::test]
async fn discovery_walks_every_page_of_one_job_type() {
    let jobs: Vec<SimJob> = (0..70)
        .map(|i| {
            let mut job = SimJob::fixed(
                &format!("dtssync{i:03}"),
                "cn-shanghai",
                vec![SimStep::default()],
            );
            job.job_type = "SYNC".into();
            job
        })
        .chain(std::iter::once(SimJob::fixed(
            "dtsmigration1",
            "cn-shanghai",
            Vec::new(),
        )))
        .collect();
    let sim = Simulator::start(SimOptions {
        jobs,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let config = seed_config(&sim).build();
    let client = client(&config, &isolated_env());
    let found = api::describe_all(&client, "cn-shanghai", JobType::Sync, None)
        .await
        .expect("discovery");
    assert_eq!(found.len(), 70);
    assert_eq!(sim.requests().len(), 3, "30 + 30 + 10");
    let migrations = api::describe_all(&client, "cn-shanghai", JobType::Migration, None)
        .await
        .unwrap();
    assert_eq!(
        migrations.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["dtsmigration1"]
    );
    assert!(
        api::describe_all(&client, "cn-beijing", JobType::Sync, None)
            .await
            .unwrap()
            .is_empty()
    );
}
