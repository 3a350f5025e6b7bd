//! `[[accounts]]`, `[[jobs]]` and `[[discover]]`: whose credentials, which
//! jobs, and how to find more of them. Jobs and discovery entries name an
//! account, which must exist (or be the only one).

use std::ops::Range;
use std::time::Duration;

use super::super::raw::{RawAccount, RawDiscover, RawJob, Text};
use super::super::{
    AccountConfig, CredentialsConfig, DiscoverConfig, JobConfig, JobType, Secret, SignatureVersion,
};
use super::errors::{Errors, check_unique, known};

/// Accepts `http://host:port`, `https://host` or a bare host (https assumed).
fn endpoint(text: &Text, owner: &str, errors: &mut Errors) -> Option<String> {
    let value = text.get_ref().trim_end_matches('/');
    let candidate = if value.contains("://") {
        value.to_string()
    } else {
        format!("https://{value}")
    };
    match reqwest::Url::parse(&candidate) {
        Ok(url)
            if (url.scheme() == "http" || url.scheme() == "https") && url.host_str().is_some() =>
        {
            Some(candidate)
        }
        _ => {
            errors.at(
                text.span(),
                format!("{owner}: `{value}` is not a host or http(s) URL"),
            );
            None
        }
    }
}

pub(super) fn build_accounts(
    raw: &[(Range<usize>, RawAccount)],
    default_rps: f64,
    errors: &mut Errors,
) -> Vec<AccountConfig> {
    check_unique(
        raw.iter()
            .map(|(_, a)| (a.name.get_ref().as_str(), a.name.span())),
        "account",
        errors,
    );
    raw.iter()
        .map(|(_, a)| {
            let name = a.name.get_ref().clone();
            let signature = match a.signature.as_ref().map(|s| (s.get_ref().to_ascii_lowercase(), s.span())) {
                None => SignatureVersion::V1,
                Some((s, _)) if s == "v1" => SignatureVersion::V1,
                Some((s, _)) if s == "v3" => SignatureVersion::V3,
                Some((s, span)) if s == "v2" => {
                    errors.at(span, format!("account `{name}`: signature `v2` is the SDK's name for HMAC-SHA1; write `v1` (or `v3` for ACS3-HMAC-SHA256)"));
                    SignatureVersion::V1
                }
                Some((s, span)) => {
                    errors.at(span, format!("account `{name}`: unknown signature `{s}`; use v1 (HMAC-SHA1) or v3 (ACS3-HMAC-SHA256)"));
                    SignatureVersion::V1
                }
            };
            let credentials = match (&a.access_key_id, &a.access_key_secret) {
                (Some(id), Some(secret)) => {
                    for (field, value) in [("profile", &a.profile), ("ecs_role", &a.ecs_role), ("metadata_url", &a.metadata_url)] {
                        if let Some(v) = value {
                            errors.at(v.span(), format!("account `{name}`: `{field}` is only used when no access_key_id is given"));
                        }
                    }
                    if id.get_ref().is_empty() {
                        errors.at(id.span(), format!("account `{name}`: access_key_id is empty"));
                    }
                    if secret.get_ref().is_empty() {
                        errors.at(secret.span(), format!("account `{name}`: access_key_secret is empty"));
                    }
                    CredentialsConfig::Static {
                        access_key_id: id.get_ref().clone(),
                        access_key_secret: Secret::new(secret.get_ref().clone()),
                        security_token: a
                            .security_token
                            .as_ref()
                            .filter(|t| !t.get_ref().is_empty())
                            .map(|t| Secret::new(t.get_ref().clone())),
                    }
                }
                (Some(id), None) => {
                    errors.at(id.span(), format!("account `{name}`: access_key_id needs access_key_secret"));
                    CredentialsConfig::Chain { profile: None, ecs_role: None, metadata_url: None }
                }
                (None, Some(secret)) => {
                    errors.at(secret.span(), format!("account `{name}`: access_key_secret needs access_key_id"));
                    CredentialsConfig::Chain { profile: None, ecs_role: None, metadata_url: None }
                }
                (None, None) => {
                    if let Some(token) = &a.security_token {
                        errors.at(token.span(), format!("account `{name}`: security_token needs access_key_id and access_key_secret"));
                    }
                    let metadata_url = a.metadata_url.as_ref().and_then(|u| endpoint(u, &format!("account `{name}`: metadata_url"), errors));
                    CredentialsConfig::Chain {
                        profile: a.profile.as_ref().map(|p| p.get_ref().clone()),
                        ecs_role: a.ecs_role.as_ref().map(|r| r.get_ref().clone()),
                        metadata_url,
                    }
                }
            };
            let max_rps = match &a.max_rps {
                Some(v) if *v.get_ref() > 0.0 => *v.get_ref(),
                Some(v) => {
                    errors.at(v.span(), format!("account `{name}`: max_rps must be greater than zero"));
                    default_rps
                }
                None => default_rps,
            };
            AccountConfig {
                endpoint: a
                    .endpoint
                    .as_ref()
                    .filter(|e| !e.get_ref().trim().is_empty())
                    .and_then(|e| endpoint(e, &format!("account `{name}`: endpoint"), errors)),
                console_url: a
                    .console_url
                    .as_ref()
                    .map(|u| super::messages::console_url(u, &format!("account `{name}`: console_url"), errors)),
                name,
                credentials,
                signature,
                max_rps,
            }
        })
        .collect()
}

