//! The binary as an operator runs it: `once`, `status`, `history` against the
//! simulator and a database in a temp dir.

use std::path::Path;
use std::process::{Command, Output};

use dtswatch::sim::Simulator;

fn dtswatch(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dtswatch"))
        .args(args)
        .arg("-c")
        .arg(config)
        .env("DTSWATCH_LOG", "warn")
        .output()
        .expect("dtswatch runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config file for the simulator's lifecycle jobs plus one job DTS does not know.
fn write_config(dir: &Path, endpoint: &str) -> std::path::PathBuf {
    let path = dir.join("dtswatch.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[storage]
path = "{db}"

[poll]
attempts = 1

[[accounts]]
name = "sim"
access_key_id = "dtswatch-demo"
access_key_secret = "dtswatch-demo-secret"
endpoint = "{endpoint}"

[[jobs]]
id = "dtsl1fecyc1e01"
region = "cn-hangzhou"
name = "orders"

[[jobs]]
id = "k2gm967v16f"
region = "cn-hangzhou"
name = "seed"

[[jobs]]
id = "dtsmissing"
region = "cn-hangzhou"
"#,
            db = dir.join("dtswatch.db").display()
        ),
    )
    .unwrap();
    path
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
            out.status.code(),
            Some(1),
            "one job fails, so once exits 1: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("dtsmissing (dtsmissing): poll failed: InvalidJobId"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("fullcheck find different records : 2372"),
            "{}",
            text(&out.stdout)
        );
    }
    let status = tokio::task::spawn_blocking({
        let config = config.clone();
        move || dtswatch(&config, &["status"])
    })
    .await
    .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let stdout = text(&status.stdout);
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
    assert_eq!(history.status.code(), Some(0), "{}", text(&history.stderr));
    let entries: serde_json::Value =
        serde_json::from_slice(&history.stdout).expect("history JSON parses");
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
    let stdout = text(&failing.stdout);
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
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("no job `nope`"));
}
