//! `${VAR}` and `${VAR:-default}` interpolation of config string values.
//! Pure: the environment is passed in as a lookup function, so tests and the
//! demo can supply their own without touching the process environment.

/// Replaces every `${NAME}` / `${NAME:-default}` in `text`; `$$` is a literal `$`.
/// Returns the names of unset variables (without a default) as the error.
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(close) = body_start.find('}') else {
            out.push('$');
            rest = after;
            continue;
        };
        let body = &body_start[..close];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        match (
            env(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => missing.push(name.to_string()),
        }
        rest = &body_start[close + 1..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::interpolate;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let cases = [
            ("plain", "plain"),
            ("x=${TOKEN}", "x=abc"),
            ("${TOKEN}${TOKEN}", "abcabc"),
            ("${UNSET:-fallback}", "fallback"),
            ("${EMPTY:-fallback}", "fallback"),
            ("${EMPTY}", ""),
            ("${TOKEN:-fallback}", "abc"),
            ("cost $$5", "cost $5"),
            ("$$${TOKEN}", "$abc"),
            ("a $ b", "a $ b"),
            ("${unterminated", "${unterminated"),
        ];
        for (input, expected) in cases {
            assert_eq!(interpolate(input, &env).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn reports_every_unset_variable() {
        assert_eq!(
            interpolate("${A}/${TOKEN}/${B}", &env),
            Err(vec!["A".to_string(), "B".to_string()])
        );
    }
}
