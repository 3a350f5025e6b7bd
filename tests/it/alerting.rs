//! The rules against the simulator and a real database: the lifecycle
//! scenario's exact alert sequence, the seed response with the example
//! config, restarts in the middle of an alert, and silences.

use chrono::{DateTime, Utc};
use dtswatch::config::{self, Config};
use dtswatch::sim::Simulator;
use dtswatch::store::{Store, jobs};

use crate::helpers::{TestApp, TestConfig, isolated_env};

const LIFECYCLE_JOB: &str = "dtsl1fecyc1e01";

/// Lifecycle rules with `for` values sized for a poll every 30 s.
const RULES: &str = r#"
[channels.ops]
type = "console"

[[rules]]
name = "step failed"
kind = "failed"
channels = ["ops"]

[[rules]]
name = "step error"
kind = "error"
channels = ["ops"]

[[rules]]
name = "replication lag"
kind = "latency"
threshold = "300s"
for = "30s"
channels = ["ops"]

[[rules]]
name = "progress stalled"
kind = "stalled"
for = "60s"
channels = ["ops"]

[[rules]]
name = "phase finished"
kind = "transition"
to = ["Finished"]
steps = ["全量迁移", "增量迁移"]
sub_steps = false
channels = ["ops"]
"#;

fn at(poll: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::seconds(30 * poll)
}

/// Every recorded notification decision of a job: `STATUS rule path reason [suppressed]`.
async fn events(store: &Store, job: &str) -> Vec<String> {
    let mut conn = store.pool().acquire().await.unwrap();
    let row = jobs::find(&mut conn, job).await.unwrap().unwrap();
    dtswatch::store::alerts::events_for_job(&mut conn, row.id, DateTime::<Utc>::MIN_UTC)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let held = e.suppressed.map(|s| format!(" [{s}]")).unwrap_or_default();
            let path = e.path.rsplit('/').next().unwrap_or_default().to_string();
            format!("{} {} {path} {}{held}", e.status, e.rule, e.reason)
        })
        .collect()
}

#[tokio::test]
async fn the_lifecycle_scenario_raises_exactly_these_alerts() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let app = TestApp::new(
        TestConfig::new(&sim.endpoint())
            .job(LIFECYCLE_JOB)
            .with(RULES),
    )
    .await;
    for poll in 0..24 {
        app.poll_at(LIFECYCLE_JOB, at(poll)).await;
    }
    let store = &app.store;
    assert_eq!(
        events(store, LIFECYCLE_JOB).await,
        [
            // Full load stuck at 45 % from poll 4: stalled after 60 s, at
            // poll 6; its shards, stuck alike, are named in that one alert.
            "firing progress stalled st03full first_notification",
            // Poll 9: a shard fails; its error is held back by the failure.
            "firing step failed st03full_0001 first_notification",
            "firing step error st03full_0001 first_notification [inhibited:step failed]",
            // The retry count in the message changes: same fingerprint, no new notification.
            // Poll 13: the shard recovers; the error that was never sent resolves quietly.
            "resolved step failed st03full_0001 resolved",
            "resolved step error st03full_0001 resolved [never_notified]",
            "resolved progress stalled st03full resolved",
            // Poll 14: full load done, incremental starts.
            "firing phase finished st03full transition",
            // Latency spike from poll 15, held 30 s: fires at poll 16, one
            // alert for the step and its writer sub-step.
            "firing replication lag st04incr first_notification",
            // Poll 20: caught up.
            "resolved replication lag st04incr resolved",
            // Poll 22: finished.
            "firing phase finished st04incr transition",
        ]
    );
    // Every sent notification became exactly one outbox row per channel and poll.
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let polls_with_sent_events: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT poll) FROM alert_events WHERE suppressed IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(rows, polls_with_sent_events);
}

