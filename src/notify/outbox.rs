//! The delivery worker. Each channel works off its own queue in order: the
//! oldest pending row decides when the channel may send (its retry time, its
//! group window), every pending row of the same channel created within the
//! window goes out with it as one message, and the result is written back at
//! once as `decide` rules: delivered, retry later, or dead with the reason
//! kept. `try_deliver_one` is the step; the loop only sleeps.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::decide::{Attempted, Decision, Policy, decide};
use super::{Channel, Message};
use crate::config::{ChannelConfig, Config, DeliveryConfig};
use crate::metrics::{Counter, Metrics};
use crate::ratelimit::RateLimiter;
use crate::rules::Notification;
use crate::store::{Backend, Store, StoreError, Tx, from_millis, lease, millis, outbox};

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
    held_back: AtomicBool,
}

/// What a delivery attempt did to its rows, as `dtswatch_notifications_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Delivered,
    Retry,
    Dead,
}

impl Counted {
    const ALL: [Counted; 3] = [Counted::Delivered, Counted::Retry, Counted::Dead];

    fn as_str(self) -> &'static str {
        match self {
            Counted::Delivered => "delivered",
            Counted::Retry => "retry",
            Counted::Dead => "dead",
        }
    }
}

/// What a bounded drain left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Rows still waiting to be sent.
    pub pending: i64,
    /// Notifications that went dead during the drain.
    pub dead: u64,
}

