//! `type = "console"`: alerts printed on stdout, as text blocks or JSON.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit, choice};
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "console";
pub const KEYS: &[&str] = &["format"];
pub const RATE_LIMIT: Option<RateLimit> = None;
pub const MAX_BATCH: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub format: ConsoleFormat,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: Option<Text>,
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<ConsoleConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    let format = choice(
        &raw.format,
        &[("text", ConsoleFormat::Text), ("json", ConsoleFormat::Json)],
        ConsoleFormat::Text,
        &format!("{}: format", owner.name),
        errors,
    );
    Some(ConsoleConfig { format })
}
