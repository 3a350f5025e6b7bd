//! The words of a message in each locale: labels, statuses and
//! severities, DTS states and step names as people say them, durations and
//! latencies. English is written for an on-call engineer; Chinese as a
//! Chinese DBA writes an alert (`【告警·严重】`, 任务/步骤/错误/延迟/进度).
//! Pure lookups; what a sentence says is `subject.rs`'s.

use crate::config::{Locale, Severity};
use crate::rules::watchdog::{DEAD_RULE, FILE_RULE, NO_POLL_RULE, STORE_RULE, THROTTLE_RULE};
use crate::rules::{Event, EventKind, EventStatus};
use crate::state::State;

/// A field label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Job,
    Step,
    SubSteps,
    State,
    Latency,
    Error,
    PreviousError,
    Help,
    Acceleration,
    Changed,
    What,
    FirstSeen,
    Lasted,
    Rule,
    Silence,
}

impl Label {
    pub fn text(self, locale: Locale) -> &'static str {
        let (en, zh) = match self {
            Label::Job => ("Job", "任务"),
            Label::Step => ("Step", "步骤"),
            Label::SubSteps => ("Sub-steps", "子任务"),
            Label::State => ("State", "状态"),
            Label::Latency => ("Latency", "延迟"),
            Label::Error => ("Error", "错误"),
            Label::PreviousError => ("Previous error", "此前错误"),
            Label::Help => ("Help", "帮助文档"),
            Label::Acceleration => ("Needs acceleration", "需要加速"),
            Label::Changed => ("Changed", "变化"),
            Label::What => ("What", "详情"),
            Label::FirstSeen => ("First seen", "首次发现"),
            Label::Lasted => ("Lasted", "持续"),
            Label::Rule => ("Rule", "规则"),
            Label::Silence => ("Silence", "静默"),
        };
        pick(locale, en, zh)
    }
}

fn pick(locale: Locale, en: &'static str, zh: &'static str) -> &'static str {
    match locale {
        Locale::En => en,
        Locale::ZhCn => zh,
    }
}

/// Small words the renderer puts between data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// `: ` after a label.
    Colon,
    /// Between items of a list.
    ListSeparator,
    Progress,
    SubStep,
    Threshold,
    Yes,
    Runbook,
    Console,
    /// The comment prefilled in the silence command.
    SilenceComment,
    /// The footer of a test message.
    TestFooter,
}

impl Word {
    pub fn text(self, locale: Locale) -> &'static str {
        let (en, zh) = match self {
            Word::Colon => (": ", "："),
            Word::ListSeparator => (", ", "、"),
            Word::Progress => ("progress", "进度"),
            Word::SubStep => ("sub-step", "子任务"),
            Word::Threshold => ("threshold", "阈值"),
            Word::Yes => ("yes", "是"),
            Word::Runbook => ("Runbook", "处理手册"),
            Word::Console => ("DTS console", "DTS 控制台"),
            Word::SilenceComment => ("investigating", "处理中"),
            Word::TestFooter => (
                "A test message from dtswatch test-notify; nothing is wrong.",
                "这是 dtswatch test-notify 发送的测试消息，无需处理。",
            ),
        };
        pick(locale, en, zh)
    }
}

/// The rule as messages name it: the user's name, or for the watchdog's
/// own rules (dtswatch about itself) a name in the reader's language.
pub fn rule_name(event: &Event, locale: Locale) -> String {
    if event.kind != EventKind::Watchdog || locale == Locale::En {
        return event.rule.clone();
    }
    match event.rule.as_str() {
        NO_POLL_RULE => "自监控：轮询无成功",
        DEAD_RULE => "自监控：告警投递失败",
        THROTTLE_RULE => "自监控：DTS 限流",
        FILE_RULE => "自监控：数据库文件被替换",
        STORE_RULE => "自监控：数据库无法写入",
        other => other,
    }
    .to_string()
}

/// The job as messages name it; the watchdog's pseudo-job is dtswatch itself.
pub fn job_name(event: &Event, locale: Locale) -> String {
    match (event.kind, locale) {
        (EventKind::Watchdog, Locale::ZhCn) => "dtswatch 自身".into(),
        (EventKind::Watchdog, Locale::En) => "dtswatch itself".into(),
        _ => event.job.name.clone(),
    }
}

