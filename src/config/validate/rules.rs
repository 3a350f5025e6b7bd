//! `[[rules]]`: kinds, kind-specific keys, severities and their defaults,
//! the channels a rule notifies (which must exist) and what inhibits it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use super::super::raw::{RawRule, Text};
use super::super::{ChannelConfig, RuleConfig, RuleKind, Severity, parse_duration};
use super::errors::{Errors, check_unique, known};
use crate::state::State;

/// A rule key, where it was written, and the kinds it applies to.
type KindSpecificKey<'a> = (&'a str, Option<Range<usize>>, &'a [&'a str]);

pub(super) const RULE_KINDS: &[&str] = &[
    "failed",
    "error",
    "latency",
    "stalled",
    "transition",
    "unreachable",
];

fn states(values: &Option<Vec<Text>>) -> Vec<State> {
    values
        .as_ref()
        .map(|v| v.iter().map(|s| State::parse(s.get_ref())).collect())
        .unwrap_or_default()
}

fn latency_ms(value: &Option<Text>, owner: &str, field: &str, errors: &mut Errors) -> Option<i64> {
    let text = value.as_ref()?;
    match parse_duration(text.get_ref()) {
        Ok(d) => Some(d.as_millis().min(i64::MAX as u128) as i64),
        Err(e) => {
            errors.at(text.span(), format!("{owner}: {field}: {e}"));
            None
        }
    }
}

