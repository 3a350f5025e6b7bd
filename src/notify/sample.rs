//! The sample alert `test-notify` sends and golden tests read: a realistic
//! full-data failure on a sub-step, marked as a test so that nobody in a
//! shared group mistakes it for a real one.

use chrono::{DateTime, Utc};

use super::Message;
use crate::config::{DEFAULT_CONSOLE_URL, Locale, Severity};
use crate::diff::ChangeKind;
use crate::dts::ErrorDetail;
use crate::rules::{
    ChangeNote, Event, EventKind, EventStatus, Fact, JobInfo, Notification, Reason, StepInfo,
    StepValues,
};
use crate::state::State;

const SAMPLE_ERROR: &str =
    "DTS-1020042 Execute sql error: Duplicate entry '1842' for key 'PRIMARY'";

/// A firing `failed` alert on `全量迁移 (03) › order_items`, flagged as a test.
pub fn sample_message(now: DateTime<Utc>, locale: Locale) -> Message {
    let job = JobInfo {
        id: "dtsl1fecyc1e01".into(),
        name: match locale {
            Locale::En => "orders mysql -> polardb".into(),
            Locale::ZhCn => "订单库 MySQL → PolarDB".into(),
        },
        region: "cn-hangzhou".into(),
        console_url: None,
    }
    .with_console(DEFAULT_CONSOLE_URL);
    let fact = Fact::StateIs {
        state: "Failed".into(),
    };
    let event = Event {
        status: EventStatus::Firing,
        reason: Reason::FirstNotification,
        rule: match locale {
            Locale::En => "step failed".into(),
            Locale::ZhCn => "步骤失败".into(),
        },
        kind: EventKind::Failed,
        severity: Severity::Critical,
        job: job.clone(),
        step: Some(StepInfo {
            path: "st03full/st03full_0001".into(),
            label: "全量迁移 (03) › order_items".into(),
            name: "order_items".into(),
            code: Some("03".into()),
            sub_step_id: Some("st03full_0001".into()),
            parent_name: Some("全量迁移".into()),
            parent_code: Some("03".into()),
        }),
        summary: fact.summary(),
        fact: Some(fact),
        changes: vec![
            ChangeNote::Kind(ChangeKind::State {
                from: State::Running,
                to: State::Failed,
                from_raw: "running".into(),
                to_raw: "Failed".into(),
            }),
            ChangeNote::Kind(ChangeKind::ErrorAppeared {
                message: SAMPLE_ERROR.into(),
            }),
        ],
        current: Some(StepValues {
            state: "Failed".into(),
            progress: Some(30),
            latency_ms: None,
            err_msg: Some(SAMPLE_ERROR.into()),
            error_details: vec![ErrorDetail {
                code: Some("DTS-1020042".into()),
                help_url: Some("https://help.aliyun.com/document_detail/462133.html".into()),
            }],
            need_acceleration: Some(false),
        }),
        folded: Vec::new(),
        first_seen: now,
        at: now,
        runbook: None,
    };
    Message {
        notifications: vec![Notification {
            job,
            events: vec![event],
        }],
        test: true,
    }
}
