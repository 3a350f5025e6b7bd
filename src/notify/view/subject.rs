//! What an alert is about, in one phrase of the reader's language: the
//! step and what happened to it (`Full data › order_items failed`,
//! `增量同步延迟 5 分 40 秒（阈值 5 分钟）`), the error's code and first words
//! for a title, and how long a resolved alert lasted. The step and values
//! are data; the phrasing is ours. Pure.

use super::line::Line;
use super::words::{self, Word};
use crate::config::Locale;
use crate::rules::{Event, EventStatus, Fact, StepInfo};
use crate::state::State;

/// `Full data › order_items`: the step as a title names it (no codes).
pub fn step_short(step: &StepInfo, locale: Locale) -> String {
    match &step.parent_name {
        Some(parent) => format!(
            "{} › {}",
            words::step_name(parent, true, locale),
            words::step_name(&step.name, false, locale)
        ),
        None => words::step_name(&step.name, true, locale),
    }
}

/// `Full data (03) › order_items`: the step as the Step field names it.
pub fn step_long(step: &StepInfo, locale: Locale) -> String {
    let with_code = |name: String, code: &Option<String>| match code {
        Some(code) => format!("{name} ({code})"),
        None => name,
    };
    match &step.parent_name {
        Some(parent) => format!(
            "{} › {}",
            with_code(words::step_name(parent, true, locale), &step.parent_code),
            words::step_name(&step.name, false, locale)
        ),
        None => with_code(words::step_name(&step.name, true, locale), &step.code),
    }
}

/// The kind of API failure, as people say it.
fn failure_class(class: &str, locale: Locale) -> String {
    let (en, zh) = match class {
        "auth" => ("access denied", "鉴权失败"),
        "timeout" => ("timed out", "请求超时"),
        "network" => ("network error", "网络错误"),
        "server" => ("DTS server error", "DTS 服务端错误"),
        "client" => ("request rejected", "请求被拒绝"),
        "malformed" => ("unreadable answer", "响应无法解析"),
        "credentials" => ("no credentials", "无可用凭证"),
        "throttled" => ("throttled", "被限流"),
        "token_expired" => ("security token expired", "安全令牌过期"),
        "timestamp_expired" => ("clock skew", "时钟偏差"),
        _ => return class.to_string(),
    };
    match locale {
        Locale::En => en.to_string(),
        Locale::ZhCn => zh.to_string(),
    }
}

/// Builds a phrase from our words and data: `own("a").data(x)`.
fn own(text: impl Into<String>) -> Line {
    Line::new().own(text)
}

