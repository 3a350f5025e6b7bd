//! `type = "slack"`: a Slack incoming webhook URL (the URL is the secret)
//! and who to mention: `here`, `channel`, user ids (`U…`, `W…`) and user
//! group ids (`S…`), written as Slack's `<!here>`, `<@U…>`, `<!subteam^S…>`.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Owner, RateLimit};
use crate::config::Secret;
use crate::config::raw::Text;
use crate::config::validate::{Errors, one};

pub const TYPE: &str = "slack";
pub const KEYS: &[&str] = &["url", "mentions"];
/// Slack allows one message per second per webhook.
pub const RATE_LIMIT: Option<RateLimit> = Some(RateLimit::new(1, 1));
/// A hundred one-line alerts fit the 50-block, 3,000-character sections.
pub const MAX_BATCH: i64 = 100;

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub url: Secret,
    /// Mentions as Slack writes them (`<!here>`, `<@U0123>`).
    pub mentions: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<Text>,
    mentions: Option<Spanned<Vec<Text>>>,
}

/// `here` → `<!here>`, `U0123` → `<@U0123>`, `S0123` → `<!subteam^S0123>`.
fn mention(text: &Text, owner: &Owner, errors: &mut Errors) -> Option<String> {
    let id = text.get_ref().trim();
    let is_id = id.len() > 1
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    match id {
        "here" | "channel" | "everyone" => Some(format!("<!{id}>")),
        _ if is_id && id.starts_with(['U', 'W']) => Some(format!("<@{id}>")),
        _ if is_id && id.starts_with('S') => Some(format!("<!subteam^{id}>")),
        _ => {
            errors.at(
                text.span(),
                format!(
                    "{}: mentions: `{id}` is not here, channel, everyone, a user id (U…) or a user group id (S…)",
                    owner.name
                ),
            );
            None
        }
    }
}

pub(super) fn read(
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    errors: &mut Errors,
) -> Option<SlackConfig> {
    let raw: Raw = one(value, &owner.name, errors)?;
    let mentions = raw
        .mentions
        .as_ref()
        .map(|list| {
            list.get_ref()
                .iter()
                .filter_map(|m| mention(m, owner, errors))
                .collect()
        })
        .unwrap_or_default();
    Some(SlackConfig {
        url: owner.url(&raw.url, errors),
        mentions,
    })
}
