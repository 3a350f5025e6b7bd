//! Humane durations (`500ms`, `30s`, `5m`, `2h`, `7d`, `1h30m`) for config and CLI flags.
//! Parsing only; no defaults and no I/O live here.

use std::time::Duration;

/// The longest duration dtswatch takes anywhere (config or command line):
/// ten years. Anything longer is a typo, and arithmetic on times stays far
/// from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// Parses a humane duration: one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`, `d`, `w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. `30s`, `5m`, `2h` or `7d`".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(format!(
                "`{trimmed}` is not a duration; write e.g. `30s`, `5m`, `2h` or `7d`"
            ));
        }
        let number: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| format!("`{trimmed}` is too large for a duration"))?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_end].trim();
        rest = &rest[unit_end..];
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" | "sec" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(format!(
                    "`{trimmed}` has no unit; write e.g. `{number}s` or `{number}m`"
                ));
            }
            other => {
                return Err(format!(
                    "`{other}` is not a duration unit in `{trimmed}`; use ms, s, m, h, d or w"
                ));
            }
        };
        let part = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| format!("`{trimmed}` is too large for a duration"))?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(|| format!("`{trimmed}` is too large for a duration"))?;
    }
    if total > MAX_DURATION {
        return Err(format!(
            "`{trimmed}` is longer than 10 years, the longest duration dtswatch takes"
        ));
    }
    Ok(total)
}

/// Formats a duration the way a person would write it, for summaries and messages.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    let mut secs = duration.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{}", secs / size, unit));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_combinations() {
        let cases = [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("7d", 604_800_000),
            ("1w", 604_800_000),
            ("1h30m", 5_400_000),
            (" 10s ", 10_000),
            ("0s", 0),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in [
            "",
            "10",
            "s",
            "5 parsecs",
            "-5s",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(text).is_err(), "{text} should be rejected");
        }
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("99999999999d")
                .unwrap_err()
                .contains("longer than 10 years")
        );
        assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
    }

    #[test]
    fn formats_as_people_write() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 7)), "7d");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
