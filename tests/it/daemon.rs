//! The real `run` loop against the simulator with sub-second schedules:
//! scheduling, no overlap, metrics, health, discovery, the watchdog, SIGHUP,
//! SIGTERM, and the demo. Waits are generous upper bounds; what is asserted is
//! what happened, not how fast.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use dtswatch::sim::{Fault, SimJob, SimOptions, SimStep, Simulator};
use dtswatch::store::Store;

use crate::helpers::{
    DaemonProcess, Running, daemon_config, eventually, free_port, parse_prometheus, polls_of,
};
use crate::peers;

fn running(id: &str) -> SimJob {
    SimJob::fixed(
        id,
        "cn-hangzhou",
        vec![SimStep {
            id: Some("s1".into()),
            name: "增量迁移".into(),
            code: Some("04".into()),
            state: "Running".into(),
            progress: 0,
            latency_ms: Some(800),
            ..Default::default()
        }],
    )
}

fn failing(id: &str) -> SimJob {
    crate::helpers::failed_job(id, "DTS-1020042 boom")
}

#[tokio::test]
async fn jobs_are_polled_on_schedule_and_metrics_count_what_happened() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtsjob1"), running("dtsjob2"), failing("dtsjob3")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    sim.inject(Some("dtsjob1"), Fault::Throttling, 2);
    let webhook = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]",
        webhook.url(),
        webhook.secret
    );
    let daemon = Running::start(
        &daemon_config(
            dir.path(),
            &sim.endpoint(),
            &["dtsjob1", "dtsjob2", "dtsjob3"],
        )
        .with(&extra),
    )
    .await;
    eventually("five polls of every job", async || {
        ["dtsjob1", "dtsjob2", "dtsjob3"]
            .iter()
            .all(|j| polls_of(&sim, j).len() >= 5)
            .then_some(())
    })
    .await;
    eventually("the failure delivered", async || {
        (!webhook.accepted().is_empty()).then_some(())
    })
    .await;
    let metrics = daemon.metrics().await;
    assert_eq!(
        metrics["dtswatch_api_errors_total{code=\"Throttling.User\"}"], 2.0,
        "both throttled answers were counted"
    );
    assert!(
        metrics["dtswatch_polls_total{outcome=\"ok\"}"] >= 12.0,
        "five polls of three jobs, two of them throttled once each"
    );
    assert_eq!(metrics["dtswatch_jobs_watched"], 3.0);
    assert_eq!(
        metrics["dtswatch_alerts{rule=\"step failed\",severity=\"critical\",status=\"firing\"}"],
        1.0
    );
    assert!(metrics["dtswatch_notifications_total{channel=\"hook\",outcome=\"delivered\"}"] >= 1.0);
    assert!(
        metrics.contains_key(
            "dtswatch_last_successful_poll_timestamp_seconds{dts_job_id=\"dtsjob2\"}"
        )
    );
    assert!(metrics["dtswatch_poll_duration_seconds_count"] >= 12.0);
    assert_eq!(metrics["dtswatch_healthy"], 1.0);
    let (status, body) = daemon.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    daemon.stop().await;
    // The schedule never polls a job more often than every 200 ms.
    for job in ["dtsjob1", "dtsjob2", "dtsjob3"] {
        // Answers that ended a poll (a throttled answer is retried within the same poll).
        let times: Vec<_> = sim
            .requests()
            .into_iter()
            .filter(|r| r.job_id.as_deref() == Some(job) && r.outcome == "Success")
            .map(|r| r.at)
            .collect();
        let polls: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let fastest = polls.iter().min().unwrap();
        assert!(
            *fastest >= chrono::Duration::milliseconds(150),
            "{job}: polls {fastest} apart"
        );
    }
    // Throttled polls retried inside the same poll, not as extra polls.
    let job1: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.job_id.as_deref() == Some("dtsjob1"))
        .map(|r| r.outcome)
        .take(3)
        .collect();
    assert_eq!(job1, ["Throttling.User", "Throttling.User", "Success"]);
}

