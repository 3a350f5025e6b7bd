//! The operator's side of a long-running install (issue 13): one daemon per
//! database, commands that find the daemon's config and never create an
//! empty database, clean streams, and exit codes that mean something.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dtswatch::sim::{SimJob, SimOptions, Simulator};

use crate::helpers::{DaemonProcess, TestConfig, daemon_config, eventually, run_cli};

fn failed_job(id: &str) -> SimJob {
    crate::helpers::failed_job(id, "DTS-1020042 Duplicate entry")
}

async fn simulator(jobs: Vec<SimJob>) -> Simulator {
    Simulator::start(SimOptions {
        jobs,
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

/// Waits (off the runtime) for `child` to exit, at most `limit`.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_second_daemon_on_the_same_database_exits_naming_the_first() {
    let sim = simulator(vec![failed_job("dtsone")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(dir.path(), &sim.endpoint(), &["dtsone"])
        .set("server", "listen", "\"off\"")
        .write(dir.path());
    let log_path = dir.path().join("first.log");
    let first =
        DaemonProcess::start_logging_at(&config, "info", std::fs::File::create(&log_path).unwrap());
    eventually("the first daemon polls", async || {
        (sim.polls_of("dtsone") > 0).then_some(())
    })
    .await;
    let second = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_cli(&config, &["run"])
    })
    .await
    .unwrap();
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!(
            "in use by another dtswatch (pid {} on ",
            first.pid()
        )),
        "{}",
        second.stderr
    );
    // `once` writes alert state too: refused the same way.
    let once = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_cli(&config, &["once"])
    })
    .await
    .unwrap();
    assert_eq!(once.code, 3, "{}", once.stderr);
    // A lock left by a killed daemon is taken over.
    let mut first = first;
    first.kill();
    let after = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_cli(&config, &["once"])
    })
    .await
    .unwrap();
    assert_ne!(after.code, 3, "{}", after.stderr);
    // Logs written to a file carry no colour escapes.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("dtswatch started"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log}"
    );
}

#[test]
fn operator_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state").join("dtswatch.db");
    let config = TestConfig::new("http://127.0.0.1:9")
        .db(&db)
        .job("dtsjob")
        .write(dir.path());
    for args in [
        &["status"][..],
        &["history", "dtsjob"],
        &["outbox"],
        &["silence", "list"],
        &[
            "silence",
            "add",
            "--for",
            "1h",
            "--comment",
            "x",
            "--job",
            "dtsjob",
        ],
    ] {
        let out = run_cli(&config, args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("no database at {}", db.display())),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(!db.exists(), "a command created the database");
    assert!(
        !db.parent().unwrap().exists(),
        "a command created its directory"
    );
}

#[test]
fn the_config_is_found_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    TestConfig::new("http://127.0.0.1:9")
        .db(&dir.path().join("dtswatch.db"))
        .job("dtsjob")
        .write(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
        .arg("check-config")
        .current_dir(dir.path())
        .env_remove("DTSWATCH_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("dtswatch.toml: ok"), "{stdout}");
}

#[tokio::test]
async fn once_exits_1_when_its_only_notification_goes_dead() {
    let sim = simulator(vec![failed_job("dtsdead")]).await;
    let webhook = crate::peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&sim.endpoint())
        .db(&dir.path().join("dtswatch.db"))
        .job("dtsdead")
        .with(&format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"not-the-secret\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]\n",
            webhook.url()
        ))
        .write(dir.path());
    let out = tokio::task::spawn_blocking(move || run_cli(&config, &["once"]))
        .await
        .unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1 notification(s) could not be delivered and are dead"),
        "{}",
        out.stderr
    );
    assert!(webhook.accepted().is_empty());
}

#[tokio::test]
async fn the_demo_ends_quietly_when_its_reader_goes_away() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
        // The reader is dropped here, as `head -1` exits.
    })
    .await
    .unwrap();
    assert!(first.starts_with("dtswatch demo:"), "{first}");
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        let status = wait_exit(&mut child, Duration::from_secs(60));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    let status = status.expect("the demo ends once its reader is gone");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn silence_list_tells_active_waiting_and_ended_apart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dtswatch.db");
    dtswatch::store::Store::open(&db)
        .await
        .unwrap()
        .close()
        .await;
    let config = TestConfig::new("http://127.0.0.1:9")
        .db(&db)
        .job("dtsjob")
        .with(
            "[[silences]]\njobs = [\"past*\"]\nstarts = \"2020-01-01T00:00:00Z\"\nends = \"2020-01-02T00:00:00Z\"\ncomment = \"over\"\n\n\
             [[silences]]\njobs = [\"now*\"]\nends = \"2099-01-01T00:00:00Z\"\ncomment = \"on\"\n\n\
             [[silences]]\njobs = [\"later*\"]\nstarts = \"2098-01-01T00:00:00Z\"\nends = \"2099-01-01T00:00:00Z\"\ncomment = \"ahead\"\n",
        )
        .write(dir.path());
    let checked = run_cli(&config, &["check-config"]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    assert!(
        checked.stderr.contains(
            "warning: silences[1]: ended already (2020-01-02 00:00:00 UTC); it silences nothing"
        ),
        "{}",
        checked.stderr
    );
    let listed = run_cli(&config, &["silence", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let state_of = |pattern: &str| {
        listed
            .stdout
            .lines()
            .find(|l| l.contains(pattern))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no row for {pattern}:\n{}", listed.stdout))
    };
    assert!(state_of("past*").contains(&"ended"), "{}", listed.stdout);
    assert!(state_of("now*").contains(&"active"), "{}", listed.stdout);
    assert!(state_of("later*").contains(&"waiting"), "{}", listed.stdout);
}

#[test]
fn completions_man_page_and_version_come_from_the_binary() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("_dtswatch()") && bash.contains("check-config"),
        "{bash}"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("dtswatch.bash");
    std::fs::write(&script, &bash).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success(), "the bash completion script parses");
    let man = run(&["man"]);
    assert!(man.contains(".TH dtswatch 1"), "{man}");
    assert!(man.contains("Watches Alibaba Cloud DTS jobs"), "{man}");
    let version = run(&["--version"]);
    let stamp = version
        .strip_prefix(&format!("dtswatch {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{version}"));
    assert!(
        stamp.contains(", built 20"),
        "commit and build date: {version}"
    );
}

