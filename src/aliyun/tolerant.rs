//! Bodies from the API made readable before they are parsed. DTS quotes
//! database error text, and source rows carry whatever bytes they carry: an
//! invalid UTF-8 sequence, or a JSON `\ud83d` escape without its other half,
//! would make the whole answer unparsable and blind the job — the real
//! failure never reported, an "unreachable" page instead. Both become U+FFFD
//! (the replacement character); everything else is left byte for byte.

/// The body with invalid UTF-8 and lone surrogate escapes replaced by U+FFFD.
pub fn repair(body: Vec<u8>) -> Vec<u8> {
    let body = match String::from_utf8(body) {
        Ok(text) => text.into_bytes(),
        Err(e) => String::from_utf8_lossy(e.as_bytes())
            .into_owned()
            .into_bytes(),
    };
    if !has_surrogate_escape(&body) {
        return body;
    }
    replace_lone_surrogates(&body)
}

/// `\uD800`–`\uDFFF` anywhere (a cheap first look; most bodies have none).
fn has_surrogate_escape(body: &[u8]) -> bool {
    body.windows(4).any(|w| {
        w[0] == b'\\'
            && (w[1] == b'u')
            && (w[2] | 0x20) == b'd'
            && matches!(w[3] | 0x20, b'8'..=b'9' | b'a'..=b'f')
    })
}

/// The code unit of a `\uXXXX` escape starting at `at` (the backslash), if it is one.
fn escape_at(body: &[u8], at: usize) -> Option<u16> {
    let hex = body.get(at + 2..at + 6)?;
    if body.get(at..at + 2) != Some(b"\\u") {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

fn replace_lone_surrogates(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        match escape_at(body, i) {
            Some(0xD800..=0xDBFF) => {
                let paired =
                    escape_at(body, i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                if paired {
                    out.extend_from_slice(&body[i..i + 12]);
                    i += 12;
                } else {
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            }
            _ => {
                // Any other escape, `\\` included: copy it whole.
                let end = (i + 2).min(body.len());
                out.extend_from_slice(&body[i..end]);
                i = end;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(text: &[u8]) -> String {
        String::from_utf8(repair(text.to_vec())).expect("UTF-8")
    }

    #[test]
    fn lone_surrogates_and_bad_bytes_become_replacement_characters() {
        assert_eq!(repaired(br#"{"a":"x\ud83dy"}"#), r#"{"a":"x\ufffdy"}"#);
        assert_eq!(repaired(br#"{"a":"\udc00"}"#), r#"{"a":"\ufffd"}"#);
        assert_eq!(
            repaired(br#"{"a":"\ud83d\ude00"}"#),
            r#"{"a":"\ud83d\ude00"}"#
        );
        assert_eq!(
            repaired(br#"{"a":"\\ud83d"}"#),
            r#"{"a":"\\ud83d"}"#,
            "an escaped backslash"
        );
        assert_eq!(repaired(b"{\"a\":\"x\xffy\"}"), "{\"a\":\"x\u{fffd}y\"}");
        let json: serde_json::Value =
            serde_json::from_slice(&repair(br#"{"a":"x\ud83d"}"#.to_vec())).expect("parses");
        assert_eq!(json["a"], "x\u{fffd}");
    }

    #[test]
    fn ordinary_bodies_are_untouched() {
        let body = br#"{"JobSteps":[{"JobStepName":"\u5168\u91cf","ErrMsg":"a\\b"}]}"#.to_vec();
        assert_eq!(repair(body.clone()), body);
    }
}
