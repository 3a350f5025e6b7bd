//! Leadership among instances sharing a PostgreSQL database: the loop that
//! takes the lease when it lapses, renews it while leading, steps down the
//! moment it cannot be sure it still leads, and tells the daemon (which
//! starts or stops the leader's work). A standby also watches for the case
//! no single instance can report on itself — nobody has led for twice
//! `ha.failover` — and alerts the watchdog's channels directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::runtime::Runtime;
use super::watchdog;
use crate::config::HaConfig;
use crate::metrics::{Counter, Gauge, Metrics};
use crate::store::lease::{self, Fence, Lease};
use crate::store::{Store, StoreError};

/// This instance in the lease.
pub(super) struct Leadership {
    pub fence: Arc<Fence>,
    /// The name `status` shows (`ha.instance`, else the host name).
    pub instance: String,
    failover: Duration,
    /// Unfenced: the lease's own statements.
    store: Store,
    metrics: Arc<Metrics>,
    started_at: i64,
}

/// A standby's view of a gap in leadership, for the no-leader alert.
#[derive(Default)]
struct Gap {
    /// Since when every look found no leader (or could not look), if the last one did.
    since: Option<(Instant, DateTime<Utc>)>,
    /// Set while the no-leader alert is out: since when.
    alerted: Option<DateTime<Utc>>,
}

/// What one look at the lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Some instance (maybe this one) leads.
    Leader,
    /// Nobody leads, or the lease could not be read.
    NoLeader,
    /// Nothing to say this time (this instance just stepped down).
    Nothing,
}

impl Leadership {
    pub fn new(config: &HaConfig, store: Store, metrics: Arc<Metrics>) -> Arc<Self> {
        let instance = config.instance.clone().unwrap_or_else(default_instance);
        let holder = format!("{instance}#{}", nonce());
        metrics.set(Gauge::HaLeader, &[], 0.0);
        metrics.set(Gauge::HaTerm, &[], 0.0);
        metrics.register(Counter::HaFailovers, &[]);
        Arc::new(Self {
            fence: Fence::new(holder),
            instance,
            failover: config.failover,
            store,
            metrics,
            started_at: crate::store::millis(Utc::now()),
        })
    }

    /// How often the lease is renewed, and a standby looks at it.
    fn tick(&self) -> Duration {
        (self.failover / 5).max(Duration::from_millis(200))
    }