#[tokio::test]
async fn a_slow_job_never_overlaps_itself_and_the_skips_are_counted() {
    let mut slow = running("dtsslow");
    slow.script = dtswatch::sim::scenario::Script::Frames(vec![dtswatch::sim::Frame::Fault(
        Fault::Slow(Duration::from_millis(700)),
    )]);
    let sim = Simulator::start(SimOptions {
        jobs: vec![slow, running("dtsfast")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Running::start(&daemon_config(
        dir.path(),
        &sim.endpoint(),
        &["dtsslow", "dtsfast"],
    ))
    .await;
    eventually("four slow polls", async || {
        (polls_of(&sim, "dtsslow").len() >= 4).then_some(())
    })
    .await;
    let metrics = daemon.metrics().await;
    daemon.stop().await;
    let times = polls_of(&sim, "dtsslow");
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::milliseconds(690),
            "a poll started while the previous one ran: {times:?}"
        );
    }
    assert!(metrics["dtswatch_polls_skipped_total{dts_job_id=\"dtsslow\"}"] >= 1.0);
    assert!(!metrics.contains_key("dtswatch_polls_skipped_total{dts_job_id=\"dtsfast\"}"));
    assert!(
        polls_of(&sim, "dtsfast").len() > times.len(),
        "the fast job is not held up by the slow one"
    );
}

#[tokio::test]
async fn healthz_turns_503_when_dts_stops_answering_and_recovers() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtsjob1")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Running::start(&daemon_config(dir.path(), &sim.endpoint(), &["dtsjob1"])).await;
    eventually("a first poll", async || {
        (!polls_of(&sim, "dtsjob1").is_empty()).then_some(())
    })
    .await;
    assert_eq!(daemon.get("/healthz").await.0, 200);
    sim.set_offline(true);
    let body = eventually("an unhealthy answer", async || {
        let (status, body) = daemon.get("/healthz").await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(
        body.contains("unhealthy: the last 2 polls of every job failed"),
        "{body}"
    );
    assert!(body.contains("HTTP503"), "{body}");
    let metrics = daemon.metrics().await;
    assert_eq!(metrics["dtswatch_healthy"], 0.0);
    assert!(metrics["dtswatch_polls_total{outcome=\"server\"}"] >= 2.0);
    sim.set_offline(false);
    eventually("healthy again", async || {
        (daemon.get("/healthz").await.0 == 200).then_some(())
    })
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn discovery_adds_jobs_and_retires_the_ones_no_longer_listed() {
    let mut gone = failing("dtsgone");
    gone.job_type = "SYNC".into();
    gone.tags.insert("team".into(), "orders".into());
    let mut stays = running("dtsstays");
    stays.job_type = "SYNC".into();
    stays.tags.insert("team".into(), "orders".into());
    let mut other_team = running("dtsbilling");
    other_team.job_type = "SYNC".into();
    other_team.tags.insert("team".into(), "billing".into());
    let sim = Simulator::start(SimOptions {
        jobs: vec![gone, stays, other_team],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = "[[discover]]\nregions = [\"cn-hangzhou\"]\ntags = { team = \"orders\" }\nrefresh = \"500ms\"\n\n[channels.c]\ntype = \"console\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"c\"]";
    let daemon = Running::start(&daemon_config(dir.path(), &sim.endpoint(), &[]).with(extra)).await;
    eventually("both orders jobs polled", async || {
        (!polls_of(&sim, "dtsgone").is_empty() && !polls_of(&sim, "dtsstays").is_empty())
            .then_some(())
    })
    .await;
    assert!(polls_of(&sim, "dtsbilling").is_empty(), "tags filter");
    let db = dir.path().join("dtswatch.db");
    sim.remove_job("dtsgone");
    let mut added = running("dtsnew");
    added.job_type = "SYNC".into();
    added.tags.insert("team".into(), "orders".into());
    sim.add_job(added);
    eventually("the new job polled", async || {
        (!polls_of(&sim, "dtsnew").is_empty()).then_some(())
    })
    .await;
    let reasons = eventually("the retired job's alert resolved", async || {
        let store = Store::open(&db).await.unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.status, e.reason FROM alert_events e JOIN alerts a ON a.id = e.alert JOIN jobs j ON j.id = a.job WHERE j.dts_job_id = 'dtsgone' ORDER BY e.id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let retired: Option<i64> = sqlx::query_scalar("SELECT retired_at FROM jobs WHERE dts_job_id = 'dtsgone'").fetch_one(store.pool()).await.unwrap();
        store.close().await;
        (rows.len() == 2 && retired.is_some()).then_some(rows)
    })
    .await;
    assert_eq!(
        reasons,
        [
            ("firing".to_string(), "first_notification".to_string()),
            ("resolved".to_string(), "job_retired".to_string())
        ]
    );
    let metrics = daemon.metrics().await;
    assert_eq!(metrics["dtswatch_jobs_watched"], 2.0);
    daemon.stop().await;
}

#[tokio::test]
async fn the_watchdog_speaks_up_when_no_poll_succeeds() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtsjob1")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    sim.set_offline(true);
    let webhook = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[channels.self]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n[watchdog]\nchannels = [\"self\"]\nno_successful_poll = \"1s\"",
        webhook.url(),
        webhook.secret
    );
    let daemon =
        Running::start(&daemon_config(dir.path(), &sim.endpoint(), &["dtsjob1"]).with(&extra))
            .await;
    let firing = eventually("the watchdog alert", async || {
        webhook.accepted().first().map(|r| r.json())
    })
    .await;
    assert_eq!(
        firing["alerts"][0]["labels"]["rule"],
        "watchdog: no successful poll"
    );
    assert_eq!(firing["alerts"][0]["status"], "firing");
    assert!(
        firing["alerts"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("no DTS poll has succeeded for")
    );
    sim.set_offline(false);
    let resolved = eventually("the watchdog resolution", async || {
        webhook.accepted().get(1).map(|r| r.json())
    })
    .await;
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    daemon.stop().await;
}

#[tokio::test]
async fn sighup_reloads_a_good_config_keeps_the_old_one_on_errors_and_sigterm_drains() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtsjob1"), running("dtsjob2")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = daemon_config(dir.path(), &sim.endpoint(), &["dtsjob1"]).set(
        "server",
        "listen",
        &format!("\"127.0.0.1:{port}\""),
    );
    let good = config.text();
    let path = config.write(dir.path());
    let log_path = dir.path().join("daemon.log");
    let mut daemon =
        DaemonProcess::start_logging_at(&path, "info", std::fs::File::create(&log_path).unwrap());
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let scrape = async || -> Option<BTreeMap<String, f64>> {
        let response = reqwest::get(&metrics_url).await.ok()?;
        Some(parse_prometheus(&response.text().await.ok()?))
    };
    eventually("dtsjob1 polled", async || {
        (!polls_of(&sim, "dtsjob1").is_empty()).then_some(())
    })
    .await;
    // A broken config: the daemon says why and carries on with the old one.
    std::fs::write(
        &path,
        good.replace(
            "schedule = \"@every 200ms\"",
            "schedule = \"every now and then\"",
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    eventually("the rejected reload counted", async || {
        scrape()
            .await
            .filter(|m| m.get("dtswatch_config_reloads_total{result=\"error\"}") == Some(&1.0))
    })
    .await;
    let before = polls_of(&sim, "dtsjob1").len();
    eventually("polling goes on", async || {
        (polls_of(&sim, "dtsjob1").len() > before + 2).then_some(())
    })
    .await;
    assert!(polls_of(&sim, "dtsjob2").is_empty());
    // A good config with a second job: picked up without a restart.
    std::fs::write(
        &path,
        good.replace(
            "[[jobs]]\nid = \"dtsjob1\"",
            "[[jobs]]\nid = \"dtsjob2\"\nregion = \"cn-hangzhou\"\n\n[[jobs]]\nid = \"dtsjob1\"",
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    eventually("dtsjob2 polled after the reload", async || {
        (!polls_of(&sim, "dtsjob2").is_empty()).then_some(())
    })
    .await;
    let code = tokio::task::spawn_blocking(move || daemon.terminate())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let status = (code, log);
    assert_eq!(status.0, Some(0), "{}", status.1);
    assert!(
        status
            .1
            .contains("schedule: `every now and then` is not a cron expression"),
        "the reload error is logged: {}",
        status.1
    );
    assert!(status.1.contains("config reload rejected"), "{}", status.1);
    assert!(status.1.contains("config reloaded"), "{}", status.1);
    assert!(
        status.1.contains("shutting down") && status.1.contains("stopped"),
        "{}",
        status.1
    );
}

#[test]
fn the_demo_plays_the_whole_scenario_and_ends_by_itself() {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
        .arg("demo")
        .env_remove("DTSWATCH_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "🟠 [FIRING·warning] Incremental latency 7 min (threshold 5 min) · orders mysql -> polardb",
        "✅ [RESOLVED] Incremental latency back to",
        "🔴 [FIRING·critical] Full data › order_items failed · orders mysql -> polardb",
        "Error: DTS-1020042 Execute sql error",
        "🔴 【告警·严重】全量迁移 › order_items 失败 · orders mysql -> polardb",
        "错误：DTS-1020042 Execute sql error",
        "🟠 [FIRING·warning] Full data stalled at 45%",
        "Sub-steps: order_items (st03full_0001), orders (st03full_0000)",
        "🔵 [FIRING·info] Incremental: caught up → finished",
        "UncaughtException:java.lang.NullPointerException",
        "JOB                      ID              REGION",
        "dtswatch demo: scenario finished",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "the demo ends by itself"
    );
}

/// A job whose poll hangs is not polled within twice its period: `/healthz`
/// says so (it used to answer 200), and the skipped ticks are one log line a
/// minute, not one per tick.
#[tokio::test]
async fn a_job_not_polled_in_time_turns_healthz_503_without_flooding_the_log() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtsstuck")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    sim.inject(Some("dtsstuck"), Fault::Slow(Duration::from_secs(120)), 1);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = daemon_config(dir.path(), &sim.endpoint(), &["dtsstuck"])
        .set("server", "listen", &format!("\"127.0.0.1:{port}\""))
        .set("poll", "timeout", "\"60s\"")
        .write(dir.path());
    let log_path = dir.path().join("daemon.log");
    let _daemon =
        DaemonProcess::start_logging_at(&path, "info", std::fs::File::create(&log_path).unwrap());
    let url = format!("http://127.0.0.1:{port}/healthz");
    let body = eventually("/healthz to report the job not polled", async || {
        let response = reqwest::get(&url).await.ok()?;
        let status = response.status().as_u16();
        let body = response.text().await.ok()?;
        (status == 503).then_some(body)
    })
    .await;
    assert!(
        body.contains("1 of 1 jobs were not polled within twice their period (e.g. dtsstuck)"),
        "{body}"
    );
    assert_eq!(sim.polls_of("dtsstuck"), 0, "the one poll still hangs");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let skip_lines = log.lines().filter(|l| l.contains("skipp")).count();
    assert!(
        skip_lines <= 1,
        "{skip_lines} lines about skipped ticks in a few seconds:\n{log}"
    );
}
