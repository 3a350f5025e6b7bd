//! Text shared by the core and the command line: interned strings (names
//! and codes that repeat across a thousand jobs are held once), latency as
//! people read it, shortening with an ellipsis, terminal column widths, and
//! times. Nothing here knows about DTS, alerts or output syntaxes; escaping
//! for a particular syntax belongs to the code that writes that syntax.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Offset, Utc};

/// Text in a snapshot. Shared, not copied: a snapshot is cloned and split
/// often, and the texts that repeat across jobs (names, codes, states) are
/// interned so that a thousand jobs' baselines hold one copy of each.
pub type Text = Arc<str>;

/// Texts interned so far. Entries nothing else holds are dropped whenever the
/// set has doubled since the last sweep, so it stays the size of what is in use.
struct Interner {
    texts: HashSet<Text>,
    sweep_at: usize,
}

static INTERNER: LazyLock<Mutex<Interner>> = LazyLock::new(|| {
    Mutex::new(Interner {
        texts: HashSet::new(),
        sweep_at: 1024,
    })
});

/// The shared copy of `text` (for short texts that repeat across jobs and polls).
pub fn intern(text: &str) -> Text {
    let mut interner = INTERNER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = interner.texts.get(text) {
        return known.clone();
    }
    if interner.texts.len() >= interner.sweep_at {
        interner.texts.retain(|t| Arc::strong_count(t) > 1);
        interner.sweep_at = (interner.texts.len() * 2).max(1024);
    }
    let shared: Text = Arc::from(text);
    interner.texts.insert(shared.clone());
    shared
}

/// `1 ms`, `12.3 s`, `7m00s`; `-` when there is no latency.
pub fn latency_text(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// Shortens `s` to `max` characters, the last one an ellipsis.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Terminal columns `s` takes: East Asian wide characters take two.
pub fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

/// `2026-11-30 10:00:30 UTC`: how logs and health answers write a time.
pub fn utc_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2026-11-30 18:00:30 UTC+8`: wall-clock time in `zone`, always with its
/// offset (an abbreviation like `CST` means three different zones).
pub fn zoned_time(at: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    let local = at.with_timezone(&zone);
    let offset = local.offset().fix().local_minus_utc();
    let suffix = match offset {
        0 => "UTC".to_string(),
        o if o % 3600 == 0 => format!("UTC{:+}", o / 3600),
        o => format!(
            "UTC{}{}:{:02}",
            if o < 0 { '-' } else { '+' },
            o.abs() / 3600,
            (o.abs() % 3600) / 60
        ),
    };
    format!("{} {suffix}", local.format("%Y-%m-%d %H:%M:%S"))
}

/// An error and its causes on one line, `outer: cause: …`, leaving out a
/// cause whose text the line already ends with (libraries often repeat
/// their source in their own message).
pub fn error_chain<'a>(messages: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for message in messages {
        if line.is_empty() {
            line.push_str(message);
        } else if !line.ends_with(message) {
            line.push_str(": ");
            line.push_str(message);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_says_each_cause_once() {
        assert_eq!(
            error_chain([
                "database postgres://u:***@db/x: error communicating with database: bad certificate",
                "error communicating with database: bad certificate",
                "bad certificate",
            ]),
            "database postgres://u:***@db/x: error communicating with database: bad certificate"
        );
        assert_eq!(
            error_chain(["opening the database", "disk full"]),
            "opening the database: disk full"
        );
    }

    #[test]
    fn interned_texts_are_shared_and_unused_ones_are_swept() {
        let a = intern("dtswatch-intern-test");
        let b = intern("dtswatch-intern-test");
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        // Enough distinct texts to force sweeps; the set stays near what is held.
        let held: Vec<Text> = (0..3000).map(|i| intern(&format!("held-{i}"))).collect();
        for i in 0..20_000 {
            intern(&format!("dropped-{i}"));
        }
        let size = INTERNER.lock().map(|i| i.texts.len()).unwrap_or_default();
        assert!(size < 3000 + 10_000, "swept: {size} texts kept");
        assert!(
            held.iter().all(|t| Arc::strong_count(t) >= 2),
            "held texts stay interned"
        );
    }

    #[test]
    fn latency_reads_naturally() {
        assert_eq!(latency_text(None), "-");
        assert_eq!(latency_text(Some(1)), "1 ms");
        assert_eq!(latency_text(Some(12_300)), "12.3 s");
        assert_eq!(latency_text(Some(420_000)), "7m00s");
    }

    #[test]
    fn ellipsis_counts_characters() {
        assert_eq!(ellipsize("预检查完成", 3), "预检…");
        assert_eq!(ellipsize("short", 10), "short");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(display_width("预检查"), 6);
        assert_eq!(display_width("ab"), 2);
    }

    #[test]
    fn utc_times_say_their_zone() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T10:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(utc_time(at), "2026-11-30 10:00:30 UTC");
        assert_eq!(zoned_time(at, chrono_tz::UTC), "2026-11-30 10:00:30 UTC");
        assert_eq!(
            zoned_time(at, chrono_tz::Asia::Shanghai),
            "2026-11-30 18:00:30 UTC+8"
        );
        assert_eq!(
            zoned_time(at, chrono_tz::Asia::Kolkata),
            "2026-11-30 15:30:30 UTC+5:30"
        );
        assert_eq!(
            zoned_time(at, chrono_tz::America::New_York),
            "2026-11-30 05:00:30 UTC-5"
        );
    }
}
