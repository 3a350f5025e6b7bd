//! A fleet within DTS's API budget: against a simulator that enforces a
//! per-account-region quota (answering `Throttling.User` above it), the
//! daemon's requests stay under it; in adaptive mode a sweep finds a job
//! that fails between refreshes and it is alerted with its step detail,
//! quiet jobs are not fetched every tick, and a sweep that fails falls
//! back to polling each job without a false alert.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use dtswatch::sim::scenario::Script;
use dtswatch::sim::{Fault, SimJob, SimOptions, SimStep, Simulator};

use crate::helpers::{Running, daemon_config, eventually};
use crate::peers;

fn replicating() -> SimStep {
    SimStep {
        id: Some("st04incr".into()),
        name: "增量同步".into(),
        code: Some("04".into()),
        state: "Running".into(),
        latency_ms: Some(1_200),
        ..Default::default()
    }
}

/// A quiet synchronization job; with `fails_in`, its step fails that long after now.
fn sync_job(id: &str, fails_in: Option<Duration>) -> SimJob {
    let mut job = SimJob::fixed(id, "cn-hangzhou", Vec::new());
    job.job_type = "SYNC".into();
    job.status = "Synchronizing".into();
    let mut frames = vec![(Utc::now() - chrono::Duration::hours(1), vec![replicating()])];
    if let Some(after) = fails_in {
        let failed = SimStep {
            state: "Failed".into(),
            latency_ms: None,
            err: Some("DTS-31009 binlog reader: connection reset by peer".into()),
            error_code: Some("DTS-31009".into()),
            ..replicating()
        };
        let at = Utc::now() + chrono::Duration::from_std(after).unwrap();
        frames.push((at, vec![failed]));
    }
    job.script = Script::Timed(frames);
    job
}

