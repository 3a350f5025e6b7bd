//! `dtswatch test-notify CHANNEL` (a sample alert, titled `[TEST]`, through
//! a real channel) and `dtswatch render RULE` (exactly what a rule would
//! send, without sending it: for a stored `ListJobStep` response, stdin, or
//! the job's last two snapshots in the database; a firing previous
//! snapshot and a healthy current one preview the resolution).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::{EXIT_CONFIG, open_store_read_only};
use crate::config::{ChannelConfig, Config, JobConfig};
use crate::dts::JobSnapshot;
use crate::notify::{self, Channel, Message};
use crate::rules::{self, JobInfo, Notification, Outcome};
use crate::store::snapshots::SnapshotCache;
use crate::store::{from_millis, jobs, polls};

/// The most `render` reads from a file or stdin: a ListJobStep answer is
/// tens of kilobytes; anything far larger is not one.
const MAX_SNAPSHOT_BYTES: u64 = 16 * 1024 * 1024;

pub async fn test_notify(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let Some(channel_config) = config.channels.get(name) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        eprintln!("no channel `{name}` (known: {})", known.join(", "));
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let channel = Channel::new(channel_config).map_err(anyhow::Error::msg)?;
    let message = notify::sample_message(Utc::now(), channel_config.locale);
    match channel.send(&message).await {
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

/// Where `render` takes its snapshots from.
pub enum Source {
    /// A ListJobStep response in a file, or `-` for stdin; optionally the previous one.
    Files {
        snapshot: PathBuf,
        previous: Option<PathBuf>,
    },
    /// The job's last two successful polls in the database.
    Stored,
}

/// What `render` prints for each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A `=== channel (type) ===` header before each body.
    Annotated,
    /// Only the body, for piping to `jq` (one channel).
    Raw,
}

fn read_response(path: &Path) -> anyhow::Result<JobSnapshot> {
    let mut body = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_SNAPSHOT_BYTES + 1)
            .read_to_end(&mut body)
            .context("reading the snapshot from stdin")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SNAPSHOT_BYTES + 1).read_to_end(&mut body))
            .with_context(|| format!("reading {}", path.display()))?;
    }
    anyhow::ensure!(
        body.len() as u64 <= MAX_SNAPSHOT_BYTES,
        "{} is larger than {MAX_SNAPSHOT_BYTES} bytes: not a ListJobStep response",
        path.display()
    );
    let response = crate::dts::api::parse_list_job_step(&body)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(JobSnapshot::from_response(&response))
}

/// The job to render for: a configured one by id or name, else one by that
/// name in the database, else a stand-in with that name.
fn job_named(config: &Config, wanted: Option<&str>) -> JobConfig {
    let configured = match wanted {
        Some(wanted) => config
            .jobs
            .iter()
            .find(|j| j.id == wanted || j.name.as_deref() == Some(wanted)),
        None => config.jobs.first(),
    };
    configured.cloned().unwrap_or_else(|| JobConfig {
        id: wanted.unwrap_or("(job)").to_string(),
        region: "-".into(),
        account: String::new(),
        name: wanted.map(str::to_string),
        schedule: None,
        zero_etl: None,
        resource_group_id: None,
    })
}

/// The job's last two successful snapshots, newest first, with their times.
async fn stored_snapshots(
    config: &Config,
    wanted: &str,
) -> anyhow::Result<(JobConfig, Vec<(JobSnapshot, DateTime<Utc>)>)> {
    let store = open_store_read_only(config).await?;
    let mut conn = store.pool().acquire().await?;
    let row = jobs::find(&mut conn, wanted)
        .await?
        .with_context(|| format!("no job `{wanted}` in the database"))?;
    let mut cache = SnapshotCache::default();
    let mut found = Vec::new();
    let mut poll = polls::last_ok(&mut conn, row.id).await?;
    while let Some(current) = poll.take() {
        let Some(snapshot_id) = current.snapshot else {
            break;
        };
        let volatile = polls::volatile_at(&mut conn, row.id, current.id)
            .await?
            .unwrap_or_default();
        let snapshot = cache.load(&mut conn, snapshot_id, &volatile).await?;
        found.push((snapshot, from_millis(current.at)));
        if found.len() == 2 {
            break;
        }
        poll = polls::ok_before(&mut conn, row.id, current.id).await?;
    }
    drop(conn);
    store.close().await;
    anyhow::ensure!(
        !found.is_empty(),
        "job `{wanted}` has no successful poll in the database"
    );
    let configured = config.jobs.iter().find(|j| j.id == row.dts_job_id).cloned();
    Ok((configured.unwrap_or_else(|| row.to_config()), found))
}

