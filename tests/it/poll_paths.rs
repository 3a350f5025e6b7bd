//! `once` and `run` poll through the same `poll_one`: for the same jobs they
//! record the same polls, alerts and notification decisions — including a
//! job whose account has no credentials, which both record as a failed poll
//! that `unreachable` alerts on.

use std::path::Path;

use dtswatch::sim::{SimOptions, Simulator};
use dtswatch::store::Store;

use crate::helpers::{Running, TestConfig, eventually, isolated_env, one_step_job};

const RULES: &str = r#"
[[accounts]]
name = "nokeys"
endpoint = "http://127.0.0.1:9"

[[jobs]]
id = "dtsnokeys"
region = "cn-hangzhou"
account = "nokeys"

[channels.ops]
type = "console"

[[rules]]
name = "step failed"
kind = "failed"
channels = ["ops"]

[[rules]]
name = "unreachable"
kind = "unreachable"
for = "0s"
channels = ["ops"]
"#;

fn config(dir: &Path, endpoint: &str) -> TestConfig {
    TestConfig::new(endpoint)
        .db(&dir.join("dtswatch.db"))
        .set("poll", "schedule", "\"@every 1s\"")
        .set("poll", "jitter", "\"0s\"")
        .set("poll", "attempts", "1")
        .set("server", "listen", "\"127.0.0.1:0\"")
        .set("delivery", "drain_timeout", "\"2s\"")
        .jobs(&["dtsrunning", "dtsfailed"])
        .with(RULES)
}

/// What a run left behind: each job's first poll, every alert, every decision.
struct Recorded {
    first_polls: Vec<(String, String, Option<String>, bool)>,
    alerts: Vec<(String, String, String, String)>,
    events: Vec<(String, String, String, String, Option<String>)>,
}

async fn recorded(db: &Path) -> Recorded {
    let store = Store::open(db).await.unwrap();
    let pool = store.pool();
    let first_polls: Vec<(String, String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT j.dts_job_id, p.outcome, p.error_code, p.snapshot
         FROM polls p JOIN jobs j ON j.id = p.job
         WHERE p.id IN (SELECT MIN(id) FROM polls GROUP BY job) ORDER BY j.dts_job_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let first_polls = first_polls
        .into_iter()
        .map(|(job, outcome, code, snapshot)| (job, outcome, code, snapshot.is_some()))
        .collect();
    let alerts = sqlx::query_as(
        "SELECT j.dts_job_id, a.rule, a.path, a.status FROM alerts a JOIN jobs j ON j.id = a.job
         ORDER BY j.dts_job_id, a.rule, a.path",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let events = sqlx::query_as(
        "SELECT j.dts_job_id, a.rule, a.path, e.reason, e.suppressed
         FROM alert_events e JOIN alerts a ON a.id = e.alert JOIN jobs j ON j.id = a.job
         ORDER BY j.dts_job_id, a.rule, a.path, e.id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    store.close().await;
    Recorded {
        first_polls,
        alerts,
        events,
    }
}

async fn polled_jobs(db: &Path) -> i64 {
    let store = Store::open(db).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(DISTINCT job) FROM polls")
        .fetch_one(store.pool())
        .await
        .unwrap_or(0);
    store.close().await;
    n
}

#[tokio::test]
async fn once_and_run_record_the_same_rows_for_the_same_jobs() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![
            one_step_job("dtsrunning", "Running"),
            one_step_job("dtsfailed", "Failed"),
        ],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let once_dir = tempfile::tempdir().unwrap();
    let once_config = config(once_dir.path(), &sim.endpoint()).build();
    let code = dtswatch::cli::poll::once(
        &once_config,
        &isolated_env(),
        dtswatch::cli::args::OutputFormat::Text,
    )
    .await
    .unwrap();
    assert_eq!(
        code,
        std::process::ExitCode::FAILURE,
        "a failed poll makes once fail"
    );

    let run_dir = tempfile::tempdir().unwrap();
    let run_config = config(run_dir.path(), &sim.endpoint()).build();
    let db = run_config.storage.path.clone();
    let daemon = Running::start_with(run_config, isolated_env()).await;
    eventually("every job polled by the daemon", async || {
        (db.exists() && polled_jobs(&db).await == 3).then_some(())
    })
    .await;
    daemon.stop().await;

    let once = recorded(&once_dir.path().join("dtswatch.db")).await;
    let run = recorded(&db).await;
    assert_eq!(
        once.first_polls,
        [
            ("dtsfailed".to_string(), "ok".to_string(), None, true),
            (
                "dtsnokeys".to_string(),
                "credentials".to_string(),
                Some("NoCredentials".to_string()),
                false
            ),
            ("dtsrunning".to_string(), "ok".to_string(), None, true),
        ],
        "the job without credentials is a failed poll"
    );
    assert_eq!(once.first_polls, run.first_polls);
    assert_eq!(
        once.alerts,
        [
            (
                "dtsfailed".to_string(),
                "step failed".to_string(),
                "s1".to_string(),
                "firing".to_string()
            ),
            (
                "dtsnokeys".to_string(),
                "unreachable".to_string(),
                String::new(),
                "firing".to_string()
            ),
        ]
    );
    assert_eq!(once.alerts, run.alerts);
    assert_eq!(once.events, run.events);
    assert_eq!(once.events.len(), 2, "{:?}", once.events);
}
