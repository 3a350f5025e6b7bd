//! An error message's fingerprint: the text with the parts that change from
//! poll to poll (counts, ids, hex strings, timestamps) masked, so that
//! `fullcheck find different records : 2372` and `… : 2380` are one error and
//! a different exception is another. Error codes such as `DTS-1020042` are
//! kept: a different code is a different error.

use std::sync::OnceLock;

use regex::Regex;

struct Masks {
    code: Regex,
    timestamp: Regex,
    uuid: Regex,
    hex: Regex,
    id: Regex,
    number: Regex,
}

fn masks() -> &'static Masks {
    static MASKS: OnceLock<Masks> = OnceLock::new();
    MASKS.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("static regex compiles");
        Masks {
            code: re(r"\b[A-Z][A-Za-z]*-\d+\b"),
            timestamp: re(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
            uuid: re(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
            hex: re(r"(?i)\b(0x[0-9a-f]+|[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*|[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*)\b"),
            id: re(r"\b[A-Za-z_]*\d[A-Za-z0-9_]*[A-Za-z][A-Za-z0-9_]*\b|\b[A-Za-z_][A-Za-z_]*\d[A-Za-z0-9_]*\b"),
            number: re(r"\d+(\.\d+)?"),
        }
    })
}

/// The masked form of `message`.
pub fn fingerprint(message: &str) -> String {
    let m = masks();
    // Keep error codes by swapping them out while the rest is masked.
    let codes: Vec<String> = m
        .code
        .find_iter(message)
        .map(|c| c.as_str().to_string())
        .collect();
    let mut text = m.code.replace_all(message, "\u{0}").into_owned();
    text = m.timestamp.replace_all(&text, "<time>").into_owned();
    text = m.uuid.replace_all(&text, "<uuid>").into_owned();
    text = m
        .hex
        .replace_all(&text, |caps: &regex::Captures<'_>| {
            let token = &caps[0];
            if token.len() >= 8 || token.starts_with("0x") || token.starts_with("0X") {
                "<hex>".to_string()
            } else {
                token.to_string()
            }
        })
        .into_owned();
    text = m.id.replace_all(&text, "<id>").into_owned();
    text = m.number.replace_all(&text, "#").into_owned();
    let mut codes = codes.into_iter();
    let mut restored = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{0}' {
            restored.push_str(&codes.next().unwrap_or_default());
        } else {
            restored.push(c);
        }
    }
    restored.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn counts_are_masked_and_exceptions_kept() {
        assert_eq!(
            fingerprint("fullcheck find different records : 2372"),
            fingerprint("fullcheck find different records : 2380")
        );
        assert_eq!(
            fingerprint("fullcheck find different records : 2372"),
            "fullcheck find different records : #"
        );
        assert_ne!(
            fingerprint("fullcheck find different records : 2372"),
            fingerprint("UncaughtException:java.lang.NullPointerException")
        );
        assert_eq!(
            fingerprint("UncaughtException:java.lang.NullPointerException"),
            "UncaughtException:java.lang.NullPointerException"
        );
    }

    #[test]
    fn ids_hex_and_timestamps_are_masked() {
        let a = "job dtsl1fecyc1e01 failed at 2026-11-30T10:00:00Z, trace 3f9a2b7c11de, request 5E1C0F5A-0001-4D1E-9C3B-000000000001";
        let b = "job dtsk2gm967v16f failed at 2026-12-01 11:22:33, trace 0aa1bb2cc3dd, request 6F2D1A6B-0002-4D1E-9C3B-000000000002";
        assert_eq!(fingerprint(a), fingerprint(b));
        assert_eq!(
            fingerprint(a),
            "job <id> failed at <time>, trace <hex>, request <uuid>"
        );
    }

    #[test]
    fn error_codes_are_kept() {
        let a = "DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY', retried 3 times";
        let b = "DTS-1020042 Execute sql error: Duplicate entry '1907' for key 'PRIMARY', retried 4 times";
        assert_eq!(fingerprint(a), fingerprint(b));
        assert!(
            fingerprint(a).starts_with("DTS-1020042 Execute sql error"),
            "{}",
            fingerprint(a)
        );
        assert_ne!(
            fingerprint(a),
            fingerprint(&a.replace("DTS-1020042", "DTS-1020043"))
        );
    }
}
