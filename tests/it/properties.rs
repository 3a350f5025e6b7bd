//! Property tests for the surfaces the fuzz targets (under `fuzz/`) cover,
//! run with every `cargo test`: the `ListJobStep` parser never panics and
//! reads any JSON object; a snapshot diffs empty against itself, in any step
//! order, and survives the store's split and join; every channel's message
//! stays within its platform's size limits; the config loader never panics
//! and locates every error inside the file.

use std::path::Path;
use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use dtswatch::config::DEFAULT_CONSOLE_URL;
use dtswatch::config::{Config, Severity};
use dtswatch::diff::ChangeKind;
use dtswatch::diff::diff;
use dtswatch::dts::ErrorDetail;
use dtswatch::dts::JobSnapshot;
use dtswatch::dts::api::parse_list_job_step;
use dtswatch::notify::{Channel, Message};
use dtswatch::rules::{
    ChangeNote, Event, EventStatus, Fact, FoldedStep, JobInfo, Notification, Reason, StepInfo,
    StepValues,
};
use dtswatch::store::snapshots::{join, split};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Texts that stress renderers: markdown and JSON specials, CJK, emoji,
/// control characters, and now and then something very long.
/// Markup and mentions an attacker (or an unlucky source row) could put in DTS text.
const PAYLOADS: [&str; 14] = [
    "<at id=all></at>",
    "<at user_id=\"ou_1\">x</at>",
    "<@U123ABC>",
    "<!here>",
    "<!channel>",
    "<@zhangsan>",
    "[click](http://evil.example/x)",
    "![img](http://evil.example/i.png)",
    "**Job:** forged",
    "</font><font color=\"warning\">forged</font>",
    "\n#### forged heading\n> quote",
    "`code` *bold* _it_",
    "\u{1b}[2J\u{1b}]0;title\u{7}",
    "<script>alert(1)</script><a href=\"javascript:x\">",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (prop::sample::select(PAYLOADS.to_vec()), "\\PC{0,10}").prop_map(|(p, s)| format!("{s}{p}{s}")),
        4 => "\\PC{0,40}",
        2 => "[\"'`*_<>&\\\\\n\t|#\\[\\]()~ 全量迁移失败😀\u{0}-\u{1f}]{0,60}",
        1 => "[a-z 全量\"\\\\\n<>&]{2000,6000}",
    ]
}

/// What DTS might put where a scalar belongs.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        text().prop_map(Value::String),
        (-5i64..100_000).prop_map(|n| Value::String(n.to_string())),
        Just(json!([])),
        Just(json!({"nested": 1})),
    ]
}

fn state() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "Finished",
            "○ Finished",
            "running",
            "Running",
            "Failed",
            "Pause",
            "Catched",
            "Init",
            "Schedule",
            "Retrying",
            "",
        ])
        .prop_map(|s| Value::String(s.into())),
        scalar(),
    ]
}

/// One step as DTS might send it; `id` keeps ids unique when given.
fn step(id: Option<String>, sub_steps: Vec<Value>) -> impl Strategy<Value = Value> {
    (
        prop::option::of(text()),
        prop::option::of(scalar()),
        state(),
        prop::option::of(scalar()),
        prop::option::of(scalar()),
        prop::option::of(text()),
        prop::option::of(prop::collection::vec(
            (prop::option::of(scalar()), prop::option::of(text())),
            0..3,
        )),
        (prop::option::of(scalar()), any::<bool>()),
    )
        .prop_map(
            move |(name, code, state, progress, latency, err, details, (extra, nested))| {
                let mut step = Map::new();
                if let Some(id) = &id {
                    step.insert("JobStepId".into(), json!(id));
                }
                let mut put = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        step.insert(key.into(), value);
                    }
                };
                put("JobStepName", name.map(Value::String));
                put("Code", code);
                put("State", Some(state));
                put("Progress", progress);
                put("IncLatencyMilliseconds", latency);
                put("ErrMsg", err.map(Value::String));
                put(
                    "ErrorDetails",
                    details.map(|d| {
                        d.into_iter()
                            .map(|(code, url)| json!({"ErrorCode": code, "HelpUrl": url}))
                            .collect()
                    }),
                );
                put("SomethingNew", extra);
                if !sub_steps.is_empty() {
                    step.insert("SubJobSteps".into(), Value::Array(sub_steps.clone()));
                } else if nested {
                    // Below a sub-step, or a step with no sub-steps of its own.
                    step.insert(
                        "SubJobSteps".into(),
                        json!([{"JobStepId": "deeper", "State": "Running",
                                "SubJobSteps": [{"JobStepId": "deepest"}]}]),
                    );
                }
                Value::Object(step)
            },
        )
}