#[tokio::test]
async fn the_seed_response_with_the_example_config() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dtswatch.db").display().to_string();
    let endpoint = sim.endpoint();
    let env = move |name: &str| match name {
        "ALIBABA_CLOUD_ACCESS_KEY_ID" => Some("dtswatch-demo".to_string()),
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => Some("dtswatch-demo-secret".to_string()),
        "DTS_ENDPOINT" => Some(endpoint.clone()),
        "DTSWATCH_DB" => Some(db.clone()),
        _ => None,
    };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dtswatch.example.toml");
    let config: Config = config::load_with_env(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    // Poll and evaluate as `once` does, without delivering: the example's channels are real services.
    let app = TestApp::open(config, dir, &isolated_env()).await;
    app.poll("k2gm967v16f").await;
    let store = &app.store;
    let mut conn = store.pool().acquire().await.unwrap();
    let row = jobs::find(&mut conn, "k2gm967v16f").await.unwrap().unwrap();
    let recorded =
        dtswatch::store::alerts::events_for_job(&mut conn, row.id, DateTime::<Utc>::MIN_UTC)
            .await
            .unwrap();
    let summary: Vec<(String, String, String)> = recorded
        .iter()
        .map(|e| {
            let event: dtswatch::rules::Event = serde_json::from_str(&e.payload).unwrap();
            (e.rule.clone(), event.step.unwrap().label, event.summary)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "step error".to_string(),
                "预检查 (01)".to_string(),
                "fullcheck find different records : 2372".to_string()
            ),
            (
                "step error".to_string(),
                "预检查 (01) › test".to_string(),
                "UncaughtException:java.lang.NullPointerException".to_string()
            ),
        ],
        "two errors; latency is 1 ms; ErrorDetails 200 and Success are not errors"
    );
    assert_eq!(
        recorded[1].path,
        "l02c1f7h179****/mj3z9w9s10am68o_0004_0000"
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_keeps_pending_and_firing_alerts() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let rules = RULES.replace("for = \"30s\"", "for = \"90s\"");
    let mut app = TestApp::new(
        TestConfig::new(&sim.endpoint())
            .job(LIFECYCLE_JOB)
            .with(&rules),
    )
    .await;
    // Up to poll 16: the latency alert has been pending for 30 of its 90 s; the failure fired and resolved.
    for poll in 0..17 {
        app.poll_at(LIFECYCLE_JOB, at(poll)).await;
    }
    app = app.restart().await;
    let mut fired_at = None;
    for poll in 17..20 {
        let (_, report) = app.poll_at(LIFECYCLE_JOB, at(poll)).await;
        if report
            .notices
            .iter()
            .any(|n| n.event.rule == "replication lag")
        {
            fired_at.get_or_insert(poll);
        }
    }
    assert_eq!(
        fired_at,
        Some(18),
        "pending since poll 15, fires 90 s later at poll 18: the timer survived the restart"
    );
}

/// DTS renumbers `JobStepId`s while the steps stay the same (same Code, name
/// and serial): the same step stays the same step, so its alerts neither
/// resolve as "gone" nor fire again, and no step "disappears".
#[tokio::test]
async fn renumbered_step_ids_are_the_same_steps() {
    use dtswatch::diff::ChangeKind;
    use dtswatch::sim::scenario::{Frame, Script};
    use dtswatch::sim::{SimJob, SimOptions, SimStep};
    let frame = |poll: usize| {
        vec![
            SimStep {
                id: Some(format!("full-{poll}")),
                name: "全量迁移".into(),
                code: Some("03".into()),
                serial: Some(3),
                state: "Failed".into(),
                err: Some("DTS-1020042 Duplicate entry '42' for key 'PRIMARY'".into()),
                sub: vec![SimStep {
                    id: Some(format!("order_items-{poll}")),
                    name: "order_items".into(),
                    serial: Some(1),
                    state: "Failed".into(),
                    err: Some("DTS-1020042 Duplicate entry '42' for key 'PRIMARY'".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            SimStep {
                id: Some(format!("inc-{poll}")),
                name: "增量迁移".into(),
                code: Some("04".into()),
                serial: Some(4),
                state: "Running".into(),
                latency_ms: Some(1200),
                ..Default::default()
            },
        ]
    };
    let mut job = SimJob::fixed("dtsrenumbered", "cn-hangzhou", Vec::new());
    job.script = Script::Frames((0..5).map(|p| Frame::Steps(frame(p))).collect());
    let sim = dtswatch::sim::Simulator::start(SimOptions {
        jobs: vec![job],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let app = TestApp::new(
        TestConfig::new(&sim.endpoint())
            .job("dtsrenumbered")
            .with(RULES),
    )
    .await;
    for poll in 0..5 {
        let (_, report) = app.poll_at("dtsrenumbered", at(poll)).await;
        if poll > 0 {
            let moved: Vec<_> = report
                .changes
                .iter()
                .filter(|c| matches!(c.kind, ChangeKind::Appeared | ChangeKind::Disappeared))
                .collect();
            assert!(moved.is_empty(), "poll {poll}: {moved:?}");
        }
    }
    assert_eq!(
        events(&app.store, "dtsrenumbered").await,
        [
            // The sub-step fails with the same error: one alert per rule.
            "firing step failed full-0 first_notification",
            "firing step error full-0 first_notification [inhibited:step failed]",
        ]
    );
}
