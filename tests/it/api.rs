//! `/api/v1/` against a daemon on loopback: every endpoint, the answers
//! the CLI's `--format json` gives for the same state, bearer tokens on
//! every write (none, wrong, right, none configured), a silence made
//! through the API holding back the next notification, the audit trail in
//! `history`, reload through the API, and HTTPS.

use std::time::Duration;

use dtswatch::sim::{SimJob, SimOptions, SimStep, Simulator};
use serde_json::{Value, json};

use crate::helpers::{
    DaemonProcess, Running, daemon_config, eventually, failed_job, free_port, run_cli,
};
use crate::peers;

const TOKEN: &str = "api-token-for-tests-0123456789";

fn running(id: &str) -> SimJob {
    SimJob::fixed(
        id,
        "cn-hangzhou",
        vec![SimStep {
            id: Some("s1".into()),
            name: "增量迁移".into(),
            code: Some("04".into()),
            state: "Running".into(),
            latency_ms: Some(1_200),
            ..Default::default()
        }],
    )
}

/// A webhook channel and a `step failed` rule that sends to it.
fn hook_rule(webhook: &peers::webhook::Webhook) -> String {
    format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n",
        webhook.url(),
        webhook.secret
    )
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}")),
    )
}

/// Sends `method url` with `body` and, if given, the bearer `token`.
async fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
    };
    (status, headers, value)
}

/// The fields that move while a daemon polls, taken out for comparisons.
fn settled(mut status: Value) -> Value {
    for job in status["jobs"].as_array_mut().into_iter().flatten() {
        job["last_poll"]["at"] = Value::Null;
    }
    status
}

