//! The error collector validation writes to, and the typed readers built on
//! it: each reads one value (duration, count, cron, glob, regex, URL),
//! reports what is wrong with it at its span, and returns a default so that
//! validation carries on and finds the next problem too.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::super::raw::Text;
use super::super::{ConfigError, CronSchedule, Matcher, Secret, parse_duration};

/// Collects errors while validation carries on with defaults.
#[derive(Default)]
pub(in crate::config) struct Errors {
    /// Mistakes: the config is refused.
    pub(in crate::config) errors: Vec<ConfigError>,
    /// What works but will probably not do what was meant: printed, accepted.
    pub(in crate::config) warnings: Vec<ConfigError>,
}

impl Errors {
    pub(in crate::config) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            span: Some(span),
            message: message.into(),
        });
    }

    pub(in crate::config) fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            span: Some(span),
            message: message.into(),
        });
    }

    pub(in crate::config) fn toml(&mut self, context: &str, error: toml::de::Error) {
        let message = error
            .message()
            .trim()
            .replace("struct Raw", "a table for ")
            .replace("enum RawInstant", "a date-time");
        let message = if context.is_empty() {
            message
        } else {
            format!("{context}: {message}")
        };
        self.errors.push(ConfigError {
            span: error.span(),
            message,
        });
    }

    pub(in crate::config) fn duration(
        &mut self,
        value: &Option<Text>,
        default: Duration,
        what: &str,
    ) -> Duration {
        match value {
            None => default,
            Some(text) => match parse_duration(text.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    self.at(text.span(), format!("{what}: {e}"));
                    default
                }
            },
        }
    }

    pub(in crate::config) fn positive_duration(
        &mut self,
        value: &Option<Text>,
        default: Duration,
        what: &str,
    ) -> Duration {
        let d = self.duration(value, default, what);
        if d.is_zero() {
            if let Some(text) = value {
                self.at(text.span(), format!("{what} must be longer than zero"));
            }
            return default;
        }
        d
    }

    /// A whole number in `range` (its end included).
    pub(in crate::config) fn count(
        &mut self,
        value: &Option<Spanned<i64>>,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
        what: &str,
    ) -> u32 {
        match value {
            None => default,
            Some(v) => match u32::try_from(*v.get_ref()) {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    self.at(
                        v.span(),
                        format!(
                            "{what} must be between {} and {}, not {}",
                            range.start(),
                            range.end(),
                            v.get_ref()
                        ),
                    );
                    default
                }
            },
        }
    }

    pub(in crate::config) fn size(
        &mut self,
        value: &Option<Text>,
        default: usize,
        what: &str,
    ) -> usize {
        const BOUNDS: std::ops::RangeInclusive<u64> = 1_000..=256 * 1024 * 1024;
        let Some(text) = value else {
            return default;
        };
        match crate::config::parse_size(text.get_ref()) {
            Ok(size) if BOUNDS.contains(&size) => usize::try_from(size).unwrap_or(default),
            Ok(_) => {
                self.at(
                    text.span(),
                    format!("{what} must be between 1KB and 256MiB"),
                );
                default
            }
            Err(e) => {
                self.at(text.span(), format!("{what}: {e}"));
                default
            }
        }
    }

    pub(in crate::config) fn cron(
        &mut self,
        value: &Option<Text>,
        what: &str,
        zone: chrono_tz::Tz,
    ) -> Option<CronSchedule> {
        let text = value.as_ref()?;
        match CronSchedule::parse(text.get_ref()).map(|c| c.in_zone(zone)) {
            Ok(c) if c.next_after(chrono::Utc::now()).is_none() => {
                self.at(
                    text.span(),
                    format!("{what}: `{}` never fires again", text.get_ref()),
                );
                None
            }
            Ok(c) => Some(c),
            Err(e) => {
                self.at(text.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    pub(in crate::config) fn matcher(
        &mut self,
        value: &Option<Vec<Text>>,
        what: &str,
    ) -> Option<Matcher> {
        let patterns = value.as_ref()?;
        let mut ok = Vec::new();
        for p in patterns {
            match globset::Glob::new(p.get_ref()) {
                Ok(_) => ok.push(p.get_ref().clone()),
                Err(e) => self.at(p.span(), format!("{what}: bad glob `{}`: {e}", p.get_ref())),
            }
        }
        Matcher::new(&ok).ok()
    }

    pub(in crate::config) fn regex(
        &mut self,
        value: &Option<Text>,
        what: &str,
    ) -> Option<regex::Regex> {
        let text = value.as_ref()?;
        match regex::Regex::new(text.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .to_string();
                self.at(
                    text.span(),
                    format!("{what}: `{}` is not a valid regex ({last})", text.get_ref()),
                );
                None
            }
        }
    }

    pub(in crate::config) fn url(&mut self, value: &Text, what: &str) -> Secret {
        let text = value.get_ref();
        match reqwest::Url::parse(text) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            // The URL may carry a token: never echo it back.
            Ok(_) => self.at(
                value.span(),
                format!("{what} must be an http:// or https:// URL"),
            ),
            Err(e) => self.at(value.span(), format!("{what} is not a valid URL ({e})")),
        }
        Secret::new(text.clone())
    }
}

pub(super) fn check_unique<'a>(
    names: impl IntoIterator<Item = (&'a str, Range<usize>)>,
    what: &str,
    errors: &mut Errors,
) {
    let mut seen = BTreeSet::new();
    for (name, span) in names {
        if name.is_empty() {
            errors.at(span, format!("{what} name must not be empty"));
        } else if !seen.insert(name) {
            errors.at(span, format!("duplicate {what} `{name}`"));
        }
    }
}

pub(super) fn known(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", names.join(", "))
    }
}
