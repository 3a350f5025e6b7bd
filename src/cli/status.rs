//! `dtswatch status`: every job's last poll and current steps, the alerts
//! pending or firing, and the outbox per channel. Read-only; works while the
//! daemon runs.

use std::process::ExitCode;

use sqlx::AnyConnection;

use super::args::OutputFormat;
use super::open_store_read_only;
use super::table::{SNAPSHOT_HEADER, snapshot_rows, table};
use crate::config::{Config, HaConfig, SilenceConfig};
use crate::report;
use crate::store::snapshots::SnapshotCache;
use crate::store::{Store, StoreError, from_millis, jobs, outbox, polls};
use crate::text::{ellipsize, zoned_time};

/// `dtswatch status`.
pub async fn status(config: &Config, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let store = open_store_read_only(config).await?;
    match format {
        OutputFormat::Text => crate::out!(
            "{}",
            report(
                &store,
                &config.silences,
                config.messages.timezone,
                &config.ha
            )
            .await?
        ),
        OutputFormat::Json => {
            super::print(
                &crate::report::status::status(
                    &store,
                    &config.silences,
                    &config.ha,
                    chrono::Utc::now(),
                )
                .await?,
            )?;
            true
        }
    };
    Ok(ExitCode::SUCCESS)
}

/// `dtswatch status`: every job's last poll and current steps; alerts
/// silenced by the database's silences (and `configured`) are marked so.
pub async fn report(
    store: &Store,
    configured: &[SilenceConfig],
    zone: chrono_tz::Tz,
    ha: &HaConfig,
) -> Result<String, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let mut out = match report::status::ha(&mut conn, ha).await? {
        Some(ha) => ha_text(&ha, zone),
        None => String::new(),
    };
    let all = jobs::all(&mut conn).await?;
    if all.is_empty() {
        out.push_str("no jobs recorded yet: run `dtswatch once` or `dtswatch run` first\n");
        return Ok(out);
    }
    let mut summary = Vec::new();
    let mut steps = Vec::new();
    let mut cache = SnapshotCache::default();
    for job in &all {
        let last = polls::last(&mut conn, job.id).await?;
        let last_ok = polls::last_ok(&mut conn, job.id).await?;
        let (when, outcome) = match &last {
            Some(p) if p.is_ok() => (zoned_time(from_millis(p.at), zone), "ok".to_string()),
            Some(p) => (
                zoned_time(from_millis(p.at), zone),
                format!(
                    "{} ({})",
                    p.outcome,
                    p.error_code.clone().unwrap_or_default()
                ),
            ),
            None => ("never".into(), "-".into()),
        };
        summary.push(vec![
            job.display_name().to_string(),
            job.dts_job_id.clone(),
            job.region.clone(),
            when,
            outcome,
            if job.retired_at.is_some() {
                "retired".into()
            } else {
                job.source.clone()
            },
        ]);
        if job.retired_at.is_some() {
            continue;
        }
        if let Some(ok) = last_ok
            && let Some(snapshot_id) = ok.snapshot
        {
            let volatile = polls::volatile_at(&mut conn, job.id, ok.id)
                .await?
                .unwrap_or_default();
            let snapshot = cache.load(&mut conn, snapshot_id, &volatile).await?;
            steps.extend(snapshot_rows(&job.to_config(), &snapshot));
        }
    }
    out.push_str(&table(
        &["JOB", "ID", "REGION", "LAST POLL", "OUTCOME", "SOURCE"],
        &summary,
    ));
    if !steps.is_empty() {
        out.push('\n');
        out.push_str(&table(&SNAPSHOT_HEADER, &steps));
    }
    out.push('\n');
    out.push_str(&alerts_table(&mut conn, configured, zone).await?);
    out.push('\n');
    out.push_str(&outbox_table(&mut conn).await?);
    Ok(out)
}

/// Who leads and who stands by.
fn ha_text(ha: &report::status::HaJson, zone: chrono_tz::Tz) -> String {
    let mut out = match (&ha.leader, ha.lease_left_ms) {
        (Some(leader), Some(left)) => format!(
            "leader: {leader} (term {}, lease renewed, {:.1} s left)\n",
            ha.term,
            left as f64 / 1000.0
        ),
        _ if ha.term == 0 => "leader: none yet — no instance has led this database\n".to_string(),
        _ => format!(
            "leader: none — the lease of term {} lapsed; a standby takes over within ha.failover\n",
            ha.term
        ),
    };
    let rows: Vec<Vec<String>> = ha
        .instances
        .iter()
        .map(|i| {
            vec![
                i.instance.clone(),
                i.role.to_uppercase(),
                zoned_time(i.started_at, zone),
                format!("{:.1} s ago", i.seen_ms_ago as f64 / 1000.0),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("no instance seen lately\n");
    } else {
        out.push_str(&table(&["INSTANCE", "ROLE", "STARTED", "SEEN"], &rows));
    }
    out.push('\n');
    out
}

/// Pending and firing alerts, with the silence or rule holding one back.
async fn alerts_table(
    conn: &mut AnyConnection,
    configured: &[SilenceConfig],
    zone: chrono_tz::Tz,
) -> Result<String, StoreError> {
    let active = report::alerts::list(conn, configured, chrono::Utc::now()).await?;
    if active.is_empty() {
        return Ok("no alerts pending or firing\n".into());
    }
    let rows: Vec<Vec<String>> = active
        .iter()
        .map(|a| {
            vec![
                match &a.suppressed_by {
                    Some(by) => format!("{} ({by})", a.state.to_uppercase()),
                    None => a.state.to_uppercase(),
                },
                a.severity.clone(),
                a.rule.clone(),
                a.job_name.clone().unwrap_or_else(|| a.job_id.clone()),
                if a.path.is_empty() {
                    "(job)".into()
                } else {
                    a.path.clone()
                },
                a.since.map(|t| zoned_time(t, zone)).unwrap_or_default(),
            ]
        })
        .collect();
    Ok(table(
        &["ALERT", "SEVERITY", "RULE", "JOB", "STEP", "SINCE"],
        &rows,
    ))
}

/// Channels with notifications waiting or dead, and their last error.
async fn outbox_table(conn: &mut AnyConnection) -> Result<String, StoreError> {
    let channels = outbox::counts(conn).await?;
    if channels.is_empty() {
        return Ok("outbox empty: every notification delivered\n".into());
    }
    let rows: Vec<Vec<String>> = channels
        .iter()
        .map(|c| {
            vec![
                c.channel.clone(),
                c.pending.to_string(),
                c.dead.to_string(),
                ellipsize(c.last_error.as_deref().unwrap_or(""), 90),
            ]
        })
        .collect();
    Ok(table(&["CHANNEL", "PENDING", "DEAD", "LAST ERROR"], &rows))
}
