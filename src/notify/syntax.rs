//! Writing a view (`notify::view`) in one output syntax: DingTalk, WeCom
//! and Feishu markdown, Slack mrkdwn, HTML, plain text and the terminal.
//! Each syntax names its escaper (`escape.rs`), applied to every piece of
//! data and to the text of links and code, and writes links (`[t](u)`,
//! `<u|t>`, `<a href>`), code and bold labels its own way; URLs were made
//! safe for every syntax by `view::safe_url`. Also the markdown body the
//! chat channels share. Pure.

use super::escape;
use super::view::{Field, Line, MessageView, Piece};

/// How one output syntax writes lines.
#[derive(Clone, Copy)]
pub struct Syntax {
    pub escape: fn(&str) -> String,
    /// A link from escaped text and a safe URL.
    link: fn(&str, &str) -> String,
    /// Code from escaped text.
    code: fn(&str) -> String,
    /// Bold from our own text.
    bold: fn(&str) -> String,
}

fn markdown_link(text: &str, url: &str) -> String {
    format!("[{text}]({url})")
}

fn backticks(text: &str) -> String {
    format!("`{text}`")
}

fn double_stars(text: &str) -> String {
    format!("**{text}**")
}

fn single_stars(text: &str) -> String {
    format!("*{text}*")
}

fn as_is(text: &str) -> String {
    text.to_string()
}

fn text_then_url(text: &str, url: &str) -> String {
    if text == url {
        url.to_string()
    } else {
        format!("{text} ({url})")
    }
}

/// DingTalk markdown, WeCom markdown and Feishu `lark_md`.
pub const CHAT_MARKDOWN: Syntax = Syntax {
    escape: escape::chat_markdown,
    link: markdown_link,
    code: backticks,
    bold: double_stars,
};

/// Slack mrkdwn.
pub const SLACK: Syntax = Syntax {
    escape: escape::slack,
    link: |text, url| format!("<{url}|{text}>"),
    code: backticks,
    bold: single_stars,
};

/// HTML element content (email).
pub const HTML: Syntax = Syntax {
    escape: escape::html,
    link: |text, url| format!("<a href=\"{url}\">{text}</a>"),
    code: |text| format!("<code>{text}</code>"),
    bold: |text| format!("<b>{text}</b>"),
};

/// Plain text whose lines are the renderer's (email text part, Feishu post, Slack `plain_text`).
pub const PLAIN: Syntax = Syntax {
    escape: escape::plain,
    link: text_then_url,
    code: as_is,
    bold: as_is,
};

/// A terminal: control characters shown, not obeyed.
pub const TERMINAL: Syntax = Syntax {
    escape: escape::terminal,
    link: text_then_url,
    code: as_is,
    bold: as_is,
};

/// Values inside JSON string literals of a webhook `body_template`.
pub const JSON_STRING: Syntax = Syntax {
    escape: escape::json_string,
    link: text_then_url,
    code: as_is,
    bold: as_is,
};

/// Values of a form-encoded webhook `body_template`.
pub const FORM: Syntax = Syntax {
    escape: escape::form,
    link: text_then_url,
    code: as_is,
    bold: as_is,
};

/// No escaping: for the webhook document, which JSON encoding escapes.
pub const VERBATIM: Syntax = Syntax {
    escape: as_is,
    link: text_then_url,
    code: as_is,
    bold: as_is,
};

impl Syntax {
    /// The line with every piece of data escaped.
    pub fn write(&self, line: &Line) -> String {
        let mut out = String::new();
        for piece in &line.0 {
            match piece {
                Piece::Own(text) => out.push_str(text),
                Piece::Data(text) => out.push_str(&(self.escape)(text)),
                Piece::Link { text, url } => out.push_str(&(self.link)(&(self.escape)(text), url)),
                Piece::Code(text) => out.push_str(&(self.code)(&(self.escape)(text))),
            }
        }
        out
    }

    pub fn bold(&self, own: &str) -> String {
        (self.bold)(own)
    }

    /// `**Job:** value` / `**任务：**value`.
    pub fn field(&self, field: &Field, colon: &str) -> String {
        let value = self.write(&field.value);
        match colon.strip_suffix(' ') {
            Some(tight) => format!("{} {value}", self.bold(&format!("{}{tight}", field.label))),
            None => format!("{}{value}", self.bold(&format!("{}{colon}", field.label))),
        }
    }
}

/// The body DingTalk, WeCom and Feishu cards share: for one alert its
/// fields; for a few, a bold headline and the fields of each; for many,
/// one line each. `separator` ends every line. The title is the caller's.
pub fn markdown_body(view: &MessageView, syntax: &Syntax, separator: &str) -> String {
    let mut out = String::new();
    if view.is_list() {
        for event in &view.events {
            out.push_str(&format!(
                "- {} {}{separator}",
                super::view::mark(event.status, event.severity),
                syntax.write(&event.headline)
            ));
        }
    } else {
        for (i, event) in view.events.iter().enumerate() {
            if !view.is_single() {
                if i > 0 {
                    out.push_str(&format!("---{separator}"));
                }
                let headline = format!(
                    "{} {}",
                    super::view::mark(event.status, event.severity),
                    syntax.write(&event.headline)
                );
                out.push_str(&format!("{}{separator}", syntax.bold(&headline)));
            }
            for field in &event.fields {
                out.push_str(&syntax.field(field, view.colon()));
                out.push_str(separator);
            }
        }
    }
    out.push_str(&syntax.write(&view.footer));
    out
}

/// Plain text: the title (with its mark when `marked`, for a terminal
/// where messages scroll by), then each alert's fields (or one line each).
pub fn plain_body(view: &MessageView, syntax: &Syntax, marked: bool) -> String {
    let title = if marked {
        view.heading()
    } else {
        view.title.clone()
    };
    let mut out = format!("{}\n", syntax.write(&title));
    if view.is_list() {
        for event in &view.events {
            out.push_str(&format!("- {}\n", syntax.write(&event.headline)));
        }
    } else {
        for event in &view.events {
            out.push('\n');
            if !view.is_single() {
                out.push_str(&format!("{}\n", syntax.write(&event.headline)));
            }
            for field in &event.fields {
                out.push_str(&format!(
                    "  {}{}{}\n",
                    field.label,
                    view.colon(),
                    syntax.write(&field.value)
                ));
            }
        }
    }
    out.push_str(&format!("\n{}\n", syntax.write(&view.footer)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_escaped_and_links_are_written_per_syntax() {
        let mut line = Line::new().own("**").data("*x* <@U1>");
        line.push_link("[a]", "https://e.com/p");
        line.push_code("rm `x`");
        assert_eq!(
            CHAT_MARKDOWN.write(&line),
            "**＊x＊ ＜@U1>[［a］](https://e.com/p)`rm ｀x｀`"
        );
        assert_eq!(
            SLACK.write(&line),
            "**＊x＊ &lt;@U1&gt;<https://e.com/p|[a]>`rm ｀x｀`"
        );
        assert_eq!(
            HTML.write(&line),
            "***x* &lt;@U1&gt;<a href=\"https://e.com/p\">[a]</a><code>rm `x`</code>"
        );
        assert_eq!(PLAIN.write(&line), "***x* <@U1>[a] (https://e.com/p)rm `x`");
    }
}
