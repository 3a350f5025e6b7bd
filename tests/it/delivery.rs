//! Delivery end to end: alerts raised by the real pipeline, queued in the
//! outbox of a real SQLite file, delivered by the worker to loopback fakes
//! that verify signatures and enforce limits like the platforms do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dtswatch::aliyun::ApiFailure;
use dtswatch::dts::JobSnapshot;
use dtswatch::dts::api::{self, Fetched};
use dtswatch::notify::outbox::{Deliverer, Outcome};
use dtswatch::sim::scenario;

use crate::helpers::{TestApp, TestConfig};
use crate::peers;

/// A config with the given channels and one `failed` rule sending to all of them.
fn config(channels: &str, rule_channels: &[&str], extra: &str) -> TestConfig {
    let list = rule_channels
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    TestConfig::offline()
        .set("delivery", "backoff", "\"50ms\"")
        .set("delivery", "max_backoff", "\"200ms\"")
        .set("delivery", "max_age", "\"1h\"")
        .set("delivery", "drain_timeout", "\"10s\"")
        .job("placeholder")
        .with(channels)
        .with(&format!(
            "[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [{list}]"
        ))
        .with(extra)
}

fn snapshot(state: &str, err: Option<&str>) -> JobSnapshot {
    let steps = vec![scenario::SimStep {
        id: Some("st03full".into()),
        name: "全量迁移".into(),
        code: Some("03".into()),
        state: state.into(),
        progress: 45,
        err: err.map(str::to_string),
        ..Default::default()
    }];
    let body = scenario::render_list_job_step(&steps, "R", "2026-11-30T00:00:00Z");
    JobSnapshot::from_response(&api::parse_list_job_step(body.to_string().as_bytes()).unwrap())
}

#[allow(clippy::result_large_err)] // mirrors what `poll::fetch` returns
fn fetched(snapshot: JobSnapshot) -> Result<Fetched, ApiFailure> {
    Ok(Fetched {
        snapshot: std::sync::Arc::new(snapshot),
        request_id: None,
        attempts: 1,
        retried: Vec::new(),
        backoff: std::time::Duration::ZERO,
    })
}

/// A poll result with the step failed, for tests elsewhere.
#[allow(clippy::result_large_err)] // the shape poll::fetch returns
pub fn fetched_failed() -> Result<Fetched, ApiFailure> {
    fetched(snapshot("Failed", Some("DTS-1020042 boom")))
}

/// A `TestApp` with the steps these tests take.
struct Setup {
    app: TestApp,
}

async fn setup(config: TestConfig) -> Setup {
    Setup {
        app: TestApp::new(config).await,
    }
}

impl Setup {
    /// Records one poll of `job_id` seeing the step in `state`.
    async fn poll(&self, job_id: &str, state: &str, at: DateTime<Utc>) {
        let err =
            (state == "Failed").then_some("DTS-1020042 Duplicate entry '1842' for key 'PRIMARY'");
        self.app
            .record(job_id, at, &fetched(snapshot(state, err)))
            .await;
    }

    /// `n` different jobs failing now: one outbox row per job and channel.
    async fn failures(&self, n: usize) {
        for i in 0..n {
            self.poll(&format!("dtsfail{i:03}"), "Failed", Utc::now())
                .await;
        }
    }

    fn deliverer(&self) -> &Deliverer {
        &self.app.deliverer
    }

    async fn statuses(&self) -> Vec<(String, String, i64, Option<String>)> {
        sqlx::query_as("SELECT channel, status, attempts, last_error FROM outbox ORDER BY id")
            .fetch_all(self.app.store.pool())
            .await
            .unwrap()
    }

