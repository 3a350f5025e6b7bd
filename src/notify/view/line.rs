//! A line of a message before it is written in a syntax: our own words,
//! data from outside, links and a command to copy, kept apart so that each
//! syntax (`notify::syntax`) escapes exactly the data and writes links and
//! code in its own way. Nothing here escapes or formats.

/// One piece of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The renderer's own words and punctuation: written as they are.
    Own(String),
    /// Text from outside (DTS, job names, rule names): escaped for the syntax.
    Data(String),
    /// A link; `text` is data, `url` was checked by [`safe_url`].
    Link { text: String, url: String },
    /// A command to copy, shown as code where the syntax has it.
    Code(String),
}

/// A sequence of pieces that reads as one line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line(pub Vec<Piece>);

impl Line {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn own(mut self, text: impl Into<String>) -> Self {
        self.push_own(text);
        self
    }

    pub fn data(mut self, text: impl Into<String>) -> Self {
        self.push_data(text);
        self
    }

    pub fn push_own(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !text.is_empty() {
            self.0.push(Piece::Own(text));
        }
    }

    pub fn push_data(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !text.is_empty() {
            self.0.push(Piece::Data(text));
        }
    }

    /// A link if `url` is one a message may carry, else the text alone.
    pub fn push_link(&mut self, text: impl Into<String>, url: &str) {
        let text = text.into();
        match safe_url(url) {
            Some(url) => self.0.push(Piece::Link {
                text: crate::text::ellipsize(&text, MAX_LINK_TEXT_CHARS),
                url,
            }),
            None => self.push_data(text),
        }
    }

    pub fn push_code(&mut self, text: impl Into<String>) {
        self.0.push(Piece::Code(text.into()));
    }

    pub fn extend(&mut self, other: Line) {
        self.0.extend(other.0);
    }

    /// The line with every piece of data cut to `max` characters: a title
    /// names things, and a 6,000-character job name must not crowd it out.
    pub fn capped(mut self, max: usize) -> Self {
        for piece in &mut self.0 {
            if let Piece::Data(text) | Piece::Link { text, .. } = piece {
                *text = crate::text::ellipsize(text, max);
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The line as plain words (no escaping, links as their text): for titles
    /// that a platform shows as plain text and for the template context.
    pub fn plain(&self) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Own(t) | Piece::Data(t) | Piece::Code(t) => t.as_str(),
                Piece::Link { text, .. } => text.as_str(),
            })
            .collect()
    }
}

/// Longer URLs are no links people follow (browsers and chat apps cut them).
const MAX_URL_BYTES: usize = 2048;

/// The most of a link's text shown: a link is one short line.
const MAX_LINK_TEXT_CHARS: usize = 200;

/// Characters a URL keeps unencoded that end or break a link in some
/// syntax: markdown's `(`/`)`/`[`/`]`, Slack's `|`/`>`, HTML quotes, emphasis.
const LINK_BREAKERS: [char; 10] = ['(', ')', '[', ']', '<', '>', '|', '"', '\'', '`'];

/// `url` as a link may carry it: http(s) only, normalised by the URL
/// parser, and every character that could end the link in any syntax
/// percent-encoded. `None` for anything else (`javascript:`, relative, junk).
pub fn safe_url(url: &str) -> Option<String> {
    if url.len() > MAX_URL_BYTES {
        return None;
    }
    let parsed = reqwest::Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return None;
    }
    let mut out = String::with_capacity(parsed.as_str().len());
    for c in parsed.as_str().chars() {
        if LINK_BREAKERS.contains(&c) || c == '*' || c.is_whitespace() || c.is_control() {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_become_links_and_nothing_in_them_ends_a_link() {
        assert_eq!(
            safe_url("https://help.aliyun.com/document_detail/462133.html").as_deref(),
            Some("https://help.aliyun.com/document_detail/462133.html")
        );
        assert_eq!(
            safe_url("https://e.com/a)(b]|<x>\"'*`").as_deref(),
            Some("https://e.com/a%29%28b%5D%7C%3Cx%3E%22%27%2A%60")
        );
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url("****"), None);
        assert_eq!(safe_url("/relative"), None);
        let mut line = Line::new();
        line.push_link("DTS-1", "****");
        assert_eq!(line.0, vec![Piece::Data("DTS-1".into())]);
    }
}