#[tokio::test]
async fn every_endpoint_answers_and_agrees_with_the_cli() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![
            running("dtsapi1"),
            running("dtsapi2"),
            failed_job(
                "dtsapi3",
                "DTS-1020042 Duplicate entry '42' for key 'PRIMARY'",
            ),
        ],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let webhook = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(
        dir.path(),
        &sim.endpoint(),
        &["dtsapi1", "dtsapi2", "dtsapi3"],
    )
    .set("server", "tokens", &format!("[\"{TOKEN}\"]"))
    .with(&hook_rule(&webhook));
    let config_path = config.write(dir.path());
    let daemon = Running::start(&config).await;
    let base = daemon.base();
    eventually("the failure is notified", async || {
        (!webhook.accepted().is_empty()).then_some(())
    })
    .await;

    let jobs = eventually("every job is polled", async || {
        let (status, jobs) = get_json(&format!("{base}/api/v1/jobs")).await;
        assert_eq!(status, 200);
        (jobs.as_array().map(Vec::len) == Some(3)
            && jobs
                .as_array()
                .unwrap()
                .iter()
                .all(|j| j["last_poll"]["outcome"] == "ok"))
        .then_some(jobs)
    })
    .await;
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dtsapi1", "dtsapi2", "dtsapi3"]);

    let (status, job) = get_json(&format!("{base}/api/v1/jobs/dtsapi3")).await;
    assert_eq!(status, 200);
    assert_eq!(job["steps"][0]["state"], "Failed");
    assert_eq!(
        job["steps"][0]["error"],
        "DTS-1020042 Duplicate entry '42' for key 'PRIMARY'"
    );
    assert_eq!(job["last_poll"]["outcome"], "ok");
    let (status, missing) = get_json(&format!("{base}/api/v1/jobs/nosuchjob")).await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("nosuchjob"));

    let (status, history) = get_json(&format!("{base}/api/v1/jobs/dtsapi3/history?since=1h")).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"change") && kinds.contains(&"firing"),
        "{kinds:?}"
    );
    let (status, bad) = get_json(&format!(
        "{base}/api/v1/jobs/dtsapi3/history?since=yesterday"
    ))
    .await;
    assert_eq!(status, 400);
    assert!(
        bad["error"].as_str().unwrap().contains("yesterday"),
        "{bad}"
    );

    let (status, alerts) = get_json(&format!("{base}/api/v1/alerts")).await;
    assert_eq!(status, 200);
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    let alert = &alerts[0];
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["rule"], "step failed");
    assert_eq!(alert["job_id"], "dtsapi3");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(
        alert["error"],
        "DTS-1020042 Duplicate entry '42' for key 'PRIMARY'"
    );
    assert_eq!(
        alert["fingerprint"],
        webhook.accepted()[0].json()["alerts"][0]["fingerprint"],
        "the API names the alert as the webhook document does"
    );
    let (_, silenced) = get_json(&format!("{base}/api/v1/alerts?state=silenced")).await;
    assert_eq!(silenced, json!([]));

    let (status, silences) = get_json(&format!("{base}/api/v1/silences")).await;
    assert_eq!((status, silences), (200, json!([])));
    eventually("the outbox drains", async || {
        let (_, pending) = get_json(&format!("{base}/api/v1/outbox")).await;
        (pending == json!([])).then_some(())
    })
    .await;
    let (status, dead) = get_json(&format!("{base}/api/v1/outbox?status=dead")).await;
    assert_eq!((status, dead), (200, json!([])));
    let (status, _) = get_json(&format!("{base}/api/v1/outbox?status=lost")).await;
    assert_eq!(status, 400);

    let (status, spec) = get_json(&format!("{base}/api/v1/openapi.json")).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/status",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/history",
        "/api/v1/alerts",
        "/api/v1/silences",
        "/api/v1/silences/{id}",
        "/api/v1/outbox",
        "/api/v1/outbox/{id}/retry",
        "/api/v1/reload",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "openapi.json lacks {path}"
        );
    }

    // The same state through the CLI: the same objects, field for field.
    let (_, api) = get_json(&format!("{base}/api/v1/status")).await;
    let cli = run_cli(&config_path, &["status", "--format", "json"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let cli: Value = serde_json::from_str(&cli.stdout).unwrap();
    assert_eq!(settled(api.clone()), settled(cli));
    let (_, jobs) = get_json(&format!("{base}/api/v1/jobs")).await;
    assert_eq!(
        settled(json!({ "jobs": jobs })),
        settled(json!({ "jobs": api["jobs"] })),
        "/jobs and /status list the jobs alike"
    );
    let cli_history = run_cli(
        &config_path,
        &["history", "dtsapi3", "--since", "1h", "--format", "json"],
    );
    let (_, api_history) = get_json(&format!("{base}/api/v1/jobs/dtsapi3/history?since=1h")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&cli_history.stdout).unwrap(),
        api_history
    );
    daemon.stop().await;
}