    /// The whole database file, to look for secrets in it.
    async fn bytes(&self) -> Vec<u8> {
        self.app.store.vacuum().await.unwrap();
        std::fs::read(&self.app.config.storage.path).unwrap()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn dingtalk_gets_a_signed_markdown_message_and_no_secret_is_stored() {
    let fake = peers::dingtalk::DingTalk::start().await;
    let channels = format!(
        "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"{}\"\nat_mobiles = [\"13800000000\"]",
        fake.url(),
        fake.secret
    );
    let setup = setup(config(&channels, &["oncall"], "")).await;
    setup.failures(1).await;
    assert_eq!(setup.app.drain_outbox().await, 0);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1, "{:?}", fake.answers());
    let body = accepted[0].json();
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "#### 🔴 [FIRING·critical] Full data failed · job dtsfail000 · DTS-1020042"
        ),
        "{text}"
    );
    assert!(text.contains("**Step:** Full data (03)"), "{text}");
    assert!(text.contains("DTS-1020042 Duplicate entry"));
    assert!(text.ends_with("@13800000000"));
    assert_eq!(body["at"]["atMobiles"][0], "13800000000");
    assert_eq!(setup.statuses().await[0].1, "delivered");
    let db = setup.bytes().await;
    assert!(
        !contains(&db, &fake.token),
        "the access token is not in the database"
    );
    assert!(
        !contains(&db, &fake.secret),
        "the signing secret is not in the database"
    );
}

#[tokio::test]
async fn a_wrong_dingtalk_secret_is_a_permanent_error_with_the_reason_kept() {
    let fake = peers::dingtalk::DingTalk::start().await;
    let channels = format!(
        "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"SECwrong\"",
        fake.url()
    );
    let setup = setup(config(&channels, &["oncall"], "")).await;
    setup.failures(1).await;
    let outcome = setup
        .deliverer()
        .try_deliver_one("oncall", Utc::now())
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Dead(1));
    let (_, status, attempts, error) = setup.statuses().await.remove(0);
    assert_eq!((status.as_str(), attempts), ("dead", 1));
    assert_eq!(
        error.as_deref(),
        Some("DingTalk errcode 310000: sign not match")
    );
}

#[tokio::test]
async fn a_group_window_batches_jobs_into_one_message() {
    let fake = peers::dingtalk::DingTalk::start().await;
    let channels = format!(
        "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"{}\"\ngroup_window = \"30s\"",
        fake.url(),
        fake.secret
    );
    let setup = setup(config(&channels, &["oncall"], "")).await;
    setup.failures(25).await;
    let deliverer = setup.deliverer();
    assert!(matches!(
        deliverer
            .try_deliver_one("oncall", Utc::now())
            .await
            .unwrap(),
        Outcome::NotDue(_)
    ));
    let after_window = Utc::now() + chrono::Duration::seconds(31);
    assert_eq!(
        deliverer
            .try_deliver_one("oncall", after_window)
            .await
            .unwrap(),
        Outcome::Delivered(25)
    );
    assert_eq!(fake.accepted().len(), 1);
    let text = fake.accepted()[0].json()["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("- 🔴 [FIRING·critical] Full data failed · job dtsfail"))
            .count(),
        25,
        "all 25 jobs are listed, one line each: {text}"
    );
    assert!(
        text.starts_with("#### 🔴 [FIRING·critical] 25 firing: step failed ×25 · job dtsfail000"),
        "{text}"
    );
    assert!(
        fake.accepted()[0].json()["markdown"]["title"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING·critical] 25 firing: step failed ×25 · job dtsfail000")
    );
}

