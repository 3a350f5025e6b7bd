//! `dtswatch silence add|list|expire`: run-time silences in the database,
//! listed together with the config's. A running daemon honours a new
//! silence at its next poll.

use std::process::ExitCode;

use super::args::OutputFormat;
use super::args::SilenceAction;
use super::table::table;
use super::{EXIT_CONFIG, json, open_existing_store, open_store_read_only};
use crate::config::{self, Config};
use crate::rules::silence::Silence;
use crate::store;
use crate::text::zoned_time;

pub async fn silence(
    config: &Config,
    action: SilenceAction,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    if let SilenceAction::Add {
        jobs, rules, steps, ..
    } = &action
        && let Err(problem) = check_matchers(jobs, rules, steps)
    {
        eprintln!("{problem}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let store = match action {
        SilenceAction::List => open_store_read_only(config).await?,
        _ => open_existing_store(config).await?,
    };
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
            let starts = starts.unwrap_or(now);
            let ends = crate::scheduler::later(starts, duration);
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
            crate::outln!(
                "silence {id} added, until {}",
                zoned_time(ends, config.messages.timezone)
            );
        }
        SilenceAction::List => {
            let mut rows = Vec::new();
            let mut listed = Vec::new();
            for row in store::silences::current(&mut tx, now).await? {
                let silence = row.to_silence()?;
                listed.push(json::SilenceJson::of(
                    &silence,
                    "cli",
                    row.created_by.clone(),
                    now,
                ));
                rows.push(silence_row(
                    &silence,
                    now,
                    format!(
                        "{} ({})",
                        row.comment,
                        row.created_by.clone().unwrap_or_default()
                    ),
                    config.messages.timezone,
                ));
            }
            for (i, config_silence) in config.silences.iter().enumerate() {
                let silence = Silence::from_config(i, config_silence);
                listed.push(json::SilenceJson::of(&silence, "config", None, now));
                let comment = format!("{} (config)", silence.comment);
                rows.push(silence_row(
                    &silence,
                    now,
                    comment,
                    config.messages.timezone,
                ));
            }
            match format {
                OutputFormat::Json => json::print(&listed)?,
                OutputFormat::Text => {
                    crate::out!(
                        "{}",
                        table(
                            &["ID", "JOBS", "RULES", "STEPS", "WINDOW", "NOW", "COMMENT"],
                            &rows
                        )
                    );
                }
            }
        }
        SilenceAction::Expire { id } => {
            if store::silences::expire(&mut tx, id, now).await? {
                tx.commit().await?;
                crate::outln!("silence {id} expired");
            } else {
                eprintln!("no unexpired silence {id} (config silences end by editing the config)");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A usage error in `silence add`'s matchers, found before the database is touched.
fn check_matchers(jobs: &[String], rules: &[String], steps: &[String]) -> Result<(), String> {
    if jobs.is_empty() && rules.is_empty() && steps.is_empty() {
        return Err(
            "a silence needs at least one --job, --rule or --step (use --job '*' to silence everything)"
                .into(),
        );
    }
    for pattern in jobs.iter().chain(rules).chain(steps) {
        globset::Glob::new(pattern).map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
    }
    Ok(())
}

/// One row of `silence list`.
fn silence_row(
    silence: &Silence,
    now: chrono::DateTime<chrono::Utc>,
    comment: String,
    zone: chrono_tz::Tz,
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
                .map(|t| zoned_time(t, zone))
                .unwrap_or_else(|| "now".into()),
            zoned_time(*ends, zone)
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
        silence.phase(now).as_str().into(),
        comment,
    ]
}
