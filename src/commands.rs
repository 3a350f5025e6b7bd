//! The operator commands that read or adjust state without running the
//! daemon: `history`, `silence`, `outbox`, `render`, `test-notify`. Each
//! returns the process exit code.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;

use crate::app::{EXIT_CONFIG, open_store};
use crate::cli::{OutboxAction, OutputFormat, SilenceAction};
use crate::config::{self, Config};
use crate::dts::JobSnapshot;
use crate::notify::{self, Channel, Message};
use crate::output;
use crate::report;
use crate::rules::{self, JobInfo, Notification, Outcome};
use crate::store;

pub async fn history(
    config: &Config,
    job: &str,
    since: std::time::Duration,
    format: OutputFormat,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let mut conn = store.pool().acquire().await?;
    let Some(row) = store::jobs::find(&mut conn, job).await? else {
        eprintln!("no job `{job}` in the database (use its DTS job id or name)");
        return Ok(ExitCode::FAILURE);
    };
    drop(conn);
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(since).unwrap_or_else(|_| chrono::Duration::days(36500));
    let entries = report::timeline(&store, &row, since, all).await?;
    match format {
        OutputFormat::Text => print!("{}", report::render_timeline(&row, &entries)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn silence(config: &Config, action: SilenceAction) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let now = chrono::Utc::now();
    let mut tx = store.begin().await?;
    match action {
        SilenceAction::Add {
            jobs,
            rules,
            steps,
            duration,
            starts,
            comment,
            author,
        } => {
            if jobs.is_empty() && rules.is_empty() && steps.is_empty() {
                eprintln!(
                    "a silence needs at least one --job, --rule or --step (use --job '*' to silence everything)"
                );
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
            for pattern in jobs.iter().chain(&rules).chain(&steps) {
                if let Err(e) = globset::Glob::new(pattern) {
                    eprintln!("bad glob `{pattern}`: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            }
            let starts = starts.unwrap_or(now);
            let ends =
                starts + chrono::Duration::from_std(duration).context("duration too long")?;
            let silence = store::silences::NewSilence {
                jobs,
                rules,
                steps,
                starts,
                ends,
                comment,
                created_by: author,
            };
            let id = store::silences::add(&mut tx, &silence, now).await?;
            tx.commit().await?;
            println!("silence {id} added, until {}", report::local_time(ends));
        }
        SilenceAction::List => {
            let mut rows = Vec::new();
            for row in store::silences::current(&mut tx, now).await? {
                let silence = row.to_silence()?;
                rows.push(silence_row(
                    &silence,
                    now,
                    format!(
                        "{} ({})",
                        row.comment,
                        row.created_by.clone().unwrap_or_default()
                    ),
                ));
            }
            for (i, config_silence) in config.silences.iter().enumerate() {
                let silence = crate::rules::silence::Silence::from_config(i, config_silence);
                let comment = format!("{} (config)", silence.comment);
                rows.push(silence_row(&silence, now, comment));
            }
            print!(
                "{}",
                output::table(
                    &["ID", "JOBS", "RULES", "STEPS", "WINDOW", "NOW", "COMMENT"],
                    &rows
                )
            );
        }
        SilenceAction::Expire { id } => {
            if store::silences::expire(&mut tx, id, now).await? {
                tx.commit().await?;
                println!("silence {id} expired");
            } else {
                eprintln!("no unexpired silence {id} (config silences end by editing the config)");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `silence list`.
fn silence_row(
    silence: &crate::rules::silence::Silence,
    now: chrono::DateTime<chrono::Utc>,
    comment: String,
) -> Vec<String> {
    let list = |m: &Option<config::Matcher>| {
        m.as_ref()
            .map(|m| m.patterns.join(","))
            .unwrap_or_else(|| "*".into())
    };
    let window = match &silence.window {
        config::SilenceWindow::Fixed { starts, ends } => format!(
            "{} → {}",
            starts
                .map(report::local_time)
                .unwrap_or_else(|| "now".into()),
            report::local_time(*ends)
        ),
        config::SilenceWindow::Recurring { cron, duration } => {
            format!(
                "cron `{}` for {}",
                cron.source,
                config::format_duration(*duration)
            )
        }
    };
    vec![
        silence.id.clone(),
        list(&silence.jobs),
        list(&silence.rules),
        list(&silence.steps),
        window,
        if silence.is_active(now) {
            "active".into()
        } else {
            "waiting".into()
        },
        comment,
    ]
}

pub async fn outbox(
    config: &Config,
    dead: bool,
    action: Option<OutboxAction>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let mut conn = store.pool().acquire().await?;
    if let Some(OutboxAction::Retry { id }) = action {
        return Ok(if store::outbox::retry(&mut conn, id, Utc::now()).await? {
            println!("notification {id} queued again; a running daemon sends it shortly");
            ExitCode::SUCCESS
        } else {
            eprintln!("no pending or dead notification {id}");
            ExitCode::FAILURE
        });
    }
    let rows = store::outbox::list(&mut conn, dead).await?;
    if rows.is_empty() {
        println!("no {} notifications", if dead { "dead" } else { "pending" });
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let events = serde_json::from_str::<Notification>(&row.payload)
                .map(|n| {
                    let first = n
                        .events
                        .first()
                        .map(|e| format!("{} {}", e.status.as_str(), e.rule))
                        .unwrap_or_default();
                    format!(
                        "{} · {first}{}",
                        n.job.name,
                        if n.events.len() > 1 {
                            format!(" (+{})", n.events.len() - 1)
                        } else {
                            String::new()
                        }
                    )
                })
                .unwrap_or_else(|_| "(unreadable)".into());
            vec![
                row.id.to_string(),
                row.channel.clone(),
                report::local_time(store::from_millis(row.created_at)),
                row.attempts.to_string(),
                if dead {
                    row.dead_at
                        .map(|t| report::local_time(store::from_millis(t)))
                        .unwrap_or_default()
                } else {
                    report::local_time(store::from_millis(row.next_attempt_at))
                },
                output::ellipsize(&events, 60),
                output::ellipsize(row.last_error.as_deref().unwrap_or(""), 80),
            ]
        })
        .collect();
    let when = if dead { "DEAD SINCE" } else { "NEXT ATTEMPT" };
    print!(
        "{}",
        output::table(
            &[
                "ID",
                "CHANNEL",
                "CREATED",
                "ATTEMPTS",
                when,
                "NOTIFICATION",
                "LAST ERROR"
            ],
            &table
        )
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn test_notify(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let Some(channel_config) = config.channels.get(name) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        eprintln!("no channel `{name}` (known: {})", known.join(", "));
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let channel = Channel::new(channel_config).map_err(anyhow::Error::msg)?;
    match channel.send(&notify::sample_message(Utc::now())).await {
        Ok(delivered) => {
            println!(
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
        println!("rule `{rule_name}` would send nothing for this snapshot");
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
        println!("=== {name} ({}) ===", channel_config.kind.type_name());
        println!("{}", channel.preview(&message));
    }
    Ok(ExitCode::SUCCESS)
}