#[tokio::test]
async fn more_than_twenty_messages_a_minute_wait_for_the_limit() {
    let fake = peers::dingtalk::DingTalk::start().await;
    let channels = format!(
        "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"{}\"",
        fake.url(),
        fake.secret
    );
    let setup = setup(config(&channels, &["oncall"], "")).await;
    let deliverer = setup.deliverer();
    let mut limited = None;
    for i in 0..22 {
        setup
            .poll(&format!("dtsfail{i:03}"), "Failed", Utc::now())
            .await;
        match deliverer
            .try_deliver_one("oncall", Utc::now())
            .await
            .unwrap()
        {
            Outcome::Delivered(1) => {}
            Outcome::RateLimited(at) => {
                limited = Some((i, at));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (at_message, until) = limited.expect("the limit applied");
    assert_eq!(at_message, 20, "20 messages go out, the 21st waits");
    assert!(
        until > Utc::now() + chrono::Duration::seconds(50),
        "it waits about a minute"
    );
    assert_eq!(fake.accepted().len(), 20);
    assert!(
        fake.answers().iter().all(|a| !a.contains("130101")),
        "DingTalk never had to throttle us"
    );
}

#[tokio::test]
async fn dingtalk_throttling_errcode_is_retried_after_a_minute() {
    let fake = peers::dingtalk::DingTalk::start().await;
    let channels = format!(
        "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"{}\"\nrate_limit = \"off\"",
        fake.url(),
        fake.secret
    );
    let setup = setup(config(&channels, &["oncall"], "")).await;
    let deliverer = setup.deliverer();
    for i in 0..21 {
        setup
            .poll(&format!("dtsfail{i:03}"), "Failed", Utc::now())
            .await;
        let outcome = deliverer
            .try_deliver_one("oncall", Utc::now())
            .await
            .unwrap();
        if i < 20 {
            assert_eq!(outcome, Outcome::Delivered(1));
        } else {
            let Outcome::WillRetry(at) = outcome else {
                panic!("expected a retry, got {outcome:?}")
            };
            assert!(
                at >= Utc::now() + chrono::Duration::seconds(55),
                "retry_after 60 s is honoured: {at}"
            );
        }
    }
    let last = setup.statuses().await.pop().unwrap();
    assert_eq!(last.1, "pending");
    assert!(last.3.unwrap().contains("130101"));
}

#[tokio::test]
async fn slack_429_retry_after_is_honoured() {
    let fake = peers::slack::Slack::start().await;
    fake.throttle(1, 1);
    let channels = format!(
        "[channels.team]\ntype = \"slack\"\nurl = \"{}\"",
        fake.url()
    );
    let setup = setup(config(&channels, &["team"], "")).await;
    setup.failures(1).await;
    let deliverer = setup.deliverer();
    let Outcome::WillRetry(at) = deliverer.try_deliver_one("team", Utc::now()).await.unwrap()
    else {
        panic!("429 is retried")
    };
    assert!(
        at >= Utc::now() + chrono::Duration::milliseconds(900),
        "waits at least Retry-After: {at}"
    );
    match deliverer.try_deliver_one("team", Utc::now()).await.unwrap() {
        Outcome::NotDue(due) => assert_eq!(due.timestamp_millis(), at.timestamp_millis()),
        other => panic!("expected NotDue, got {other:?}"),
    }
    assert_eq!(setup.app.drain_outbox().await, 0);
    let log = fake.log.lock().unwrap().clone();
    assert_eq!(
        log.iter().map(|r| r.answer.as_str()).collect::<Vec<_>>(),
        ["rate_limited", "ok"]
    );
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_millis(950));
    let body = log[1].json();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING·critical] Full data failed")
    );
    assert_eq!(body["blocks"][0]["type"], "header");
}

