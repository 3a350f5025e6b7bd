//! A DTS OpenAPI simulator on loopback, for the demo, tests and benchmarks.
//! It answers `ListJobStep` and `DescribeDtsJobs` for scripted jobs, checks
//! signatures, timestamps and nonces as Alibaba's gateway does, answers with
//! Alibaba's real error codes, and injects faults on demand. An ECS metadata
//! service (`metadata`) hands out STS credentials the simulator accepts.

mod actions;
pub mod auth;
mod gateway;
mod job;
pub mod metadata;
pub mod scenario;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use auth::SimError;
pub use scenario::{Fault, Frame, SimJob, SimStep};

/// The account the demo and the default simulator accept.
pub const DEMO_ACCESS_KEY_ID: &str = "dtswatch-demo";
pub const DEMO_ACCESS_KEY_SECRET: &str = "dtswatch-demo-secret";

/// What a test can ask the simulator about afterwards.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub action: String,
    pub job_id: Option<String>,
    pub access_key_id: String,
    pub security_token: Option<String>,
    /// `v1` or `v3`.
    pub signature: &'static str,
    /// `Success`, or the error code answered.
    pub outcome: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug)]
struct StsToken {
    access_key_id: String,
    expires: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct SimState {
    /// AccessKeyId → secret.
    accounts: HashMap<String, String>,
    /// AccessKeyIds that must come with a valid SecurityToken.
    sts_keys: HashMap<String, String>,
    tokens: HashMap<String, StsToken>,
    nonces: HashMap<String, DateTime<Utc>>,
    jobs: BTreeMap<String, SimJob>,
    /// Faults for the next requests: (only this job, fault).
    faults: VecDeque<(Option<String>, Fault)>,
    /// Faults for the next requests of one action (`DescribeDtsJobs`), before any other.
    action_faults: VecDeque<(String, Fault)>,
    requests: Vec<RequestRecord>,
    sequence: u64,
    /// Added to the real clock, to test skew.
    clock_offset: chrono::Duration,
    /// While true, every API request gets HTTP 503 from the "gateway".
    offline: bool,
    /// Requests per second each account may make in a region (`None`: no limit).
    quota: Option<f64>,
    /// When each account's recent requests arrived, by (AccessKeyId, region).
    arrivals: HashMap<(String, String), VecDeque<std::time::Instant>>,
}

impl SimState {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    fn request_id(&mut self) -> String {
        self.sequence += 1;
        format!(
            "5E1C0F5A-{:04X}-4D1E-9C3B-{:012X}",
            self.sequence % 0xFFFF,
            self.sequence
        )
    }

    fn remember_nonce(&mut self, nonce: &str, now: DateTime<Utc>) -> Result<(), SimError> {
        if self.nonces.len() > 50_000 {
            self.nonces.retain(|_, at| now - *at <= auth::MAX_SKEW);
        }
        match self.nonces.get(nonce) {
            Some(at) if now - *at <= auth::MAX_SKEW => Err(SimError::new(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            )),
            _ => {
                self.nonces.insert(nonce.to_string(), now);
                Ok(())
            }
        }
    }