pub fn severity(severity: Severity, locale: Locale) -> &'static str {
    match severity {
        Severity::Critical => pick(locale, "critical", "严重"),
        Severity::Warning => pick(locale, "warning", "警告"),
        Severity::Info => pick(locale, "info", "提示"),
    }
}

/// `[FIRING·critical]` / `【告警·严重】`, `[RESOLVED]` / `【恢复】`.
pub fn status_tag(status: EventStatus, severity_of: Severity, locale: Locale) -> String {
    match (status, locale) {
        (EventStatus::Firing, Locale::En) => {
            format!("[FIRING·{}]", severity(severity_of, locale))
        }
        (EventStatus::Firing, Locale::ZhCn) => {
            format!("【告警·{}】", severity(severity_of, locale))
        }
        (EventStatus::Resolved, Locale::En) => "[RESOLVED]".into(),
        (EventStatus::Resolved, Locale::ZhCn) => "【恢复】".into(),
    }
}

/// `[TEST]` / `【测试】`, before the title of a test message.
pub fn test_tag(locale: Locale) -> &'static str {
    pick(locale, "[TEST] ", "【测试】")
}

/// A DTS state as people say it; an unknown state is kept as DTS sent it.
pub fn state(raw: &str, locale: Locale) -> String {
    let (en, zh) = match State::parse(raw) {
        State::Init => ("not started", "未开始"),
        State::Schedule => ("scheduled", "调度中"),
        State::Running => ("running", "运行中"),
        State::Catched => ("caught up", "已追上"),
        State::Pause => ("paused", "已暂停"),
        State::Finished => ("finished", "已完成"),
        State::Failed => ("failed", "失败"),
        State::Other(_) => return raw.trim().to_string(),
    };
    pick(locale, en, zh).to_string()
}

/// The stages of a DTS job, whatever DTS calls them in a given API version
/// or console language (`预检查`, `dts.step.struct.load`, `Full Data Migration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Precheck,
    Schema,
    Full,
    Incremental,
    Validation,
}

fn stage_of(name: &str) -> Option<Stage> {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    let has_prefix = |p: &str| words.iter().any(|w| w.starts_with(p));
    if lower.contains("预检") || has("precheck") || (has("pre") && has("check")) {
        Some(Stage::Precheck)
    } else if lower.contains("校验")
        || has("validation")
        || has("verify")
        || has_prefix("check")
        || lower.contains("fullcheck")
    {
        Some(Stage::Validation)
    } else if lower.contains("结构") || has("struct") || has("schema") || has("structure") {
        Some(Stage::Schema)
    } else if lower.contains("全量") || has("full") {
        Some(Stage::Full)
    } else if lower.contains("增量") || has_prefix("incr") || has("inc") || has("cdc") {
        Some(Stage::Incremental)
    } else {
        None
    }
}

fn stage_name(stage: Stage, locale: Locale) -> &'static str {
    match stage {
        Stage::Precheck => pick(locale, "Precheck", "预检查"),
        Stage::Schema => pick(locale, "Schema migration", "结构迁移"),
        Stage::Full => pick(locale, "Full data", "全量迁移"),
        Stage::Incremental => pick(locale, "Incremental", "增量同步"),
        Stage::Validation => pick(locale, "Validation", "数据校验"),
    }
}

fn has_han(text: &str) -> bool {
    text.chars()
        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c))
}

/// A step's name as people say it. Top-level steps are DTS's stages: a
/// Chinese name is kept as written for Chinese readers (`全量同步` says more
/// than the stage), anything else recognised is named in the locale.
/// Sub-steps are tables and workers (`order_items`, `binlog-reader`) and are
/// kept, unless they are DTS message keys (`dts.step.…`).
pub fn step_name(raw: &str, top_level: bool, locale: Locale) -> String {
    let raw = raw.trim();
    if !top_level && !raw.starts_with("dts.") {
        return raw.to_string();
    }
    if locale == Locale::ZhCn && has_han(raw) {
        return raw.to_string();
    }
    match stage_of(raw) {
        Some(stage) => stage_name(stage, locale).to_string(),
        None => raw.to_string(),
    }
}

