//! What people read: every channel's body for each kind of message, in
//! English and Chinese, compared byte for byte with reviewed goldens in
//! `tests/fixtures/golden/` (`UPDATE_GOLDEN=1 cargo test messages::` rewrites
//! them; review the diff). The events come from the real rules pipeline
//! fed with ListJobStep answers, so a golden shows what dtswatch would
//! send. Chinese goldens must hold no English label, and every body stays
//! within its platform's limits.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use dtswatch::config::Config;
use dtswatch::dts::JobSnapshot;
use dtswatch::notify::{Channel, Message, sample_message};
use dtswatch::rules::{self, AlertKey, AlertState, Event, JobInfo, Notification, Outcome};
use serde_json::{Value, json};

use crate::helpers::{fixture, parse_config};

/// When the goldens' alerts happen.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T10:00:30Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A `JobSteps` entry as DTS sends it.
pub struct StepJson(Value);

impl StepJson {
    pub fn new(id: &str, name: &str, code: &str, state: &str, progress: i64) -> Self {
        Self(json!({
            "JobStepId": id, "JobStepName": name, "Code": code, "Serial": 1,
            "Progress": progress, "State": state, "IncLatencySeconds": -1,
            "ErrorDetails": [{"ErrorCode": "200", "HelpUrl": "****"}],
        }))
    }

    pub fn latency(mut self, ms: i64) -> Self {
        self.0["IncLatencyMilliseconds"] = json!(ms);
        self.0["IncLatencySeconds"] = json!(ms / 1000);
        self
    }

    pub fn error(mut self, message: &str, code: &str) -> Self {
        self.0["ErrMsg"] = json!(message);
        self.0["ErrorDetails"] = json!([{
            "ErrorCode": code,
            "HelpUrl": "https://help.aliyun.com/document_detail/462133.html",
        }]);
        self
    }

    pub fn sub(mut self, sub: StepJson) -> Self {
        let subs = self.0["SubJobSteps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut subs = subs;
        subs.push(sub.0);
        self.0["SubJobSteps"] = Value::Array(subs);
        self
    }
}

pub fn snapshot(steps: Vec<StepJson>) -> JobSnapshot {
    let body = json!({
        "Success": true, "HttpStatusCode": 200, "Code": "200", "RequestId": "r",
        "JobSteps": steps.into_iter().map(|s| s.0).collect::<Vec<_>>(),
    })
    .to_string();
    let response = dtswatch::dts::api::parse_list_job_step(body.as_bytes()).expect("a response");
    JobSnapshot::from_response(&response)
}

/// The rules pipeline for the jobs of one config: polls in, events out.
pub struct Pipeline {
    pub config: Config,
    states: BTreeMap<String, BTreeMap<AlertKey, AlertState>>,
    previous: BTreeMap<String, (JobSnapshot, DateTime<Utc>)>,
}

impl Pipeline {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            states: BTreeMap::new(),
            previous: BTreeMap::new(),
        }
    }

    pub fn job(&self, id: &str) -> JobInfo {
        let job = self.config.jobs.iter().find(|j| j.id == id).expect("a job");
        JobInfo::for_job(job, &self.config)
    }

    /// One successful poll of `job` at `at`; the events that would be sent.
    pub fn poll(&mut self, job: &str, at: DateTime<Utc>, steps: Vec<StepJson>) -> Vec<Event> {
        let info = self.job(job);
        let current = snapshot(steps);
        let previous = self.previous.get(job);
        let changes = dtswatch::diff::diff(previous.map(|(p, _)| p), &current);
        let outcome = Outcome::Polled {
            snapshot: &current,
            previous: previous.map(|(p, at)| (p, *at)),
            changes: &changes,
        };
        let states = self.states.entry(job.to_string()).or_default();
        let evaluation = rules::evaluate_job(&self.config.rules, &info, states, &outcome, &[], at);
        for (key, state) in evaluation.updates {
            states.insert(key, state);
        }
        self.previous.insert(job.to_string(), (current, at));
        evaluation
            .notices
            .into_iter()
            .filter(|n| n.suppressed.is_none())
            .map(|n| n.event)
            .collect()
    }
}

pub const LOCALES: [&str; 2] = ["en", "zh-CN"];