/// A response of up to six steps of up to three sub-steps, ids unique (or absent).
fn response(with_ids: bool) -> impl Strategy<Value = Value> {
    prop::collection::vec(0usize..4, 0..6)
        .prop_flat_map(move |subs| {
            let steps: Vec<_> = subs
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let id = with_ids.then(|| format!("step{i}"));
                    let children: Vec<_> = (0..*n)
                        .map(|j| step(with_ids.then(|| format!("step{i}_{j}")), Vec::new()))
                        .collect();
                    (Just(id), children)
                        .prop_flat_map(|(id, children)| step(id, children))
                        .boxed()
                })
                .collect();
            steps
        })
        .prop_map(|steps| json!({"RequestId": "R", "Success": true, "JobSteps": steps}))
}

fn snapshot_of(body: &Value) -> JobSnapshot {
    let bytes = body.to_string();
    let response = parse_list_job_step(bytes.as_bytes()).expect("any JSON object parses");
    JobSnapshot::from_response(&response)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_list_job_step(&bytes);
    }

    #[test]
    fn the_parser_reads_any_step_like_object(body in response(false)) {
        let bytes = body.to_string();
        prop_assert!(parse_list_job_step(bytes.as_bytes()).is_ok());
    }

    #[test]
    fn a_snapshot_diffs_empty_against_itself_and_survives_storage(body in response(false)) {
        let snapshot = snapshot_of(&body);
        prop_assert!(diff(Some(&snapshot), &snapshot).is_empty());
        prop_assert_eq!(diff(None, &snapshot).len(), snapshot.walk().len());
        let (structure, volatile) = split(&snapshot);
        prop_assert_eq!(join(&structure, &volatile).expect("joins"), snapshot);
    }

    #[test]
    fn step_order_is_not_a_change(body in response(true), seed in any::<u64>()) {
        let snapshot = snapshot_of(&body);
        let mut shuffled = snapshot.clone();
        // A deterministic shuffle of steps and of each step's sub-steps.
        let n = shuffled.steps.len().max(1);
        shuffled.steps.rotate_left(seed as usize % n);
        for step in &mut shuffled.steps {
            step.sub_steps.reverse();
        }
        prop_assert!(diff(Some(&snapshot), &shuffled).is_empty());
    }
}

const CHANNELS: &str = include_str!("../fixtures/every_channel.toml");

