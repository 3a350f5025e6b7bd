//! `dtswatch test-notify CHANNEL` (a sample alert through a real channel)
//! and `dtswatch render RULE --snapshot F` (what a rule would send for a
//! stored `ListJobStep` response, without sending it).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;

use super::EXIT_CONFIG;
use crate::config::Config;
use crate::dts::JobSnapshot;
use crate::notify::{self, Channel, Message};
use crate::rules::{self, JobInfo, Notification, Outcome};

pub async fn test_notify(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let Some(channel_config) = config.channels.get(name) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        eprintln!("no channel `{name}` (known: {})", known.join(", "));
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let channel = Channel::new(channel_config).map_err(anyhow::Error::msg)?;
    match channel.send(&notify::sample_message(Utc::now())).await {
        Ok(delivered) => {
            crate::outln!(
                "{name}: delivered; the peer answered: {}",
                delivered.answer.trim()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{name}: not delivered: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read_snapshot(path: &Path) -> anyhow::Result<JobSnapshot> {
    let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let response = crate::dts::api::parse_list_job_step(&body)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(JobSnapshot::from_response(&response))
}

/// Shows what `rule` would send for a stored response, as if `for` and `after` were already met.
pub fn render(
    config: &Config,
    rule_name: &str,
    snapshot: &Path,
    previous: Option<&Path>,
    channel: Option<&str>,
    job: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let Some(rule) = config.rule(rule_name) else {
        let known: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
        eprintln!("no rule `{rule_name}` (known: {})", known.join(", "));
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let job_info = match job {
        Some(wanted) => config
            .jobs
            .iter()
            .find(|j| j.id == wanted || j.name.as_deref() == Some(wanted))
            .map(JobInfo::from_config)
            .unwrap_or(JobInfo {
                id: wanted.to_string(),
                name: wanted.to_string(),
                region: "-".into(),
            }),
        None => config
            .jobs
            .first()
            .map(JobInfo::from_config)
            .unwrap_or(JobInfo {
                id: "(job)".into(),
                name: "(job)".into(),
                region: "-".into(),
            }),
    };
    let current = read_snapshot(snapshot)?;
    let previous = previous.map(read_snapshot).transpose()?;
    let now = Utc::now();
    let mut rule = rule.clone();
    rule.for_ = std::time::Duration::ZERO;
    rule.after = 1;
    let changes = crate::diff::diff(previous.as_ref(), &current);
    let outcome = Outcome::Polled {
        snapshot: &current,
        previous: previous
            .as_ref()
            .map(|p| (p, now - chrono::Duration::seconds(1))),
        changes: &changes,
    };
    let evaluation = rules::evaluate_job(
        std::slice::from_ref(&rule),
        &job_info,
        &Default::default(),
        &outcome,
        &[],
        now,
    );
    let events: Vec<_> = evaluation.notices.into_iter().map(|n| n.event).collect();
    if events.is_empty() {
        crate::outln!("rule `{rule_name}` would send nothing for this snapshot");
        return Ok(ExitCode::SUCCESS);
    }
    let message = Message {
        notifications: vec![Notification {
            job: job_info,
            events,
        }],
    };
    let names: Vec<String> = match channel {
        Some(c) => vec![c.to_string()],
        None => rule.channels.clone(),
    };
    for name in names {
        let Some(channel_config) = config.channels.get(&name) else {
            eprintln!("no channel `{name}`");
            return Ok(ExitCode::from(EXIT_CONFIG));
        };
        let channel = Channel::new(channel_config).map_err(anyhow::Error::msg)?;
        crate::outln!("=== {name} ({}) ===", channel_config.kind.type_name());
        crate::outln!("{}", channel.preview(&message));
    }
    Ok(ExitCode::SUCCESS)
}