/// The goldens' config: two jobs, four rules and one channel of each type.
pub fn config(locale: &str) -> Config {
    let zh = locale == "zh-CN";
    let name = |en: &str, zh_name: &str| {
        if zh {
            zh_name.to_string()
        } else {
            en.to_string()
        }
    };
    let text = format!(
        r#"
[messages]
locale = "{locale}"
timezone = "{zone}"

[[accounts]]
name = "prod"
access_key_id = "id"
access_key_secret = "secret"

[[jobs]]
id = "dtsorders01"
region = "cn-hangzhou"
name = "{orders}"

[[jobs]]
id = "dtsbilling02"
region = "cn-shanghai"
name = "{billing}"

{channels}

[[rules]]
name = "{failed}"
kind = "failed"
severity = "critical"
runbook = "https://wiki.example.com/runbooks/dts-step-failed"
channels = {all}

[[rules]]
name = "{error}"
kind = "error"
severity = "warning"
channels = {all}

[[rules]]
name = "{lag}"
kind = "latency"
threshold = "300s"
for = "5m"
severity = "warning"
channels = {all}

[[rules]]
name = "{stalled}"
kind = "stalled"
for = "10m"
severity = "warning"
channels = {all}
"#,
        zone = if zh { "Asia/Shanghai" } else { "UTC" },
        orders = name("orders mysql -> polardb", "订单库 MySQL → PolarDB"),
        billing = name("billing pg -> adb", "计费库 PostgreSQL → AnalyticDB"),
        failed = name("step failed", "步骤失败"),
        error = name("step error", "步骤报错"),
        lag = name("replication lag", "同步延迟"),
        stalled = name("progress stalled", "进度停滞"),
        channels = std::fs::read_to_string(fixture("golden/channels.toml")).expect("channels"),
        all = r#"["dingtalk", "slack", "feishu", "wecom", "email", "webhook", "pagerduty", "console"]"#,
    );
    parse_config(&text)
}

fn full_step(state: &str, progress: i64) -> StepJson {
    StepJson::new("st03full", "全量迁移", "03", state, progress)
}

fn incremental(state: &str, latency_ms: i64) -> StepJson {
    StepJson::new("st04incr", "增量同步", "04", state, 0).latency(latency_ms)
}

const DUPLICATE: &str = "DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'";

/// Every scenario of a locale: name → message.
pub fn scenarios(locale: &str) -> Vec<(&'static str, Message)> {
    let mut p = Pipeline::new(config(locale));
    let job = |p: &Pipeline, id: &str, events: Vec<Event>| Notification {
        job: p.job(id),
        events,
    };
    // A full-data step fails with its only sub-step: one alert.
    p.poll(
        "dtsorders01",
        t0() - Duration::seconds(30),
        vec![full_step("Running", 28).sub(StepJson::new(
            "st03full_0001",
            "order_items",
            "03",
            "running",
            28,
        ))],
    );
    let failure = p.poll(
        "dtsorders01",
        t0(),
        vec![
            full_step("Failed", 30).error(DUPLICATE, "DTS-1020042").sub(
                StepJson::new("st03full_0001", "order_items", "03", "Failed", 30)
                    .error(DUPLICATE, "DTS-1020042"),
            ),
        ],
    );
    // An incremental step's error turns into another one.
    p.poll(
        "dtsbilling02",
        t0() - Duration::seconds(60),
        vec![incremental("Running", 1_200).error(
            "DTS-31009 binlog reader retry 3 times: connection reset",
            "DTS-31009",
        )],
    );
    let changed = p.poll(
        "dtsbilling02",
        t0(),
        vec![incremental("Running", 1_500).error(
            "DTS-52012 Table `pay`.`refunds` does not exist in target",
            "DTS-52012",
        )],
    );
    // Replication lag over 300 s for five minutes, then back to normal.
    let mut lag = Pipeline::new(config(locale));
    lag.poll(
        "dtsorders01",
        t0() - Duration::minutes(5),
        vec![incremental("Running", 320_000)],
    );
    let lag_firing = lag.poll("dtsorders01", t0(), vec![incremental("Running", 345_000)]);
    let lag_resolved = lag.poll(
        "dtsorders01",
        t0() + Duration::minutes(14),
        vec![incremental("Running", 2_000)],
    );
    lag.poll(
        "dtsbilling02",
        t0() - Duration::minutes(5),
        vec![incremental("Running", 610_000)],
    );
    let billing_lag = lag.poll("dtsbilling02", t0(), vec![incremental("Running", 655_000)]);
    // A full-data step stuck at 63 % for ten minutes, then moving.
    let mut stall = Pipeline::new(config(locale));
    for minutes in [21, 20, 10] {
        stall.poll(
            "dtsbilling02",
            t0() - Duration::minutes(minutes),
            vec![full_step("Running", 63)],
        );
    }
    let unstuck = stall.poll("dtsbilling02", t0(), vec![full_step("Running", 70)]);
    let one = |events: Vec<Event>, id: &str, p: &Pipeline| Message::new(vec![job(p, id, events)]);
    let group = Message::new(vec![
        job(
            &p,
            "dtsorders01",
            [failure.clone(), lag_resolved.clone()].concat(),
        ),
        job(
            &p,
            "dtsbilling02",
            [changed.clone(), billing_lag, unstuck].concat(),
        ),
    ]);
    vec![
        ("single_failure", one(failure, "dtsorders01", &p)),
        ("error_changed", one(changed, "dtsbilling02", &p)),
        ("latency_firing", one(lag_firing, "dtsorders01", &lag)),
        ("latency_resolved", one(lag_resolved, "dtsorders01", &lag)),
        ("group", group),
        (
            "test_notify",
            sample_message(t0(), p.config.messages.locale),
        ),
        ("watchdog", watchdog()),
    ]
}

