//! `[[discover]]`: the jobs `DescribeDtsJobs` lists, filtered by name glob,
//! tags and status, become watched jobs, merged with the configured ones by
//! id (the config wins). The API lists migration jobs unless asked otherwise
//! and pages at 30, so every job type in every region is asked for and every
//! page walked. Filtering and merging are pure; `discover` does the calls.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::aliyun::{AliyunClient, ApiFailure};
use crate::config::{DiscoverConfig, JobConfig};
use crate::dts::api::{self, DiscoveredJob};
use crate::poll::{Clients, Watched};
use crate::store::jobs::JobSource;

/// The jobs one `[[discover]]` entry found, by id.
pub type Found = BTreeMap<String, Arc<JobConfig>>;

/// True when a listed job passes the entry's name, tag and status filters.
pub fn matches(entry: &DiscoverConfig, job: &DiscoveredJob) -> bool {
    let name_ok = entry
        .name
        .as_ref()
        .is_none_or(|m| m.matches_any([job.name.as_deref().unwrap_or("")]));
    let tags_ok = entry.tags.iter().all(|(k, v)| job.tags.get(k) == Some(v));
    let status_ok = entry.status.is_empty()
        || job.status.as_ref().is_some_and(|s| {
            entry
                .status
                .iter()
                .any(|wanted| wanted.eq_ignore_ascii_case(s))
        });
    name_ok && tags_ok && status_ok
}

/// The watched-job config of a discovered job.
pub fn job_config(entry: &DiscoverConfig, job: &DiscoveredJob) -> JobConfig {
    JobConfig {
        id: job.id.clone(),
        region: job.region.clone(),
        account: entry.account.clone(),
        name: job.name.clone(),
        schedule: entry.schedule.clone(),
        zero_etl: None,
        resource_group_id: entry.resource_group_id.clone(),
    }
}

/// Every matching job of one entry, by id. Any failed call fails the whole
/// entry, so that a partial answer never retires jobs.
pub async fn discover(entry: &DiscoverConfig, client: &AliyunClient) -> Result<Found, ApiFailure> {
    let mut found = BTreeMap::new();
    for region in &entry.regions {
        for job_type in &entry.job_types {
            for job in api::describe_all(
                client,
                region,
                *job_type,
                entry.resource_group_id.as_deref(),
            )
            .await?
            {
                if matches(entry, &job) {
                    found.insert(job.id.clone(), Arc::new(job_config(entry, &job)));
                }
            }
        }
    }
    Ok(found)
}

/// Configured jobs first, then discovered ones the config does not name,
/// each once (the first entry to find a job keeps it).
pub fn merge<'a>(
    configured: &[JobConfig],
    found: impl IntoIterator<Item = &'a Found>,
) -> Vec<Watched> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut watched = Vec::with_capacity(configured.len());
    for job in configured {
        if seen.insert(&job.id) {
            watched.push(Watched {
                job: Arc::new(job.clone()),
                source: JobSource::Config,
            });
        }
    }
    for jobs in found {
        for (id, job) in jobs {
            if seen.insert(id) {
                watched.push(Watched {
                    job: job.clone(),
                    source: JobSource::Discovery,
                });
            }
        }
    }
    watched
}

/// The config's jobs plus one pass of every `[[discover]]` entry (for
/// `once`); an entry that fails is reported and skipped.
pub async fn watch_once(
    configured: &[JobConfig],
    entries: &[DiscoverConfig],
    clients: &Clients,
) -> Vec<Watched> {
    let mut found = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(client) = clients.get(&entry.account) else {
            continue;
        };
        match discover(entry, client).await {
            Ok(jobs) => found.push(jobs),
            Err(failure) => {
                tracing::warn!(entry = index + 1, error = %failure.error, "discovery failed")
            }
        }
    }
    merge(configured, &found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{JobType, Matcher};

    fn entry() -> DiscoverConfig {
        DiscoverConfig {
            account: "prod".into(),
            regions: vec!["cn-hangzhou".into()],
            job_types: JobType::ALL.to_vec(),
            name: Some(Matcher::new(&["orders-*".to_string()]).unwrap()),
            tags: [("team".to_string(), "orders".to_string())].into(),
            status: vec!["Synchronizing".into()],
            refresh: std::time::Duration::from_secs(600),
            schedule: None,
            resource_group_id: None,
        }
    }

    fn job(name: &str, team: &str, status: &str) -> DiscoveredJob {
        DiscoveredJob {
            id: format!("id-{name}"),
            name: Some(name.into()),
            status: Some(status.into()),
            job_type: JobType::Sync,
            region: "cn-hangzhou".into(),
            tags: [("team".to_string(), team.to_string())].into(),
            delay_ms: None,
            error_message: None,
            error_codes: Vec::new(),
        }
    }

    #[test]
    fn name_tags_and_status_all_filter() {
        let e = entry();
        assert!(matches(&e, &job("orders-sync", "orders", "Synchronizing")));
        assert!(matches(&e, &job("orders-sync", "orders", "synchronizing")));
        assert!(!matches(
            &e,
            &job("billing-sync", "orders", "Synchronizing")
        ));
        assert!(!matches(
            &e,
            &job("orders-sync", "billing", "Synchronizing")
        ));
        assert!(!matches(&e, &job("orders-sync", "orders", "Finished")));
        let open = DiscoverConfig {
            name: None,
            tags: Default::default(),
            status: vec![],
            ..entry()
        };
        assert!(matches(&open, &job("anything", "any", "Finished")));
        assert_eq!(
            job_config(&e, &job("orders-sync", "orders", "x")).account,
            "prod"
        );
    }

    #[test]
    fn merge_keeps_configured_jobs_first_and_each_job_once() {
        let configured = vec![job_config(&entry(), &job("a", "t", "s"))];
        let found: Found = ["id-a", "id-b"]
            .into_iter()
            .map(|id| {
                let mut discovered = job_config(&entry(), &job("x", "t", "s"));
                discovered.id = id.into();
                discovered.name = Some(format!("found {id}"));
                (id.to_string(), Arc::new(discovered))
            })
            .collect();
        let watched = merge(&configured, [&found, &found]);
        let listed: Vec<(&str, JobSource)> = watched
            .iter()
            .map(|w| (w.job.id.as_str(), w.source))
            .collect();
        assert_eq!(
            listed,
            [("id-a", JobSource::Config), ("id-b", JobSource::Discovery)]
        );
        assert_eq!(watched[0].job.name.as_deref(), Some("a"), "the config wins");
    }
}