#[tokio::test]
async fn feishu_checks_the_signature() {
    let fake = peers::feishu::Feishu::start().await;
    let good = format!(
        "[channels.lark]\ntype = \"feishu\"\nurl = \"{}\"\nsecret = \"{}\"",
        fake.url(),
        fake.secret
    );
    let bad = format!(
        "[channels.lark2]\ntype = \"feishu\"\nurl = \"{}\"\nsecret = \"not-the-secret\"\nformat = \"post\"",
        fake.url()
    );
    let setup = setup(config(&format!("{good}\n{bad}"), &["lark", "lark2"], "")).await;
    setup.failures(1).await;
    let deliverer = setup.deliverer();
    assert_eq!(
        deliverer.try_deliver_one("lark", Utc::now()).await.unwrap(),
        Outcome::Delivered(1)
    );
    assert_eq!(
        deliverer
            .try_deliver_one("lark2", Utc::now())
            .await
            .unwrap(),
        Outcome::Dead(1)
    );
    let answers = fake.answers();
    assert!(answers[0].contains("\"code\":0"));
    assert!(answers[1].contains("19021"));
    let card = fake.log.lock().unwrap()[0].json();
    assert_eq!(card["msg_type"], "interactive");
    assert_eq!(card["card"]["header"]["template"], "red");
}

#[tokio::test]
async fn wecom_markdown_with_mentions_and_a_bad_key() {
    let fake = peers::wecom::WeCom::start().await;
    let channels = format!(
        "[channels.wx]\ntype = \"wecom\"\nurl = \"{}\"\nmentioned_mobiles = [\"13800000000\"]\n\n[channels.wxbad]\ntype = \"wecom\"\nurl = \"{}\"",
        fake.url(&fake.key),
        fake.url("wrong-key")
    );
    let setup = setup(config(&channels, &["wx", "wxbad"], "")).await;
    setup.failures(1).await;
    let deliverer = setup.deliverer();
    assert_eq!(
        deliverer.try_deliver_one("wx", Utc::now()).await.unwrap(),
        Outcome::Delivered(1)
    );
    assert_eq!(
        deliverer
            .try_deliver_one("wxbad", Utc::now())
            .await
            .unwrap(),
        Outcome::Dead(1)
    );
    let requests = fake.requests();
    assert_eq!(requests[0].json()["msgtype"], "markdown");
    assert!(
        requests[0].json()["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("<font color=\"warning\">")
    );
    assert_eq!(
        requests[1].json()["text"]["mentioned_mobile_list"][0],
        "13800000000"
    );
    assert!(requests[2].answer.contains("93000"));
    let db = setup.bytes().await;
    assert!(
        !contains(&db, &fake.key),
        "the WeCom key is not in the database"
    );
}

#[tokio::test]
async fn webhooks_are_signed_carry_custom_headers_and_retry_5xx() {
    let fake = peers::webhook::Webhook::start().await;
    fake.fail(2);
    let channels = format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\nheaders = {{ \"X-Team\" = \"dba\" }}",
        fake.url(),
        fake.secret
    );
    let setup = setup(config(&channels, &["hook"], "")).await;
    setup.failures(1).await;
    assert_eq!(setup.app.drain_outbox().await, 0);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].headers["x-team"], "dba");
    let body = accepted[0].json();
    assert_eq!(body["version"], "dtswatch.webhook.v1");
    assert_eq!(body["alerts"][0]["labels"]["job_id"], "dtsfail000");
    assert_eq!(setup.statuses().await[0].2, 3, "two 500s, then success");
    assert!(!contains(&setup.bytes().await, &fake.secret));
}

#[tokio::test]
async fn email_over_starttls_with_auth_and_a_private_ca() {
    let smtp = peers::smtp::Smtp::start(true);
    let channels = format!(
        "[channels.dba]\ntype = \"email\"\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\nusername = \"{}\"\npassword = \"{}\"\nfrom = \"dtswatch <alerts@example.com>\"\nto = [\"dba@example.com\", \"oncall@example.com\"]\nca_file = \"{}\"",
        smtp.addr.port(),
        smtp.user,
        smtp.password,
        smtp.ca_file.as_ref().unwrap().display()
    );
    let setup = setup(config(&channels, &["dba"], "")).await;
    setup.failures(1).await;
    assert_eq!(setup.app.drain_outbox().await, 0);
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(
        mail.user.as_deref(),
        Some("alerts@example.com"),
        "authenticated"
    );
    assert_eq!(mail.to, ["dba@example.com", "oncall@example.com"]);
    assert!(
        subject(&mail.data).starts_with("[FIRING·critical] Full data failed · job dtsfail000"),
        "{}",
        mail.data
    );
    assert_eq!(mail.from, "alerts@example.com");
    assert!(mail.data.contains("Auto-Submitted: auto-generated"));
    assert!(mail.data.contains("Message-ID: <"));
    assert!(mail.data.contains("Content-Type: multipart/alternative"));
    assert!(
        mail.data
            .contains("Content-Type: text/plain; charset=utf-8")
    );
    assert!(mail.data.contains("Content-Type: text/html; charset=utf-8"));
    assert!(!contains(&setup.bytes().await, &smtp.password));
}