#[tokio::test]
async fn writes_need_a_configured_token_and_are_audited() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtsw1")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(dir.path(), &sim.endpoint(), &["dtsw1"]).set(
        "server",
        "tokens",
        &format!("[\"{TOKEN}\"]"),
    );
    let config_path = config.write(dir.path());
    let daemon = Running::start(&config).await;
    let url = format!("{}/api/v1/silences", daemon.base());
    let silence = json!({
        "jobs": ["dtsw1"],
        "rules": ["step failed"],
        "duration": "2h",
        "comment": "switching over",
        "author": "ops"
    });

    let (status, headers, body) =
        send(reqwest::Method::POST, &url, None, Some(silence.clone())).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"dtswatch\"");
    assert!(body["error"].as_str().unwrap().contains("bearer token"));
    let (status, _, body) = send(
        reqwest::Method::POST,
        &url,
        Some("api-token-for-tests-0123456788"),
        Some(silence.clone()),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (_, listed) = get_json(&url).await;
    assert_eq!(listed, json!([]), "a refused write changes nothing");

    let (status, _, created) = send(reqwest::Method::POST, &url, Some(TOKEN), Some(silence)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"], "runtime");
    assert_eq!(created["state"], "active");
    assert_eq!(created["jobs"], json!(["dtsw1"]));
    assert_eq!(created["author"], "ops");
    let id = created["id"].as_str().unwrap().to_string();

    for (body, why) in [
        (json!({"duration": "2h", "comment": "x"}), "matcher"),
        (json!({"jobs": ["a"], "comment": "x"}), "duration"),
        (
            json!({"jobs": ["a"], "duration": "2h", "comment": ""}),
            "comment",
        ),
        (
            json!({"jobs": ["["], "duration": "2h", "comment": "x"}),
            "glob",
        ),
        (
            json!({"jobs": ["a"], "duration": "999d", "comment": "x"}),
            "366 days",
        ),
    ] {
        let (status, _, answer) =
            send(reqwest::Method::POST, &url, Some(TOKEN), Some(body.clone())).await;
        assert_eq!(status, 422, "{body} → {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(why),
            "{body} → {answer}"
        );
    }
    let (status, _, _) = send(
        reqwest::Method::POST,
        &url,
        Some(TOKEN),
        Some(json!({"jobs": ["a"], "duration": "2h", "comment": "x", "owner": "me"})),
    )
    .await;
    assert_eq!(status, 422, "unknown fields are refused");

    let expire = format!("{url}/{id}");
    let (status, _, _) = send(reqwest::Method::DELETE, &expire, None, None).await;
    assert_eq!(status, 401);
    let (status, _, _) = send(reqwest::Method::DELETE, &expire, Some(TOKEN), None).await;
    assert_eq!(status, 204);
    let (status, _, again) = send(reqwest::Method::DELETE, &expire, Some(TOKEN), None).await;
    assert_eq!(status, 404, "{again}");

    let retry = format!("{}/api/v1/outbox/999/retry", daemon.base());
    let (status, _, _) = send(reqwest::Method::POST, &retry, None, None).await;
    assert_eq!(status, 401);
    let (status, _, missing) = send(reqwest::Method::POST, &retry, Some(TOKEN), None).await;
    assert_eq!(status, 404, "{missing}");
    let reload = format!("{}/api/v1/reload", daemon.base());
    let (status, _, _) = send(reqwest::Method::POST, &reload, None, None).await;
    assert_eq!(status, 401);
    daemon.stop().await;

    // Both writes are in the job's history, with who made them, and the
    // token is nowhere in the database.
    let history = run_cli(
        &config_path,
        &["history", "dtsw1", "--since", "1h", "--format", "json"],
    );
    let entries: Value = serde_json::from_str(&history.stdout).unwrap();
    let audited: Vec<(&str, &str)> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["kind"].as_str()?, e["actor"].as_str()?)))
        .collect();
    assert_eq!(
        audited,
        [
            ("silence_add", "api token #1 from 127.0.0.1"),
            ("silence_expire", "api token #1 from 127.0.0.1")
        ]
    );
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.to_string_lossy().contains("dtswatch.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "the token is stored in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn without_tokens_the_api_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(dir.path(), "http://127.0.0.1:9", &["dtsoffline"]);
    let daemon = Running::start(&config).await;
    let (status, _, body) = send(
        reqwest::Method::POST,
        &format!("{}/api/v1/silences", daemon.base()),
        Some(TOKEN),
        Some(json!({"jobs": ["a"], "duration": "1h", "comment": "x"})),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("[server] tokens"));
    let (status, _) = get_json(&format!("{}/api/v1/jobs", daemon.base())).await;
    assert_eq!(status, 200, "reads stay open");
    daemon.stop().await;
}

