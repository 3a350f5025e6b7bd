//! `dtswatch outbox [--dead]` and `dtswatch outbox retry ID`: what waits to
//! be delivered (or was given up on), and queueing a row again.

use std::process::ExitCode;

use chrono::Utc;

use super::args::OutboxAction;
use super::args::OutputFormat;
use super::table::table;
use super::{json, open_existing_store, open_store_read_only};
use crate::config::Config;
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
    let store = match action {
        Some(_) => open_existing_store(config).await?,
        None => open_store_read_only(config).await?,
    };
    let zone = config.messages.timezone;
    let mut conn = store.pool().acquire().await?;
    if let Some(OutboxAction::Retry { id }) = action {
        return Ok(if outbox::retry(&mut conn, id, Utc::now()).await? {
            crate::outln!("notification {id} queued again; a running daemon sends it shortly");
            ExitCode::SUCCESS
        } else {
            eprintln!("no pending or dead notification {id}");
            ExitCode::FAILURE
        });
    }
    let status = if dead {
        OutboxStatus::Dead
    } else {
        OutboxStatus::Pending
    };
    let rows = outbox::list(&mut conn, status).await?;
    if format == OutputFormat::Json {
        let listed: Vec<json::OutboxJson> = rows.iter().map(Into::into).collect();
        json::print(&listed)?;
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
