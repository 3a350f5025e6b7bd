//! `dtswatch outbox [--dead]` and `dtswatch outbox retry ID`: what waits to
//! be delivered (or was given up on), and queueing a row again.

use std::process::ExitCode;

use chrono::Utc;

use super::args::OutboxAction;
use super::args::OutputFormat;
use super::table::table;
use super::{open_existing_store, open_store_read_only};
use crate::actions::{self, ActionError, Actor};
use crate::config::Config;
use crate::report::json;
use crate::rules::Notification;
use crate::store::from_millis;
use crate::store::outbox::{self, OutboxStatus};
use crate::text::{ellipsize, zoned_time};

pub async fn outbox(
    config: &Config,
    dead: bool,
    action: Option<OutboxAction>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    if let Some(OutboxAction::Retry { id }) = action {
        let store = open_existing_store(config).await?;
        return Ok(
            match actions::retry_notification(&store, &Actor::cli(), id, Utc::now()).await {
                Ok(()) => {
                    crate::outln!(
                        "notification {id} queued again; a running daemon sends it shortly"
                    );
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
    let zone = config.messages.timezone;
    let mut conn = store.pool().acquire().await?;
    let status = if dead {
        OutboxStatus::Dead
    } else {
        OutboxStatus::Pending
    };
    let rows = outbox::list(&mut conn, status).await?;
    if format == OutputFormat::Json {
        let listed: Vec<json::OutboxJson> = rows.iter().map(Into::into).collect();
        super::print(&listed)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        crate::outln!("no {} notifications", if dead { "dead" } else { "pending" });
        return Ok(ExitCode::SUCCESS);
    }
    let lines: Vec<Vec<String>> = rows
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
                zoned_time(from_millis(row.created_at), zone),
                row.attempts.to_string(),
                if dead {
                    row.dead_at
                        .map(|t| zoned_time(from_millis(t), zone))
                        .unwrap_or_default()
                } else {
                    zoned_time(from_millis(row.next_attempt_at), zone)
                },
                ellipsize(&events, 60),
                ellipsize(row.last_error.as_deref().unwrap_or(""), 80),
            ]
        })
        .collect();
    let when = if dead { "DEAD SINCE" } else { "NEXT ATTEMPT" };
    crate::out!(
        "{}",
        table(
            &[
                "ID",
                "CHANNEL",
                "CREATED",
                "ATTEMPTS",
                when,
                "NOTIFICATION",
                "LAST ERROR"
            ],
            &lines
        )
    );
    Ok(ExitCode::SUCCESS)
}
