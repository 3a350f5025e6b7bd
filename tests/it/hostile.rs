//! A hostile environment: peers that redirect, answer without end or with
//! huge bodies, DTS text that tries to drive the terminal, config paths that
//! are not files. Nothing crashes, hangs, leaks a credential or grows without
//! bound; each failure says what happened.

use std::time::{Duration, Instant};

use dtswatch::aliyun::ErrorClass;
use dtswatch::notify::outbox::Outcome;
use dtswatch::sim::{SimJob, SimOptions, SimStep, Simulator};

use crate::helpers::{TestApp, TestConfig, run_cli};
use crate::peers::hostile::{Hostile, Mode};

/// A DTS "endpoint" that redirects to a catcher: the catcher gets nothing,
/// the poll fails saying why, for both signature versions.
#[tokio::test]
async fn dts_redirects_are_not_followed_and_carry_nothing_away() {
    let catcher = Hostile::catcher().await;
    let redirector = Hostile::start(Mode::Redirect(catcher.url("/steal"))).await;
    for signature in ["v1", "v3"] {
        let app = TestApp::new(
            TestConfig::new(&redirector.url(""))
                .keys("access_key_id = \"STS.id\"\naccess_key_secret = \"s\"\nsecurity_token = \"SECRET-STS-TOKEN\"")
                .account_line(&format!("signature = \"{signature}\""))
                .job("dtsredirect"),
        )
        .await;
        let (polled, _) = app.poll("dtsredirect").await;
        let failure = polled.result.expect_err("a redirect is a failure");
        assert_eq!(failure.error.code(), "HTTP302", "{signature}");
        assert!(
            failure.error.to_string().contains("not followed"),
            "{}",
            failure.error
        );
        assert_eq!(failure.attempts, 1, "a redirect is not retried");
    }
    assert!(redirector.requests() >= 2);
    assert_eq!(
        catcher.requests(),
        0,
        "the redirect target received nothing"
    );
}

/// A channel that redirects: the notification is dead with the reason, not
/// "delivered" by a body-less GET, and the target never sees the URL's token.
#[tokio::test]
async fn channel_redirects_are_failures_and_carry_nothing_away() {
    let catcher = Hostile::catcher().await;
    let redirector = Hostile::start(Mode::Redirect(catcher.url("/steal"))).await;
    let app = TestApp::new(TestConfig::offline().job("dtsx").with(&format!(
        "[channels.ding]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"SEC-signing-secret\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"ding\"]",
        redirector.url("/robot/send?access_token=SECRET-TOKEN")
    )))
    .await;
    app.record(
        "dtsx",
        chrono::Utc::now(),
        &crate::delivery::fetched_failed(),
    )
    .await;
    let outcome = app
        .deliverer
        .try_deliver_one("ding", chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Dead(1));
    let reason: String = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(
        reason.contains("HTTP 302")
            && reason.contains("not followed")
            && reason.contains("127.0.0.1"),
        "{reason}"
    );
    assert!(!reason.contains("SECRET-TOKEN"), "{reason}");
    assert_eq!(catcher.requests(), 0);
    let sent = &redirector.log.lock().unwrap()[0];
    assert!(!sent.headers.contains_key("referer"));
}

/// An endless DTS answer stops at `poll.max_answer`, long before the timeout.
#[tokio::test]
async fn endless_and_huge_dts_answers_are_cut_at_the_cap() {
    for mode in [Mode::Endless, Mode::Huge(20_000_000)] {
        let peer = Hostile::start(mode).await;
        let app = TestApp::new(
            TestConfig::new(&peer.url(""))
                .set("poll", "timeout", "\"30s\"")
                .set("poll", "max_answer", "\"1MB\"")
                .job("dtshuge"),
        )
        .await;
        let started = Instant::now();
        let (polled, report) = app.poll("dtshuge").await;
        let failure = polled.result.expect_err("too large");
        assert_eq!(failure.error.class(), ErrorClass::Malformed);
        assert!(
            failure
                .error
                .to_string()
                .contains("larger than 1000000 bytes"),
            "{}",
            failure.error
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not read to the timeout"
        );
        assert!(report.snapshot.is_none());
    }
}