#[tokio::test]
async fn a_silence_created_through_the_api_holds_back_the_next_notification() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtss1")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let webhook = peers::webhook::Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(dir.path(), &sim.endpoint(), &["dtss1"])
        .set("server", "tokens", &format!("[\"{TOKEN}\"]"))
        .with(&hook_rule(&webhook));
    let daemon = Running::start(&config).await;
    let base = daemon.base();
    let (status, _, created) = send(
        reqwest::Method::POST,
        &format!("{base}/api/v1/silences"),
        Some(TOKEN),
        Some(json!({"jobs": ["dtss1"], "duration": "1h", "comment": "planned cutover"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    sim.add_job(failed_job("dtss1", "DTS-1020042 boom"));
    let alert = eventually("the alert fires, silenced", async || {
        let (_, alerts) = get_json(&format!("{base}/api/v1/alerts")).await;
        alerts
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|a| a["status"] == "firing")
    })
    .await;
    assert_eq!(alert["state"], "silenced");
    assert_eq!(alert["suppressed_by"], id.as_str());
    // Polls go on; the silenced alert is recorded and not sent.
    let polled = sim.polls_of("dtss1");
    eventually("a few more polls", async || {
        (sim.polls_of("dtss1") >= polled + 3).then_some(())
    })
    .await;
    assert!(webhook.accepted().is_empty(), "a silenced alert was sent");

    let (status, _, _) = send(
        reqwest::Method::DELETE,
        &format!("{base}/api/v1/silences/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let sent = eventually("the owed notification goes out", async || {
        webhook.accepted().first().map(|r| r.json())
    })
    .await;
    assert_eq!(sent["alerts"][0]["labels"]["job_id"], "dtss1");
    assert_eq!(sent["alerts"][0]["status"], "firing");
    let (_, alerts) = get_json(&format!("{base}/api/v1/alerts")).await;
    assert_eq!(alerts[0]["state"], "firing");
    daemon.stop().await;
}

#[tokio::test]
async fn https_serves_the_api_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let config = daemon_config(dir.path(), "http://127.0.0.1:9", &["dtsoffline"])
        .set("server", "tls_cert", &format!("\"{}\"", cert.display()))
        .set("server", "tls_key", &format!("\"{}\"", key.display()));
    let daemon = Running::start(&config).await;
    let https = daemon.base().replace("http://", "https://");
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answer = client
        .get(format!("{https}/api/v1/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let jobs: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert!(jobs.is_array(), "{jobs}");
    let plain = reqwest::get(format!("{}/api/v1/jobs", daemon.base())).await;
    assert!(plain.is_err(), "plain HTTP is not served beside HTTPS");
    daemon.stop().await;
}

#[tokio::test]
async fn reload_through_the_api_keeps_a_good_config_and_refuses_a_broken_one() {
    let sim = Simulator::start(SimOptions {
        jobs: vec![running("dtsr1")],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = daemon_config(dir.path(), &sim.endpoint(), &["dtsr1"])
        .set("server", "listen", &format!("\"127.0.0.1:{port}\""))
        .set("server", "tokens", &format!("[\"{TOKEN}\"]"));
    let path = config.write(dir.path());
    let log_path = dir.path().join("daemon.log");
    let mut daemon =
        DaemonProcess::start_logging_at(&path, "debug", std::fs::File::create(&log_path).unwrap());
    let base = format!("http://127.0.0.1:{port}");
    eventually("the daemon serves", async || {
        reqwest::get(format!("{base}/api/v1/jobs"))
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;
    let reload = format!("{base}/api/v1/reload");
    let (status, _, body) = send(reqwest::Method::POST, &reload, Some(TOKEN), None).await;
    assert_eq!((status, body), (200, json!({"reloaded": true})));

    std::fs::write(
        &path,
        format!("{}\n[poll]\nschedule = \"never\"\n", config.text()),
    )
    .unwrap();
    let (status, _, body) = send(reqwest::Method::POST, &reload, Some(TOKEN), None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("problem(s)"),
        "{body}"
    );
    let (status, _) = get_json(&format!("{base}/api/v1/jobs")).await;
    assert_eq!(status, 200, "the daemon runs on with the old config");
    assert_eq!(daemon.terminate(), Some(0));

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("config reloaded"), "{log}");
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");
    std::fs::write(&path, config.text()).unwrap();
    let history = run_cli(
        &path,
        &["history", "dtsr1", "--since", "1h", "--format", "json"],
    );
    let entries: Value = serde_json::from_str(&history.stdout).unwrap();
    let reloads: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "reload")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(reloads.len(), 2, "{entries}");
    assert_eq!(reloads[0], "config reloaded by api token #1 from 127.0.0.1");
    assert!(
        reloads[1].starts_with("config reload by api token #1 from 127.0.0.1 rejected"),
        "{}",
        reloads[1]
    );
}