#[tokio::test]
async fn email_to_a_loopback_relay_without_tls() {
    let smtp = peers::smtp::Smtp::start(false);
    let channels = format!(
        "[channels.dba]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"dtswatch <alerts@example.com>\"\nto = [\"dba@example.com\"]",
        smtp.addr.port()
    );
    let setup = setup(config(&channels, &["dba"], "")).await;
    setup.failures(1).await;
    let pending = setup.app.drain_outbox().await;
    assert_eq!(pending, 0, "{:?}", setup.statuses().await);
    assert_eq!(smtp.received().len(), 1, "{:?}", setup.statuses().await);
    assert!(subject(&smtp.received()[0].data).contains("Full data failed"));
}

/// The Subject header of a mail as sent, unfolded and with its RFC 2047
/// encoded words (`=?utf-8?b?…?=`, used for anything not ASCII) decoded.
fn subject(data: &str) -> String {
    use base64::Engine as _;
    let mut lines = data
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| !l.starts_with("Subject:"));
    let mut header = lines.next().unwrap_or_default()["Subject:".len()..].to_string();
    for line in lines.take_while(|l| l.starts_with(' ')) {
        header.push_str(line);
    }
    // White space between two encoded words is not part of the text.
    let adjacent = regex::Regex::new(r"\?=\s+=\?").unwrap();
    let header = adjacent.replace_all(header.trim(), "?==?");
    let words = regex::Regex::new(r"=\?utf-8\?b\?([^?]*)\?=").unwrap();
    words
        .replace_all(&header, |c: &regex::Captures| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&c[1])
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .into_owned()
}

