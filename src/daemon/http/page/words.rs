//! The status page's words in each locale (`[messages] locale`), handed to
//! the templates as `w.KEY`. DTS states and step names come from the
//! messages' vocabulary (`notify::view::words`), so a step is called the
//! same on the page as in the alert that woke someone. Pure.

use std::collections::BTreeMap;

use crate::config::Locale;

/// Every key with its English and Chinese text.
const WORDS: &[(&str, &str, &str)] = &[
    ("title", "DTS jobs", "DTS 任务"),
    ("fleet", "Jobs", "任务"),
    ("alerts", "Alerts", "告警"),
    ("silences", "Silences", "静默"),
    ("outbox", "Outbox", "发送队列"),
    ("job", "Job", "任务"),
    ("region", "Region", "地域"),
    ("state", "State", "状态"),
    ("step", "Step", "步骤"),
    ("sub_step", "Sub-step", "子任务"),
    ("latency", "Latency", "延迟"),
    ("worst_latency", "Worst latency", "最大延迟"),
    ("progress", "Progress", "进度"),
    ("error", "Error", "错误"),
    ("last_poll", "Last poll", "最近轮询"),
    ("never", "never", "从未"),
    ("rule", "Rule", "规则"),
    ("severity", "Severity", "级别"),
    ("since", "Since", "开始于"),
    ("summary", "What", "详情"),
    ("firing", "firing", "告警中"),
    ("pending", "pending", "待定"),
    ("silenced", "silenced", "已静默"),
    ("inhibited", "inhibited", "已抑制"),
    ("by", "by", "来自"),
    ("no_jobs", "No job recorded yet.", "尚无任务记录。"),
    ("no_alerts", "Nothing firing or pending.", "没有告警。"),
    ("no_silences", "No silence in force.", "没有生效的静默。"),
    (
        "no_pending",
        "Every notification delivered.",
        "所有通知均已送达。",
    ),
    ("no_dead", "No dead notification.", "没有发送失败的通知。"),
    ("firing_alerts", "Firing alerts", "正在告警"),
    ("jobs_by_state", "Jobs by state", "任务状态"),
    ("leader", "Leader", "主用实例"),
    ("no_leader", "none", "无"),
    ("term", "term", "任期"),
    ("instances", "instances", "个实例"),
    ("poll_failing", "poll failing", "轮询失败"),
    ("no_data", "no data", "无数据"),
    ("chart", "Latency and progress", "延迟与进度"),
    (
        "chart_empty",
        "No successful poll in this window.",
        "该时间段内没有成功的轮询。",
    ),
    ("history", "History", "历史"),
    (
        "nothing_happened",
        "Nothing happened in this window.",
        "该时间段内没有变化。",
    ),
    ("silence", "Silence", "静默"),
    ("silence_for", "For", "时长"),
    ("comment", "Comment", "原因"),
    ("token", "API token", "API 令牌"),
    ("add_silence", "Silence this alert", "静默此告警"),
    ("expire", "Expire", "结束"),
    ("retry", "Retry", "重试"),
    ("ends", "Ends", "结束于"),
    ("window", "Window", "时间窗"),
    ("matchers", "Matches", "匹配"),
    ("source", "Source", "来源"),
    ("author", "Author", "创建人"),
    ("channel", "Channel", "通道"),
    ("created", "Queued", "入队时间"),
    ("attempts", "Attempts", "尝试次数"),
    ("next_attempt", "Next attempt", "下次尝试"),
    ("last_error", "Last error", "最近错误"),
    ("dead", "Dead letters", "发送失败"),
    ("pending_rows", "Waiting", "等待发送"),
    ("back", "Back", "返回"),
    ("done", "Done", "完成"),
    ("refused", "Refused", "被拒绝"),
    (
        "refresh_note",
        "This page refreshes every 30 s.",
        "本页每 30 秒自动刷新。",
    ),
    (
        "token_note",
        "Writes need a token from [server] tokens; it is sent with this form only, never stored in the browser.",
        "写操作需要 [server] tokens 中的令牌；令牌只随本表单发送，不会保存在浏览器中。",
    ),
];

/// The words for `locale`, by key.
pub fn words(locale: Locale) -> BTreeMap<&'static str, &'static str> {
    WORDS
        .iter()
        .map(|(key, en, zh)| {
            (
                *key,
                match locale {
                    Locale::En => *en,
                    Locale::ZhCn => *zh,
                },
            )
        })
        .collect()
}

/// The page's `lang` attribute.
pub fn lang(locale: Locale) -> &'static str {
    match locale {
        Locale::En => "en",
        Locale::ZhCn => "zh-CN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_translated() {
        let mut keys: Vec<&str> = WORDS.iter().map(|(k, _, _)| *k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), WORDS.len(), "a key is listed twice");
        for (key, en, zh) in WORDS {
            assert!(!en.is_empty() && !zh.is_empty(), "{key}");
            assert!(!zh.is_ascii(), "`{key}` is not translated: {zh}");
        }
    }
}
