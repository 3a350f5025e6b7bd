//! The delivery worker. Each channel works off its own queue in order: the
//! oldest pending row decides when the channel may send (its retry time, its
//! group window), every pending row of the same channel created within the
//! window goes out with it as one message, and the result is written back at
//! once: delivered, retry later (backoff with full jitter, `Retry-After`
//! honoured), or dead (a permanent error, or older than the max age) with the
//! reason kept. `try_deliver_one` is the step; the loop only sleeps.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Channel, Message, SendError};
use crate::config::{ChannelConfig, ChannelKind, Config, DeliveryConfig};
use crate::ratelimit::RateLimiter;
use crate::rules::Notification;
use crate::store::{Store, StoreError, from_millis, millis, outbox};

/// How many notifications one message carries at most, so that even a storm
/// of alerts is listed in full within each platform's size limit.
fn max_batch(kind: &ChannelKind) -> i64 {
    match kind {
        ChannelKind::DingTalk { .. } => 60,
        ChannelKind::WeCom { .. } => 20,
        ChannelKind::Feishu { .. } => 80,
        ChannelKind::Slack { .. } => 100,
        ChannelKind::Email { .. } | ChannelKind::Webhook { .. } | ChannelKind::Console { .. } => {
            500
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This many rows went out in one message.
    Delivered(usize),
    /// The send failed and will be tried again at the given time.
    WillRetry(DateTime<Utc>),
    /// The rows are dead (permanent error or too old).
    Dead(usize),
    /// Nothing pending for the channel.
    Empty,
    /// Something is pending but not due before this time (retry backoff or group window).
    NotDue(DateTime<Utc>),
    /// The channel's rate limit allows the next message at this time.
    RateLimited(DateTime<Utc>),
}

struct ChannelRuntime {
    config: ChannelConfig,
    channel: Channel,
    limiter: Option<RateLimiter>,
    /// Serialises deliveries of one channel, keeping its messages in order.
    busy: tokio::sync::Mutex<()>,
    /// Set when the rate limit held a message back: rows pile up behind it,
    /// and the next message takes them all (catching up instead of queueing).
    held_back: std::sync::atomic::AtomicBool,
}

/// A delivery result, for metrics and logs.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    pub channel: String,
    pub outcome: &'static str,
    pub rows: usize,
    pub error: Option<String>,
}

/// Delivers outbox rows through the configured channels.
pub struct Deliverer {
    store: Store,
    channels: HashMap<String, ChannelRuntime>,
    delivery: DeliveryConfig,
    wake: Arc<Notify>,
    reports: Option<tokio::sync::mpsc::UnboundedSender<DeliveryReport>>,
}

/// Added to a channel's rate-limit period: the platform counts arrivals, we
/// count departures, and a message that departs on the edge of the window
/// may arrive inside it (DingTalk would answer 130101).
const LIMIT_MARGIN: std::time::Duration = std::time::Duration::from_millis(100);

impl Deliverer {
    pub fn new(store: Store, config: &Config) -> Result<Self, String> {
        let mut channels = HashMap::new();
        for (name, channel_config) in &config.channels {
            channels.insert(
                name.clone(),
                ChannelRuntime {
                    channel: Channel::new(channel_config)?,
                    limiter: channel_config
                        .rate_limit
                        .map(|r| RateLimiter::new(r.count, r.per + LIMIT_MARGIN.max(r.per / 50))),
                    config: channel_config.clone(),
                    busy: tokio::sync::Mutex::new(()),
                    held_back: Default::default(),
                },
            );
        }
        Ok(Self {
            store,
            channels,
            delivery: config.delivery.clone(),
            wake: Arc::new(Notify::new()),
            reports: None,
        })
    }

    /// Sends a report of every delivery attempt to `sender` (the daemon's metrics).
    pub fn with_reports(
        mut self,
        sender: tokio::sync::mpsc::UnboundedSender<DeliveryReport>,
    ) -> Self {
        self.reports = Some(sender);
        self
    }

    /// Wakes the workers: new rows were committed.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn channel_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.channels.keys().cloned().collect();
        names.sort();
        names
    }

    fn report(&self, channel: &str, outcome: &'static str, rows: usize, error: Option<String>) {
        if let Some(sender) = &self.reports {
            let _ = sender.send(DeliveryReport {
                channel: channel.to_string(),
                outcome,
                rows,
                error,
            });
        }
    }

    /// Marks rows of channels that no longer exist as dead.
    pub async fn bury_orphans(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.store.pool().acquire().await?;
        outbox::bury_unknown_channels(&mut conn, &self.channel_names(), now).await
    }

    /// One step for one channel: send its next due batch, if any.
    pub async fn try_deliver_one(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let Some(runtime) = self.channels.get(channel) else {
            return Ok(Outcome::Empty);
        };
        let _in_order = runtime.busy.lock().await;
        let mut conn = self.store.pool().acquire().await?;
        let Some(first) = outbox::oldest_pending(&mut conn, channel).await? else {
            return Ok(Outcome::Empty);
        };
        let window = chrono::Duration::from_std(runtime.config.group_window).unwrap_or_default();
        let due = if first.attempts == 0 {
            first
                .next_attempt_at
                .max(first.created_at + window.num_milliseconds())
        } else {
            first.next_attempt_at
        };
        if due > millis(now) {
            return Ok(Outcome::NotDue(from_millis(due)));
        }
        // Rows that piled up behind a failing or rate-limited one go out
        // together once it can be sent.
        let caught_up = runtime.held_back.load(std::sync::atomic::Ordering::Relaxed);
        let created_until = if first.attempts > 0 || caught_up {
            i64::MAX
        } else {
            first.created_at + window.num_milliseconds()
        };
        let rows = outbox::batch(
            &mut conn,
            channel,
            first.id,
            created_until,
            now,
            max_batch(&runtime.config.kind),
        )
        .await?;
        drop(conn);
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut notifications = Vec::new();
        let mut unreadable = Vec::new();
        for row in &rows {
            match serde_json::from_str::<Notification>(&row.payload) {
                Ok(n) => notifications.push(n),
                Err(e) => unreadable.push((row.id, e.to_string())),
            }
        }
        if !unreadable.is_empty() {
            let dead: Vec<i64> = unreadable.iter().map(|(id, _)| *id).collect();
            let mut tx = self.store.begin().await?;
            outbox::mark_dead(
                &mut tx,
                &dead,
                now,
                &format!("unreadable payload: {}", unreadable[0].1),
            )
            .await?;
            tx.commit().await?;
            self.report(
                channel,
                "dead",
                dead.len(),
                Some("unreadable payload".into()),
            );
            return Ok(Outcome::Dead(dead.len()));
        }
        if let Some(limiter) = &runtime.limiter
            && let Err(next) = limiter.try_acquire(tokio::time::Instant::now())
        {
            runtime
                .held_back
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let wait = next.saturating_duration_since(tokio::time::Instant::now());
            return Ok(Outcome::RateLimited(
                now + chrono::Duration::from_std(wait).unwrap_or_default(),
            ));
        }
        runtime
            .held_back
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let message = Message { notifications };
        let span = tracing::info_span!("deliver", channel, rows = ids.len(), first = first.id);
        let result = {
            let _entered = span.enter();
            runtime.channel.send(&message).await
        };
        let now = Utc::now();
        let max_age =
            chrono::Duration::from_std(runtime.config.max_age.unwrap_or(self.delivery.max_age))
                .unwrap_or(chrono::Duration::MAX);
        let mut tx = self.store.begin().await?;
        let outcome = match result {
            Ok(delivered) => {
                outbox::mark_delivered(&mut tx, &ids, now).await?;
                tracing::info!(channel, rows = ids.len(), answer = %delivered.answer, "delivered");
                self.report(channel, "delivered", ids.len(), None);
                Outcome::Delivered(ids.len())
            }
            Err(SendError::Permanent(reason)) => {
                outbox::mark_dead(&mut tx, &ids, now, &reason).await?;
                tracing::error!(channel, rows = ids.len(), error = %reason, "delivery failed permanently; fix the channel and run `dtswatch outbox retry ID`");
                self.report(channel, "dead", ids.len(), Some(reason));
                Outcome::Dead(ids.len())
            }
            Err(SendError::Retryable {
                reason,
                retry_after,
            }) => {
                if now.timestamp_millis() - first.created_at >= max_age.num_milliseconds() {
                    let reason =
                        format!("gave up after {} attempt(s): {reason}", first.attempts + 1);
                    outbox::mark_dead(&mut tx, &ids, now, &reason).await?;
                    tracing::error!(channel, rows = ids.len(), error = %reason, "delivery gave up");
                    self.report(channel, "dead", ids.len(), Some(reason));
                    Outcome::Dead(ids.len())
                } else {
                    let backoff = crate::backoff::jittered(
                        first.attempts as u32,
                        self.delivery.backoff,
                        self.delivery.max_backoff,
                    );
                    let wait = retry_after.map(|r| r.max(backoff)).unwrap_or(backoff);
                    let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                    outbox::mark_retry(&mut tx, &ids, next, &reason).await?;
                    tracing::warn!(channel, rows = ids.len(), error = %reason, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                    self.report(channel, "retry", ids.len(), Some(reason));
                    Outcome::WillRetry(next)
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Delivers until every channel is empty (or only has rows not yet due) or `deadline` passes.
    /// Returns the number of rows still pending.
    pub async fn drain(&self, deadline: tokio::time::Instant) -> Result<i64, StoreError> {
        loop {
            let mut next_wake: Option<DateTime<Utc>> = None;
            let mut busy = false;
            for name in self.channel_names() {
                match self.try_deliver_one(&name, Utc::now()).await? {
                    Outcome::Delivered(_) | Outcome::Dead(_) => busy = true,
                    Outcome::Empty => {}
                    Outcome::WillRetry(at) | Outcome::NotDue(at) | Outcome::RateLimited(at) => {
                        next_wake = Some(next_wake.map_or(at, |n| n.min(at)));
                    }
                }
            }
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                    .fetch_one(self.store.pool())
                    .await?;
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return Ok(pending);
            }
            if !busy {
                let wait = crate::scheduler::sleep_until(
                    next_wake,
                    Utc::now(),
                    std::time::Duration::from_millis(100),
                )
                .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Runs one worker per channel until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        if let Err(e) = self.bury_orphans(Utc::now()).await {
            tracing::warn!(error = %e, "could not check the outbox for removed channels");
        }
        let concurrency = Arc::new(tokio::sync::Semaphore::new(self.delivery.concurrency));
        let mut workers = tokio::task::JoinSet::new();
        for name in self.channel_names() {
            let (me, cancel, concurrency) = (self.clone(), cancel.clone(), concurrency.clone());
            workers.spawn(async move { me.work(&name, cancel, concurrency).await });
        }
        while workers.join_next().await.is_some() {}
    }

    async fn work(
        &self,
        channel: &str,
        cancel: CancellationToken,
        concurrency: Arc<tokio::sync::Semaphore>,
    ) {
        loop {
            // Listen before looking: a poll that queues a row and wakes us
            // while we look must not find us not yet listening.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let outcome = {
                let Ok(_permit) = concurrency.acquire().await else {
                    return;
                };
                self.try_deliver_one(channel, Utc::now()).await
            };
            let wake_at = match outcome {
                Ok(Outcome::Delivered(_) | Outcome::Dead(_)) => continue,
                Ok(Outcome::Empty) => None,
                Ok(Outcome::WillRetry(at) | Outcome::NotDue(at) | Outcome::RateLimited(at)) => {
                    Some(at)
                }
                Err(e) => {
                    tracing::warn!(channel, error = %e.describe(), "outbox unavailable; trying again shortly");
                    Some(Utc::now() + chrono::Duration::seconds(1))
                }
            };
            let sleep = crate::scheduler::sleep_until(
                wake_at,
                Utc::now(),
                std::time::Duration::from_secs(5),
            );
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = &mut woken => {},
                _ = tokio::time::sleep(sleep) => {},
            }
        }
    }
}
