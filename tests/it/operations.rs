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
    let sample = fake.accepted()[0].json();
    assert!(
        sample["markdown"]["title"]
            .as_str()
            .unwrap()
            .starts_with("[TEST] [FIRING·critical]"),
        "{sample}"
    );
    assert!(
        sample["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("A test message from dtswatch test-notify; nothing is wrong."),
        "{sample}"
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

/// `dtswatch render …` with `stdin` piped in.
fn render_stdin(config: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dtswatch"))
        .args(args)
        .arg("-c")
        .arg(config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn render_raw_reads_stdin_and_previews_a_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let channels = "[channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n\n[channels.oncall]\ntype = \"dingtalk\"\nurl = \"http://127.0.0.1:9/robot/send?access_token=t\"";
    let rules =
        "[[rules]]\nname = \"step error\"\nkind = \"error\"\nchannels = [\"hook\", \"oncall\"]";
    let config = base(dir.path(), "http://127.0.0.1:9", channels, rules);
    let seed = std::fs::read_to_string(fixture("list_job_step_seed.json")).unwrap();
    let healthy = dir.path().join("healthy.json");
    std::fs::write(
        &healthy,
        seed.replace("fullcheck find different records : 2372", "")
            .replace("UncaughtException:java.lang.NullPointerException", ""),
    )
    .unwrap();
    let raw = |stdout: &str| -> serde_json::Value {
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not one JSON body ({e}): {stdout}"))
    };
    let (code, stdout, stderr) = render_stdin(
        &config,
        &[
            "render",
            "step error",
            "--snapshot",
            "-",
            "--channel",
            "hook",
            "--raw",
        ],
        &seed,
    );
    assert_eq!(code, 0, "{stderr}");
    let firing = raw(&stdout);
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["alerts"].as_array().unwrap().len(), 2);
    // A healthy response after the failing one: the resolution, as it would be sent.
    let previous = dir.path().join("failing.json");
    std::fs::write(&previous, &seed).unwrap();
    let (code, stdout, stderr) = cli(
        &config,
        &[
            "render",
            "step error",
            "--snapshot",
            healthy.to_str().unwrap(),
            "--previous",
            previous.to_str().unwrap(),
            "--channel",
            "hook",
            "--raw",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let resolved = raw(&stdout);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(
        resolved["alerts"][0]["fingerprint"], firing["alerts"][0]["fingerprint"],
        "the same alert"
    );
    // --raw prints one body: it needs the channel.
    let (code, _, stderr) = cli(
        &config,
        &[
            "render",
            "step error",
            "--snapshot",
            healthy.to_str().unwrap(),
            "--raw",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--channel"), "{stderr}");
    // Neither a snapshot nor a job: nothing to render.
    let (code, _, stderr) = cli(&config, &["render", "step error"]);
    assert_eq!(code, 2, "{stderr}");
}

#[tokio::test]
async fn render_with_a_job_reads_its_stored_snapshots() {
    let sim = Simulator::with_scenario(FLAPPING).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let channels = "[channels.hook]\ntype = \"console\"\nformat = \"json\"";
    let rules = "[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]";
    let config = base(dir.path(), &sim.endpoint(), channels, rules);
    let outputs = tokio::task::spawn_blocking(move || {
        let before = cli(&config, &["render", "step failed", "--job", "dtsflapping"]);
        let once = cli(&config, &["once"]);
        let after = cli(
            &config,
            &[
                "render",
                "step failed",
                "--job",
                "dtsflapping",
                "--channel",
                "hook",
                "--raw",
            ],
        );
        (before, once, after)
    })
    .await
    .unwrap();
    let (before, once, after) = outputs;
    assert_ne!(before.0, 0, "no database yet: {}", before.2);
    assert_eq!(once.0, 0, "{}", once.2);
    assert_eq!(after.0, 0, "{}", after.2);
    let body: serde_json::Value = serde_json::from_str(&after.1).unwrap();
    assert_eq!(body["status"], "firing", "{body}");
    assert_eq!(body["alerts"][0]["labels"]["job_id"], "dtsflapping");
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
