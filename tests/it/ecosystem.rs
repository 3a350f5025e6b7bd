//! dtswatch plugged into what its users already run: a real Alertmanager
//! (Debian's `prometheus-alertmanager`, started here on loopback) receives
//! its alerts and ends them when they resolve; Prometheus's `promtool`
//! accepts a scrape of `/metrics`; the Grafana dashboard in `config/` asks
//! only for series the daemon exports. Each external binary is skipped,
//! saying so, only where it is not installed (`.ci/run` installs them).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use dtswatch::sim::{SimJob, SimOptions, SimStep, Simulator};
use serde_json::Value;

use crate::helpers::{Running, daemon_config, eventually, failed_job, free_port};

fn installed(name: &str) -> Option<PathBuf> {
    let found = Command::new("which").arg(name).output().ok()?;
    found
        .status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
}

fn running(id: &str) -> SimJob {
    SimJob::fixed(
        id,
        "cn-shanghai",
        vec![SimStep {
            id: Some("s1".into()),
            name: "全量迁移".into(),
            code: Some("03".into()),
            state: "Running".into(),
            progress: 40,
            ..Default::default()
        }],
    )
}

/// A real Alertmanager on a loopback port, killed when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    async fn start(binary: &PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts");
        let url = format!("http://127.0.0.1:{port}");
        let am = Self {
            child,
            url,
            _dir: dir,
        };
        eventually("alertmanager is ready", async || {
            reqwest::get(format!("{}/-/ready", am.url))
                .await
                .ok()
                .filter(|r| r.status() == 200)
        })
        .await;
        am
    }

    async fn alerts(&self) -> Vec<Value> {
        let body = reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str::<Vec<Value>>(&body).unwrap()
    }
}

#[tokio::test]
async fn alerts_reach_a_real_alertmanager_and_their_resolution_ends_them_there() {
    let Some(binary) = installed("prometheus-alertmanager").or_else(|| installed("alertmanager"))
    else {
        eprintln!(
            "SKIPPED: no alertmanager on this machine (.ci/run installs prometheus-alertmanager)"
        );
        return;
    };
    let am = Alertmanager::start(&binary).await;
    let sim = Simulator::start(SimOptions {
        jobs: vec![failed_job(
            "dtsam1",
            "DTS-1020042 Duplicate entry '42' for key 'PRIMARY'",
        )],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(dir.path(), &sim.endpoint(), &[])
        .set("server", "public_url", "\"https://dtswatch.example.com\"")
        .with("[[jobs]]\nid = \"dtsam1\"\nregion = \"cn-hangzhou\"\nname = \"orders mysql → polardb\"\n")
        .with(&format!(
            "[channels.am]\ntype = \"alertmanager\"\nurl = \"{}\"\nrepost_interval = \"1s\"\n\n\
             [[rules]]\nname = \"step failed\"\nkind = \"failed\"\nseverity = \"critical\"\n\
             runbook = \"https://wiki.example.com/dts\"\nchannels = [\"am\"]\n",
            am.url
        ));
    let daemon = Running::start(&config).await;
    let alert = eventually("the alert is in Alertmanager", async || {
        am.alerts().await.into_iter().next()
    })
    .await;
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], "step failed");
    assert_eq!(labels["rule"], "step failed");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["dts_job_id"], "dtsam1");
    assert_eq!(labels["dts_job_name"], "orders mysql → polardb");
    assert_eq!(labels["region"], "cn-hangzhou");
    assert_eq!(labels["step"], "全量迁移 (03)");
    assert_eq!(labels["step_path"], "s1");
    assert!(labels.get("job").is_none(), "{labels}");
    let annotations = &alert["annotations"];
    assert_eq!(
        annotations["error"],
        "DTS-1020042 Duplicate entry '42' for key 'PRIMARY'"
    );
    assert_eq!(annotations["runbook_url"], "https://wiki.example.com/dts");
    assert!(
        annotations["summary"].as_str().unwrap().contains("failed"),
        "{annotations}"
    );
    assert!(
        annotations["console_url"]
            .as_str()
            .unwrap()
            .contains("dtsam1"),
        "{annotations}"
    );
    assert_eq!(
        alert["generatorURL"],
        "https://dtswatch.example.com/jobs/dtsam1"
    );
    assert_eq!(alert["status"]["state"], "active");
    // Re-posted while firing: Alertmanager's copy keeps being renewed.
    let first_update = alert["updatedAt"].as_str().unwrap().to_string();
    eventually("the alert is re-posted", async || {
        let alerts = am.alerts().await;
        alerts
            .first()
            .filter(|a| a["updatedAt"].as_str() != Some(first_update.as_str()))
            .map(|_| ())
    })
    .await;
    assert_eq!(am.alerts().await.len(), 1, "the same alert, not a new one");

    sim.add_job(running("dtsam1"));
    eventually(
        "the resolution ends the alert in Alertmanager",
        async || am.alerts().await.is_empty().then_some(()),
    )
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn promtool_accepts_the_scrape_and_no_series_is_labelled_job() {
    let Some(promtool) = installed("promtool") else {
        eprintln!("SKIPPED: no promtool on this machine (.ci/run installs Debian's prometheus)");
        return;
    };
    let sim = Simulator::start(SimOptions {
        jobs: vec![
            running("dtsm1"),
            running("dtsm2"),
            failed_job("dtsm3", "DTS-1020042 boom"),
        ],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(dir.path(), &sim.endpoint(), &["dtsm1", "dtsm2", "dtsm3"]).with(
        "[channels.quiet]\ntype = \"console\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"quiet\"]\n",
    );
    let daemon = Running::start(&config).await;
    let scrape = eventually("three jobs up and one alert firing", async || {
        let (_, text) = daemon.get("/metrics").await;
        (text.contains(
            "dtswatch_alerts{rule=\"step failed\",severity=\"critical\",status=\"firing\"} 1",
        ) && text.matches("dtswatch_job_up{").count() == 3)
            .then_some(text)
    })
    .await;
    daemon.stop().await;

    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n--- scrape ---\n{scrape}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in scrape.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("{job=\"") && !line.contains(",job=\""),
            "a series uses the label `job`: {line}"
        );
    }
    for expected in [
        "dtswatch_job_up{dts_job_id=\"dtsm3\",dts_job_name=\"dtsm3\",region=\"cn-hangzhou\"} 1",
        "dtswatch_step_state{dts_job_id=\"dtsm3\",dts_job_name=\"dtsm3\",region=\"cn-hangzhou\",step=\"全量迁移\",state=\"Failed\"} 1",
        "dtswatch_step_progress_ratio{dts_job_id=\"dtsm1\",dts_job_name=\"dtsm1\",region=\"cn-hangzhou\",step=\"全量迁移\"} 0.4",
        "dtswatch_config_last_reload_successful 1",
        "dtswatch_build_info{version=\"",
    ] {
        assert!(scrape.contains(expected), "missing {expected}:\n{scrape}");
    }

    // The dashboard asks only for series the daemon exports.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 6, "{exprs:?}");
    let names = regex::Regex::new(r"dtswatch_[a-z_]+").unwrap();
    for expr in &exprs {
        for name in names.find_iter(expr) {
            let name = name.as_str();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum");
            assert!(
                scrape.contains(&format!("# TYPE {family} ")),
                "the dashboard uses {name}, which the daemon does not export"
            );
        }
        assert!(
            !expr.contains("job=") && !expr.contains("job,"),
            "the dashboard filters on `job`: {expr}"
        );
    }
}