/// A chat peer's huge answer is read only up to `delivery.max_answer`, and
/// `test-notify` prints a bounded excerpt of whatever it answers.
#[tokio::test]
async fn huge_chat_answers_are_bounded_in_what_is_read_and_printed() {
    let peer = Hostile::start(Mode::Huge(50_000_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::offline()
        .db(&dir.path().join("dtswatch.db"))
        .job("dtsx")
        .with(&format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"",
            peer.url("/hook")
        ))
        .write(dir.path());
    let out = tokio::task::spawn_blocking(move || run_cli(&config, &["test-notify", "hook"]))
        .await
        .unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("larger than 1000000 bytes"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.len() + out.stderr.len() < 2_000,
        "bounded output"
    );
}

/// DTS text with terminal escapes reaches the terminal as visible escapes.
#[tokio::test]
async fn terminal_escapes_in_dts_text_are_shown_not_obeyed() {
    let step = SimStep {
        id: Some("s1".into()),
        name: "全量迁移\u{1b}[2J\u{1b}]0;owned\u{7}".into(),
        code: Some("03".into()),
        state: "Failed".into(),
        err: Some("boom\nFORGED 00:00 all good\u{1b}[32m".into()),
        ..Default::default()
    };
    let sim = Simulator::start(SimOptions {
        jobs: vec![SimJob::fixed("dtsesc", "cn-hangzhou", vec![step])],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&sim.endpoint())
        .db(&dir.path().join("dtswatch.db"))
        .job("dtsesc")
        .with("[channels.c]\ntype = \"console\"\n\n[[rules]]\nname = \"step error\"\nkind = \"error\"\nchannels = [\"c\"]")
        .write(dir.path());
    for args in [vec!["once"], vec!["status"], vec!["history", "dtsesc"]] {
        let command = args[0];
        let out = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || run_cli(&config, &args))
                .await
                .unwrap()
        };
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text.contains(['\u{1b}', '\u{7}']),
                "{stream} carries a raw escape: {text:?}"
            );
            assert!(
                !text.lines().any(|l| l.starts_with("FORGED")),
                "{stream} has a forged line: {text}"
            );
        }
        assert!(
            out.stdout.contains("\\x1b[2J")
                || out.stderr.contains("\\x1b[2J")
                || command == "history",
            "shown as an escape: {}{}",
            out.stdout,
            out.stderr
        );
    }
}

