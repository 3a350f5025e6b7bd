//! dtswatch watches Alibaba Cloud DTS migration and synchronization jobs and
//! alerts people when they go wrong.
//!
//! # Layout
//!
//! Data flows one way, and modules import only the ones below them:
//!
//! - `cli` — the command line: clap definitions, dispatch, one file per command group, tables.
//! - `daemon` — `dtswatch run`: tick loop, discovery loop, watchdog, pruning, reload; the HTTP server (health, metrics, API, status page).
//! - `report` — what the CLI's `--format json` and the HTTP API show: the JSON shapes, the fleet, a job's history.
//! - `actions` — operator writes shared by the CLI and the API (silences, outbox retry, reload), each audited.
//! - `discovery` — `DescribeDtsJobs` → watched jobs, merged with the configured ones by id.
//! - `scheduler` — pure: cron schedule + per-job jitter → next fire time.
//! - `cadence` — pure: what a fleet sweep and a job's last poll say about how often to fetch it.
//! - `poll` — the one way to poll a job (`poll_one`): fetch, record, alert, count; health; the alerting step, the only writer of alert and outbox rows.
//! - `notify` — channels (one file each), rendering, the outbox worker and its pure retry/dead `decide`.
//! - `store` — all SQL: the pool, migrations, one file per table family, the batched writer.
//! - `rules` — pure: the rule kinds, the alert lifecycle, inhibition and silences, the watchdog's rules.
//! - `diff` — pure: what changed between two snapshots of a job.
//! - `dts` — the `ListJobStep` / `DescribeDtsJobs` wire model (tolerant) and the normalised snapshot.
//! - `aliyun` — Alibaba Cloud request signing, the credentials chain, the client with retries.
//! - `http` — outbound HTTP for every client: no redirects, no Referer, capped answers.
//! - `ratelimit`, `backoff` — pacing and full-jitter backoff, shared by the DTS client and delivery.
//! - `metrics` — the typed Prometheus registry (pure).
//! - `config` — the TOML file → a typed, fully validated `Config`; every mistake at once.
//! - `state`, `text` — the step-state vocabulary; interned text and formatting.
//! - `sim` — a DTS simulator on loopback for the demo, tests and the benchmark (beside the flow, not in it).

pub mod actions;
pub mod aliyun;
pub mod backoff;
pub mod cadence;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod diff;
pub mod discovery;
pub mod dts;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod poll;
pub mod ratelimit;
pub mod report;
pub mod rules;
pub mod scheduler;
pub mod sim;
pub mod state;
pub mod stdout;
pub mod store;
pub mod text;