pub(super) fn build_rules(
    raw: &[(Range<usize>, RawRule)],
    channels: &BTreeMap<String, ChannelConfig>,
    errors: &mut Errors,
) -> Vec<RuleConfig> {
    check_unique(
        raw.iter()
            .map(|(_, r)| (r.name.get_ref().as_str(), r.name.span())),
        "rule",
        errors,
    );
    let rule_names: BTreeSet<&str> = raw.iter().map(|(_, r)| r.name.get_ref().as_str()).collect();
    let mut rules = Vec::new();
    for (span, r) in raw {
        let name = r.name.get_ref().clone();
        let owner = format!("rule `{name}`");
        let kind_name = r.kind.get_ref().as_str();
        if !RULE_KINDS.contains(&kind_name) {
            errors.at(
                r.kind.span(),
                format!(
                    "{owner}: unknown kind `{kind_name}`; use {}",
                    RULE_KINDS.join(", ")
                ),
            );
            continue;
        }
        // Keys that belong to one kind only.
        let specific: [KindSpecificKey; 7] = [
            (
                "states",
                r.states.as_ref().and_then(|v| v.first()).map(|v| v.span()),
                &["failed"],
            ),
            ("pattern", r.pattern.as_ref().map(|v| v.span()), &["error"]),
            ("ignore", r.ignore.as_ref().map(|v| v.span()), &["error"]),
            (
                "threshold",
                r.threshold.as_ref().map(|v| v.span()),
                &["latency"],
            ),
            (
                "resolve_below",
                r.resolve_below.as_ref().map(|v| v.span()),
                &["latency"],
            ),
            (
                "from",
                r.from.as_ref().and_then(|v| v.first()).map(|v| v.span()),
                &["transition"],
            ),
            (
                "to",
                r.to.as_ref().and_then(|v| v.first()).map(|v| v.span()),
                &["transition"],
            ),
        ];
        for (key, key_span, kinds) in specific {
            if let Some(key_span) = key_span
                && !kinds.contains(&kind_name)
            {
                errors.at(
                    key_span,
                    format!("{owner}: `{key}` applies only to {} rules", kinds.join("/")),
                );
            }
        }
        let kind = match kind_name {
            "failed" => {
                let states = states(&r.states);
                RuleKind::Failed {
                    states: if states.is_empty() {
                        vec![State::Failed]
                    } else {
                        states
                    },
                }
            }
            "error" => RuleKind::Error {
                pattern: errors.regex(&r.pattern, &format!("{owner}: pattern")),
                ignore: errors.regex(&r.ignore, &format!("{owner}: ignore")),
            },
            "latency" => {
                let threshold = latency_ms(&r.threshold, &owner, "threshold", errors);
                if r.threshold.is_none() {
                    errors.at(
                        r.kind.span(),
                        format!("{owner}: latency rules need a `threshold` (e.g. \"300s\")"),
                    );
                }
                let threshold_ms = threshold.unwrap_or(0);
                let resolve_below_ms =
                    latency_ms(&r.resolve_below, &owner, "resolve_below", errors)
                        .unwrap_or(threshold_ms);
                if resolve_below_ms > threshold_ms
                    && let Some(text) = &r.resolve_below
                {
                    errors.at(
                        text.span(),
                        format!("{owner}: resolve_below must not be above threshold"),
                    );
                }
                RuleKind::Latency {
                    threshold_ms,
                    resolve_below_ms,
                }
            }
            "stalled" => RuleKind::Stalled,
            "transition" => {
                let from = states(&r.from);
                let to = states(&r.to);
                if from.is_empty() && to.is_empty() {
                    errors.at(
                        r.kind.span(),
                        format!("{owner}: transition rules need `from`, `to` or both"),
                    );
                }
                for (key, value) in [("repeat", &r.repeat), ("for", &r.for_)] {
                    if let Some(v) = value {
                        errors.at(
                            v.span(),
                            format!("{owner}: `{key}` does not apply to one-shot transition rules"),
                        );
                    }
                }
                RuleKind::Transition { from, to }
            }
            _ => RuleKind::Unreachable,
        };
        let severity = match &r.severity {
            Some(s) => s.get_ref().parse::<Severity>().unwrap_or_else(|e| {
                errors.at(s.span(), format!("{owner}: {e}"));
                Severity::Warning
            }),
            None => match kind_name {
                "failed" | "unreachable" => Severity::Critical,
                "transition" => Severity::Info,
                _ => Severity::Warning,
            },
        };
        let rule_channels = match &r.channels {
            Some(list) if !list.get_ref().is_empty() => list
                .get_ref()
                .iter()
                .map(|c| {
                    if !channels.contains_key(c.get_ref()) {
                        let names: Vec<String> = channels.keys().cloned().collect();
                        errors.at(
                            c.span(),
                            format!(
                                "{owner}: unknown channel `{}`{}",
                                c.get_ref(),
                                known(&names)
                            ),
                        );
                    }
                    c.get_ref().clone()
                })
                .collect(),
            Some(list) => {
                errors.at(
                    list.span(),
                    format!("{owner}: channels must name at least one channel"),
                );
                Vec::new()
            }
            None => {
                errors.at(span.clone(), format!("{owner}: missing `channels`"));
                Vec::new()
            }
        };
        let default_for = match kind_name {
            "stalled" => Duration::from_secs(600),
            "unreachable" => Duration::from_secs(300),
            _ => Duration::ZERO,
        };
        let inhibited_by = match &r.inhibited_by {
            Some(list) => list
                .iter()
                .map(|i| {
                    let v = i.get_ref();
                    if !RULE_KINDS.contains(&v.as_str()) && !rule_names.contains(v.as_str()) {
                        errors.at(
                            i.span(),
                            format!(
                                "{owner}: inhibited_by `{v}` is neither a rule name nor a rule kind"
                            ),
                        );
                    }
                    v.clone()
                })
                .collect(),
            None => match kind_name {
                "unreachable" => Vec::new(),
                "failed" => vec!["unreachable".to_string()],
                _ => vec!["unreachable".to_string(), "failed".to_string()],
            },
        };
        if let Some(repeat) = &r.repeat
            && parse_duration(repeat.get_ref())
                .map(|d| d.is_zero())
                .unwrap_or(false)
        {
            errors.at(
                repeat.span(),
                format!("{owner}: repeat must be longer than zero (leave it out to notify once)"),
            );
        }
        rules.push(RuleConfig {
            name,
            kind,
            severity,
            channels: rule_channels,
            jobs: errors.matcher(&r.jobs, &format!("{owner}: jobs")),
            steps: errors.matcher(&r.steps, &format!("{owner}: steps")),
            sub_steps: r.sub_steps.unwrap_or(true),
            fold_sub_steps: r.fold_sub_steps.unwrap_or(true),
            for_: errors.duration(&r.for_, default_for, &format!("{owner}: for")),
            repeat: r
                .repeat
                .as_ref()
                .map(|_| {
                    errors.duration(
                        &r.repeat,
                        Duration::from_secs(3600),
                        &format!("{owner}: repeat"),
                    )
                })
                .filter(|d| !d.is_zero()),
            send_resolved: r.send_resolved.unwrap_or(true),
            after: errors.count(&r.after, 1, 1..=1000, &format!("{owner}: after")),
            resolve_after: errors.count(
                &r.resolve_after,
                1,
                1..=1000,
                &format!("{owner}: resolve_after"),
            ),
            inhibited_by,
            runbook: r.runbook.as_ref().map(|u| u.get_ref().clone()),
        });
    }
    rules
}
