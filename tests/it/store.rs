//! Polls recorded through the real migrations, each test on both engines —
//! a real SQLite file and a real PostgreSQL server (`pg.rs`): the change
//! timeline, atomicity, restarts, retention; and what a poll costs in the
//! SQLite file.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dtswatch::aliyun::{ApiError, ApiFailure};
use dtswatch::cli::status;
use dtswatch::config::{JobConfig, Secret, StorageConfig};
use dtswatch::dts::JobSnapshot;
use dtswatch::dts::api::{self, Fetched};
use dtswatch::poll::{RecordOnly, Recorder};
use dtswatch::report::history as report;
use dtswatch::sim::scenario::{self, SimJob};
use dtswatch::sim::{Frame, Simulator};
use dtswatch::store::jobs::JobSource;
use dtswatch::store::{Store, jobs, retention};

use crate::helpers::{TestApp, TestConfig};

pub fn job(id: &str) -> JobConfig {
    JobConfig {
        id: id.into(),
        region: "cn-hangzhou".into(),
        account: "test".into(),
        name: Some(format!("job {id}")),
        schedule: None,
        zero_etl: None,
        resource_group_id: None,
    }
}

/// The engines the store suite runs on.
#[derive(Debug, Clone, Copy)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database of a test's own: a SQLite file in a temp dir, or a fresh
/// database on the test PostgreSQL server.
pub struct Db {
    _dir: tempfile::TempDir,
    pub storage: StorageConfig,
}

impl Db {
    /// `None` (having said SKIPPED) where PostgreSQL is not installed.
    pub fn new(engine: Engine, test: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let url = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(Secret::new(crate::pg::database(test)?)),
        };
        Some(Self {
            storage: StorageConfig {
                path: dir.path().join("dtswatch.db"),
                url,
                retention: Duration::from_secs(30 * 86_400),
                prune_interval: Duration::from_secs(3_600),
            },
            _dir: dir,
        })
    }

    /// Opens (creating and migrating) the database.
    pub async fn open(&self) -> Store {
        Store::connect(&self.storage).await.unwrap()
    }

    /// The test config's `[storage]` for this database.
    pub fn configure(&self, config: TestConfig) -> TestConfig {
        match &self.storage.url {
            Some(url) => config.postgres(url.expose()),
            None => config,
        }
    }
}

/// Runs each named `async fn(Engine)` as two tests: `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Engine::Sqlite).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Engine::Postgres).await
                }
            }
        )*
    };
}

on_both_engines!(
    polling_the_lifecycle_yields_the_expected_timeline,
    a_failure_before_commit_leaves_no_partial_rows,
    a_restart_keeps_the_previous_snapshot,
    a_failed_poll_records_its_failure_and_no_snapshot,
    retention_prunes_old_polls_but_keeps_each_jobs_baseline,
    garbage_collection_removes_unreferenced_snapshots,
);

