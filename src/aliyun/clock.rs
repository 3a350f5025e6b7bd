//! Clock skew, explained. DTS refuses a request whose timestamp is more than
//! about 15 minutes off (`InvalidTimeStamp.Expired`); the fix is always on the
//! host, so the error names the local clock, how far it is from DTS's (read
//! from the answer's `Date` header) and NTP.

use chrono::{DateTime, Utc};

use crate::config::format_duration;

/// The message for `InvalidTimeStamp.Expired`: DTS's own text, then what the
/// operator has to do. `server_date` is the answer's `Date` header, if any.
pub fn explain_skew(dts_message: &str, local: DateTime<Utc>, server_date: Option<&str>) -> String {
    let server = server_date
        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|d| d.with_timezone(&Utc));
    let local_text = local.format("%Y-%m-%d %H:%M:%S UTC");
    let measured = match server {
        Some(server) => {
            let (direction, gap) = if local >= server {
                ("ahead of", local - server)
            } else {
                ("behind", server - local)
            };
            let gap = gap.to_std().unwrap_or_default();
            format!(
                "the local clock ({local_text}) is {} {direction} DTS's ({})",
                format_duration(std::time::Duration::from_secs(gap.as_secs())),
                server.format("%Y-%m-%d %H:%M:%S UTC")
            )
        }
        None => format!(
            "the local clock ({local_text}) is off from DTS's (its answer carried no Date to measure by how much)"
        ),
    };
    format!(
        "{dts_message} — {measured}; DTS allows 15 minutes. Synchronise this host's clock with NTP (chronyd or systemd-timesyncd; ntp.aliyun.com on Alibaba Cloud)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn names_the_local_clock_the_skew_and_ntp() {
        let message = explain_skew(
            "Specified time stamp or date value is expired.",
            at("2026-12-02T14:00:00Z"),
            Some("Wed, 02 Dec 2026 14:20:30 GMT"),
        );
        assert_eq!(
            message,
            "Specified time stamp or date value is expired. — the local clock (2026-12-02 14:00:00 UTC) is 20m30s behind DTS's (2026-12-02 14:20:30 UTC); DTS allows 15 minutes. Synchronise this host's clock with NTP (chronyd or systemd-timesyncd; ntp.aliyun.com on Alibaba Cloud)"
        );
        let ahead = explain_skew(
            "x",
            at("2026-12-02T15:00:00Z"),
            Some("Wed, 02 Dec 2026 14:00:00 GMT"),
        );
        assert!(ahead.contains("is 1h ahead of DTS's"), "{ahead}");
    }

    #[test]
    fn without_a_date_it_still_points_at_the_clock() {
        let message = explain_skew("x", at("2026-12-02T14:00:00Z"), Some("not a date"));
        assert!(
            message.contains("the local clock (2026-12-02 14:00:00 UTC) is off"),
            "{message}"
        );
        assert!(message.contains("NTP"), "{message}");
    }
}