static CHANNEL_SET: LazyLock<Vec<(String, Channel)>> = LazyLock::new(|| {
    let config: Config = dtswatch::config::parse(CHANNELS, Path::new("channels.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    config
        .channels
        .values()
        .map(|c| {
            (
                c.kind.type_name().to_string(),
                Channel::new(c).expect("channel"),
            )
        })
        .collect()
});

fn event() -> impl Strategy<Value = Event> {
    (
        (text(), text(), text(), text(), text()),
        (
            text(),
            prop::collection::vec(text(), 0..4),
            prop::option::of(text()),
            (text(), text()),
        ),
        any::<bool>(),
        prop::sample::select(vec![Severity::Info, Severity::Warning, Severity::Critical]),
    )
        .prop_map(
            |(
                (job, rule, step, parent, id),
                (summary, changes, error, (code, url)),
                firing,
                severity,
            )| {
                let at = Utc.timestamp_opt(1_790_000_000, 0).single().expect("time");
                let fact = match &error {
                    Some(text) => Fact::Error { text: text.clone() },
                    None => Fact::StateIs {
                        state: summary.clone(),
                    },
                };
                let mut changes: Vec<ChangeNote> =
                    changes.into_iter().map(ChangeNote::Text).collect();
                if let Some(to) = &error {
                    changes.push(ChangeNote::Kind(ChangeKind::ErrorChanged {
                        from: summary.as_str().into(),
                        to: to.as_str().into(),
                    }));
                }
                Event {
                    status: if firing {
                        EventStatus::Firing
                    } else {
                        EventStatus::Resolved
                    },
                    reason: if firing {
                        Reason::FirstNotification
                    } else {
                        Reason::Resolved
                    },
                    rule,
                    kind: dtswatch::rules::EventKind::Failed,
                    severity,
                    job: JobInfo {
                        id,
                        name: job,
                        region: "cn-hangzhou".into(),
                        console_url: None,
                    }
                    .with_console(DEFAULT_CONSOLE_URL),
                    step: Some(StepInfo {
                        path: "a/b".into(),
                        label: format!("{parent} › {step}"),
                        name: step.clone(),
                        code: Some("03".into()),
                        sub_step_id: Some("b".into()),
                        parent_name: Some(parent.clone()),
                        parent_code: Some(parent),
                    }),
                    summary: summary.clone(),
                    fact: Some(fact),
                    changes,
                    current: Some(StepValues {
                        state: summary.clone(),
                        progress: Some(30),
                        latency_ms: Some(1500),
                        err_msg: error,
                        error_details: vec![ErrorDetail {
                            code: Some(code.as_str().into()),
                            help_url: Some(url.as_str().into()),
                        }],
                        need_acceleration: None,
                    }),
                    folded: vec![FoldedStep {
                        name: step,
                        id: Some(summary),
                        state: "Failed".into(),
                        err_msg: None,
                    }],
                    first_seen: at,
                    at,
                    runbook: None,
                }
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop::collection::vec(prop::collection::vec(event(), 1..8), 1..12).prop_map(|jobs| {
        Message::new(
            jobs.into_iter()
                .map(|events| Notification {
                    job: events[0].job.clone(),
                    events,
                })
                .collect(),
        )
    })
}

/// Each body a channel would send (WeCom may send two).
fn wire_bodies(preview: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(preview)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("the preview is JSON")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn no_message_exceeds_its_platforms_limits(message in message()) {
        for (kind, channel) in CHANNEL_SET.iter() {
            let preview = channel.preview(&message);
            match kind.as_str() {
                "dingtalk" => for body in wire_bodies(&preview) {
                    // "消息内容不超过 20000 字节"
                    prop_assert!(body.to_string().len() <= 20_000);
                },
                "feishu" => for body in wire_bodies(&preview) {
                    // "请求体大小不能超过 20 KB"
                    prop_assert!(body.to_string().len() <= 20 * 1024);
                },
                "wecom" => for body in wire_bodies(&preview) {
                    let markdown = body["markdown"]["content"].as_str().map_or(0, str::len);
                    let text = body["text"]["content"].as_str().map_or(0, str::len);
                    prop_assert!(markdown <= 4_096, "markdown of {} bytes", markdown);
                    prop_assert!(text <= 2_048, "text of {} bytes", text);
                },
                "slack" => for body in wire_bodies(&preview) {
                    let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
                    prop_assert!(blocks.len() <= 50);
                    for block in blocks {
                        let text = block["text"]["text"].as_str().map_or(0, |t| t.chars().count());
                        prop_assert!(text <= 3_000, "a section of {} characters", text);
                    }
                },
                _ => prop_assert!(!preview.is_empty()),
            }
        }
    }
}

/// A body without the renderer's own syntax: its `[FIRING·critical]` title
/// tags, its links (`[text](https://…)` or Slack's `<https://…|text>`, whose
/// text is escaped data and whose URL cannot end the link) and its one code
/// span, the silence command. What remains must hold no markup at all.
fn without_our_syntax(text: &str) -> String {
    static OURS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(concat!(
            r"\[(FIRING·(info|warning|critical)|RESOLVED|TEST)\]",
            r"|\[[^\[\]\n]*\]\(https?://[^()\s]*\)",
            r"|<https?://[^|<>\s]*\|[^<>\n]*>",
            r"|`dtswatch silence add [^`\n]*`",
        ))
        .expect("regex")
    });
    OURS.replace_all(text, "").into_owned()
}

/// Every `*` of a chat markdown line is the renderer's: bold around a
/// headline or a label (`**Label:** value`; the closing pair may be cut off
/// by truncation), nowhere else.
fn only_our_emphasis(line: &str) -> bool {
    let stars = line.matches('*').count();
    stars == 0 || (stars <= 4 && line.starts_with("**"))
}

/// The tags the email's HTML part is built of.
const HTML_TAGS: [&str; 11] = [
    "div", "h3", "p", "table", "tr", "td", "ul", "li", "a", "b", "code",
];

fn tags(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .map(|rest| {
            rest.trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(80))]

    #[test]
    fn data_never_becomes_markup_a_mention_or_a_terminal_command(message in message()) {
        for (kind, channel) in CHANNEL_SET.iter() {
            let preview = channel.preview(&message);
            match kind.as_str() {
                "dingtalk" => for body in wire_bodies(&preview) {
                    let text = without_our_syntax(body["markdown"]["text"].as_str().unwrap_or_default());
                    prop_assert!(!text.contains(['<', '[', ']', '`']), "{}", text);
                    for line in text.lines() {
                        prop_assert!(only_our_emphasis(line), "{}", line);
                        prop_assert!(!line.starts_with('>') && !line.starts_with("#### forged"), "{}", line);
                    }
                    prop_assert_eq!(&body["at"]["isAtAll"], &Value::Bool(false));
                    prop_assert_eq!(body["at"]["atMobiles"].as_array().map_or(0, Vec::len), 0);
                },
                "wecom" => for body in wire_bodies(&preview) {
                    if let Some(markdown) = body["markdown"]["content"].as_str() {
                        // The only tags are the renderer's colour around the title.
                        let stripped = without_our_syntax(markdown)
                            .replacen("<font color=\"warning\">", "", 1)
                            .replacen("<font color=\"info\">", "", 1)
                            .replacen("</font>", "", 1);
                        prop_assert!(!stripped.contains(['<', '[', ']', '`']), "{}", markdown);
                        for line in stripped.lines() {
                            prop_assert!(only_our_emphasis(line), "{}", line);
                        }
                    }
                    if let Some(mentioned) = body["text"]["mentioned_list"].as_array() {
                        prop_assert_eq!(mentioned, &vec![Value::from("@all")], "mentions come from the config only");
                    }
                },
                "feishu" => for body in wire_bodies(&preview) {
                    let content = without_our_syntax(body["card"]["elements"][0]["text"]["content"].as_str().unwrap_or_default());
                    prop_assert!(!content.contains(['<', '[', ']', '`']), "{}", content);
                    for line in content.lines() {
                        prop_assert!(only_our_emphasis(line), "{}", line);
                    }
                },
                "slack" => for body in wire_bodies(&preview) {
                    let mut texts = vec![without_our_syntax(body["text"].as_str().unwrap_or_default())];
                    for block in body["blocks"].as_array().cloned().unwrap_or_default() {
                        if block["text"]["type"] == "mrkdwn" {
                            texts.push(without_our_syntax(block["text"]["text"].as_str().unwrap_or_default()));
                        }
                    }
                    for text in texts {
                        prop_assert!(!text.contains(['<', '>', '`']), "{}", text);
                    }
                },
                "email" => {
                    let html = preview.split("--- text/html ---").nth(1).unwrap_or_default();
                    for tag in tags(html) {
                        prop_assert!(HTML_TAGS.contains(&tag.as_str()), "<{}> in {}", tag, html);
                    }
                    for href in html.split("href=\"").skip(1) {
                        let url = href.split('"').next().unwrap_or_default();
                        prop_assert!(
                            url.starts_with("https://") && !url.contains(['<', '>', '\'', ' ']),
                            "a link to {} in {}", url, html
                        );
                    }
                    prop_assert!(!preview.contains(|c: char| c.is_control() && c != '\n'), "{:?}", preview);
                },
                "console" => {
                    prop_assert!(!preview.contains(|c: char| c.is_control() && c != '\n'), "{:?}", preview);
                },
                _ => {}
            }
        }
    }
}

const EXAMPLE: &str = include_str!("../../config/dtswatch.example.toml");

/// Checks the loader's answer: a config, or errors that all point inside the text.
fn check_config(text: &str) -> Result<(), TestCaseError> {
    let env = |name: &str| (name == "DTSWATCH_PROP_SET").then(|| "value".to_string());
    if let Err(errors) = dtswatch::config::parse(text, Path::new("prop.toml"), &env) {
        prop_assert!(!errors.errors.is_empty());
        let lines = text.lines().count().max(1);
        for line in errors.lines() {
            let mut parts = line.splitn(4, ':');
            let (_, line_no) = (parts.next(), parts.next());
            if let Some(n) = line_no.and_then(|n| n.parse::<usize>().ok()) {
                prop_assert!(
                    n >= 1 && n <= lines + 1,
                    "{} points outside {} lines",
                    line,
                    lines
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn any_text_is_a_config_or_located_errors(text in "\\PC{0,300}") {
        check_config(&text)?;
    }

    #[test]
    fn a_damaged_example_config_is_a_config_or_located_errors(
        cut in 0..EXAMPLE.len(),
        length in 0usize..200,
        insert in "[\\[\\]=\"'{}#\n a-z0-9${}:.-]{0,30}",
    ) {
        let start = (0..=cut).rev().find(|i| EXAMPLE.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + length).min(EXAMPLE.len());
        let end = (end..=EXAMPLE.len()).find(|i| EXAMPLE.is_char_boundary(*i)).unwrap_or(EXAMPLE.len());
        let damaged = format!("{}{}{}", &EXAMPLE[..start], insert, &EXAMPLE[end..]);
        check_config(&damaged)?;
    }
}

/// The checks of the `list_job_step` and `diff` fuzz targets, for one input.
fn fuzz_checks(data: &[u8]) {
    if let Ok(response) = parse_list_job_step(data) {
        let snapshot = JobSnapshot::from_response(&response);
        for (path, step, _) in snapshot.walk() {
            assert_eq!(
                snapshot.find(&path).map(|s| &s.key),
                Some(&step.key),
                "{path}"
            );
        }
        let (structure, volatile) = split(&snapshot);
        assert_eq!(join(&structure, &volatile).expect("joins"), snapshot);
        assert!(diff(Some(&snapshot), &snapshot).is_empty());
    }
    let (left, right) = match data.iter().position(|b| *b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let parse = |body: &[u8]| {
        parse_list_job_step(body)
            .map(|r| JobSnapshot::from_response(&r))
            .unwrap_or_default()
    };
    let (a, b) = (parse(left), parse(right));
    assert_eq!(diff(None, &b).len(), b.walk().len());
    assert_eq!(diff(None, &a).len(), a.walk().len());
    for change in diff(Some(&a), &b) {
        assert!(
            a.find(&change.path).is_some() || b.find(&change.path).is_some(),
            "{}",
            change.path
        );
    }
}

/// Inputs the fuzzers found (`tests/fixtures/fuzz/`), kept as regressions.
#[test]
fn inputs_the_fuzzers_found_stay_fixed() {
    let dir = crate::helpers::fixture("fuzz");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/fuzz") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("readable");
        fuzz_checks(&data);
        checked += 1;
    }
    assert!(checked >= 2, "the regression inputs are there");
}