async fn count(store: &Store, table: &str) -> i64 {
    let sql = match table {
        "polls" => "SELECT COUNT(*) FROM polls",
        "snapshots" => "SELECT COUNT(*) FROM snapshots",
        "step_states" => "SELECT COUNT(*) FROM step_states",
        "jobs" => "SELECT COUNT(*) FROM jobs",
        other => panic!("unknown table {other}"),
    };
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[allow(clippy::result_large_err)] // mirrors what `poll::fetch` returns
fn fetched(snapshot: JobSnapshot) -> Result<Fetched, ApiFailure> {
    Ok(Fetched {
        snapshot: std::sync::Arc::new(snapshot),
        request_id: Some("5E1C0F5A-0001-4D1E-9C3B-000000000001".into()),
        attempts: 1,
        retried: Vec::new(),
        backoff: std::time::Duration::ZERO,
    })
}

/// The snapshot a simulator job serves at its next poll, without HTTP.
fn next_snapshot(job: &mut SimJob) -> JobSnapshot {
    match job.next_frame(chrono::Utc::now()) {
        Frame::Steps(steps) => {
            let body = scenario::render_list_job_step(&steps, "R", "2026-11-30T00:00:00Z");
            JobSnapshot::from_response(
                &api::parse_list_job_step(body.to_string().as_bytes()).unwrap(),
            )
        }
        other => panic!("expected steps, got {other:?}"),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::seconds(seconds)
}

async fn polling_the_lifecycle_yields_the_expected_timeline(engine: Engine) {
    let Some(db) = Db::new(engine, "lifecycle") else {
        return;
    };
    let sim = Simulator::with_scenario(scenario::LIFECYCLE).await.unwrap();
    let app =
        TestApp::new(db.configure(TestConfig::new(&sim.endpoint()).job("dtsl1fecyc1e01"))).await;
    let store = &app.store;
    let start = Utc::now() - chrono::Duration::minutes(30);
    for i in 0..24 {
        app.poll_at("dtsl1fecyc1e01", start + chrono::Duration::seconds(30 * i))
            .await;
    }
    let mut conn = store.pool().acquire().await.unwrap();
    let row = jobs::find(&mut conn, "dtsl1fecyc1e01")
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let entries = report::timeline(store, &row, start - chrono::Duration::seconds(1), false)
        .await
        .unwrap();
    let texts: Vec<&str> = entries.iter().map(|e| e.text.as_str()).collect();
    let expected = [
        "预检查 (01): appeared",
        "结构迁移 (02): appeared",
        "全量迁移 (03): appeared",
        "增量迁移 (04): appeared",
        "预检查 (01): State: Running → ○ Finished",
        "结构迁移 (02): State: Init → Running",
        "结构迁移 (02): State: Running → Finished",
        "全量迁移 (03): State: Init → Running",
        "全量迁移 (03) › orders: appeared",
        "全量迁移 (03) › order_items: appeared",
        "全量迁移 (03) › order_items: State: running → Failed",
    ];
    assert_eq!(&texts[..expected.len()], &expected, "{texts:#?}");
    assert!(
        texts.contains(&"增量迁移 (04): State: Catched → Finished"),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .all(|t| !t.contains("Latency:") && !t.contains("Progress:")),
        "volatile changes only on request"
    );
    let with_volatile = report::timeline(store, &row, start - chrono::Duration::seconds(1), true)
        .await
        .unwrap();
    assert!(
        with_volatile
            .iter()
            .any(|e| e.text == "增量迁移 (04): Latency: 1.2 s → 7m00s"),
        "{with_volatile:#?}"
    );
    // The first entry of a later window diffs against the poll before the window, not against nothing.
    let late = report::timeline(
        store,
        &row,
        start + chrono::Duration::seconds(30 * 22),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        late.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
        [
            "增量迁移 (04): State: Catched → Finished",
            "增量迁移 (04) › incremental writer: State: running → Finished"
        ]
    );
}

async fn a_failure_before_commit_leaves_no_partial_rows(engine: Engine) {
    let Some(db) = Db::new(engine, "atomic") else {
        return;
    };
    let store = db.open().await;
    let recorder = Recorder::new(store.clone());
    let (_, mut jobs) = scenario::load(scenario::LIFECYCLE).unwrap();
    let sim_job = &mut jobs[0];
    let target = job(&sim_job.id);
    let first = next_snapshot(sim_job);
    recorder
        .record(
            &target,
            JobSource::Config,
            at(0),
            Duration::ZERO,
            &fetched(first),
            &RecordOnly,
        )
        .await
        .unwrap();
    let _ = next_snapshot(sim_job);
    let changed = next_snapshot(sim_job);
    let before = (
        count(&store, "polls").await,
        count(&store, "snapshots").await,
        count(&store, "step_states").await,
    );
    // The poll row is written after the snapshot rows: make it fail, as a full disk would.
    let (create, drop) = match engine {
        Engine::Sqlite => (
            vec![
                "CREATE TRIGGER fail_polls BEFORE INSERT ON polls BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ],
            "DROP TRIGGER fail_polls",
        ),
        Engine::Postgres => (
            vec![
                "CREATE FUNCTION fail_polls() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
                "CREATE TRIGGER fail_polls BEFORE INSERT ON polls FOR EACH ROW EXECUTE FUNCTION fail_polls()",
            ],
            "DROP TRIGGER fail_polls ON polls",
        ),
    };
    for sql in create {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    let error = recorder
        .record(
            &target,
            JobSource::Config,
            at(30),
            Duration::ZERO,
            &fetched(changed.clone()),
            &RecordOnly,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    let after = (
        count(&store, "polls").await,
        count(&store, "snapshots").await,
        count(&store, "step_states").await,
    );
    assert_eq!(
        before, after,
        "the new snapshot rows were rolled back with the poll"
    );
    sqlx::query(drop).execute(store.pool()).await.unwrap();
    // The baseline did not move: the same change is reported when the poll succeeds.
    let report = recorder
        .record(
            &target,
            JobSource::Config,
            at(60),
            Duration::ZERO,
            &fetched(changed),
            &RecordOnly,
        )
        .await
        .unwrap();
    let texts: Vec<String> = report
        .changes
        .iter()
        .filter(|c| !c.is_volatile())
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "预检查 (01): State: Running → ○ Finished",
            "结构迁移 (02): State: Init → Running"
        ]
    );
}

async fn a_restart_keeps_the_previous_snapshot(engine: Engine) {
    let Some(db) = Db::new(engine, "restart") else {
        return;
    };
    let (_, mut jobs) = scenario::load(scenario::LIFECYCLE).unwrap();
    let sim_job = &mut jobs[0];
    let target = job(&sim_job.id);
    {
        let store = db.open().await;
        let recorder = Recorder::new(store.clone());
        for i in 0..4 {
            let snapshot = next_snapshot(sim_job);
            recorder
                .record(
                    &target,
                    JobSource::Config,
                    at(i * 30),
                    Duration::ZERO,
                    &fetched(snapshot),
                    &RecordOnly,
                )
                .await
                .unwrap();
        }
        store.close().await;
    }
    let store = db.open().await;
    let recorder = Recorder::new(store.clone());
    let snapshot = next_snapshot(sim_job);
    let report = recorder
        .record(
            &target,
            JobSource::Config,
            at(150),
            Duration::ZERO,
            &fetched(snapshot),
            &RecordOnly,
        )
        .await
        .unwrap();
    assert!(!report.first);
    let texts: Vec<String> = report
        .changes
        .iter()
        .filter(|c| !c.is_volatile())
        .map(|c| c.to_string())
        .collect();
    assert!(
        texts.is_empty(),
        "only progress moved between frames 4 and 5, got {texts:?}"
    );
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.to_string() == "全量迁移 (03): Progress: 10 → 45"),
        "{:?}",
        report.changes
    );
}

async fn a_failed_poll_records_its_failure_and_no_snapshot(engine: Engine) {
    let Some(db) = Db::new(engine, "failed") else {
        return;
    };
    let store = db.open().await;
    let recorder = Recorder::new(store.clone());
    let target = job("dtsfail");
    let failure: Result<Fetched, ApiFailure> = Err(ApiFailure {
        error: ApiError::Api {
            code: "Throttling.User".into(),
            message: "Request was denied due to user flow control.".into(),
            status: 400,
            request_id: Some("REQ-1".into()),
            recommend: None,
        },
        attempts: 4,
        retried: vec!["Throttling.User".into(); 3],
        backoff: std::time::Duration::from_millis(300),
    });
    let report = recorder
        .record(
            &target,
            JobSource::Config,
            at(0),
            Duration::from_millis(900),
            &failure,
            &RecordOnly,
        )
        .await
        .unwrap();
    assert!(report.changes.is_empty());
    let row: (String, Option<String>, Option<String>, i64, Option<i64>) = sqlx::query_as(
        "SELECT outcome, error_code, request_id, attempts, snapshot FROM polls WHERE id = $1",
    )
    .bind(report.poll_id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "throttled".into(),
            Some("Throttling.User".into()),
            Some("REQ-1".into()),
            4,
            None
        )
    );
    assert_eq!(count(&store, "snapshots").await, 0);
    assert_eq!(count(&store, "step_states").await, 0);
}

