//! `Matcher`: the glob patterns rules, silences and discovery use to pick
//! jobs, steps and rules by name.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Glob patterns matched against one or more names; any match counts.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub patterns: Vec<String>,
    set: GlobSet,
}

impl Matcher {
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern).map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// True when any of `candidates` matches any pattern.
    pub fn matches_any<'a>(&self, candidates: impl IntoIterator<Item = &'a str>) -> bool {
        candidates.into_iter().any(|c| self.set.is_match(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_matches_any_candidate() {
        let m = Matcher::new(&["orders-*".to_string(), "dts123".to_string()]).unwrap();
        assert!(m.matches_any(["dtsxyz", "orders-mysql"]));
        assert!(m.matches_any(["dts123"]));
        assert!(!m.matches_any(["billing"]));
    }
}