/// Delivers outbox rows through the configured channels.
pub struct Deliverer {
    store: Store,
    channels: HashMap<String, ChannelRuntime>,
    delivery: DeliveryConfig,
    wake: Arc<Notify>,
    metrics: Option<Arc<Metrics>>,
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
                    held_back: AtomicBool::new(false),
                },
            );
        }
        Ok(Self {
            store,
            channels,
            delivery: config.delivery.clone(),
            wake: Arc::new(Notify::new()),
            metrics: None,
        })
    }

    /// Counts every delivery attempt in `metrics` (each channel's series start at 0).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        for name in self.channels.keys() {
            for counted in Counted::ALL {
                metrics.register(Counter::Notifications, &[name, counted.as_str()]);
            }
        }
        self.metrics = Some(metrics);
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

    fn count(&self, channel: &str, counted: Counted, rows: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.add(
                Counter::Notifications,
                &[channel, counted.as_str()],
                rows as f64,
            );
        }
    }

    /// Marks rows of channels that no longer exist as dead.
    pub async fn bury_orphans(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.store.pool().acquire().await?;
        outbox::bury_unknown_channels(&mut conn, &self.channel_names(), now).await
    }

    /// The retry settings of a channel: its own max age, else the delivery section's.
    fn policy(&self, config: &ChannelConfig) -> Policy {
        Policy {
            backoff: self.delivery.backoff,
            max_backoff: self.delivery.max_backoff,
            max_age: config.max_age.unwrap_or(self.delivery.max_age),
        }
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
        let mut reading = Reading::start(&self.store, runtime.config.timeout).await?;
        let result = self.deliver_from(&mut reading, runtime, channel, now).await;
        match result {
            Ok((outcome, None)) => {
                reading.release().await?;
                Ok(outcome)
            }
            Ok((outcome, Some(marks))) => {
                let mut tx = reading.writer(&self.store).await?;
                marks.write(&mut tx).await?;
                tx.commit().await?;
                Ok(outcome)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the channel's next due batch through `reading`, sends it, and
    /// says how to mark its rows (`None`: nothing to mark).
    async fn deliver_from(
        &self,
        reading: &mut Reading,
        runtime: &ChannelRuntime,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<(Outcome, Option<Marks>), StoreError> {
        let claim = reading.claim();
        let Some(first) = outbox::oldest_pending(reading.conn(), channel, claim).await? else {
            return Ok((Outcome::Empty, None));
        };
        let window = chrono::Duration::from_std(runtime.config.group_window).unwrap_or_default();
        let due = if first.attempts == 0 {
            first
                .next_attempt_at
                .max(first.created_at.saturating_add(window.num_milliseconds()))
        } else {
            first.next_attempt_at
        };
        if due > millis(now) {
            return Ok((Outcome::NotDue(from_millis(due)), None));
        }
        // Rows that piled up behind a failing or rate-limited one go out
        // together once it can be sent.
        let caught_up = runtime.held_back.load(Ordering::Relaxed);
        let created_until = if first.attempts > 0 || caught_up {
            i64::MAX
        } else {
            first.created_at.saturating_add(window.num_milliseconds())
        };
        let rows = outbox::batch(
            reading.conn(),
            channel,
            (first.id, created_until),
            now,
            runtime.config.kind.max_batch(),
            claim,
        )
        .await?;
        reading.before_send();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut notifications = Vec::new();
        let mut unreadable = Vec::new();
        for row in &rows {
            match serde_json::from_str::<Notification>(&row.payload) {
                Ok(n) => notifications.push(n),
                Err(e) => unreadable.push((row.id, e.to_string())),
            }
        }
        if let Some((_, first_error)) = unreadable.first() {
            let dead: Vec<i64> = unreadable.iter().map(|(id, _)| *id).collect();
            self.count(channel, Counted::Dead, dead.len());
            let outcome = Outcome::Dead(dead.len());
            let reason = format!("unreadable payload: {first_error}");
            return Ok((outcome, Some(Marks::dead(dead, now, reason))));
        }
        if let Some(limiter) = &runtime.limiter
            && let Err(next) = limiter.try_acquire(tokio::time::Instant::now())
        {
            runtime.held_back.store(true, Ordering::Relaxed);
            let wait = next.saturating_duration_since(tokio::time::Instant::now());
            return Ok((
                Outcome::RateLimited(crate::scheduler::later(now, wait)),
                None,
            ));
        }
        runtime.held_back.store(false, Ordering::Relaxed);
        // The last look before a message leaves: a leader frozen past its
        // lease, or one that lost it, sends nothing.
        if let Some(fence) = self.store.fence()
            && !fence.leads_now()
        {
            return Err(lease::fenced(&fence.holder, fence.term()));
        }
        let message = Message::new(notifications);
        let span = tracing::info_span!("deliver", channel, rows = ids.len(), first = first.id);
        let result = {
            let _entered = span.enter();
            runtime.channel.send(&message).await
        };
        let now = Utc::now();
        let attempted = Attempted {
            created_at: from_millis(first.created_at),
            attempts: u32::try_from(first.attempts).unwrap_or(u32::MAX),
        };
        let decision = decide(
            result.as_ref().map(|_| ()),
            attempted,
            &self.policy(&runtime.config),
            now,
            crate::backoff::random_unit(),
        );
        let rows = ids.len();
        let (outcome, marks) = match decision {
            Decision::Delivered => {
                let answer = result.map(|d| d.answer).unwrap_or_default();
                tracing::info!(channel, rows, answer = %answer, "delivered");
                self.count(channel, Counted::Delivered, rows);
                (Outcome::Delivered(rows), Marks::Delivered { ids, now })
            }
            Decision::Dead { reason } => {
                tracing::error!(channel, rows, error = %reason, "delivery failed for good; fix the channel and run `dtswatch outbox retry ID`");
                self.count(channel, Counted::Dead, rows);
                (Outcome::Dead(rows), Marks::dead(ids, now, reason))
            }
            Decision::Retry { at, reason } => {
                let retry_in_ms = (at - now).num_milliseconds();
                tracing::warn!(channel, rows, error = %reason, retry_in_ms, "delivery failed; will retry");
                self.count(channel, Counted::Retry, rows);
                (Outcome::WillRetry(at), Marks::Retry { ids, at, reason })
            }
        };
        Ok((outcome, Some(marks)))
    }

    /// Delivers until every channel is empty (or only has rows not yet due) or `deadline` passes.
    /// Returns the number of rows still pending.
    pub async fn drain(&self, deadline: tokio::time::Instant) -> Result<Drained, StoreError> {
        let mut dead = 0u64;
        loop {
            let mut next_wake: Option<DateTime<Utc>> = None;
            let mut busy = false;
            for name in self.channel_names() {
                match self.try_deliver_one(&name, Utc::now()).await? {
                    Outcome::Delivered(_) => busy = true,
                    Outcome::Dead(_) => {
                        busy = true;
                        dead = dead.saturating_add(1);
                    }
                    Outcome::Empty => {}
                    Outcome::WillRetry(at) | Outcome::NotDue(at) | Outcome::RateLimited(at) => {
                        next_wake = Some(next_wake.map_or(at, |n| n.min(at)));
                    }
                }
            }
            let pending = self.pending(None).await?;
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return Ok(Drained { pending, dead });
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

    /// Rows waiting to be sent (only those due by `due_by`, if given).
    pub async fn pending(&self, due_by: Option<DateTime<Utc>>) -> Result<i64, StoreError> {
        let mut conn = self.store.pool().acquire().await?;
        outbox::pending_count(&mut conn, due_by).await
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

/// How a delivery holds the rows it reads. On SQLite they are read on a
/// pooled connection let go before the send (the only writer is this
/// process, and SQLite's write lock must not wait on a chat platform). On
/// PostgreSQL they are claimed in a transaction that stays open through the
/// send and marks them: another instance passes over them meanwhile, and a
/// crash releases them to the next leader (at most one duplicate).
enum Reading {
    Pooled(Option<sqlx::pool::PoolConnection<sqlx::Any>>),
    Held(Tx),
}

impl Reading {
    async fn start(store: &Store, send_timeout: std::time::Duration) -> Result<Self, StoreError> {
        Ok(match store.backend() {
            Backend::Sqlite => Reading::Pooled(Some(store.pool().acquire().await?)),
            Backend::Postgres => Reading::Held(store.begin_delivery(send_timeout).await?),
        })
    }

    fn claim(&self) -> outbox::Claim {
        match self {
            Reading::Pooled(_) => outbox::Claim::Read,
            Reading::Held(_) => outbox::Claim::Lock,
        }
    }

    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        match self {
            Reading::Pooled(Some(conn)) => conn,
            Reading::Held(tx) => tx,
            // `before_send` lets the pooled connection go only after the reads.
            Reading::Pooled(None) => unreachable!("the rows are read before the send"),
        }
    }

    /// Lets a pooled connection go before the send.
    fn before_send(&mut self) {
        if let Reading::Pooled(conn) = self {
            conn.take();
        }
    }

    /// Ends the reading without writing.
    async fn release(self) -> Result<(), StoreError> {
        match self {
            Reading::Pooled(_) => Ok(()),
            Reading::Held(tx) => tx.rollback().await,
        }
    }

    /// The transaction the marks are written in.
    async fn writer(self, store: &Store) -> Result<Tx, StoreError> {
        match self {
            Reading::Pooled(_) => store.begin().await,
            Reading::Held(tx) => Ok(tx),
        }
    }
}

/// What a delivery writes back to its rows.
enum Marks {
    Delivered {
        ids: Vec<i64>,
        now: DateTime<Utc>,
    },
    Retry {
        ids: Vec<i64>,
        at: DateTime<Utc>,
        reason: String,
    },
    Dead {
        ids: Vec<i64>,
        now: DateTime<Utc>,
        reason: String,
    },
}

impl Marks {
    fn dead(ids: Vec<i64>, now: DateTime<Utc>, reason: String) -> Self {
        Marks::Dead { ids, now, reason }
    }

    async fn write(&self, tx: &mut Tx) -> Result<(), StoreError> {
        match self {
            Marks::Delivered { ids, now } => outbox::mark_delivered(tx, ids, *now).await,
            Marks::Retry { ids, at, reason } => outbox::mark_retry(tx, ids, *at, reason).await,
            Marks::Dead { ids, now, reason } => outbox::mark_dead(tx, ids, *now, reason).await,
        }
    }
}
