//! The binary as an operator uses it for delivery: `test-notify`, `render`,
//! `outbox`, and a daemon killed with SIGKILL while notifications wait.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dtswatch::sim::Simulator;
use dtswatch::store::Store;

use crate::helpers::{DaemonProcess as Daemon, TestConfig, fixture, run_cli};
use crate::peers;

fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = run_cli(config, args);
    (out.code, out.stdout, out.stderr)
}

/// A config on `endpoint` polling `dtsflapping` every second, with `channels` and `rules`.
fn base(dir: &Path, endpoint: &str, channels: &str, rules: &str) -> PathBuf {
    TestConfig::new(endpoint)
        .db(&dir.join("dtswatch.db"))
        .set("poll", "schedule", "\"* * * * * *\"")
        .set("poll", "jitter", "\"0s\"")
        .set("poll", "attempts", "1")
        .set("delivery", "backoff", "\"50ms\"")
        .set("delivery", "max_backoff", "\"200ms\"")
        .set("delivery", "drain_timeout", "\"5s\"")
        .job("dtsflapping")
        .with(channels)
        .with(rules)
        .write(dir)
}

#[tokio::test]
async fn test_notify_sends_a_sample_and_prints_the_answer() {
    let fake = peers::dingtalk::DingTalk::start().await;
    let dir = tempfile::tempdir().unwrap();
    let channels = format!(
        "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"{}\"",
        fake.url(),
        fake.secret
    );
    let config = base(dir.path(), "http://127.0.0.1:9", &channels, "");
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || cli(&config, &["test-notify", "oncall"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(r#"oncall: delivered; the peer answered: {"errcode":0,"errmsg":"ok"}"#),
        "{stdout}"
    );
    assert!(
        fake.accepted()[0]
            .body
            .contains("sample alert from dtswatch test-notify")
    );
    let (code, _, stderr) =
        tokio::task::spawn_blocking(move || cli(&config, &["test-notify", "pager"]))
            .await
            .unwrap();
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no channel `pager` (known: oncall)"),
        "{stderr}"
    );
}

#[test]
fn test_notify_reports_a_refused_connection_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let channels = "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"http://127.0.0.1:9/robot/send?access_token=SUPERSECRETTOKEN\"";
    let config = base(dir.path(), "http://127.0.0.1:9", channels, "");
    let (code, stdout, stderr) = cli(&config, &["test-notify", "oncall"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("oncall: not delivered"), "{stderr}");
    assert!(
        !stderr.contains("SUPERSECRETTOKEN") && !stdout.contains("SUPERSECRETTOKEN"),
        "{stderr}"
    );
}

#[test]
fn render_shows_what_a_rule_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let channels = "[channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"s\"\n\n[channels.oncall]\ntype = \"dingtalk\"\nurl = \"http://127.0.0.1:9/robot/send?access_token=t\"";
    let rules = "[[rules]]\nname = \"step error\"\nkind = \"error\"\nchannels = [\"hook\", \"oncall\"]\n\n[[rules]]\nname = \"finished\"\nkind = \"transition\"\nto = [\"Finished\"]\nchannels = [\"hook\"]";
    let config = base(dir.path(), "http://127.0.0.1:9", channels, rules);
    let seed = fixture("list_job_step_seed.json");
    let (code, stdout, stderr) = cli(
        &config,
        &[
            "render",
            "step error",
            "--snapshot",
            seed.to_str().unwrap(),
            "--job",
            "dtsflapping",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("=== hook (webhook) ==="), "{stdout}");
    assert!(stdout.contains("=== oncall (dingtalk) ==="), "{stdout}");
    let json_start = stdout.find('{').unwrap();
    let json_end = stdout.find("=== oncall").unwrap();
    let body: serde_json::Value =
        serde_json::from_str(stdout[json_start..json_end].trim()).unwrap();
    assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(
        body["alerts"][1]["summary"],
        "UncaughtException:java.lang.NullPointerException"
    );
    assert!(!stdout.contains("sign="), "no signature in a preview");
    // A transition needs a previous snapshot to compare with.
    let (_, stdout, _) = cli(
        &config,
        &["render", "finished", "--snapshot", seed.to_str().unwrap()],
    );
    assert!(stdout.contains("would send nothing"), "{stdout}");
    let running = dir.path().join("running.json");
    std::fs::write(
        &running,
        std::fs::read_to_string(&seed)
            .unwrap()
            .replace("○ Finished", "Running"),
    )
    .unwrap();
    let (_, stdout, _) = cli(
        &config,
        &[
            "render",
            "finished",
            "--snapshot",
            seed.to_str().unwrap(),
            "--previous",
            running.to_str().unwrap(),
        ],
    );
    assert!(stdout.contains("State: Running → ○ Finished"), "{stdout}");
    let (code, _, stderr) = cli(
        &config,
        &["render", "nope", "--snapshot", seed.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("no rule `nope`"));
}

const FLAPPING: &str = r#"
name = "flapping"
[[jobs]]
id = "dtsflapping"
after_end = "loop"
[[jobs.frames]]
steps = [{ id = "s1", name = "增量迁移", code = "04", state = "Failed", err = "boom" }]
[[jobs.frames]]
steps = [{ id = "s1", name = "增量迁移", code = "04", state = "Running" }]
"#;

const FAILED_RULE: &str =
    "[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]";

/// Waits (generously, for slow machines) until `check` holds for the database.
async fn wait_for(db: &Path, what: &str, check: impl Fn(i64, i64) -> bool) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if db.exists() {
            let store = Store::open(db).await.unwrap();
            let counts: (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'delivered'), 0) FROM outbox",
            )
            .fetch_one(store.pool())
            .await
            .unwrap();
            store.close().await;
            if check(counts.0, counts.1) {
                return counts;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (poll time, status) of every alert a webhook receiver accepted.
fn received(fake: &peers::webhook::Webhook) -> Vec<(String, String)> {
    fake.accepted()
        .iter()
        .flat_map(|r| {
            r.json()["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["at"].as_str().unwrap().to_string(),
                        a["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn a_daemon_killed_with_rows_pending_delivers_them_after_restart_and_nothing_twice() {
    let sim = Simulator::with_scenario(FLAPPING).await.unwrap();
    let fake = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let channels = format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"",
        fake.url(),
        fake.secret
    );
    let config = base(dir.path(), &sim.endpoint(), &channels, FAILED_RULE);
    let db = dir.path().join("dtswatch.db");
    let mut daemon = Daemon::start(&config);
    wait_for(&db, "three deliveries", |_, delivered| delivered >= 3).await;
    fake.server.down().await;
    wait_for(&db, "three pending rows", |pending, _| pending >= 3).await;
    daemon.kill();
    let store = Store::open(&db).await.unwrap();
    let last_before_kill: i64 = sqlx::query_scalar("SELECT MAX(id) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let acknowledged: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE status = 'delivered'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    store.close().await;
    fake.server.up().await;
    let _daemon = Daemon::start(&config);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let store = Store::open(&db).await.unwrap();
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE id <= ?1 AND status != 'delivered'",
        )
        .bind(last_before_kill)
        .fetch_one(store.pool())
        .await
        .unwrap();
        store.close().await;
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rows queued before the kill were not delivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = received(&fake);
    let mut counts = std::collections::BTreeMap::new();
    for alert in &seen {
        *counts.entry(alert.clone()).or_insert(0) += 1;
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "every notification arrived exactly once: {counts:?}"
    );
    assert!(acknowledged.len() >= 3);
    for payload in acknowledged {
        let notification: dtswatch::rules::Notification = serde_json::from_str(&payload).unwrap();
        let at = notification.events[0]
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        assert_eq!(
            seen.iter().filter(|(a, _)| *a == at).count(),
            1,
            "acknowledged {at} was not sent again"
        );
    }
}

#[tokio::test]
async fn dead_notifications_are_listed_and_can_be_retried() {
    let sim = Simulator::with_scenario(FLAPPING).await.unwrap();
    let fake = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The wrong secret makes the receiver answer 401: permanent.
    let channels = format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"wrong\"",
        fake.url()
    );
    let config = base(dir.path(), &sim.endpoint(), &channels, FAILED_RULE);
    let (code, _, _) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || cli(&config, &["once"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "a dead notification is a failure, not success");
    let (_, stdout, _) = cli(&config, &["outbox", "--dead"]);
    assert!(
        stdout.contains("hook") && stdout.contains("HTTP 401: bad signature"),
        "{stdout}"
    );
    let id = stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (_, status, _) = cli(&config, &["status"]);
    assert!(
        status.contains("hook") && status.contains("HTTP 401"),
        "{status}"
    );
    // Fix the secret, retry the dead row.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(
            "secret = \"wrong\"",
            &format!("secret = \"{}\"", fake.secret),
        ),
    )
    .unwrap();
    let (code, stdout, _) = cli(&config, &["outbox", "retry", &id]);
    assert_eq!(code, 0, "{stdout}");
    let (_, stdout, _) = cli(&config, &["outbox"]);
    assert!(stdout.contains("hook"), "pending again: {stdout}");
    let (code, _, stderr) = tokio::task::spawn_blocking(move || cli(&config, &["once"]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(!fake.accepted().is_empty(), "the retried row was delivered");
}
