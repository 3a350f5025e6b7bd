//! The binary as an operator runs it: `once`, `status`, `history` against the
//! simulator and a database in a temp dir.

use std::path::Path;

use dtswatch::sim::Simulator;

use crate::helpers::{CliOutput, TestConfig, run_cli};

fn dtswatch(config: &Path, args: &[&str]) -> CliOutput {
    run_cli(config, args)
}

/// A config file for the simulator's lifecycle jobs plus one job DTS does not know.
fn write_config(dir: &Path, endpoint: &str) -> std::path::PathBuf {
    TestConfig::new(endpoint)
        .db(&dir.join("dtswatch.db"))
        .set("poll", "attempts", "1")
        .named_job("dtsl1fecyc1e01", "orders")
        .named_job("k2gm967v16f", "seed")
        .job("dtsmissing")
        .write(dir)
}

#[tokio::test]
async fn once_then_status_and_history() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.endpoint());
    for _ in 0..3 {
        let out = tokio::task::spawn_blocking({
            let config = config.clone();
            move || dtswatch(&config, &["once"])
        })
        .await
        .unwrap();
        assert_eq!(
            Some(out.code),
            Some(1),
            "one job fails, so once exits 1: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("dtsmissing (dtsmissing): poll failed: InvalidJobId"),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout
                .contains("fullcheck find different records : 2372"),
            "{}",
            out.stdout
        );
    }
    let status = tokio::task::spawn_blocking({
        let config = config.clone();
        move || dtswatch(&config, &["status"])
    })
    .await
    .unwrap();
    assert_eq!(Some(status.code), Some(0), "{}", status.stderr.clone());
    let stdout = status.stdout.clone();
    assert!(stdout.contains("client (InvalidJobId)"), "{stdout}");
    assert!(stdout.contains("○ Finished"), "{stdout}");
    assert!(
        stdout.contains("UncaughtException:java.lang.NullPointerException"),
        "{stdout}"
    );

    let history = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            dtswatch(
                &config,
                &["history", "orders", "--since", "1h", "--format", "json"],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(Some(history.code), Some(0), "{}", history.stderr.clone());
    let entries: serde_json::Value =
        serde_json::from_str(&history.stdout).expect("history JSON parses");
    let texts: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "预检查 (01): appeared",
            "结构迁移 (02): appeared",
            "全量迁移 (03): appeared",
            "增量迁移 (04): appeared",
            "预检查 (01): State: Running → ○ Finished",
            "结构迁移 (02): State: Init → Running"
        ]
    );
    assert_eq!(entries[4]["change"]["type"], "state");

    let failing = tokio::task::spawn_blocking({
        let config = config.clone();
        move || dtswatch(&config, &["history", "dtsmissing"])
    })
    .await
    .unwrap();
    let stdout = failing.stdout.clone();
    assert_eq!(
        stdout
            .matches("poll failed after 1 attempt(s): InvalidJobId")
            .count(),
        3,
        "{stdout}"
    );

    let unknown = tokio::task::spawn_blocking(move || dtswatch(&config, &["history", "nope"]))
        .await
        .unwrap();
    assert_eq!(Some(unknown.code), Some(1));
    assert!(unknown.stderr.clone().contains("no job `nope`"));
}
