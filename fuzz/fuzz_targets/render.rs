//! Any body turned into alerts by the real rules, rendered for every channel:
//! never a panic, and never a message over a platform's size limit.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use dtswatch::config::Config;
use dtswatch::diff::diff;
use dtswatch::dts::JobSnapshot;
use dtswatch::dts::api::parse_list_job_step;
use dtswatch::notify::{Channel, Message};
use dtswatch::rules::{JobInfo, Notification, Outcome, evaluate_job};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every channel type (shared with the property tests), and rules that fire on anything.
const CONFIG: &str = concat!(
    include_str!("../../tests/fixtures/every_channel.toml"),
    r#"
[[rules]]
name = "failed"
kind = "failed"
states = ["Failed", "Pause", "Init", "Schedule", "Running", "Catched", "Finished"]
channels = ["dingtalk", "slack", "feishu", "wecom", "webhook", "email"]

[[rules]]
name = "error"
kind = "error"
channels = ["dingtalk", "slack", "feishu", "wecom", "webhook", "email"]
"#
);

static SETUP: LazyLock<(Config, Vec<(String, Channel)>)> = LazyLock::new(|| {
    let config = dtswatch::config::parse(CONFIG, Path::new("fuzz.toml"), &|_| None).expect("config");
    let channels = config
        .channels
        .values()
        .map(|c| (c.kind.type_name().to_string(), Channel::new(c).expect("channel")))
        .collect();
    (config, channels)
});

fuzz_target!(|data: &[u8]| {
    let Ok(response) = parse_list_job_step(data) else {
        return;
    };
    let snapshot = JobSnapshot::from_response(&response);
    let (config, channels) = &*SETUP;
    let job = JobInfo::from_config(&config.jobs[0]);
    let changes = diff(None, &snapshot);
    let now = Utc.timestamp_opt(1_790_000_000, 0).single().expect("time");
    let outcome = Outcome::Polled {
        snapshot: &snapshot,
        previous: None,
        changes: &changes,
    };
    let evaluation = evaluate_job(&config.rules, &job, &BTreeMap::new(), &outcome, &[], now);
    if evaluation.notices.is_empty() {
        return;
    }
    let message = Message {
        notifications: vec![Notification {
            job,
            events: evaluation.notices.into_iter().map(|n| n.event).collect(),
        }],
    };
    for (kind, channel) in channels {
        // The preview is the wire body pretty-printed (WeCom: one or two bodies).
        let preview = channel.preview(&message);
        if !matches!(kind.as_str(), "dingtalk" | "feishu" | "wecom" | "slack") {
            continue;
        }
        let bodies: Vec<Value> = serde_json::Deserializer::from_str(&preview)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .expect("the preview is JSON");
        for body in bodies {
            let wire = body.to_string().len();
            match kind.as_str() {
                "dingtalk" => assert!(wire <= 20_000, "DingTalk body of {wire} bytes"),
                "feishu" => assert!(wire <= 20 * 1024, "Feishu body of {wire} bytes"),
                "wecom" => {
                    let markdown = body["markdown"]["content"].as_str().map_or(0, str::len);
                    let text = body["text"]["content"].as_str().map_or(0, str::len);
                    assert!(markdown <= 4_096 && text <= 2_048, "WeCom content of {markdown}/{text} bytes");
                }
                _ => {
                    let blocks = body["blocks"].as_array().map_or(0, Vec::len);
                    assert!(blocks <= 50, "{blocks} Slack blocks");
                    for block in body["blocks"].as_array().into_iter().flatten() {
                        let text = block["text"]["text"].as_str().map_or(0, |t| t.chars().count());
                        assert!(text <= 3_000, "a Slack section of {text} characters");
                    }
                }
            }
        }
    }
});
