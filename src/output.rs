//! Plain-text tables for the terminal commands (`once`, `status`, `history`).

use crate::config::JobConfig;
use crate::dts::JobSnapshot;

/// Left-aligned columns separated by two spaces; widths count characters.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(display_width(cell));
            }
        }
    }
    let mut out = String::new();
    let render = |cells: Vec<String>, out: &mut String| {
        let line: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i].saturating_sub(display_width(c));
                format!("{c}{}", " ".repeat(pad))
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    render(header.iter().map(|h| h.to_string()).collect(), &mut out);
    for row in rows {
        render(row.clone(), &mut out);
    }
    out
}

/// Terminal columns: East Asian wide characters take two.
fn display_width(s: &str) -> usize {
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

/// Shortens `s` to `max` characters with an ellipsis.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

pub fn latency_text(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// One row per step and sub-step.
pub fn snapshot_rows(job: &JobConfig, snapshot: &JobSnapshot) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (_, step, parent) in snapshot.walk() {
        let (step_label, sub) = match parent {
            None => (step.label(), String::new()),
            Some(p) => (
                p.label(),
                step.id.as_deref().unwrap_or(&step.name).to_string(),
            ),
        };
        rows.push(vec![
            job.display_name().to_string(),
            step_label,
            sub,
            step.state_raw.to_string(),
            step.progress
                .map(|p| format!("{p}%"))
                .unwrap_or_else(|| "-".into()),
            latency_text(step.latency_ms),
            ellipsize(step.err_msg.as_deref().unwrap_or(""), 60),
        ]);
    }
    rows
}

pub const SNAPSHOT_HEADER: [&str; 7] = [
    "JOB", "STEP", "SUB-STEP", "STATE", "PROGRESS", "LATENCY", "ERROR",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_wide_characters() {
        let out = table(
            &["A", "B"],
            &[
                vec!["预检查".into(), "x".into()],
                vec!["ab".into(), "y".into()],
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "预检查  x");
        assert_eq!(lines[2], "ab      y");
    }

    #[test]
    fn latency_reads_naturally() {
        assert_eq!(latency_text(None), "-");
        assert_eq!(latency_text(Some(1)), "1 ms");
        assert_eq!(latency_text(Some(12_300)), "12.3 s");
        assert_eq!(latency_text(Some(420_000)), "7m00s");
    }
}
