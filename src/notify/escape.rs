//! Escaping untrusted text for each syntax it leaves in. Anything from DTS
//! (step names, states, error messages, error codes, help URLs), job names
//! (discovery reads them from DTS) and silence comments may hold markup,
//! mention syntax or control characters; each function here turns such text
//! into something that reads the same and does nothing in its syntax.
//! Mentions come only from configuration, never from data.
//!
//! | syntax | what is neutralised |
//! | --- | --- |
//! | DingTalk / WeCom markdown, Feishu `lark_md` | line breaks become spaces, so no forged lines, headings, quotes or lists (every line is the renderer's); `<` (tags: `<font>`, `<at id=all>`, `<@user>`), `[` `]` (links and images), `*` (bold, fake `**Job:**` labels) and `` ` `` (code) become their full-width forms, which read the same; identifiers, parentheses and URLs stay as they are |
//! | Slack mrkdwn and `text` | `&`, `<`, `>` (links and `<!here>`/`<@U…>` mentions) as entities, as Slack asks; `*` and `` ` `` full-width; line breaks become spaces |
//! | plain text (email, Feishu post, Slack `plain_text`) | control characters |
//! | HTML (email) | `& < > " '` |
//! | JSON string (webhook `body_template`) | `"`, `\\` and control characters, JSON-escaped |
//! | form body (webhook `body_template`) | everything but letters and digits, percent-encoded |
//! | terminal and log | control characters (ESC, BEL, CR, LF, …) and bidi overrides shown as `\xNN`/`\u{…}` escapes |

/// Full-width stand-ins for the characters chat markdown dialects act on.
fn full_width(c: char) -> Option<char> {
    Some(match c {
        '<' => '＜',
        '[' => '［',
        ']' => '］',
        '*' => '＊',
        '`' => '｀',
        _ => return None,
    })
}

/// A line break or other control character in chat text: one space (a
/// message line is built by the renderer, never by the data).
fn is_breaking(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// Text for DingTalk markdown, WeCom markdown and Feishu `lark_md`.
pub fn chat_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_breaking(c) {
            out.push(' ');
        } else if let Some(wide) = full_width(c) {
            out.push(wide);
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for Slack mrkdwn (sections and the top-level `text`).
pub fn slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' => out.push('＊'),
            '`' => out.push('｀'),
            c if is_breaking(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Plain text where lines are the renderer's: control characters become spaces.
pub fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if is_breaking(c) { ' ' } else { c })
        .collect()
}

/// Text for HTML element content and attribute values.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a JSON string literal (a template writes the quotes):
/// quotes, backslashes and control characters escaped as JSON requires.
pub fn json_string(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// Text in an `application/x-www-form-urlencoded` body.
pub fn form(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Characters that reorder or hide text on a terminal.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text for a terminal: control characters and bidi overrides are shown as
/// escapes (`\x1b`, `\n`, `\u{202e}`), so nothing from outside can move the
/// cursor, recolour the screen, ring the bell or forge a line.
pub fn terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The longest piece of untrusted text a log line carries.
pub const MAX_LOGGED_CHARS: usize = 500;

/// Text for a log line: escaped as for a terminal and cut to [`MAX_LOGGED_CHARS`].
pub fn log(text: &str) -> String {
    terminal(&crate::text::ellipsize(text, MAX_LOGGED_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_markdown_keeps_words_and_drops_markup() {
        assert_eq!(
            chat_markdown("**Job:** x\n#### <at id=all></at> [a](http://e) ![i](u) `c`"),
            "＊＊Job:＊＊ x #### ＜at id=all>＜/at> ［a］(http://e) !［i］(u) ｀c｀"
        );
        assert_eq!(
            chat_markdown("order_items (03) -> https://help.aliyun.com/document_detail/1.html"),
            "order_items (03) -> https://help.aliyun.com/document_detail/1.html"
        );
        assert_eq!(
            chat_markdown("Duplicate entry '1842' for key 'PRIMARY'"),
            "Duplicate entry '1842' for key 'PRIMARY'"
        );
    }

    #[test]
    fn slack_escapes_mentions_and_links() {
        assert_eq!(
            slack("<!here> <@U123> <http://x|y> a & b\nc *bold*"),
            "&lt;!here&gt; &lt;@U123&gt; &lt;http://x|y&gt; a &amp; b c ＊bold＊"
        );
    }

    #[test]
    fn terminal_shows_control_characters() {
        assert_eq!(
            terminal("ok\u{1b}[31mred\u{7}\nnext\u{202e}"),
            "ok\\x1b[31mred\\x07\\nnext\\u{202e}"
        );
        assert_eq!(terminal("预检查 ok"), "预检查 ok");
    }

    #[test]
    fn logs_are_cut_and_escaped() {
        let long = "x\n".repeat(10_000);
        let logged = log(&long);
        assert!(logged.chars().count() <= MAX_LOGGED_CHARS * 2 + 2);
        assert!(!logged.contains('\n'));
    }

    #[test]
    fn json_and_form_values_cannot_end_their_string() {
        assert_eq!(json_string("a\"b\\c\n"), "a\\\"b\\\\c\\n");
        assert_eq!(form("a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn html_escapes_everything_that_means_something() {
        assert_eq!(html("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
