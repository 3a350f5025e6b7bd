//! Times as people read them outside messages: every time the CLI prints
//! carries its zone (`[messages] timezone`), and a recurring silence opens
//! at the hour of its own `location`.

use chrono::{DateTime, Utc};
use dtswatch::rules::silence::Silence;
use dtswatch::sim::{SimOptions, Simulator};

use crate::helpers::{TestConfig, failed_job, parse_config, run_cli};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Every `YYYY-MM-DD HH:MM:SS` in `text` and what follows it.
fn times_with_suffix(text: &str) -> Vec<String> {
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\S*)( \S+)?").unwrap();
    time.find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect()
}

#[tokio::test]
async fn every_time_the_cli_prints_says_its_zone() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![failed_job("dtszone", "DTS-1020042 Duplicate entry")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&sim.endpoint())
        .db(&dir.path().join("dtswatch.db"))
        .set("messages", "timezone", "\"Asia/Shanghai\"")
        .job("dtszone")
        .with("[channels.dead]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nmax_age = \"1ms\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"dead\"]")
        .write(dir.path());
    let outputs = tokio::task::spawn_blocking(move || {
        let once = run_cli(&config, &["once"]);
        let added = run_cli(
            &config,
            &[
                "silence",
                "add",
                "--job",
                "dtszone",
                "--for",
                "1h",
                "--comment",
                "c",
            ],
        );
        vec![
            once,
            added,
            run_cli(&config, &["status"]),
            run_cli(&config, &["history", "dtszone"]),
            run_cli(&config, &["silence", "list"]),
            run_cli(&config, &["outbox", "--dead"]),
        ]
    })
    .await
    .unwrap();
    let mut seen = 0;
    for out in &outputs {
        for time in times_with_suffix(&out.stdout) {
            seen += 1;
            assert!(
                time.ends_with(" UTC+8"),
                "a time without its zone: `{time}` in\n{}",
                out.stdout
            );
        }
    }
    assert!(
        seen >= 5,
        "status, history, silence list and outbox print times: {}",
        outputs
            .iter()
            .map(|o| o.stdout.as_str())
            .collect::<String>()
    );
}

#[test]
fn a_recurring_silence_opens_at_the_hour_of_its_location() {
    let config = parse_config(
        r#"
[[accounts]]
name = "a"
access_key_id = "x"
access_key_secret = "y"

[[jobs]]
id = "j"
region = "cn-hangzhou"

[[silences]]
jobs = ["*"]
cron = "0 0 3 * * *"
duration = "1h"
location = "Asia/Shanghai"
comment = "nightly maintenance, 03:00 Beijing time"

[[silences]]
jobs = ["*"]
cron = "0 0 3 * * *"
duration = "1h"
comment = "03:00 in [messages] timezone, UTC by default"
"#,
    );
    let shanghai = Silence::from_config(0, &config.silences[0]);
    let utc = Silence::from_config(1, &config.silences[1]);
    // 03:30 in Shanghai is 19:30 UTC the day before.
    assert!(shanghai.is_active(at("2026-11-30T19:30:00Z")));
    assert!(!shanghai.is_active(at("2026-12-01T03:30:00Z")));
    assert!(!shanghai.is_active(at("2026-11-30T20:00:00Z")), "one hour");
    assert!(utc.is_active(at("2026-12-01T03:30:00Z")));
    assert!(!utc.is_active(at("2026-11-30T19:30:00Z")));
}
