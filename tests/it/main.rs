//! One integration-test binary: every test talks to real peers on 127.0.0.1
//! (the DTS simulator, a metadata service, …) and real files in temp dirs.

mod alerting;
mod api;
mod browser;
mod check_config;
mod cli;
mod client;
mod daemon;
mod delivery;
mod ecosystem;
mod faults;
mod fleet;
mod ha;
mod helpers;
mod hostile;
mod install;
mod layout;
mod messages;
mod operations;
mod operator;
mod peers;
mod pg;
mod poll_paths;
mod properties;
mod silences;
mod simulator;
mod storage_url;
mod store;
mod zones;