async fn simulator(jobs: Vec<SimJob>, quota: f64) -> Simulator {
    Simulator::start(SimOptions {
        jobs,
        quota: Some(quota),
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

/// ListJobStep answers per job, and how many requests DTS refused for the quota.
fn requests(sim: &Simulator) -> (BTreeMap<String, usize>, usize, usize) {
    let mut per_job = BTreeMap::new();
    let (mut sweeps, mut throttled) = (0, 0);
    for r in sim.requests() {
        if r.outcome == "Throttling.User" {
            throttled += 1;
        }
        match (r.action.as_str(), r.job_id) {
            ("ListJobStep", Some(job)) => *per_job.entry(job).or_default() += 1,
            ("DescribeDtsJobs", _) => sweeps += 1,
            _ => {}
        }
    }
    (per_job, sweeps, throttled)
}

const RULES: &str = "[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]\n\n[[rules]]\nname = \"dts unreachable\"\nkind = \"unreachable\"\nfor = \"0s\"\nchannels = [\"hook\"]";

#[tokio::test]
async fn a_sweep_finds_a_job_failing_between_refreshes_within_the_budget() {
    let ids: Vec<String> = (0..40).map(|i| format!("dtsfleet{i:02}")).collect();
    let jobs = ids
        .iter()
        .map(|id| {
            let fails = (id == "dtsfleet07").then_some(Duration::from_secs(8));
            sync_job(id, fails)
        })
        .collect();
    let sim = simulator(jobs, 8.0).await;
    let webhook = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // Sweeps (two pages of SYNC jobs and one each of the other types)
    // every 2 s take 2 of the 6 requests a second; refreshes share the rest.
    let config = daemon_config(dir.path(), &sim.endpoint(), &id_refs)
        .set("poll", "schedule", "\"@every 2s\"")
        .set("poll", "jitter", "\"0s\"")
        .set("poll", "mode", "\"adaptive\"")
        .set("poll", "refresh", "\"10m\"")
        .set("poll", "max_rps", "6")
        .with(&format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n{RULES}",
            webhook.url(),
            webhook.secret
        ));
    let daemon = Running::start(&config).await;
    let alert = eventually("the failing job's alert", async || {
        webhook
            .accepted()
            .into_iter()
            .find(|r| r.body.contains("dtsfleet07"))
    })
    .await;
    let (polls_before, sweeps_before, _) = requests(&sim);
    let metrics = daemon.metrics().await;
    daemon.stop().await;
    let body = alert.json();
    let first = &body["alerts"][0];
    assert_eq!(first["labels"]["rule"], "step failed");
    assert_eq!(first["labels"]["step_code"], "04", "with its step detail");
    assert_eq!(first["values"]["error_details"][0]["code"], "DTS-31009");
    let (per_job, sweeps, throttled) = requests(&sim);
    assert_eq!(throttled, 0, "no request over DTS's quota");
    assert!(sweeps >= 3, "the fleet was swept: {sweeps} pages");
    assert!(
        per_job.get("dtsfleet07").is_some_and(|n| *n >= 1),
        "the sweep's news was fetched: {per_job:?}"
    );
    let quiet_max = per_job
        .iter()
        .filter(|(id, _)| *id != "dtsfleet07")
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    assert!(
        quiet_max <= 1,
        "quiet jobs wait for their refresh instead of every tick: {per_job:?}"
    );
    let counted = |action: &str| {
        metrics
            .get(&format!(
                "dtswatch_api_requests_total{{account=\"sim\",region=\"cn-hangzhou\",action=\"{action}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };
    let sweep_pages = counted("DescribeDtsJobs") as usize;
    assert!(
        (sweeps_before..=sweeps).contains(&sweep_pages),
        "every request is counted: {sweep_pages} of {sweeps_before}..={sweeps}"
    );
    let fetched = counted("ListJobStep") as usize;
    assert!(
        (polls_before.values().sum::<usize>()..=per_job.values().sum::<usize>()).contains(&fetched),
        "{fetched}"
    );
    assert!(
        metrics.contains_key(
            "dtswatch_api_budget_requests_per_second{account=\"sim\",region=\"cn-hangzhou\"}"
        ),
        "{metrics:?}"
    );
    assert!(
        webhook
            .accepted()
            .iter()
            .all(|r| !r.body.contains("unreachable")),
        "no false alert"
    );
}

#[tokio::test]
async fn a_failing_sweep_falls_back_to_each_job_and_raises_no_alert() {
    let ids: Vec<String> = (0..8).map(|i| format!("dtsfall{i}")).collect();
    let sim = simulator(ids.iter().map(|id| sync_job(id, None)).collect(), 50.0).await;
    sim.inject_action("DescribeDtsJobs", Fault::ServiceUnavailable, 100_000);
    let webhook = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let config = daemon_config(dir.path(), &sim.endpoint(), &id_refs)
        .set("poll", "schedule", "\"@every 1s\"")
        .set("poll", "jitter", "\"0s\"")
        .set("poll", "mode", "\"adaptive\"")
        .set("poll", "refresh", "\"10m\"")
        .with(&format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n{RULES}",
            webhook.url(),
            webhook.secret
        ));
    let daemon = Running::start(&config).await;
    // Every sweep fails: each job is polled on every tick.
    eventually("three polls of every job", async || {
        let (per_job, _, _) = requests(&sim);
        (per_job.len() == ids.len() && per_job.values().all(|n| *n >= 3)).then_some(())
    })
    .await;
    // The sweeps work again: quiet jobs go back to their slow refresh.
    sim.clear_faults();
    eventually("a sweep that works", async || {
        let metrics = daemon.metrics().await;
        (metrics
            .get("dtswatch_sweeps_total{account=\"sim\",region=\"cn-hangzhou\",result=\"ok\"}")
            .copied()
            .unwrap_or(0.0)
            >= 2.0)
            .then_some(())
    })
    .await;
    let (before, _, _) = requests(&sim);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, _, _) = requests(&sim);
    let metrics = daemon.metrics().await;
    daemon.stop().await;
    for id in &ids {
        assert!(
            after[id] <= before[id] + 1,
            "{id} is no longer polled every tick: {before:?} → {after:?}"
        );
    }
    assert!(
        metrics["dtswatch_sweeps_total{account=\"sim\",region=\"cn-hangzhou\",result=\"error\"}"]
            >= 1.0
    );
    assert!(
        webhook.log.lock().unwrap().is_empty(),
        "a failing sweep is not an alert"
    );
}

#[tokio::test]
async fn polling_each_job_queues_behind_the_budget_instead_of_being_throttled() {
    let ids: Vec<String> = (0..20).map(|i| format!("dtsbudget{i:02}")).collect();
    let sim = simulator(ids.iter().map(|id| sync_job(id, None)).collect(), 10.0).await;
    let dir = tempfile::tempdir().unwrap();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // Twenty jobs every 2 s: the whole budget, with no room for bursts.
    let config = daemon_config(dir.path(), &sim.endpoint(), &id_refs)
        .set("poll", "schedule", "\"@every 2s\"")
        .set("poll", "jitter", "\"0s\"")
        .set("poll", "mode", "\"per_job\"")
        .set("poll", "max_rps", "10");
    let daemon = Running::start(&config).await;
    eventually("80 polls", async || {
        let (per_job, _, _) = requests(&sim);
        (per_job.values().sum::<usize>() >= 80).then_some(())
    })
    .await;
    daemon.stop().await;
    let (_, _, throttled) = requests(&sim);
    assert_eq!(
        throttled, 0,
        "twenty jobs released at once queue for the budget; DTS never throttles"
    );
}