/// `40 s`, `14 min`, `2 h 5 min`, `3 d 4 h` / `40 秒`, `14 分钟`, `2 小时 5 分钟`.
pub fn span(seconds: i64, locale: Locale) -> String {
    let s = seconds.max(0);
    let (sec, min, hour, day) = match locale {
        Locale::En => ("s", "min", "h", "d"),
        Locale::ZhCn => ("秒", "分钟", "小时", "天"),
    };
    match s {
        s if s < 60 => format!("{s} {sec}"),
        s if s < 3600 => format!("{} {min}", s / 60),
        s if s < 86_400 && s % 3600 < 60 => format!("{} {hour}", s / 3600),
        s if s < 86_400 => format!("{} {hour} {} {min}", s / 3600, (s % 3600) / 60),
        s if s % 86_400 < 3600 => format!("{} {day}", s / 86_400),
        s => format!("{} {day} {} {hour}", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `850 ms`, `12.3 s`, `5 min 40 s` / `850 毫秒`, `12.3 秒`, `5 分 40 秒`, `5 分钟`.
pub fn latency(ms: i64, locale: Locale) -> String {
    let (milli, sec, min, whole_min) = match locale {
        Locale::En => ("ms", "s", "min", "min"),
        Locale::ZhCn => ("毫秒", "秒", "分", "分钟"),
    };
    match ms {
        ms if ms < 1_000 => format!("{ms} {milli}"),
        ms if ms < 60_000 => format!("{:.1} {sec}", ms as f64 / 1000.0),
        ms if ms % 60_000 < 1_000 => format!("{} {whole_min}", ms / 60_000),
        ms => format!("{} {min} {} {sec}", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_named_as_people_say_them() {
        let en = Locale::En;
        let zh = Locale::ZhCn;
        assert_eq!(step_name("dts.step.struct.load", true, zh), "结构迁移");
        assert_eq!(
            step_name("dts.step.struct.load", true, en),
            "Schema migration"
        );
        assert_eq!(step_name("预检查", true, en), "Precheck");
        assert_eq!(step_name("预检查", true, zh), "预检查");
        assert_eq!(step_name("全量同步", true, zh), "全量同步");
        assert_eq!(step_name("全量迁移", true, en), "Full data");
        assert_eq!(
            step_name("Incremental Data Migration", true, zh),
            "增量同步"
        );
        assert_eq!(step_name("增量迁移", true, en), "Incremental");
        assert_eq!(step_name("数据校验", true, en), "Validation");
        assert_eq!(step_name("fullcheck", true, en), "Validation");
        assert_eq!(step_name("Synchronization", true, en), "Synchronization");
        assert_eq!(step_name("full_refunds", false, en), "full_refunds");
        assert_eq!(step_name("dts.step.full.load", false, zh), "全量迁移");
    }

    #[test]
    fn states_read_naturally() {
        assert_eq!(state("Catched", Locale::ZhCn), "已追上");
        assert_eq!(state("Catched", Locale::En), "caught up");
        assert_eq!(state("○ Finished", Locale::ZhCn), "已完成");
        assert_eq!(state("Migrating2", Locale::ZhCn), "Migrating2");
    }

    #[test]
    fn spans_and_latencies_in_both_languages() {
        assert_eq!(span(40, Locale::En), "40 s");
        assert_eq!(span(14 * 60 + 5, Locale::ZhCn), "14 分钟");
        assert_eq!(span(2 * 3600 + 5 * 60, Locale::ZhCn), "2 小时 5 分钟");
        assert_eq!(span(3 * 86_400 + 4 * 3600, Locale::En), "3 d 4 h");
        assert_eq!(latency(850, Locale::ZhCn), "850 毫秒");
        assert_eq!(latency(12_300, Locale::En), "12.3 s");
        assert_eq!(latency(340_000, Locale::ZhCn), "5 分 40 秒");
        assert_eq!(latency(300_000, Locale::En), "5 min");
        assert_eq!(latency(300_000, Locale::ZhCn), "5 分钟");
    }
}
