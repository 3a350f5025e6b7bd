//! dtswatch watches Alibaba Cloud DTS migration and synchronization jobs and
//! alerts people when they go wrong.
//!
//! # Layout
//!
//! Data flows one way: a cron tick (`scheduler`) starts a poll (`poll`) that
//! fetches a job's steps through the Alibaba Cloud client (`aliyun`), reads
//! them into the normalised model (`dts`), and hands them on. `config` turns
//! the TOML file into typed settings and reports every mistake at once. `sim`
//! is a DTS simulator on loopback for the demo, tests and benchmarks.
//! `ratelimit` paces calls per account and per channel; `output` prints
//! tables; `app` wires commands together; `cli` defines the command line.

pub mod aliyun;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod diff;
pub mod discovery;
pub mod dts;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod poll;
pub mod ratelimit;
pub mod report;
pub mod rules;
pub mod scheduler;
pub mod server;
pub mod sim;
pub mod store;