    fn secret_for(
        &self,
        access_key_id: &str,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, SimError> {
        if let Some(secret) = self.accounts.get(access_key_id) {
            return Ok(secret.clone());
        }
        if let Some(secret) = self.sts_keys.get(access_key_id) {
            let token = token.ok_or_else(|| {
                SimError::new(
                    400,
                    "MissingSecurityToken",
                    "SecurityToken is mandatory for this action.",
                )
            })?;
            let issued = self.tokens.get(token).ok_or_else(|| {
                SimError::new(
                    400,
                    "InvalidSecurityToken.Malformed",
                    "Specified SecurityToken is malformed.",
                )
            })?;
            if issued.access_key_id != access_key_id {
                return Err(SimError::new(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ));
            }
            if issued.expires <= now {
                return Err(SimError::new(
                    403,
                    "InvalidSecurityToken.Expired",
                    "Specified SecurityToken is expired.",
                ));
            }
            return Ok(secret.clone());
        }
        Err(SimError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ))
    }
}

/// Options for [`Simulator::start`].
pub struct SimOptions {
    pub listen: SocketAddr,
    /// (AccessKeyId, secret) pairs accepted without a token.
    pub accounts: Vec<(String, String)>,
    pub jobs: Vec<SimJob>,
    /// DTS's flow control: requests per second per account and region
    /// beyond which it answers `Throttling.User` (`None`: unlimited).
    pub quota: Option<f64>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            accounts: vec![(
                DEMO_ACCESS_KEY_ID.to_string(),
                DEMO_ACCESS_KEY_SECRET.to_string(),
            )],
            jobs: Vec::new(),
            quota: None,
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<Mutex<SimState>>,
    shutdown: CancellationToken,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Simulator {
    pub async fn start(options: SimOptions) -> std::io::Result<Self> {
        let state = SimState {
            accounts: options.accounts.into_iter().collect(),
            jobs: options
                .jobs
                .into_iter()
                .map(|j| (j.id.clone(), j))
                .collect(),
            quota: options.quota,
            ..SimState::default()
        };
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let app = Router::new()
            .fallback(gateway::handle)
            .with_state(state.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let server = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "simulator stopped");
            }
        });
        Ok(Self {
            addr,
            state,
            shutdown,
        })
    }

    /// Starts with the jobs of a scenario file.
    pub async fn with_scenario(text: &str) -> Result<Self, String> {
        let (_, jobs) = scenario::load(text)?;
        Self::start(SimOptions {
            jobs,
            ..SimOptions::default()
        })
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for an account's `endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    pub fn issue_sts(
        &self,
        access_key_id: &str,
        secret: &str,
        token: &str,
        expires: DateTime<Utc>,
    ) {
        let mut state = lock(&self.state);
        state.sts_keys.insert(access_key_id.into(), secret.into());
        state.tokens.insert(
            token.into(),
            StsToken {
                access_key_id: access_key_id.into(),
                expires,
            },
        );
    }

    /// Makes a token expire now, as STS tokens do.
    pub fn expire_token(&self, token: &str) {
        let mut state = lock(&self.state);
        let now = state.now();
        if let Some(t) = state.tokens.get_mut(token) {
            t.expires = now - chrono::Duration::seconds(1);
        }
    }

    /// The next `times` API requests (of `job`, if given) get `fault`.
    pub fn inject(&self, job: Option<&str>, fault: Fault, times: u32) {
        let mut state = lock(&self.state);
        for _ in 0..times {
            state
                .faults
                .push_back((job.map(str::to_string), fault.clone()));
        }
    }

    /// Injects a fault into the next `times` requests of `action`.
    pub fn inject_action(&self, action: &str, fault: Fault, times: u32) {
        let mut state = lock(&self.state);
        for _ in 0..times {
            state
                .action_faults
                .push_back((action.to_string(), fault.clone()));
        }
    }

    /// Drops every injected fault not yet used.
    pub fn clear_faults(&self) {
        let mut state = lock(&self.state);
        state.faults.clear();
        state.action_faults.clear();
    }

    /// While offline, every request gets a 503 from the gateway.
    pub fn set_offline(&self, offline: bool) {
        lock(&self.state).offline = offline;
    }

    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        lock(&self.state).clock_offset = offset;
    }

    pub fn add_job(&self, job: SimJob) {
        lock(&self.state).jobs.insert(job.id.clone(), job);
    }

    pub fn remove_job(&self, id: &str) {
        lock(&self.state).jobs.remove(id);
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state).requests.clone()
    }

    /// Polls answered for `job` (faults included).
    pub fn polls_of(&self, job: &str) -> u64 {
        lock(&self.state)
            .jobs
            .get(job)
            .map(|j| j.polls)
            .unwrap_or(0)
    }

    /// True once every scripted job has served all its frames.
    pub fn scenario_finished(&self) -> bool {
        lock(&self.state)
            .jobs
            .values()
            .all(|j| j.polls as usize >= j.scripted_polls())
    }

    fn shared(&self) -> Arc<Mutex<SimState>> {
        self.state.clone()
    }
}
