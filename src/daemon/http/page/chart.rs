//! The job page's chart as inline SVG: latency (left axis, one `<circle
//! class="poll">` per stored successful poll, joined by a line) and progress
//! (right axis, 0–100 %, a dashed line). No script, no external asset; every
//! piece of text is escaped. Pure.

use std::fmt::Write as _;

use chrono_tz::Tz;

use crate::config::Locale;
use crate::notify::escape::html;
use crate::notify::view::words;
use crate::report::series::Point;
use crate::text::zoned_time;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 48.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// The chart, or a sentence when there is nothing to draw.
pub fn svg(points: &[Point], locale: Locale, zone: Tz) -> String {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::new();
    };
    let start = first.at.timestamp_millis();
    let span = (last.at.timestamp_millis() - start).max(1) as f64;
    let top_latency = points
        .iter()
        .filter_map(|p| p.latency_ms)
        .max()
        .unwrap_or(0)
        .max(1_000);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |p: &Point| {
        if points.len() == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + (p.at.timestamp_millis() - start) as f64 / span * plot_w
        }
    };
    let y_latency = |ms: i64| TOP + plot_h - ms as f64 / top_latency as f64 * plot_h;
    let y_progress = |pct: f64| TOP + plot_h - pct / 100.0 * plot_h;
    let (latency_word, progress_word) = match locale {
        Locale::En => ("Latency", "Progress"),
        Locale::ZhCn => ("延迟", "进度"),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{latency_word} / {progress_word}" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Axes and their end labels.
    let _ = write!(
        out,
        r#"<g class="axis"><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}"/><line x1="{r}" y1="{TOP}" x2="{r}" y2="{b}"/>"#,
        b = TOP + plot_h,
        r = LEFT + plot_w,
    );
    let _ = write!(
        out,
        r#"<text x="{lx}" y="{ty}" text-anchor="end">{top}</text><text x="{lx}" y="{by}" text-anchor="end">0</text><text x="{rx}" y="{ty}">100%</text><text x="{rx}" y="{by}">0%</text>"#,
        lx = LEFT - 6.0,
        rx = LEFT + plot_w + 6.0,
        ty = TOP + 4.0,
        by = TOP + plot_h,
        top = html(&words::latency(top_latency, locale)),
    );
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{ly}">{from}</text><text x="{r}" y="{ly}" text-anchor="end">{to}</text></g>"#,
        ly = HEIGHT - 8.0,
        r = LEFT + plot_w,
        from = html(&zoned_time(first.at, zone)),
        to = html(&zoned_time(last.at, zone)),
    );
    // Progress: a dashed line over the polls that report it.
    let progress: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.progress
                .map(|pct| format!("{:.1},{:.1}", x(p), y_progress(pct)))
        })
        .collect();
    if !progress.is_empty() {
        let _ = write!(
            out,
            r#"<polyline class="progress" points="{}"><title>{progress_word}</title></polyline>"#,
            progress.join(" ")
        );
    }
    // Latency: a line, and a point per poll (at 0 when no step reported one).
    let latency: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p), y_latency(p.latency_ms.unwrap_or(0))))
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="latency" points="{}"/>"#,
        latency.join(" ")
    );
    for p in points {
        let value = p
            .latency_ms
            .map(|ms| words::latency(ms, locale))
            .unwrap_or_else(|| "—".into());
        let pct = p
            .progress
            .map(|v| format!(" · {progress_word} {v:.0}%"))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<circle class="poll" cx="{:.1}" cy="{:.1}" r="2.5"><title>{} · {latency_word} {}{}</title></circle>"#,
            x(p),
            y_latency(p.latency_ms.unwrap_or(0)),
            html(&zoned_time(p.at, zone)),
            html(&value),
            html(&pct),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(minute: u32) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, minute, 0).unwrap()
    }

    #[test]
    fn one_circle_per_poll_and_the_axes_span_first_to_last() {
        let points: Vec<Point> = (0..7)
            .map(|i| Point {
                at: at(i),
                latency_ms: if i == 3 { None } else { Some(i as i64 * 1_500) },
                progress: Some(i as f64 * 10.0),
            })
            .collect();
        let svg = svg(&points, Locale::En, chrono_tz::Asia::Shanghai);
        assert_eq!(svg.matches("<circle class=\"poll\"").count(), 7);
        assert!(svg.contains("2026-12-01 18:00:00 UTC+8"), "{svg}");
        assert!(svg.contains("2026-12-01 18:06:00 UTC+8"), "{svg}");
        assert!(
            svg.contains(">9.0 s</text>"),
            "top of the latency axis: {svg}"
        );
        assert!(svg.contains("class=\"progress\""));
        // The first point sits on the left axis, the last on the right one.
        assert!(svg.contains("cx=\"64.0\""));
        assert!(svg.contains("cx=\"672.0\""));
    }

    #[test]
    fn nothing_to_draw_draws_nothing_and_one_poll_is_centred() {
        assert_eq!(svg(&[], Locale::ZhCn, chrono_tz::UTC), "");
        let one = [Point {
            at: at(0),
            latency_ms: Some(500),
            progress: None,
        }];
        let svg = svg(&one, Locale::ZhCn, chrono_tz::UTC);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("cx=\"368.0\""));
        assert!(svg.contains("延迟 500 毫秒"), "{svg}");
        assert!(!svg.contains("class=\"progress\""));
    }
}
