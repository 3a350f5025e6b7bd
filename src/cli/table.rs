//! Plain-text tables for the terminal commands (`once`, `status`, `history`,
//! `silence list`, `outbox`), and the rows a snapshot makes.

use crate::config::JobConfig;
use crate::dts::JobSnapshot;
use crate::notify::escape::terminal;
use crate::text::{display_width, ellipsize, latency_text};

/// Left-aligned columns separated by two spaces; widths count terminal
/// columns. Every cell is escaped for the terminal: cells hold DTS text,
/// job names and silence comments.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| terminal(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| display_width(h)).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(display_width(cell));
            }
        }
    }
    let mut out = String::new();
    let render = |cells: &[String], out: &mut String| {
        let line: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(display_width(c));
                format!("{c}{}", " ".repeat(pad))
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    render(&header, &mut out);
    for row in &rows {
        render(row, &mut out);
    }
    out
}

pub const SNAPSHOT_HEADER: [&str; 7] = [
    "JOB", "STEP", "SUB-STEP", "STATE", "PROGRESS", "LATENCY", "ERROR",
];

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
    fn cells_cannot_drive_the_terminal() {
        let out = table(&["A"], &[vec!["\u{1b}[2Jgone\u{7}\nforged line".into()]]);
        assert_eq!(out, "A\n\\x1b[2Jgone\\x07\\nforged line\n");
    }
}
