//! `dtswatch history JOB`: the timeline of one job — changes between
//! consecutive successful polls, poll failures and recoveries, and alert
//! notifications — as text or JSON. Read-only; works while the daemon runs
//! (WAL lets readers and the writer coexist).

use std::process::ExitCode;

use chrono::Utc;

use super::args::OutputFormat;
use super::open_store_read_only;
use crate::config::Config;
use crate::notify::escape::terminal;
use crate::report::history::{TimelineEntry, timeline};
use crate::store::jobs;
use crate::text::zoned_time;

/// `dtswatch history`.
pub async fn history(
    config: &Config,
    job: &str,
    since: std::time::Duration,
    format: OutputFormat,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let store = open_store_read_only(config).await?;
    let row = {
        let mut conn = store.pool().acquire().await?;
        jobs::find(&mut conn, job).await?
    };
    let Some(row) = row else {
        eprintln!("no job `{job}` in the database (use its DTS job id or name)");
        return Ok(ExitCode::FAILURE);
    };
    let since = crate::scheduler::earlier(Utc::now(), since);
    let entries = timeline(&store, &row, since, all).await?;
    match format {
        OutputFormat::Text => crate::out!(
            "{}",
            render_timeline(&row, &entries, config.messages.timezone)
        ),
        OutputFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&entries)?),
    };
    Ok(ExitCode::SUCCESS)
}

/// `dtswatch history` as text.
pub fn render_timeline(
    job: &jobs::JobRow,
    entries: &[TimelineEntry],
    zone: chrono_tz::Tz,
) -> String {
    let mut out = format!(
        "{} ({}, {})\n",
        terminal(job.display_name()),
        terminal(&job.dts_job_id),
        terminal(&job.region)
    );
    if entries.is_empty() {
        out.push_str("  nothing happened in this window\n");
    }
    for entry in entries {
        out.push_str(&format!(
            "  {}  {}\n",
            zoned_time(entry.at, zone),
            terminal(&entry.text)
        ));
    }
    out
}