/// `--format json` on every reading command parses and carries the documented fields.
#[tokio::test]
async fn json_output_of_each_command_has_the_documented_fields() {
    let sim = simulator(vec![failed_job("dtsjson")]).await;
    let webhook = crate::peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&sim.endpoint())
        .db(&dir.path().join("dtswatch.db"))
        .named_job("dtsjson", "orders")
        .with(&format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"not-the-secret\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]\n",
            webhook.url()
        ))
        .write(dir.path());
    let json = |args: Vec<&'static str>| {
        let config = config.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || run_cli(&config, &args))
                .await
                .unwrap();
            let value: serde_json::Value = serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
            (out.code, value)
        }
    };
    let (code, once) = json(vec!["once", "--format", "json"]).await;
    assert_eq!(code, 1, "the notification went dead");
    assert_eq!(once["jobs"][0]["id"], "dtsjson");
    assert_eq!(once["jobs"][0]["name"], "orders");
    assert_eq!(once["jobs"][0]["ok"], true);
    assert_eq!(once["jobs"][0]["steps"][0]["path"], "s1");
    assert_eq!(once["jobs"][0]["steps"][0]["state"], "Failed");
    assert_eq!(
        once["jobs"][0]["steps"][0]["error"],
        "DTS-1020042 Duplicate entry"
    );
    assert_eq!(once["notifications"]["dead"], 1);
    assert_eq!(once["notifications"]["pending"], 0);

    let (code, status) = json(vec!["status", "--format", "json"]).await;
    assert_eq!(code, 0);
    let job = &status["jobs"][0];
    assert_eq!(job["id"], "dtsjson");
    assert_eq!(job["region"], "cn-hangzhou");
    assert_eq!(job["source"], "config");
    assert_eq!(job["retired"], false);
    assert_eq!(job["last_poll"]["outcome"], "ok");
    assert!(
        job["last_poll"]["at"].as_str().unwrap().ends_with('Z'),
        "{job}"
    );
    assert_eq!(job["steps"][0]["code"], "03");
    assert_eq!(job["steps"][0]["progress"], 0);
    let alert = &status["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["rule"], "step failed");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["job_id"], "dtsjson");
    assert_eq!(alert["path"], "s1");
    assert_eq!(status["outbox"][0]["channel"], "hook");
    assert_eq!(status["outbox"][0]["dead"], 1);

    let (code, dead) = json(vec!["outbox", "--dead", "--format", "json"]).await;
    assert_eq!(code, 0);
    assert_eq!(dead[0]["channel"], "hook");
    assert_eq!(dead[0]["status"], "dead");
    assert!(dead[0]["dead_at"].is_string(), "{dead}");
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("HTTP 401"),
        "{dead}"
    );
    assert_eq!(dead[0]["notification"]["job"]["id"], "dtsjson");

    let added = run_cli(
        &config,
        &[
            "silence",
            "add",
            "--job",
            "dts*",
            "--for",
            "1h",
            "--comment",
            "failover",
            "--author",
            "ops",
        ],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let (code, silences) = json(vec!["silence", "list", "--format", "json"]).await;
    assert_eq!(code, 0);
    assert_eq!(silences[0]["source"], "runtime");
    assert_eq!(silences[0]["state"], "active");
    assert_eq!(silences[0]["jobs"], serde_json::json!(["dts*"]));
    assert_eq!(silences[0]["comment"], "failover");
    assert_eq!(silences[0]["author"], "ops");
    assert!(silences[0]["ends"].is_string());

    let (code, history) = json(vec!["history", "orders", "--format", "json"]).await;
    assert_eq!(code, 0);
    let entries = history.as_array().expect("an array");
    let appeared = entries
        .iter()
        .find(|e| e["kind"] == "change")
        .unwrap_or_else(|| panic!("{history}"));
    assert_eq!(appeared["path"], "s1");
    let fired = entries
        .iter()
        .find(|e| e["kind"] == "firing")
        .unwrap_or_else(|| panic!("{history}"));
    assert_eq!(fired["rule"], "step failed");
    assert_eq!(fired["severity"], "critical");
    assert_eq!(fired["path"], "s1");
    assert_eq!(fired["reason"], "first_notification");
}

/// Reading commands open the database read-only: they never migrate it (or
/// write anything else); an older schema is reported, not upgraded.
#[tokio::test]
async fn reading_commands_never_write_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dtswatch.db");
    let store = dtswatch::store::Store::open(&db).await.unwrap();
    let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ?1")
        .bind(newest)
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let config = TestConfig::new("http://127.0.0.1:9")
        .db(&db)
        .job("dtsjob")
        .write(dir.path());
    for args in [
        &["status"][..],
        &["history", "dtsjob"],
        &["outbox"],
        &["silence", "list"],
    ] {
        let out = run_cli(&config, args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("was written by an older dtswatch"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let store = dtswatch::store::Store::open_read_only(&db).await;
    assert!(
        store.is_err(),
        "still the older schema: nothing migrated it"
    );
}
