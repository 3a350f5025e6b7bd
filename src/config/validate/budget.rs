//! What the schedules ask of each account's request budget. Every request is
//! taken from the account's `max_rps` in its region (DTS's own limit is
//! about 20 requests/s per account and region): a job polled on its own
//! costs one request per tick; the jobs of a swept region (`poll.mode`)
//! cost a sweep page per thirty jobs and type per tick plus their slow
//! refreshes. Schedules the budget cannot serve are an error — most jobs
//! would never be polled while `/healthz` said 200 — and a budget nearly
//! used up, or a `max_rps` above DTS's, is a warning.

use std::collections::BTreeMap;
use std::time::Duration;

use super::RawDocument;
use super::errors::Errors;
use crate::config::{AccountConfig, JobConfig, JobType, PollConfig, SWEEP_PAGE, format_duration};

/// DTS's documented flow control: requests per second per account and region.
const DTS_REQUESTS_PER_SECOND: f64 = 20.0;
/// Above this share of `max_rps`, retries and bursts will hit the limit.
const WARN_SHARE: f64 = 0.8;

/// Requests per second `jobs` of one account-region on the global
/// schedule need: one per job per tick, or when swept a page per thirty
/// jobs and job type per tick plus each job's refresh.
fn region_rate(poll: &PollConfig, jobs: usize, period: Duration, max_rps: f64) -> f64 {
    let per_tick = 1.0 / period.as_secs_f64();
    if poll.mode.sweeps(jobs, period, max_rps) {
        let pages = jobs.div_ceil(SWEEP_PAGE) + JobType::ALL.len() - 1;
        pages as f64 * per_tick + jobs as f64 / poll.refresh.as_secs_f64().max(1.0)
    } else {
        jobs as f64 * per_tick
    }
}

pub(super) fn check(
    doc: &RawDocument,
    poll: &PollConfig,
    accounts: &[AccountConfig],
    jobs: &[JobConfig],
    errors: &mut Errors,
) {
    let now = chrono::Utc::now();
    // Requests per second each account's configured jobs need, and the shortest period.
    let mut need: BTreeMap<&str, (f64, usize, Duration)> = BTreeMap::new();
    // Jobs on the global schedule, by account and region: maybe swept.
    let mut regions: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for job in jobs {
        let schedule = job.schedule.as_ref().unwrap_or(&poll.schedule);
        let Some(every) = schedule.period(now).filter(|p| !p.is_zero()) else {
            continue;
        };
        let entry = need
            .entry(job.account.as_str())
            .or_insert((0.0, 0, Duration::MAX));
        entry.1 += 1;
        entry.2 = entry.2.min(every);
        if job.schedule.is_some() {
            entry.0 += 1.0 / every.as_secs_f64();
        } else {
            *regions.entry((&job.account, &job.region)).or_default() += 1;
        }
    }
    if let Some(period) = poll.schedule.period(now).filter(|p| !p.is_zero()) {
        for ((account, _), count) in regions {
            let max_rps = accounts
                .iter()
                .find(|a| a.name == account)
                .map_or(poll.max_rps, |a| a.max_rps);
            let rate = region_rate(poll, count, period, max_rps);
            if let Some(entry) = need.get_mut(account) {
                entry.0 += rate;
            }
        }
    }
    for (span, raw) in &doc.accounts {
        let name = raw.name.get_ref().as_str();
        let Some(account) = accounts.iter().find(|a| a.name == name) else {
            continue;
        };
        let at = raw
            .max_rps
            .as_ref()
            .map(|v| v.span())
            .unwrap_or_else(|| span.clone());
        if account.max_rps > DTS_REQUESTS_PER_SECOND {
            errors.warn(
                at.clone(),
                format!(
                    "account `{name}`: max_rps = {} is above the {DTS_REQUESTS_PER_SECOND} requests/s DTS allows per account and region; DTS will throttle first",
                    account.max_rps
                ),
            );
        }
        let Some((rate, count, fastest)) = need.get(name) else {
            continue;
        };
        let rate_text = format!(
            "{count} job(s) polled as often as every {} need {rate:.1} requests/s",
            format_duration(*fastest)
        );
        if *rate > account.max_rps {
            errors.at(
                at,
                format!(
                    "account `{name}`: {rate_text}, more than its max_rps of {}; most of them would never be polled. Poll less often (poll.schedule or the jobs' schedule) or raise max_rps",
                    account.max_rps
                ),
            );
        } else if *rate > account.max_rps * WARN_SHARE {
            errors.warn(
                at,
                format!(
                    "account `{name}`: {rate_text}, over {:.0}% of its max_rps of {}; retries and discovered jobs will queue",
                    WARN_SHARE * 100.0,
                    account.max_rps
                ),
            );
        }
    }
}