/// What happened, after the step's name (`" failed"`, `"失败"`), or the whole
/// phrase when the fact is not about a step (`true` when it follows the step).
/// DTS's words (states it invents, error classes) stay data.
fn happened(fact: &Fact, status: EventStatus, locale: Locale) -> (Line, bool) {
    let zh = locale == Locale::ZhCn;
    let pick = |en: Line, zh_line: Line| if zh { zh_line } else { en };
    let state = |s: &str| words::state(s, locale);
    let latency = |ms: i64| words::latency(ms, locale);
    let firing = status == EventStatus::Firing;
    let step = |line: Line| (line, true);
    let job = |line: Line| (line, false);
    match fact {
        Fact::StateIs { state: s } | Fact::StateNow { state: s } if !firing => step(pick(
            own(" recovered, now ").data(state(s)),
            own("已恢复，当前").data(state(s)),
        )),
        Fact::StateIs { state: s } if State::parse(s) == State::Failed => {
            step(pick(own(" failed"), own("失败")))
        }
        Fact::StateIs { state: s } => {
            step(pick(own(" is ").data(state(s)), own("").data(state(s))))
        }
        Fact::StateNow { state: s } => step(pick(
            own(" now ").data(state(s)),
            own("当前").data(state(s)),
        )),
        Fact::Error { .. } => step(pick(own(" error"), own("报错"))),
        Fact::ErrorCleared => step(pick(own(" error cleared"), own("报错已消除"))),
        Fact::ErrorNoLongerMatches => step(pick(
            own(" error no longer matches the rule"),
            own("报错已不符合规则"),
        )),
        Fact::LatencyAbove {
            latency_ms,
            threshold_ms,
        } => step(pick(
            own(format!(
                " latency {} (threshold {})",
                latency(*latency_ms),
                latency(*threshold_ms)
            )),
            own(format!(
                "延迟 {}（阈值 {}）",
                latency(*latency_ms),
                latency(*threshold_ms)
            )),
        )),
        Fact::LatencyBack { latency_ms } | Fact::LatencyNotYetBelow { latency_ms, .. } => {
            step(pick(
                own(format!(" latency back to {}", latency(*latency_ms))),
                own(format!("延迟已恢复至 {}", latency(*latency_ms))),
            ))
        }
        Fact::LatencyUnreported => step(pick(own(" reports no latency"), own("未报告延迟"))),
        Fact::StepEnded { state: s } => step(pick(
            own(" ended (").data(state(s)).own(")"),
            own("已结束（").data(state(s)).own("）"),
        )),
        Fact::ProgressStuck { progress } => step(pick(
            own(format!(" stalled at {progress}%")),
            own(format!("进度停滞在 {progress}%")),
        )),
        Fact::ProgressMoved { progress } => step(pick(
            own(format!(" moving again ({progress}%)")),
            own(format!("进度恢复（{progress}%）")),
        )),
        Fact::ProgressDone => step(pick(own(" reached 100%"), own("进度已达 100%"))),
        Fact::ProgressUnreported => step(pick(own(" reports no progress"), own("未报告进度"))),
        Fact::Replicating => step(pick(own(" replicating"), own("进入增量复制"))),
        Fact::Transition { from, to } => step(pick(
            own(": ").data(state(from)).own(" → ").data(state(to)),
            own("：").data(state(from)).own(" → ").data(state(to)),
        )),
        Fact::StepGone => step(pick(own(" no longer listed"), own("已不在任务步骤中"))),
        Fact::Unreachable { class, .. } => job(pick(
            own("Cannot poll the job (")
                .data(failure_class(class, locale))
                .own(")"),
            own("无法获取任务状态（")
                .data(failure_class(class, locale))
                .own("）"),
        )),
        Fact::StillFiring => job(pick(
            own("Still firing after its silence ended"),
            own("静默或抑制结束后告警仍在持续"),
        )),
        Fact::Reachable => job(pick(own("Job polled again"), own("任务状态已恢复获取"))),
        Fact::JobGone => job(pick(
            own("Job no longer listed by DTS"),
            own("DTS 已不再列出该任务"),
        )),
        Fact::NoPoll { seconds } => {
            let span = words::span(i64::try_from(*seconds).unwrap_or(i64::MAX), locale);
            job(pick(
                own(format!("No DTS poll succeeded for {span}")),
                own(format!("已 {span} 没有成功轮询 DTS")),
            ))
        }
        Fact::PollsAgain => job(pick(own("DTS polls succeed again"), own("DTS 轮询已恢复"))),
        Fact::DeadNotifications { .. } => {
            job(pick(own("Notifications given up"), own("告警消息投递失败")))
        }
        Fact::NoDeadLeft => job(pick(
            own("No dead notifications left"),
            own("已无投递失败的告警消息"),
        )),
        Fact::Throttled { accounts } => job(pick(
            own("DTS throttles account ").data(accounts.join(", ")),
            own("DTS 限流：账号 ").data(accounts.join("、")),
        )),
        Fact::NotThrottled => job(pick(own("DTS no longer throttles"), own("DTS 限流已解除"))),
        Fact::DatabaseReplaced { .. } => {
            job(pick(own("Database file replaced"), own("数据库文件被替换")))
        }
        Fact::DatabaseIsOurs => job(pick(
            own("Database file is dtswatch's again"),
            own("数据库文件已恢复"),
        )),
        Fact::StoreUnwritable { .. } => job(pick(
            own("Database cannot be written"),
            own("数据库无法写入"),
        )),
        Fact::StoreWritable => job(pick(own("Database written again"), own("数据库已恢复写入"))),
        Fact::NoLeader { .. } => job(pick(
            own("No dtswatch instance leads"),
            own("没有 dtswatch 实例在主用"),
        )),
        Fact::LeaderAgain { instance } => {
            job(pick(own("Leader again: "), own("已恢复主用实例：")).data(instance.clone()))
        }
    }
}

