//! `type = "console"`: alerts printed on stdout, as text blocks or JSON.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit};
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
    let format = match raw
        .format
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span()))
    {
        None | Some(("text", _)) => ConsoleFormat::Text,
        Some(("json", _)) => ConsoleFormat::Json,
        Some((other, span)) => {
            errors.at(
                span,
                format!("{}: format `{other}` is not text or json", owner.name),
            );
            ConsoleFormat::Text
        }
    };
    Some(ConsoleConfig { format })
}
