//! What `check-config` prints: every problem with the byte range it was
//! found at, rendered as `file:line:column: message` (columns count
//! characters, so Chinese names do not shift them).

use std::fmt;

/// One problem in a config file, at a byte range of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub span: Option<std::ops::Range<usize>>,
    pub message: String,
}

/// Every problem found in one config file, printed as `file:line:column: message`.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub file: String,
    pub text: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// 1-based (line, column) of a byte offset, counting columns in characters.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        line_column(&self.text, offset)
    }

    /// One rendered line per error, sorted by position.
    pub fn lines(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|e| match &e.span {
                Some(span) => {
                    let (line, column) = self.position(span.start);
                    format!("{}:{line}:{column}: {}", self.file, e.message)
                }
                None => format!("{}: {}", self.file, e.message),
            })
            .collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// 1-based line and character column of `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nb = \"预检查\" x\n";
        let offset = text.find('x').unwrap();
        assert_eq!(line_column(text, offset), (2, 11));
        assert_eq!(line_column(text, 0), (1, 1));
    }
}