/// Every `expr` in a Grafana dashboard.
fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query", Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn alertmanager_credentials_are_sent_and_a_refusal_is_a_dead_letter_without_them() {
    let bearer = crate::peers::alertmanager::AuthAlertmanager::start("Bearer am-token-0123").await;
    // `dtswatch:right` in base64; the channel below sends a wrong password.
    let basic =
        crate::peers::alertmanager::AuthAlertmanager::start("Basic ZHRzd2F0Y2g6cmlnaHQ=").await;
    let sim = Simulator::start(SimOptions {
        jobs: vec![failed_job("dtsauth1", "DTS-1020042 boom")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(dir.path(), &sim.endpoint(), &["dtsauth1"]).with(&format!(
        "[channels.am_bearer]\ntype = \"alertmanager\"\nurl = \"{}\"\nbearer_token = \"am-token-0123\"\n\n\
         [channels.am_basic]\ntype = \"alertmanager\"\nurl = \"{}\"\nusername = \"dtswatch\"\npassword = \"wrong\"\n\n\
         [[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"am_bearer\", \"am_basic\"]\n",
        bearer.url(),
        basic.url()
    ));
    let daemon = Running::start(&config).await;
    let accepted = eventually("the bearer channel delivers", async || {
        bearer.answered("200").into_iter().next()
    })
    .await;
    assert_eq!(accepted.path_and_query, "/api/v2/alerts");
    assert_eq!(accepted.json()[0]["labels"]["dts_job_id"], "dtsauth1");
    let dead = eventually("the refused channel's row is dead", async || {
        let (_, text) = daemon.get("/api/v1/outbox?status=dead").await;
        let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
        rows.into_iter().find(|r| r["channel"] == "am_basic")
    })
    .await;
    assert!(
        dead["last_error"].as_str().unwrap().starts_with("HTTP 401"),
        "{dead}"
    );
    assert!(!dead["last_error"].as_str().unwrap().contains("wrong"));
    assert_eq!(basic.answered("401").len(), 1, "a 401 is not retried");
    daemon.stop().await;
}
