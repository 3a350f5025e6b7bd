//! `dtswatch check-config` as a user runs it: the real binary, real files, exit codes.

use std::process::Command;

use crate::helpers::fixture;

fn check(path: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
        .args(["check-config", "-c"])
        .arg(path)
        .env_remove("DTSWATCH_TEST_UNSET_AK")
        .output()
        .expect("dtswatch runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_mistake_is_reported_with_its_position() {
    let path = fixture("config/six_mistakes.toml");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 2, "{stderr}");
    let file = path.display().to_string();
    let expected = [
        ":3:13: storage.retention: `days` is not a duration unit",
        ":6:12: poll.schedule: `*/30 * * * *  *  * *` is not a cron expression",
        ":7:1: [poll]: unknown field `timout`",
        ":11:17: environment variable `DTSWATCH_TEST_UNSET_AK` is not set",
        ":25:7: channel `mail`: tls = \"none\" sends the password in clear text",
        ":33:13: rule `lag`: unknown channel `pager`",
        ":36:8: duplicate rule `lag`",
    ];
    for line in expected {
        assert!(
            stderr.contains(&format!("{file}{line}")),
            "missing `{line}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("7 problem(s) found"), "{stderr}");
}

#[test]
fn syntax_errors_and_later_mistakes_are_reported_together() {
    let path = fixture("config/syntax_error.toml");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(":2:27: invalid basic string"), "{stderr}");
    assert!(
        stderr.contains(":3:15: poll.concurrency must be between 1 and 1024, not 0"),
        "{stderr}"
    );
}

#[test]
fn the_example_and_demo_configs_pass() {
    for name in ["dtswatch.example.toml", "demo.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name);
        let (code, stdout, stderr) = check(&path);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.contains(": ok"), "{stdout}");
        assert!(stdout.contains("rules: "), "{stdout}");
    }
}

#[test]
fn a_missing_file_is_a_config_error() {
    let (code, _, stderr) = check(std::path::Path::new("/nonexistent/dtswatch.toml"));
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
}

/// The lines a bad-config fixture says `check-config` prints, after the file name.
fn expected_lines(text: &str) -> Vec<String> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# check-config reports exactly:"));
    lines
        .map_while(|l| l.strip_prefix("#   "))
        .map(str::to_string)
        .collect()
}

#[test]
fn each_bad_config_fixture_gets_exactly_its_message() {
    let dir = fixture("config/bad");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 90, "{} fixtures", fixtures.len());
    let mut messages = std::collections::BTreeSet::new();
    for path in fixtures {
        let expected = expected_lines(&std::fs::read_to_string(&path).unwrap());
        assert!(!expected.is_empty(), "{}", path.display());
        let output = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
            .args(["check-config", "-c"])
            .arg(&path)
            .env_remove("DTSWATCH_FIXTURE_UNSET")
            .output()
            .expect("dtswatch runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let file = path.display().to_string();
        let mut want: String = expected.iter().map(|l| format!("{file}{l}\n")).collect();
        want.push_str(&format!("{} problem(s) found\n", expected.len()));
        assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
        assert_eq!(stderr, want, "{file}");
        // One fixture per distinct message.
        for line in &expected {
            let message = line.splitn(4, ':').last().unwrap_or(line).to_string();
            assert!(
                messages.insert(message),
                "{file}: a second fixture for {line}"
            );
        }
    }
}

#[test]
fn warnings_are_printed_and_the_config_still_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dtswatch.toml");
    let mut text = String::from(
        "[[accounts]]\nname = \"a\"\naccess_key_id = \"x\"\naccess_key_secret = \"y\"\nmax_rps = 30\n\n[poll]\nschedule = \"@every 1s\"\nmode = \"per_job\"\n",
    );
    for i in 0..25 {
        text.push_str(&format!(
            "\n[[jobs]]\nid = \"j{i}\"\nregion = \"cn-hangzhou\"\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "warnings do not fail check-config: {stderr}");
    assert!(stdout.contains(": ok"), "{stdout}");
    let file = path.display().to_string();
    assert_eq!(
        stderr,
        format!(
            "{file}:5:11: warning: account `a`: max_rps = 30 is above the 20 requests/s DTS allows per account and region; DTS will throttle first\n\
             {file}:5:11: warning: account `a`: 25 job(s) polled as often as every 1s need 25.0 requests/s, over 80% of its max_rps of 30; retries and discovered jobs will queue\n"
        )
    );
}

/// Durations given on the command line have the config's bounds: a clear
/// error and exit 2, never a panic in the date arithmetic.
#[test]
fn absurd_durations_on_the_command_line_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::helpers::TestConfig::new("http://127.0.0.1:9")
        .db(&dir.path().join("dtswatch.db"))
        .job("dtsjob")
        .write(dir.path());
    for args in [
        &["history", "dtsjob", "--since", "1000000000d"][..],
        &[
            "silence",
            "add",
            "--for",
            "99999999999d",
            "--comment",
            "x",
            "--job",
            "dtsjob",
        ],
    ] {
        let out = crate::helpers::run_cli(&config, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("is longer than 10 years, the longest duration dtswatch takes"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    let far = crate::helpers::run_cli(
        &config,
        &[
            "silence",
            "add",
            "--for",
            "3650d",
            "--starts",
            "9999-12-01T00:00:00Z",
            "--comment",
            "x",
            "--job",
            "dtsjob",
        ],
    );
    assert!(!far.stderr.contains("panicked"), "{}", far.stderr);
}