async fn retention_prunes_old_polls_but_keeps_each_jobs_baseline(engine: Engine) {
    let Some(db) = Db::new(engine, "retention") else {
        return;
    };
    let store = db.open().await;
    let recorder = Recorder::new(store.clone());
    let mut sim_job = SimJob::generated("dtsbench", "cn-hangzhou", 2, 2);
    let quiet = job("dtsquiet");
    let busy = job("dtsbench");
    let fixed = next_snapshot(&mut sim_job);
    // The quiet job: one successful poll long ago, failures since.
    recorder
        .record(
            &quiet,
            JobSource::Config,
            at(0),
            Duration::ZERO,
            &fetched(fixed.clone()),
            &RecordOnly,
        )
        .await
        .unwrap();
    // The busy job: latency moves on 10 polls, then stays still for 10.
    for i in 0..10 {
        recorder
            .record(
                &busy,
                JobSource::Config,
                at(i * 30),
                Duration::ZERO,
                &fetched(next_snapshot(&mut sim_job)),
                &RecordOnly,
            )
            .await
            .unwrap();
    }
    let still = next_snapshot(&mut sim_job);
    for i in 10..20 {
        recorder
            .record(
                &busy,
                JobSource::Config,
                at(i * 30),
                Duration::ZERO,
                &fetched(still.clone()),
                &RecordOnly,
            )
            .await
            .unwrap();
    }
    let pruned = retention::prune(&store, at(15 * 30)).await.unwrap();
    assert_eq!(
        pruned.polls, 15,
        "polls 0..15 of the busy job; the quiet job keeps its only success"
    );
    assert_eq!(count(&store, "polls").await, 6);
    // The first kept poll relied on an older row for its numbers and now carries them.
    let mut conn = store.pool().acquire().await.unwrap();
    let row = jobs::find(&mut conn, "dtsbench").await.unwrap().unwrap();
    let last = dtswatch::store::polls::last_ok(&mut conn, row.id)
        .await
        .unwrap()
        .unwrap();
    let (rebuilt, _) = dtswatch::store::snapshots::load_snapshot(
        &mut conn,
        row.id,
        last.id,
        last.snapshot.unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(rebuilt.steps[0].latency_ms, still.steps[0].latency_ms);
    drop(conn);
    // A pass with nothing old does nothing.
    assert_eq!(
        retention::prune(&store, at(0)).await.unwrap(),
        retention::Pruned::default()
    );
    let status = status::report(&store, &[], chrono_tz::UTC, &Default::default())
        .await
        .unwrap();
    assert!(
        status.contains("job dtsquiet") && status.contains("job dtsbench"),
        "{status}"
    );
}

async fn garbage_collection_removes_unreferenced_snapshots(engine: Engine) {
    let Some(db) = Db::new(engine, "gc") else {
        return;
    };
    let store = db.open().await;
    let recorder = Recorder::new(store.clone());
    let (_, mut jobs) = scenario::load(scenario::LIFECYCLE).unwrap();
    let sim_job = &mut jobs[0];
    let target = job(&sim_job.id);
    for i in 0..8 {
        recorder
            .record(
                &target,
                JobSource::Config,
                at(i * 30),
                Duration::ZERO,
                &fetched(next_snapshot(sim_job)),
                &RecordOnly,
            )
            .await
            .unwrap();
    }
    let snapshots_before = count(&store, "snapshots").await;
    let pruned = retention::prune(&store, at(7 * 30)).await.unwrap();
    assert_eq!(pruned.polls, 7);
    assert_eq!(
        pruned.snapshots as i64,
        snapshots_before - 1,
        "only the last snapshot is still used"
    );
    assert!(pruned.step_states > 0);
    assert_eq!(count(&store, "snapshots").await, 1);
}

async fn file_bytes(store: &Store, path: &std::path::Path) -> u64 {
    store.vacuum().await.unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// Bytes one poll adds to the database, measured over 1,000 polls of an
/// 8-step × 4-sub-step job, the file VACUUMed before and after.
async fn bytes_per_poll(latency_moves: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cost.db");
    let store = Store::open(&path).await.unwrap();
    let recorder = Recorder::new(store.clone());
    let mut sim_job = SimJob::generated("dtscost", "cn-hangzhou", 8, 4);
    let target = job("dtscost");
    let first = next_snapshot(&mut sim_job);
    recorder
        .record(
            &target,
            JobSource::Config,
            at(0),
            Duration::ZERO,
            &fetched(first.clone()),
            &RecordOnly,
        )
        .await
        .unwrap();
    let before = file_bytes(&store, &path).await;
    for i in 1..=1000 {
        let snapshot = if latency_moves {
            next_snapshot(&mut sim_job)
        } else {
            first.clone()
        };
        let result = Ok(Fetched {
            snapshot: std::sync::Arc::new(snapshot),
            request_id: Some(format!("5E1C0F5A-{:04X}-4D1E-9C3B-{:012X}", i % 0xFFFF, i)),
            attempts: 1,
            retried: Vec::new(),
            backoff: std::time::Duration::ZERO,
        });
        recorder
            .record(
                &target,
                JobSource::Config,
                at(i * 30),
                Duration::from_millis(40),
                &result,
                &RecordOnly,
            )
            .await
            .unwrap();
    }
    let after = file_bytes(&store, &path).await;
    (after - before) as f64 / 1000.0
}

#[tokio::test]
async fn an_unchanged_poll_costs_at_most_200_bytes() {
    let unchanged = bytes_per_poll(false).await;
    let moving = bytes_per_poll(true).await;
    println!(
        "database bytes per poll: unchanged {unchanged:.1}, latency changing every poll {moving:.1}"
    );
    assert!(
        unchanged <= 200.0,
        "an unchanged poll cost {unchanged} bytes"
    );
    assert!(moving <= 400.0, "a latency-only change cost {moving} bytes");
}