/// Shows what `rule` would send, as if `for` and `after` were already met.
pub async fn render(
    config: &Config,
    rule_name: &str,
    source: Source,
    channel: Option<&str>,
    job: Option<&str>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let Some(rule) = config.rule(rule_name) else {
        let known: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
        eprintln!("no rule `{rule_name}` (known: {})", known.join(", "));
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let now = Utc::now();
    let (job, current, previous) = match source {
        Source::Files { snapshot, previous } => {
            let earlier = now - chrono::Duration::minutes(1);
            (
                job_named(config, job),
                (read_response(&snapshot)?, now),
                previous
                    .map(|p| read_response(&p).map(|s| (s, earlier)))
                    .transpose()?,
            )
        }
        Source::Stored => {
            let wanted = job.context("render without --snapshot needs --job")?;
            let (job, mut found) = stored_snapshots(config, wanted).await?;
            let current = found.remove(0);
            (job, current, found.pop())
        }
    };
    let channels: Vec<&ChannelConfig> = match channel {
        Some(name) => match config.channels.get(name) {
            Some(c) => vec![c],
            None => {
                eprintln!("no channel `{name}`");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
        None => rule
            .channels
            .iter()
            .filter_map(|c| config.channels.get(c))
            .collect(),
    };
    anyhow::ensure!(
        output == Output::Annotated || channels.len() == 1,
        "--raw prints one body: name the channel with --channel"
    );
    let Some(message) = evaluate(config, rule, &job, current, previous) else {
        crate::outln!("rule `{rule_name}` would send nothing for this snapshot");
        return Ok(ExitCode::SUCCESS);
    };
    for channel_config in channels {
        let channel = Channel::new(channel_config).map_err(anyhow::Error::msg)?;
        if output == Output::Annotated {
            crate::outln!(
                "=== {} ({}) ===",
                channel_config.name,
                channel_config.kind.type_name()
            );
        }
        crate::outln!("{}", channel.preview(&message));
    }
    Ok(ExitCode::SUCCESS)
}

/// The message `rule` sends for `current`, with `previous` judged first so
/// that an alert firing there resolves here (a resolution preview); an
/// alert firing in both is shown as its firing message.
fn evaluate(
    config: &Config,
    rule: &crate::config::RuleConfig,
    job: &JobConfig,
    current: (JobSnapshot, DateTime<Utc>),
    previous: Option<(JobSnapshot, DateTime<Utc>)>,
) -> Option<Message> {
    let mut rule = rule.clone();
    rule.for_ = std::time::Duration::ZERO;
    rule.after = 1;
    rule.resolve_after = 1;
    let rules = std::slice::from_ref(&rule);
    let info = JobInfo::for_job(job, config);
    let mut states = std::collections::BTreeMap::new();
    if let Some((before, at)) = &previous {
        let changes = crate::diff::diff(None, before);
        let outcome = Outcome::Polled {
            snapshot: before,
            previous: None,
            changes: &changes,
        };
        let earlier = rules::evaluate_job(rules, &info, &states, &outcome, &[], *at);
        states.extend(earlier.updates);
    }
    let (snapshot, at) = &current;
    let changes = crate::diff::diff(previous.as_ref().map(|(p, _)| p), snapshot);
    let outcome = Outcome::Polled {
        snapshot,
        previous: previous.as_ref().map(|(p, at)| (p, *at)),
        changes: &changes,
    };
    let mut events: Vec<_> = rules::evaluate_job(rules, &info, &states, &outcome, &[], *at)
        .notices
        .into_iter()
        .map(|n| n.event)
        .collect();
    if events.is_empty() && !states.is_empty() {
        let fresh = Default::default();
        events = rules::evaluate_job(rules, &info, &fresh, &outcome, &[], *at)
            .notices
            .into_iter()
            .map(|n| n.event)
            .collect();
    }
    (!events.is_empty()).then(|| Message::new(vec![Notification { job: info, events }]))
}