fn resolve_account(
    account: &Option<Text>,
    names: &[String],
    owner: &str,
    span: &Range<usize>,
    errors: &mut Errors,
) -> String {
    match account {
        Some(a) => {
            if !names.contains(a.get_ref()) {
                errors.at(
                    a.span(),
                    format!("{owner}: unknown account `{}`{}", a.get_ref(), known(names)),
                );
            }
            a.get_ref().clone()
        }
        None if names.len() == 1 => names[0].clone(),
        None if names.is_empty() => {
            errors.at(
                span.clone(),
                format!("{owner}: no [[accounts]] entry to poll it with"),
            );
            String::new()
        }
        None => {
            errors.at(
                span.clone(),
                format!("{owner}: several accounts exist; say which with `account = \"…\"`"),
            );
            String::new()
        }
    }
}

pub(super) fn build_jobs(
    raw: &[(Range<usize>, RawJob)],
    accounts: &[String],
    zone: chrono_tz::Tz,
    errors: &mut Errors,
) -> Vec<JobConfig> {
    check_unique(
        raw.iter()
            .map(|(_, j)| (j.id.get_ref().as_str(), j.id.span())),
        "job id",
        errors,
    );
    raw.iter()
        .map(|(span, j)| {
            let owner = format!("job `{}`", j.id.get_ref());
            let region = match &j.region {
                Some(r) if !r.get_ref().is_empty() => r.get_ref().clone(),
                Some(r) => {
                    errors.at(r.span(), format!("{owner}: region must not be empty"));
                    String::new()
                }
                None => {
                    errors.at(
                        span.clone(),
                        format!("{owner}: missing `region` (e.g. region = \"cn-hangzhou\")"),
                    );
                    String::new()
                }
            };
            JobConfig {
                id: j.id.get_ref().clone(),
                region,
                account: resolve_account(&j.account, accounts, &owner, span, errors),
                name: j.name.as_ref().map(|n| n.get_ref().clone()),
                schedule: errors.cron(&j.schedule, &format!("{owner}: schedule"), zone),
                zero_etl: j.zero_etl,
                resource_group_id: j.resource_group_id.as_ref().map(|r| r.get_ref().clone()),
            }
        })
        .collect()
}

pub(super) fn build_discover(
    raw: &[(Range<usize>, RawDiscover)],
    accounts: &[String],
    zone: chrono_tz::Tz,
    errors: &mut Errors,
) -> Vec<DiscoverConfig> {
    raw.iter()
        .enumerate()
        .map(|(i, (span, d))| {
            let owner = format!("discover[{}]", i + 1);
            if d.regions.get_ref().is_empty() {
                errors.at(
                    d.regions.span(),
                    format!("{owner}: regions must list at least one region"),
                );
            }
            let job_types = match &d.job_types {
                None => JobType::ALL.to_vec(),
                Some(types) => types
                    .iter()
                    .filter_map(|t| match t.get_ref().parse::<JobType>() {
                        Ok(jt) => Some(jt),
                        Err(e) => {
                            errors.at(t.span(), format!("{owner}: {e}"));
                            None
                        }
                    })
                    .collect(),
            };
            let name = d
                .name
                .as_ref()
                .and_then(|n| errors.matcher(&Some(vec![n.clone()]), &format!("{owner}: name")));
            DiscoverConfig {
                account: resolve_account(&d.account, accounts, &owner, span, errors),
                regions: d
                    .regions
                    .get_ref()
                    .iter()
                    .map(|r| r.get_ref().clone())
                    .collect(),
                job_types,
                name,
                tags: d
                    .tags
                    .as_ref()
                    .map(|t| {
                        t.iter()
                            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                status: d
                    .status
                    .as_ref()
                    .map(|s| s.iter().map(|x| x.get_ref().clone()).collect())
                    .unwrap_or_default(),
                refresh: errors.positive_duration(
                    &d.refresh,
                    Duration::from_secs(600),
                    &format!("{owner}: refresh"),
                ),
                schedule: errors.cron(&d.schedule, &format!("{owner}: schedule"), zone),
                resource_group_id: d.resource_group_id.as_ref().map(|r| r.get_ref().clone()),
            }
        })
        .collect()
}