/// dtswatch about itself: its database cannot be written (sent around the store).
fn watchdog() -> Message {
    let config = dtswatch::config::WatchdogConfig {
        channels: Vec::new(),
        no_successful_poll: std::time::Duration::from_secs(600),
        dead_letters: true,
        severity: dtswatch::config::Severity::Critical,
    };
    let job = JobInfo::from_config(&dtswatch::poll::watchdog_job());
    let event = rules::watchdog::store_event(
        &config,
        job.clone(),
        Some("database or disk is full".into()),
        t0() - Duration::minutes(3),
        t0(),
    );
    Message::new(vec![Notification {
        job,
        events: vec![event],
    }])
}

/// Each channel's preview of `message`, under `=== name ===` headers.
pub fn previews(config: &Config, message: &Message) -> Vec<(String, String)> {
    config
        .channels
        .values()
        .map(|c| {
            let channel = Channel::new(c).expect("a channel");
            (c.name.clone(), channel.preview(message))
        })
        .collect()
}

fn golden_path(locale: &str, scenario: &str) -> std::path::PathBuf {
    fixture(&format!("golden/{locale}/{scenario}.txt"))
}

#[test]
fn every_channel_matches_its_golden_in_both_languages() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatched = Vec::new();
    for locale in LOCALES {
        let config = config(locale);
        for (scenario, message) in scenarios(locale) {
            assert!(
                message.events().count() > 0,
                "{locale}/{scenario} has events"
            );
            let text: String = previews(&config, &message)
                .into_iter()
                .map(|(name, body)| format!("=== {name} ===\n{body}\n"))
                .collect();
            let path = golden_path(locale, scenario);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let golden = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if golden != text {
                mismatched.push(format!("{locale}/{scenario}"));
                let actual = path.with_extension("actual");
                std::fs::write(&actual, &text).unwrap();
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "bodies differ from their goldens (see the .actual files beside them): {mismatched:?}"
    );
}

/// The words a person reads in a channel's preview: for JSON channels the
/// fields shown to people, for the rest the whole text.
fn human_text(channel: &str, preview: &str) -> String {
    let bodies: Vec<Value> = serde_json::Deserializer::from_str(preview)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .collect();
    let strings = |paths: &[&str]| -> String {
        bodies
            .iter()
            .flat_map(|b| paths.iter().map(move |p| b.pointer(p).cloned()))
            .flatten()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match channel {
        "dingtalk" => strings(&["/markdown/title", "/markdown/text"]),
        // The colour of WeCom's title is markup, not words.
        "wecom" => strings(&["/markdown/content", "/text/content"])
            .replace("<font color=\"warning\">", "")
            .replace("<font color=\"info\">", ""),
        "feishu" => strings(&[
            "/card/header/title/content",
            "/card/elements/0/text/content",
        ]),
        "slack" => {
            let mut text = strings(&["/text"]);
            for body in &bodies {
                for block in body["blocks"].as_array().into_iter().flatten() {
                    text.push_str(&block.to_string());
                }
            }
            text
        }
        "webhook" => {
            let mut text = strings(&["/title"]);
            for body in &bodies {
                for alert in body["alerts"].as_array().into_iter().flatten() {
                    text.push_str(alert["headline"].as_str().unwrap_or_default());
                }
            }
            text
        }
        // PagerDuty's own field names are its API's; people read the summary.
        "pagerduty" => strings(&["/payload/summary"]),
        // The preview's From/To/Subject lines are the envelope's.
        "email" => preview
            .lines()
            .filter(|l| !l.starts_with("From:") && !l.starts_with("To:"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => preview.to_string(),
    }
}

/// English labels and words of ours that a Chinese message must not show.
const ENGLISH: [&str; 24] = [
    "Job",
    "Step",
    "State",
    "Error",
    "Latency",
    "First seen",
    "Lasted",
    "Rule",
    "Silence",
    "Help",
    "FIRING",
    "RESOLVED",
    "critical",
    "warning",
    "Sub-steps",
    "Changed",
    "failed",
    "recovered",
    "progress",
    "sub-step",
    "threshold",
    "Runbook",
    " after ",
    "test message",
];

#[test]
fn chinese_messages_hold_no_english_label() {
    let config = config("zh-CN");
    let urls = regex::Regex::new(r"https?://[^\s)<>|\]]+").unwrap();
    for (scenario, message) in scenarios("zh-CN") {
        for (channel, preview) in previews(&config, &message) {
            let text = human_text(&channel, &preview);
            // Data may be English (DTS's error text, URLs, the silence
            // command): take them out before looking for our words.
            let mut ours = urls.replace_all(&text, "").into_owned();
            for event in message.events() {
                if let Some(values) = &event.current
                    && let Some(err) = &values.err_msg
                {
                    ours = ours.replace(err.as_str(), "");
                }
            }
            for data in [
                DUPLICATE,
                "Duplicate entry",
                "Execute sql error",
                "dtswatch silence add",
            ] {
                ours = ours.replace(data, "");
            }
            let ours: String = ours
                .lines()
                .filter(|l| !l.contains("dtswatch silence add"))
                .collect::<Vec<_>>()
                .join("\n");
            for word in ENGLISH {
                assert!(
                    !ours.contains(word),
                    "zh-CN {scenario} on {channel} says `{word}`:\n{ours}"
                );
            }
        }
    }
}

#[test]
fn every_golden_stays_within_its_platforms_limits() {
    for locale in LOCALES {
        let config = config(locale);
        for (scenario, message) in scenarios(locale) {
            for (channel, preview) in previews(&config, &message) {
                let bodies: Vec<Value> = serde_json::Deserializer::from_str(&preview)
                    .into_iter::<Value>()
                    .filter_map(Result::ok)
                    .collect();
                let what = format!("{locale}/{scenario} on {channel}");
                for body in &bodies {
                    match channel.as_str() {
                        "dingtalk" => assert!(body.to_string().len() <= 20_000, "{what}"),
                        "feishu" => assert!(body.to_string().len() <= 20 * 1024, "{what}"),
                        "wecom" => {
                            let md = body["markdown"]["content"].as_str().map_or(0, str::len);
                            assert!(md <= 4_096, "{what}");
                        }
                        "slack" => {
                            let blocks = body["blocks"].as_array().expect("blocks");
                            assert!(blocks.len() <= 50, "{what}");
                            for block in blocks {
                                let n = block["text"]["text"]
                                    .as_str()
                                    .map_or(0, |t| t.chars().count());
                                assert!(n <= 3_000, "{what}");
                            }
                        }
                        _ => {}
                    }
                }
                assert!(!preview.is_empty(), "{what}");
            }
        }
    }
}

#[test]
fn resolved_messages_mention_nobody() {
    let config = config("en");
    let resolved = scenarios("en")
        .into_iter()
        .find(|(name, _)| *name == "latency_resolved")
        .map(|(_, m)| m)
        .expect("the scenario");
    let firing = scenarios("en")
        .into_iter()
        .find(|(name, _)| *name == "latency_firing")
        .map(|(_, m)| m)
        .expect("the scenario");
    for (channel, preview) in previews(&config, &resolved) {
        assert!(!preview.contains("13800000000"), "{channel}: {preview}");
        assert!(!preview.contains("<!here>"), "{channel}: {preview}");
        assert!(!preview.contains("<at id="), "{channel}: {preview}");
        assert!(
            !preview.contains("\"isAtAll\": true"),
            "{channel}: {preview}"
        );
    }
    let previews: BTreeMap<String, String> = previews(&config, &firing).into_iter().collect();
    assert!(previews["dingtalk"].contains("@13800000000"));
    assert!(previews["wecom"].contains("13800000000"));
    assert!(previews["slack"].contains("<!here>"));
    assert!(previews["feishu"].contains("<at id=ou_3f9a2b></at>"));
}

#[test]
fn a_webhook_alert_keeps_its_fingerprint_from_firing_to_resolved() {
    let config = config("en");
    let all: BTreeMap<&str, Message> = scenarios("en").into_iter().collect();
    let fingerprint = |m: &Message| -> Vec<String> {
        let channel = Channel::new(&config.channels["webhook"]).unwrap();
        let body: Value = serde_json::from_str(&channel.preview(m)).unwrap();
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    let firing = fingerprint(&all["latency_firing"]);
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].len(), 16);
    assert_eq!(firing, fingerprint(&all["latency_resolved"]));
    assert_ne!(firing, fingerprint(&all["single_failure"]));
    let body: Value = serde_json::from_str(
        &Channel::new(&config.channels["webhook"])
            .unwrap()
            .preview(&all["single_failure"]),
    )
    .unwrap();
    assert_eq!(
        body["alerts"][0]["console_url"],
        "https://dts.console.aliyun.com/?regionId=cn-hangzhou#/task/cn-hangzhou/dtsorders01"
    );
}

/// A channel on the keyword robot, in `locale`.
fn keyword_robot_config(robot: &crate::peers::dingtalk::DingTalk, locale: &str) -> String {
    format!(
        r#"
[messages]
locale = "{locale}"

[[accounts]]
name = "prod"
access_key_id = "id"
access_key_secret = "secret"

[[jobs]]
id = "dtsorders01"
region = "cn-hangzhou"

[channels.ding]
type = "dingtalk"
url = "{url}"
secret = "{secret}"
keyword = "DTS告警"

[channels.plain]
type = "dingtalk"
url = "{url}"
secret = "{secret}"

[watchdog]
channels = ["ding"]

[[rules]]
name = "r"
kind = "failed"
channels = ["ding"]
"#,
        url = robot.url(),
        secret = robot.secret
    )
}

#[tokio::test]
async fn a_keyword_robot_accepts_every_kind_of_message_dtswatch_sends() {
    let robot = crate::peers::dingtalk::DingTalk::start_with_keywords(&["DTS告警"]).await;
    for locale in LOCALES {
        let config = parse_config(&keyword_robot_config(&robot, locale));
        let channel = Channel::new(&config.channels["ding"]).unwrap();
        let mut messages: Vec<(String, Message)> = scenarios(locale)
            .into_iter()
            .map(|(name, m)| (name.to_string(), m))
            .collect();
        // A storm: more alerts than a message details, one line each.
        let storm: Vec<Notification> = messages
            .iter()
            .flat_map(|(_, m)| m.notifications.clone())
            .collect();
        messages.push(("storm".into(), Message::new(storm)));
        // The watchdog's own alert, sent around the store.
        let watchdog = config.watchdog.as_ref().unwrap();
        let job = JobInfo::from_config(&dtswatch::poll::watchdog_job());
        for problem in [Some("disk full".to_string()), None] {
            let event = rules::watchdog::store_event(watchdog, job.clone(), problem, t0(), t0());
            messages.push((
                "watchdog".into(),
                Message::new(vec![Notification {
                    job: job.clone(),
                    events: vec![event],
                }]),
            ));
        }
        for (name, message) in &messages {
            let sent = channel.send(message).await;
            assert!(sent.is_ok(), "{locale}/{name}: {sent:?}");
        }
        assert_eq!(robot.accepted().len(), {
            let so_far = if locale == "en" { 0 } else { messages.len() };
            so_far + messages.len()
        });
        // The same robot drops what a channel without the keyword sends.
        let plain = Channel::new(&config.channels["plain"]).unwrap();
        let (_, latency) = &messages[2];
        let refused = plain.send(latency).await;
        assert!(
            matches!(&refused, Err(dtswatch::notify::SendError::Permanent(e)) if e.contains("310000")),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn test_notify_reaches_a_keyword_robot_marked_as_a_test() {
    let robot = crate::peers::dingtalk::DingTalk::start_with_keywords(&["DTS告警"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dtswatch.toml");
    std::fs::write(&path, keyword_robot_config(&robot, "zh-CN")).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::run_cli(&path, &["test-notify", "ding"])
    })
    .await
    .unwrap();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let accepted = robot.accepted();
    assert_eq!(accepted.len(), 1);
    let body = accepted[0].json();
    let title = body["markdown"]["title"].as_str().unwrap();
    assert!(title.starts_with("【测试】【告警·严重】"), "{title}");
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(text.contains("DTS告警"), "{text}");
    assert!(
        text.contains("这是 dtswatch test-notify 发送的测试消息"),
        "{text}"
    );
    assert!(
        !text.contains("silence add"),
        "a test is not silenced: {text}"
    );
}