/// The alert in one phrase: the step (data) and what happened (ours).
pub fn subject(event: &Event, locale: Locale) -> Line {
    let Some(fact) = &event.fact else {
        // Queued by an older version: its English summary is all there is.
        let mut line = Line::new();
        if let Some(step) = &event.step {
            line.push_data(step_short(step, locale));
            line.push_own(": ");
        }
        line.push_data(event.summary.clone());
        return line;
    };
    let (happened, step_first) = happened(fact, event.status, locale);
    let text = happened.plain();
    let mut line = Line::new();
    if step_first {
        match &event.step {
            Some(step) => {
                let name = step_short(step, locale);
                // Chinese sets Latin words apart from the characters after them.
                let spaced = locale == Locale::ZhCn
                    && name.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && !text.starts_with([' ', '：']);
                line.push_data(name);
                if spaced {
                    line.push_own(" ");
                }
            }
            None => line.push_own(match locale {
                Locale::En => "Job",
                Locale::ZhCn => "任务",
            }),
        }
    }
    line.extend(happened);
    line
}

/// The error an event shows: its own `ErrMsg`, else a folded sub-step's.
pub fn error_text(event: &Event) -> Option<&str> {
    event
        .current
        .as_ref()
        .and_then(|v| v.err_msg.as_deref())
        .or_else(|| event.folded.iter().find_map(|f| f.err_msg.as_deref()))
        .or(match &event.fact {
            Some(Fact::Error { text }) => Some(text.as_str()),
            _ => None,
        })
}

/// The most a title says of an error.
const TITLE_ERROR_CHARS: usize = 48;

/// `DTS-1020042 Execute sql error: Duplicate entry…`: the error's code and
/// first words, for the title of a firing alert that has one.
pub fn error_brief(event: &Event) -> Option<String> {
    if event.status != EventStatus::Firing {
        return None;
    }
    let code = event
        .current
        .as_ref()
        .and_then(|v| v.error_details.iter().find(|d| !d.is_success()))
        .and_then(|d| d.code.as_deref().map(str::to_string));
    let text = error_text(event).map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "));
    let brief = match (code, text) {
        (Some(code), Some(text)) if text.contains(&code) => text,
        (Some(code), Some(text)) => format!("{code} {text}"),
        (Some(code), None) => code,
        (None, Some(text)) => text,
        (None, None) => return None,
    };
    Some(crate::text::ellipsize(&brief, TITLE_ERROR_CHARS))
}

/// `after 14 min` / `，持续 14 分钟`: how long a resolved alert lasted.
pub fn lasted(event: &Event, locale: Locale) -> Option<String> {
    if event.status != EventStatus::Resolved {
        return None;
    }
    let span = words::span((event.at - event.first_seen).num_seconds(), locale);
    Some(match locale {
        Locale::En => format!(" after {span}"),
        Locale::ZhCn => format!("，持续 {span}"),
    })
}

/// `Full data (03) › order_items · sub-step st03full_0001`.
pub fn step_field(step: &StepInfo, locale: Locale) -> Line {
    let mut line = Line::new().data(step_long(step, locale));
    if let Some(id) = &step.sub_step_id {
        line.push_own(format!(" · {} ", Word::SubStep.text(locale)));
        line.push_data(id.clone());
    }
    line
}