#[tokio::test]
async fn a_peer_down_then_up_gets_every_notification_once_and_in_order() {
    let fake = peers::webhook::Webhook::start().await;
    let channels = format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"",
        fake.url(),
        fake.secret
    );
    let setup = setup(config(&channels, &["hook"], "")).await;
    fake.server.down().await;
    let deliverer = setup.deliverer();
    let start = Utc::now();
    for (i, state) in ["Failed", "Running", "Failed", "Running", "Failed"]
        .iter()
        .enumerate()
    {
        setup
            .poll(
                "dtsflaky",
                state,
                start + chrono::Duration::seconds(i as i64),
            )
            .await;
        let _ = deliverer.try_deliver_one("hook", Utc::now()).await.unwrap();
    }
    // Down: connection refused, retried with backoff.
    let pending = deliverer
        .drain(tokio::time::Instant::now() + Duration::from_millis(500))
        .await
        .unwrap()
        .pending;
    assert!(pending > 0);
    let statuses = setup.statuses().await;
    assert!(statuses[0].2 >= 2, "retried: {statuses:?}");
    assert!(
        statuses[0]
            .3
            .as_deref()
            .unwrap()
            .contains("error sending request"),
        "{statuses:?}"
    );
    assert!(
        !statuses[0].3.as_deref().unwrap().contains("hooks/dtswatch"),
        "no URL in the error"
    );
    fake.server.up().await;
    assert_eq!(setup.app.drain_outbox().await, 0);
    let statuses: Vec<String> = fake
        .accepted()
        .iter()
        .flat_map(|r| {
            r.json()["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["status"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        statuses,
        ["firing", "resolved", "firing", "resolved", "firing"]
    );
}

#[tokio::test]
async fn a_misconfigured_channel_does_not_block_the_others() {
    let dingtalk = peers::dingtalk::DingTalk::start().await;
    let slack = peers::slack::Slack::start().await;
    let channels = format!(
        "[channels.broken]\ntype = \"dingtalk\"\nurl = \"{}\"\n\n[channels.team]\ntype = \"slack\"\nurl = \"{}\"",
        dingtalk.server.url("/robot/send?access_token=revoked"),
        slack.url()
    );
    let setup = setup(config(&channels, &["broken", "team"], "")).await;
    setup.failures(3).await;
    assert_eq!(setup.app.drain_outbox().await, 0);
    let told: String = slack.accepted().iter().map(|r| r.body.clone()).collect();
    for job in ["dtsfail000", "dtsfail001", "dtsfail002"] {
        assert!(told.contains(job), "{job} reached Slack: {told}");
    }
    // The first job alone (no group window); the other two together, held
    // back by Slack's one message a second and sent as one to catch up.
    assert_eq!(slack.accepted().len(), 2);
    let statuses = setup.statuses().await;
    assert!(
        statuses
            .iter()
            .filter(|s| s.0 == "broken")
            .all(|s| s.1 == "dead"
                && s.3.as_deref() == Some("DingTalk errcode 300005: token is not exist"))
    );
    assert!(
        statuses
            .iter()
            .filter(|s| s.0 == "team")
            .all(|s| s.1 == "delivered")
    );
    let status =
        dtswatch::cli::status::report(&setup.app.store, &[], chrono_tz::UTC, &Default::default())
            .await
            .unwrap();
    assert!(
        status.contains("broken") && status.contains("300005"),
        "{status}"
    );
}

#[tokio::test]
async fn a_storm_of_failures_becomes_a_handful_of_messages() {
    let fake = peers::dingtalk::DingTalk::start().await;
    let slack = peers::slack::Slack::start().await;
    let channels = format!(
        "[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{}\"\nsecret = \"{}\"\ngroup_window = \"1m\"\n\n[channels.team]\ntype = \"slack\"\nurl = \"{}\"\ngroup_window = \"1m\"",
        fake.url(),
        fake.secret,
        slack.url()
    );
    let setup = setup(config(&channels, &["oncall", "team"], "")).await;
    setup.failures(300).await;
    let deliverer = setup.deliverer();
    // Within the window nothing goes out: more may come.
    assert!(matches!(
        deliverer
            .try_deliver_one("oncall", Utc::now())
            .await
            .unwrap(),
        Outcome::NotDue(_)
    ));
    let later = Utc::now() + chrono::Duration::minutes(2);
    let mut messages = 0;
    while let Outcome::Delivered(_) = deliverer.try_deliver_one("oncall", later).await.unwrap() {
        messages += 1;
    }
    let mut slack_messages = 0;
    loop {
        match deliverer.try_deliver_one("team", later).await.unwrap() {
            Outcome::Delivered(_) => slack_messages += 1,
            // Slack takes one message a second.
            Outcome::RateLimited(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => break,
        }
    }
    assert_eq!(messages, 5, "300 failures in 60-alert DingTalk messages");
    assert_eq!(
        slack_messages, 3,
        "300 failures in 100-alert Slack messages"
    );
    let mut named = std::collections::BTreeSet::new();
    for request in fake.accepted() {
        assert!(
            request.body.len() < 20_000,
            "each body stays under DingTalk's limit"
        );
        let text = request.json()["markdown"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!text.contains("truncated"), "nothing is cut");
        for i in 0..300 {
            if text.contains(&format!("job dtsfail{i:03}")) {
                named.insert(i);
            }
        }
    }
    assert_eq!(named.len(), 300, "every failing job is named");
}
