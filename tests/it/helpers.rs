//! Shared test fixtures: configs pointed at a simulator, clients, paths.

use std::path::{Path, PathBuf};

use dtswatch::aliyun::{AliyunClient, Environment};
use dtswatch::config::{self, Config};
use dtswatch::sim::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture exists")
}

/// An environment where only what the test says exists: no real home, no real metadata service.
pub fn isolated_env() -> Environment {
    Environment::new(&[("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")], None)
}

/// Parses config text with no environment variables at all.
pub fn parse_config(text: &str) -> Config {
    config::parse(text, Path::new("test.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
}

/// A config with one account on `endpoint` and the given extra account keys and sections.
pub fn config_with(endpoint: &str, account_extra: &str, rest: &str) -> Config {
    parse_config(&format!(
        r#"
[poll]
timeout = "2s"
attempts = 4
backoff = "10ms"
max_backoff = "50ms"
max_rps = 1000

[[accounts]]
name = "test"
endpoint = "{endpoint}"
{account_extra}

[[jobs]]
id = "k2gm967v16f"
region = "cn-hangzhou"

{rest}
"#
    ))
}

/// The demo account's keys, as TOML account lines.
pub fn demo_keys() -> String {
    format!(
        "access_key_id = \"{DEMO_ACCESS_KEY_ID}\"\naccess_key_secret = \"{DEMO_ACCESS_KEY_SECRET}\""
    )
}

pub fn client(config: &Config, env: &Environment) -> AliyunClient {
    AliyunClient::new(&config.accounts[0], &config.poll, env).expect("client builds")
}