    fn length_ms(&self) -> i64 {
        i64::try_from(self.failover.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs until `cancel`, telling `leading` the term this instance leads in (or `None`).
    pub async fn run(
        self: Arc<Self>,
        leading: watch::Sender<Option<i64>>,
        runtime: watch::Receiver<Arc<Runtime>>,
        cancel: CancellationToken,
    ) {
        let mut gap = Gap::default();
        loop {
            let deadline = Instant::now() + self.tick();
            let seen = match self.fence.term() {
                Some(term) => self.renew(term, &leading).await,
                None => self.try_to_lead(&leading).await,
            };
            let heartbeat = lease::seen(
                &self.store,
                &self.fence.holder,
                &self.instance,
                self.started_at,
            );
            if let Err(error) = self.bounded(heartbeat).await {
                tracing::debug!(%error, "could not record this instance as running");
            }
            self.watch_gap(seen, &mut gap, &runtime).await;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    /// A lease statement, given at most one tick: a hung connection must not
    /// keep a leader from noticing that its lease lapsed.
    async fn bounded<T>(
        &self,
        statement: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.tick(), statement).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Sql(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the database did not answer within {} ms",
                    self.tick().as_millis()
                ),
            )))),
        }
    }

    async fn renew(&self, term: i64, leading: &watch::Sender<Option<i64>>) -> Seen {
        let asked = Instant::now();
        match self
            .bounded(lease::renew(
                &self.store,
                &self.fence.holder,
                term,
                self.length_ms(),
                self.tick() / 2,
            ))
            .await
        {
            Ok(true) => {
                self.fence.lead(term, asked + self.failover);
                Seen::Leader
            }
            Ok(false) => {
                self.step_down(
                    term,
                    "the lease lapsed or another instance took it over",
                    leading,
                );
                Seen::Nothing
            }
            Err(error) if !self.fence.leads_now() => {
                self.step_down(
                    term,
                    &format!("the lease could not be renewed before it lapsed: {error}"),
                    leading,
                );
                Seen::Nothing
            }
            Err(error) => {
                tracing::warn!(term, error = %error.describe(), "could not renew the leader lease; trying again");
                Seen::Leader
            }
        }
    }

    async fn try_to_lead(&self, leading: &watch::Sender<Option<i64>>) -> Seen {
        let before = async {
            let mut conn = self.store.pool().acquire().await?;
            lease::read(&mut conn).await
        };
        let before: Lease = match self.bounded(before).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(error = %error.describe(), "cannot read the leader lease");
                return Seen::NoLeader;
            }
        };
        self.metrics.set(Gauge::HaTerm, &[], before.term as f64);
        if before.held() && before.holder == self.fence.holder {
            // Taken by an earlier try whose answer was lost: lead for what is left of it.
            let left = Duration::from_millis(
                u64::try_from(before.expires_at.saturating_sub(before.now)).unwrap_or(0),
            );
            self.took(before.term, Instant::now() + left, &before, leading);
            return Seen::Leader;
        }
        if before.held() {
            return Seen::Leader;
        }
        let asked = Instant::now();
        let acquired = lease::acquire(
            &self.store,
            &self.fence.holder,
            &self.instance,
            self.length_ms(),
            self.tick() / 2,
        );
        match self.bounded(acquired).await {
            Ok(Some(term)) => {
                self.took(term, asked + self.failover, &before, leading);
                Seen::Leader
            }
            Ok(None) => Seen::Leader,
            Err(error) => {
                tracing::warn!(error = %error.describe(), "could not take the leader lease");
                Seen::NoLeader
            }
        }
    }

    /// Leads `term` until `until`, counting a takeover from `before`'s holder.
    fn took(
        &self,
        term: i64,
        until: Instant,
        before: &Lease,
        leading: &watch::Sender<Option<i64>>,
    ) {
        self.fence.lead(term, until);
        self.metrics.set(Gauge::HaLeader, &[], 1.0);
        self.metrics.set(Gauge::HaTerm, &[], term as f64);
        if before.instance.is_empty() {
            tracing::info!(term, instance = %self.instance, "leading: no instance led before");
        } else if before.holder != self.fence.holder {
            self.metrics.inc(Counter::HaFailovers, &[]);
            tracing::warn!(
                term,
                instance = %self.instance,
                previous = %before.instance,
                lapsed_ms = before.now.saturating_sub(before.expires_at),
                "leading: taking over from an instance whose lease lapsed"
            );
        }
        leading.send_replace(Some(term));
    }

    fn step_down(&self, term: i64, why: &str, leading: &watch::Sender<Option<i64>>) {
        self.fence.step_down();
        self.metrics.set(Gauge::HaLeader, &[], 0.0);
        tracing::error!(term, instance = %self.instance, reason = why, "stepping down: no longer the leader; polling and delivery stop");
        leading.send_replace(None);
    }

    /// Alerts (directly) once every look for twice `ha.failover` found no
    /// leader — the look that fires is this one, so an instance that was
    /// frozen does not alert on what it missed — and resolves it when a
    /// leader is seen again.
    async fn watch_gap(&self, seen: Seen, gap: &mut Gap, runtime: &watch::Receiver<Arc<Runtime>>) {
        match seen {
            Seen::Nothing => return,
            Seen::Leader => gap.since = None,
            Seen::NoLeader => {
                gap.since
                    .get_or_insert_with(|| (Instant::now(), Utc::now()));
            }
        }
        let runtime = runtime.borrow().clone();
        let Some(config) = runtime.config.watchdog.clone() else {
            return;
        };
        match (gap.since, gap.alerted) {
            (Some((first, since)), None) if first.elapsed() >= self.failover * 2 => {
                let problem = format!(
                    "no instance has held the leader lease for {} s (ha.failover is {} s); {} cannot take it over: check the database and the other instances",
                    first.elapsed().as_secs(),
                    self.failover.as_secs(),
                    self.instance
                );
                tracing::error!(%problem, "no leader: alerting the watchdog's channels directly");
                // Sent beside the loop: a slow channel must not hold up the lease.
                tokio::spawn(async move {
                    watchdog::send_no_leader(&runtime, &config, Ok(problem), since).await;
                });
                gap.alerted = Some(since);
            }
            (None, Some(since)) => {
                let leader = match self.fence.term() {
                    Some(_) => self.instance.clone(),
                    None => self.current_leader().await.unwrap_or_default(),
                };
                tokio::spawn(async move {
                    watchdog::send_no_leader(&runtime, &config, Err(leader), since).await;
                });
                gap.alerted = None;
            }
            _ => {}
        }
    }

    async fn current_leader(&self) -> Option<String> {
        let read = async {
            let mut conn = self.store.pool().acquire().await?;
            lease::read(&mut conn).await
        };
        self.bounded(read).await.ok().map(|l| l.instance)
    }

    /// Lets the lease lapse now if this instance leads (a clean shutdown,
    /// after the leader's work stopped), and leaves the instance list.
    pub async fn release(&self) {
        if let Some(term) = self.fence.term() {
            self.fence.step_down();
            match lease::release(&self.store, &self.fence.holder, term).await {
                Ok(_) => tracing::info!(term, "leader lease released for a standby to take"),
                Err(error) => {
                    tracing::warn!(%error, "could not release the leader lease; it lapses by itself")
                }
            }
        }
        if let Err(error) = lease::gone(&self.store, &self.fence.holder).await {
            tracing::debug!(%error, "could not leave the instance list");
        }
    }
}

/// The host name: stable across restarts (the lease's holder adds a
/// per-start nonce), and what an operator calls the machine.
fn default_instance() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("dtswatch:{}", std::process::id()))
}

/// A per-start random tag, so a restarted instance is a new holder.
fn nonce() -> String {
    let unit = crate::backoff::random_unit();
    format!(
        "{:08x}{:08x}",
        (unit * f64::from(u32::MAX)) as u32,
        std::process::id() ^ Utc::now().timestamp_subsec_nanos()
    )
}