/// Config paths that are not regular files, or far too large, are config errors, at once.
#[test]
fn config_paths_that_are_not_files_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let large = dir.path().join("large.toml");
    std::fs::write(&large, "# x\n".repeat(300_000)).unwrap();
    let mut paths = vec![std::path::PathBuf::from("/dev/zero"), large];
    if made.is_ok_and(|s| s.success()) {
        paths.push(fifo);
    }
    for path in paths {
        let started = Instant::now();
        let out = run_cli(&path, &["check-config"]);
        assert_eq!(out.code, 2, "{}: {}", path.display(), out.stderr);
        assert!(
            out.stderr.contains("not a regular file") || out.stderr.contains("more than the"),
            "{}",
            out.stderr
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

/// A megabyte of error text makes a bounded log line, not a megabyte one.
#[tokio::test]
async fn huge_error_text_makes_bounded_log_lines() {
    let step = SimStep {
        id: Some("s1".into()),
        name: "全量迁移".into(),
        code: Some("03".into()),
        state: "Failed".into(),
        err: Some(format!(
            "DTS-1020042 {}\nFORGED log line",
            "x".repeat(1_000_000)
        )),
        ..Default::default()
    };
    let sim = Simulator::start(SimOptions {
        jobs: vec![SimJob::fixed("dtslong", "cn-hangzhou", vec![step])],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::helpers::daemon_config(dir.path(), &sim.endpoint(), &["dtslong"])
        .set("server", "listen", "\"off\"")
        .with("[channels.c]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\n[[rules]]\nname = \"step error\"\nkind = \"error\"\nchannels = [\"c\"]")
        .write(dir.path());
    let log_path = dir.path().join("daemon.log");
    let mut daemon = crate::helpers::DaemonProcess::start_logging_at(
        &config,
        "info",
        std::fs::File::create(&log_path).unwrap(),
    );
    crate::helpers::eventually("the alert logged", async || {
        std::fs::read_to_string(&log_path)
            .ok()
            .filter(|log| log.contains("step error"))
            .map(|_| ())
    })
    .await;
    daemon.terminate();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4_000, "a log line of {longest} bytes");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "no forged line"
    );
}

/// Raises this process's open-file limit to `want` (or the hard limit).
fn allow_open_files(want: u64) {
    // SAFETY: getrlimit/setrlimit on RLIMIT_NOFILE with a valid struct.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A flood of idle connections to `/healthz` cannot take the daemon's file
/// descriptors: polls go on and a failure in the flood is alerted.
#[tokio::test]
async fn idle_connections_to_the_health_port_cannot_starve_polls() {
    allow_open_files(4096);
    let running = SimStep {
        id: Some("s1".into()),
        name: "全量迁移".into(),
        code: Some("03".into()),
        state: "Running".into(),
        ..Default::default()
    };
    let sim = Simulator::start(SimOptions {
        jobs: vec![SimJob::fixed(
            "dtsflood",
            "cn-hangzhou",
            vec![running.clone()],
        )],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let webhook = crate::peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = crate::helpers::daemon_config(dir.path(), &sim.endpoint(), &["dtsflood"])
        .set("server", "listen", &format!("\"127.0.0.1:{port}\""))
        .with(&format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]",
            webhook.url(),
            webhook.secret
        ))
        .write(dir.path());
    let daemon = crate::helpers::DaemonProcess::start(&config);
    crate::helpers::eventually("the daemon listens", async || {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    sim.add_job(SimJob::fixed(
        "dtsflood",
        "cn-hangzhou",
        vec![SimStep {
            state: "Failed".into(),
            ..running
        }],
    ));
    crate::helpers::eventually("the failure alerted during the flood", async || {
        (!webhook.accepted().is_empty()).then_some(())
    })
    .await;
    let open = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(open < 300, "the daemon holds {open} descriptors");
    drop(idle);
}

/// A lone surrogate in ErrMsg does not blind the job: the failure is polled and alerted.
#[tokio::test]
async fn one_bad_character_does_not_blind_a_job() {
    let body = r#"{"RequestId":"R1","Success":true,"JobSteps":[{"JobStepId":"s1","JobStepName":"全量迁移","JobStepCode":"03","State":"Failed","ErrMsg":"Incorrect string value: \ud83d for column"}]}"#;
    let mut job = SimJob::fixed("dtsbyte", "cn-hangzhou", Vec::new());
    job.script =
        dtswatch::sim::scenario::Script::Frames(vec![dtswatch::sim::Frame::Body(body.into())]);
    let sim = Simulator::start(SimOptions {
        jobs: vec![job],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let app = TestApp::new(
        TestConfig::new(&sim.endpoint())
            .job("dtsbyte")
            .with("[channels.c]\ntype = \"console\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"c\"]"),
    )
    .await;
    let (polled, report) = app.poll("dtsbyte").await;
    let fetched = polled.result.expect("the poll succeeds");
    let err = fetched.snapshot.steps[0]
        .err_msg
        .as_deref()
        .unwrap_or_default()
        .to_string();
    assert!(err.contains('\u{fffd}'), "{err}");
    assert_eq!(report.notices.len(), 1, "the failure is alerted");
}
