//! Silences added and expired with the CLI while the daemon runs: the daemon
//! honours them at its next poll, and owes the notification when they end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dtswatch::sim::Simulator;
use dtswatch::store::Store;

use crate::helpers::{DaemonProcess, TestConfig, read_fixture, run_cli};

fn write_config(dir: &Path, endpoint: &str) -> PathBuf {
    TestConfig::new(endpoint)
        .db(&dir.join("dtswatch.db"))
        .set("poll", "schedule", "\"* * * * * *\"")
        .set("poll", "jitter", "\"0s\"")
        .job("dtsfailslater")
        .with("[channels.ops]\ntype = \"console\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"ops\"]")
        .write(dir)
}

/// The command's exit code and everything it printed.
fn cli(config: &Path, args: &[&str]) -> (i32, String) {
    let out = run_cli(config, args);
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

/// Waits (up to a minute, for slow machines) until the events match `done`.
async fn wait_for_events(
    db: &Path,
    done: impl Fn(&[(String, Option<String>)]) -> bool,
) -> Vec<(String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if db.exists() {
            let store = Store::open(db).await.unwrap();
            let rows: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT reason, suppressed FROM alert_events ORDER BY id")
                    .fetch_all(store.pool())
                    .await
                    .unwrap_or_default();
            store.close().await;
            if done(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; events so far: {rows:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_cli_silence_holds_back_and_its_expiry_notifies() {
    let sim = Simulator::with_scenario(&read_fixture("scenarios/fails_later.toml"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.endpoint());
    let db = dir.path().join("dtswatch.db");
    // The database a daemon would have created (`silence add` refuses to create one).
    Store::open(&db).await.unwrap().close().await;
    let (code, out) = cli(
        &config,
        &[
            "silence",
            "add",
            "--job",
            "dtsfail*",
            "--for",
            "1h",
            "--comment",
            "planned failover",
            "--author",
            "ops",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("silence 1 added"), "{out}");
    let _daemon = DaemonProcess::start(&config);
    let rows = wait_for_events(&db, |rows| !rows.is_empty()).await;
    assert_eq!(
        rows[0],
        (
            "first_notification".to_string(),
            Some("silenced:1".to_string())
        )
    );
    let (_, list) = cli(&config, &["silence", "list"]);
    assert!(
        list.contains("dtsfail*")
            && list.contains("planned failover (ops)")
            && list.contains("active"),
        "{list}"
    );
    let (code, out) = cli(&config, &["silence", "expire", "1"]);
    assert_eq!(code, 0, "{out}");
    let rows = wait_for_events(&db, |rows| rows.len() >= 2).await;
    assert_eq!(rows[1], ("no_longer_suppressed".to_string(), None));
    let outbox: i64 = {
        let store = Store::open(&db).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE channel = 'ops'")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    assert_eq!(
        outbox, 1,
        "only the notification after the silence ended was queued"
    );
    let (code, out) = cli(&config, &["silence", "expire", "1"]);
    assert_eq!(code, 1, "already expired: {out}");
}

#[test]
fn a_silence_needs_a_matcher() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9");
    let (code, out) = cli(
        &config,
        &["silence", "add", "--for", "1h", "--comment", "x"],
    );
    assert_eq!(code, 2);
    assert!(
        out.contains("needs at least one job, rule or step matcher"),
        "{out}"
    );
}
