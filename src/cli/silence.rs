//! `dtswatch silence add|list|expire`: run-time silences in the database,
//! listed together with the config's. A running daemon honours a new
//! silence at its next poll.

use std::process::ExitCode;

use super::args::OutputFormat;
use super::args::SilenceAction;
use super::table::table;
use super::{EXIT_CONFIG, open_existing_store, open_store_read_only};
use crate::actions::{self, ActionError, Actor};
use crate::config::{self, Config};
use crate::report::{self, json};
use crate::store;
use crate::text::zoned_time;

pub async fn silence(
    config: &Config,
    action: SilenceAction,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    if let SilenceAction::Add {
        jobs,
        rules,
        steps,
        duration,
        starts,
        comment,
        author,
    } = action
    {
        let starts = starts.unwrap_or(now);
        let silence = store::silences::NewSilence {
            jobs,
            rules,
            steps,
            starts,
            ends: crate::scheduler::later(starts, duration),
            comment,
            created_by: author,
        };
        if let Err(problem) = actions::check_silence(&silence) {
            eprintln!("{problem}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
        let store = open_existing_store(config).await?;
        let id = actions::add_silence(&store, &Actor::cli(), &silence, now).await?;
        crate::outln!(
            "silence {id} added, until {}",
            zoned_time(silence.ends, config.messages.timezone)
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let SilenceAction::Expire { id } = action {
        let store = open_existing_store(config).await?;
        return Ok(
            match actions::expire_silence(&store, &Actor::cli(), id, now).await {
                Ok(()) => {
                    crate::outln!("silence {id} expired");
                    ExitCode::SUCCESS
                }
                Err(ActionError::NotFound(problem)) => {
                    eprintln!("{problem}");
                    ExitCode::FAILURE
                }
                Err(e) => return Err(e.into()),
            },
        );
    }
    let store = open_store_read_only(config).await?;
    let mut conn = store.pool().acquire().await?;
    let listed = report::silences::list(&mut conn, &config.silences, now).await?;
    match format {
        OutputFormat::Json => super::print(&listed)?,
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|s| silence_row(s, config.messages.timezone))
                .collect();
            crate::out!(
                "{}",
                table(
                    &["ID", "JOBS", "RULES", "STEPS", "WINDOW", "NOW", "COMMENT"],
                    &rows
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `silence list`.
fn silence_row(silence: &json::SilenceJson, zone: chrono_tz::Tz) -> Vec<String> {
    let list = |patterns: &[String]| {
        if patterns.is_empty() {
            "*".to_string()
        } else {
            patterns.join(",")
        }
    };
    let window = match (&silence.cron, silence.duration_seconds) {
        (Some(cron), Some(seconds)) => format!(
            "cron `{cron}` for {}",
            config::format_duration(std::time::Duration::from_secs(seconds))
        ),
        _ => format!(
            "{} → {}",
            silence
                .starts
                .map(|t| zoned_time(t, zone))
                .unwrap_or_else(|| "now".into()),
            silence
                .ends
                .map(|t| zoned_time(t, zone))
                .unwrap_or_default()
        ),
    };
    let comment = match (silence.source, &silence.author) {
        ("config", _) => format!("{} (config)", silence.comment),
        (_, author) => format!(
            "{} ({})",
            silence.comment,
            author.clone().unwrap_or_default()
        ),
    };
    vec![
        silence.id.clone(),
        list(&silence.jobs),
        list(&silence.rules),
        list(&silence.steps),
        window,
        silence.state.into(),
        comment,
    ]
}
