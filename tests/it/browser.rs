//! The status page in a real browser: Debian's Chromium, headless, loads
//! the fleet, a job page and the alerts page from a daemon on loopback;
//! screenshots (desktop and phone width) go to the test's temp dir, and the
//! assertions read the DOM Chromium rendered. Skipped, saying so, only
//! where no Chromium is installed (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use dtswatch::sim::{SimJob, SimOptions, SimStep, Simulator};
use dtswatch::store::{Store, jobs, polls};

use crate::helpers::{Running, daemon_config, eventually, failed_job};

/// Chromium's binary, if this machine has one.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("which").arg(name).output().ok()?;
            found
                .status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
        })
}

/// Runs headless Chromium on `url` with `args` (as root it needs
/// `--no-sandbox`; the background-networking flags keep it off the network).
/// Asynchronously: the daemon it loads pages from runs on this test's runtime.
async fn headless(
    browser: &Path,
    profile: &Path,
    args: &[String],
    url: &str,
) -> std::process::Output {
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish loading {url} in 2 min"))
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn dom(browser: &Path, profile: &Path, url: &str) -> String {
    let output = headless(browser, profile, &["--dump-dom".into()], url).await;
    String::from_utf8(output.stdout).unwrap()
}

async fn screenshot(
    browser: &Path,
    profile: &Path,
    url: &str,
    file: &Path,
    size: (u32, u32),
) -> u64 {
    headless(
        browser,
        profile,
        &[
            format!("--screenshot={}", file.display()),
            format!("--window-size={},{}", size.0, size.1),
        ],
        url,
    )
    .await;
    let bytes = std::fs::read(file).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        file.display()
    );
    bytes.len() as u64
}

fn replicating(id: &str, latency_ms: i64) -> SimJob {
    SimJob::fixed(
        id,
        "cn-hangzhou",
        vec![
            SimStep {
                id: Some("s3".into()),
                name: "全量迁移".into(),
                code: Some("03".into()),
                state: "Finished".into(),
                progress: 100,
                ..Default::default()
            },
            SimStep {
                id: Some("s4".into()),
                name: "增量迁移".into(),
                code: Some("04".into()),
                state: "Catched".into(),
                latency_ms: Some(latency_ms),
                ..Default::default()
            },
        ],
    )
}

