//! `[messages]`: the language alerts are written in, the zone their times
//! (and every cron expression) are read in, and where a job's console link
//! points. Also the zone names `location` keys accept.

use super::super::raw::{RawMessages, Text};
use super::super::{DEFAULT_CONSOLE_URL, Locale, MessagesConfig};
use super::errors::Errors;

/// An IANA zone name (`Asia/Shanghai`, `UTC`), or the error people see.
pub(in crate::config) fn zone(
    value: &Option<Text>,
    what: &str,
    errors: &mut Errors,
) -> Option<chrono_tz::Tz> {
    let text = value.as_ref()?;
    match text.get_ref().parse::<chrono_tz::Tz>() {
        Ok(zone) => Some(zone),
        Err(_) => {
            errors.at(
                text.span(),
                format!(
                    "{what} `{}` is not an IANA time zone like Asia/Shanghai or UTC",
                    text.get_ref()
                ),
            );
            None
        }
    }
}

/// A console link template: an http(s) URL whose only placeholders are
/// `{region}` and `{job_id}`.
pub(super) fn console_url(value: &Text, what: &str, errors: &mut Errors) -> String {
    let template = value.get_ref().trim();
    let probe = template
        .replace("{region}", "cn-hangzhou")
        .replace("{job_id}", "dtsjob");
    let valid = reqwest::Url::parse(&probe)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    if valid.is_none() || probe.contains(['{', '}']) {
        errors.at(
            value.span(),
            format!(
                "{what} `{template}` must be an http(s) URL; its placeholders are {{region}} and {{job_id}}"
            ),
        );
    }
    template.to_string()
}

/// `zh-CN` or `en` (and their common spellings), or the error people see.
pub(in crate::config) fn locale(
    value: &Option<Text>,
    what: &str,
    errors: &mut Errors,
) -> Option<Locale> {
    let text = value.as_ref()?;
    match text.get_ref().as_str() {
        "en" | "en-US" | "en-GB" => Some(Locale::En),
        "zh-CN" | "zh_CN" | "zh" | "zh-Hans" => Some(Locale::ZhCn),
        other => {
            errors.at(text.span(), format!("{what} `{other}` is not zh-CN or en"));
            None
        }
    }
}

pub(super) fn build_messages(raw: &RawMessages, errors: &mut Errors) -> MessagesConfig {
    MessagesConfig {
        locale: locale(&raw.locale, "messages.locale", errors).unwrap_or_default(),
        timezone: zone(&raw.timezone, "messages.timezone", errors).unwrap_or(chrono_tz::UTC),
        console_url: raw
            .console_url
            .as_ref()
            .map(|u| console_url(u, "messages.console_url", errors))
            .unwrap_or_else(|| DEFAULT_CONSOLE_URL.to_string()),
    }
}