#[tokio::test]
async fn the_status_page_renders_in_chromium_failing_job_first_one_chart_point_per_poll() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED: no chromium on this machine (.ci/run installs Debian's chromium)");
        return;
    };
    let sim = Simulator::start(SimOptions {
        jobs: vec![
            replicating("dtsb1", 2_000),
            replicating("dtsb2", 45_000),
            failed_job(
                "dtsb3",
                "DTS-1020042 Duplicate entry '42' for key 'PRIMARY'",
            ),
        ],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jobs = "[[jobs]]\nid = \"dtsb1\"\nregion = \"cn-hangzhou\"\nname = \"alpha orders\"\n\n\
                [[jobs]]\nid = \"dtsb2\"\nregion = \"cn-hangzhou\"\nname = \"beta users\"\n\n\
                [[jobs]]\nid = \"dtsb3\"\nregion = \"cn-hangzhou\"\nname = \"zeta billing <script>\"\n";
    let rules = "[channels.quiet]\ntype = \"console\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nseverity = \"critical\"\nchannels = [\"quiet\"]\n";
    let polling = daemon_config(dir.path(), &sim.endpoint(), &[])
        .set("messages", "locale", "\"zh-CN\"")
        .set("messages", "timezone", "\"Asia/Shanghai\"")
        .set("server", "tokens", "[\"browser-test-token-0123456789\"]")
        .with(jobs)
        .with(rules);
    // First the history: a few polls of every job.
    let daemon = Running::start(&polling).await;
    eventually("every job polled five times", async || {
        ["dtsb1", "dtsb2", "dtsb3"]
            .iter()
            .all(|id| sim.polls_of(id) >= 5)
            .then_some(())
    })
    .await;
    daemon.stop().await;
    // Then a daemon that cannot reach DTS serves the page: the stored polls
    // stay what they are while the browser reads them.
    let offline = daemon_config(dir.path(), "http://127.0.0.1:9", &[])
        .set("messages", "locale", "\"zh-CN\"")
        .set("messages", "timezone", "\"Asia/Shanghai\"")
        .set("poll", "schedule", "\"@every 1h\"")
        .set("server", "tokens", "[\"browser-test-token-0123456789\"]")
        .with(jobs)
        .with(rules);
    let daemon = Running::start(&offline).await;
    let stored = {
        let store = Store::open_read_only(&dir.path().join("dtswatch.db"))
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let job = jobs::find(&mut conn, "dtsb1").await.unwrap().unwrap();
        polls::since(&mut conn, job.id, chrono::DateTime::UNIX_EPOCH)
            .await
            .unwrap()
            .iter()
            .filter(|p| p.is_ok())
            .count()
    };
    assert!(stored >= 5);
    let base = daemon.base();
    let profile = dir.path().join("chromium-profile");

    let fleet = dom(&browser, &profile, &format!("{base}/")).await;
    assert!(fleet.contains("<html lang=\"zh-CN\">"), "{fleet}");
    let first_job = fleet.split("<tr class=\"job ").nth(1).expect("a job row");
    assert!(
        first_job.contains("data-job=\"dtsb3\""),
        "the failing job is listed first: {first_job}"
    );
    assert!(
        first_job.contains("zeta billing &lt;script&gt;"),
        "{first_job}"
    );
    assert!(!fleet.contains("<script>"), "a job name became markup");
    let order: Vec<&str> = fleet
        .split("<tr class=\"job ")
        .skip(1)
        .filter_map(|row| row.split("data-job=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        order,
        ["dtsb3", "dtsb2", "dtsb1"],
        "then by latency, worst first"
    );
    assert!(
        fleet.contains("正在告警"),
        "the firing alert is shown: {fleet}"
    );
    assert!(fleet.contains("已追上"), "states in Chinese: {fleet}");

    let job = dom(&browser, &profile, &format!("{base}/jobs/dtsb1")).await;
    let circles = job.matches("<circle class=\"poll\"").count();
    assert_eq!(
        circles, stored,
        "one chart point per stored successful poll"
    );
    assert!(job.contains("<svg class=\"chart\""));
    assert!(job.contains("增量迁移"), "{job}");
    assert!(job.contains("UTC+8"), "times in the configured zone: {job}");

    let alerts = dom(&browser, &profile, &format!("{base}/alerts")).await;
    assert!(alerts.contains("data-job=\"dtsb3\""), "{alerts}");
    assert!(alerts.contains("action=\"/alerts/silence\""), "{alerts}");
    assert!(
        alerts.contains("type=\"password\""),
        "the token is typed, not stored"
    );

    let shots = dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, path, size) in [
        ("fleet.png", "/", (1280, 900)),
        ("job.png", "/jobs/dtsb1", (1280, 1400)),
        ("alerts.png", "/alerts", (1280, 900)),
        ("fleet-phone.png", "/", (390, 844)),
    ] {
        let bytes = screenshot(
            &browser,
            &profile,
            &format!("{base}{path}"),
            &shots.join(name),
            size,
        )
        .await;
        eprintln!("screenshot {name}: {bytes} bytes, {}x{}", size.0, size.1);
        assert!(bytes > 10_000, "{name} looks empty ({bytes} bytes)");
    }
    if let Ok(keep) = std::env::var("DTSWATCH_KEEP_SCREENSHOTS") {
        for name in ["fleet.png", "job.png", "alerts.png", "fleet-phone.png"] {
            std::fs::copy(shots.join(name), Path::new(&keep).join(name)).unwrap();
        }
    }
    daemon.stop().await;
}
