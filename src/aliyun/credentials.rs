//! Where AccessKeys come from: the account's own keys, else the standard
//! Alibaba Cloud chain (env vars → `~/.aliyun/config.json` → credentials file →
//! ECS RAM role via the metadata service). Temporary (STS) credentials are
//! cached and fetched again 15 minutes before they expire, or at once when DTS
//! says the token expired. The environment is an argument so tests never touch
//! the process environment or the real metadata address.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::{CredentialsConfig, Secret};

/// Default ECS metadata service.
pub const ECS_METADATA_URL: &str = "http://100.100.100.200";
/// STS credentials are treated as stale this long before `Expiration`.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
    pub expiration: Option<DateTime<Utc>>,
}

impl Credentials {
    /// True when these must be fetched again before use.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        match self.expiration {
            Some(expiration) => {
                now + chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default() >= expiration
            }
            None => false,
        }
    }
}

/// The environment variables and home directory the chain reads.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
    home: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// A synthetic environment, for tests and the demo.
    pub fn new(vars: &[(&str, &str)], home: Option<&Path>) -> Self {
        Self {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: home.map(Path::to_path_buf),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        self.var(name)
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false)
    }
}

/// One link of the chain.
#[derive(Clone, Debug)]
enum Source {
    Static(Credentials),
    Env,
    CliProfile {
        path: PathBuf,
        profile: Option<String>,
    },
    CredentialsFile {
        paths: Vec<PathBuf>,
        profile: String,
    },
    EcsRamRole {
        base_url: String,
        role: Option<String>,
        imdsv1_allowed: bool,
    },
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Source::Static(_) => "config",
            Source::Env => "environment",
            Source::CliProfile { .. } => "~/.aliyun/config.json",
            Source::CredentialsFile { .. } => "~/.alibabacloud/credentials",
            Source::EcsRamRole { .. } => "ECS RAM role",
        }
    }
}

/// Hands out valid credentials, fetching and caching them as needed.
pub struct CredentialsProvider {
    sources: Vec<Source>,
    http: reqwest::Client,
    env: Environment,
    /// The source that last worked and what it gave.
    cache: tokio::sync::Mutex<Option<(usize, Credentials)>>,
}

impl CredentialsProvider {
    pub fn new(config: &CredentialsConfig, env: &Environment, http: reqwest::Client) -> Self {
        let sources = match config {
            CredentialsConfig::Static {
                access_key_id,
                access_key_secret,
                security_token,
            } => vec![Source::Static(Credentials {
                access_key_id: access_key_id.clone(),
                access_key_secret: access_key_secret.clone(),
                security_token: security_token.clone(),
                expiration: None,
            })],
            CredentialsConfig::Chain {
                profile,
                ecs_role,
                metadata_url,
            } => chain(
                env,
                profile.as_deref(),
                ecs_role.as_deref(),
                metadata_url.as_deref(),
            ),
        };
        Self {
            sources,
            http,
            env: env.clone(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Valid credentials, from cache when fresh.
    pub async fn get(&self) -> Result<Credentials, String> {
        let now = Utc::now();
        let mut cache = self.cache.lock().await;
        if let Some((_, creds)) = cache.as_ref().filter(|(_, c)| !c.is_stale(now)) {
            return Ok(creds.clone());
        }
        // Try the source that worked last first, then the whole chain.
        let preferred = cache.as_ref().map(|(i, _)| *i);
        let order: Vec<usize> = preferred
            .into_iter()
            .chain((0..self.sources.len()).filter(|i| Some(*i) != preferred))
            .collect();
        let mut reasons = Vec::new();
        for index in order {
            let source = &self.sources[index];
            match self.resolve(source).await {
                Ok(creds) => {
                    tracing::debug!(source = source.name(), access_key_id = %creds.access_key_id, "credentials obtained");
                    *cache = Some((index, creds.clone()));
                    return Ok(creds);
                }
                Err(reason) => reasons.push(format!("{}: {reason}", source.name())),
            }
        }
        Err(reasons.join("; "))
    }

    /// Forgets cached credentials, e.g. after `InvalidSecurityToken.Expired`.
    pub async fn invalidate(&self) {
        let mut cache = self.cache.lock().await;
        // Keep the source preference, drop the credentials.
        if let Some((_, creds)) = cache.as_mut() {
            creds.expiration = Some(DateTime::<Utc>::MIN_UTC);
        }
    }

    async fn resolve(&self, source: &Source) -> Result<Credentials, String> {
        match source {
            Source::Static(creds) => Ok(creds.clone()),
            Source::Env => from_env(&self.env),
            Source::CliProfile { path, profile } => {
                let profile = from_cli_profile(path, profile.as_deref())?;
                match profile {
                    CliCredentials::Keys(creds) => Ok(creds),
                    CliCredentials::EcsRole(role) => {
                        let base = self
                            .sources
                            .iter()
                            .find_map(|s| match s {
                                Source::EcsRamRole { base_url, .. } => Some(base_url.clone()),
                                _ => None,
                            })
                            .unwrap_or_else(|| ECS_METADATA_URL.to_string());
                        super::ecs_role::fetch(
                            &self.http,
                            &base,
                            Some(&role),
                            !self.env.flag("ALIBABA_CLOUD_IMDSV1_DISABLED"),
                        )
                        .await
                    }
                }
            }
            Source::CredentialsFile { paths, profile } => from_credentials_file(paths, profile),
            Source::EcsRamRole {
                base_url,
                role,
                imdsv1_allowed,
            } => {
                super::ecs_role::fetch(&self.http, base_url, role.as_deref(), *imdsv1_allowed).await
            }
        }
    }
}

fn chain(
    env: &Environment,
    profile: Option<&str>,
    ecs_role: Option<&str>,
    metadata_url: Option<&str>,
) -> Vec<Source> {
    let mut sources = vec![Source::Env];
    let profile = profile
        .map(str::to_string)
        .or_else(|| env.var("ALIBABA_CLOUD_PROFILE").map(str::to_string));
    if let Some(home) = &env.home
        && !env.flag("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")
    {
        sources.push(Source::CliProfile {
            path: home.join(".aliyun").join("config.json"),
            profile: profile.clone(),
        });
    }
    let mut paths = Vec::new();
    if let Some(file) = env.var("ALIBABA_CLOUD_CREDENTIALS_FILE") {
        paths.push(PathBuf::from(file));
    } else if let Some(home) = &env.home {
        paths.push(home.join(".alibabacloud").join("credentials.ini"));
        paths.push(home.join(".alibabacloud").join("credentials"));
    }
    sources.push(Source::CredentialsFile {
        paths,
        profile: profile.unwrap_or_else(|| "default".to_string()),
    });
    if !env.flag("ALIBABA_CLOUD_ECS_METADATA_DISABLED") || metadata_url.is_some() {
        sources.push(Source::EcsRamRole {
            base_url: metadata_url
                .unwrap_or(ECS_METADATA_URL)
                .trim_end_matches('/')
                .to_string(),
            role: ecs_role
                .map(str::to_string)
                .or_else(|| env.var("ALIBABA_CLOUD_ECS_METADATA").map(str::to_string)),
            imdsv1_allowed: !env.flag("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        });
    }
    sources
}

fn from_env(env: &Environment) -> Result<Credentials, String> {
    match (
        env.var("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        env.var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id.to_string(),
            access_key_secret: Secret::new(secret),
            security_token: env.var("ALIBABA_CLOUD_SECURITY_TOKEN").map(Secret::new),
            expiration: None,
        }),
        _ => Err("ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET not set".into()),
    }
}

enum CliCredentials {
    Keys(Credentials),
    EcsRole(String),
}

#[derive(Deserialize)]
struct CliConfig {
    current: Option<String>,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

#[derive(Deserialize)]
struct CliProfile {
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
    #[serde(default)]
    ram_role_name: String,
}

fn from_cli_profile(path: &Path, profile: Option<&str>) -> Result<CliCredentials, String> {
    let text = std::fs::read_to_string(path).map_err(|_| "not found".to_string())?;
    let config: CliConfig =
        serde_json::from_str(&text).map_err(|e| format!("not valid JSON ({e})"))?;
    let wanted = profile
        .map(str::to_string)
        .or(config.current)
        .unwrap_or_else(|| "default".to_string());
    let p = config
        .profiles
        .into_iter()
        .find(|p| p.name == wanted)
        .ok_or_else(|| format!("no profile `{wanted}`"))?;
    match p.mode.as_str() {
        "AK" | "" if !p.access_key_id.is_empty() && !p.access_key_secret.is_empty() => {
            Ok(CliCredentials::Keys(Credentials {
                access_key_id: p.access_key_id,
                access_key_secret: Secret::new(p.access_key_secret),
                security_token: None,
                expiration: None,
            }))
        }
        "StsToken" if !p.access_key_id.is_empty() && !p.sts_token.is_empty() => {
            Ok(CliCredentials::Keys(Credentials {
                access_key_id: p.access_key_id,
                access_key_secret: Secret::new(p.access_key_secret),
                security_token: Some(Secret::new(p.sts_token)),
                expiration: None,
            }))
        }
        "EcsRamRole" if !p.ram_role_name.is_empty() => Ok(CliCredentials::EcsRole(p.ram_role_name)),
        mode => Err(format!(
            "profile `{wanted}` has mode `{mode}`, which dtswatch cannot use (AK, StsToken and EcsRamRole are supported)"
        )),
    }
}

/// Reads `[profile]` sections of an INI credentials file; `#` and `;` start comments.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    sections
}

fn from_credentials_file(paths: &[PathBuf], profile: &str) -> Result<Credentials, String> {
    let Some((path, text)) = paths
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|t| (p, t)))
    else {
        return Err("not found".into());
    };
    let sections = parse_ini(&text);
    let section = sections
        .get(profile)
        .ok_or_else(|| format!("{} has no [{profile}] section", path.display()))?;
    let kind = section
        .get("type")
        .map(String::as_str)
        .unwrap_or("access_key");
    match (
        kind,
        section.get("access_key_id"),
        section.get("access_key_secret"),
    ) {
        ("access_key", Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok(Credentials {
                access_key_id: id.clone(),
                access_key_secret: Secret::new(secret.clone()),
                security_token: None,
                expiration: None,
            })
        }
        ("access_key", _, _) => Err(format!(
            "[{profile}] lacks access_key_id or access_key_secret"
        )),
        (other, _, _) => Err(format!(
            "[{profile}] has type `{other}`; only access_key is supported in this file"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_config() -> CredentialsConfig {
        CredentialsConfig::Chain {
            profile: None,
            ecs_role: None,
            metadata_url: None,
        }
    }

    fn no_ecs(home: Option<&Path>, extra: &[(&str, &str)]) -> Environment {
        let mut vars = vec![("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")];
        vars.extend_from_slice(extra);
        Environment::new(&vars, home)
    }

    #[tokio::test]
    async fn environment_variables_come_first() {
        let env = no_ecs(
            None,
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "envid"),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret"),
                ("ALIBABA_CLOUD_SECURITY_TOKEN", "envtoken"),
            ],
        );
        let provider = CredentialsProvider::new(&chain_config(), &env, reqwest::Client::new());
        let creds = provider.get().await.unwrap();
        assert_eq!(creds.access_key_id, "envid");
        assert_eq!(creds.security_token.unwrap().expose(), "envtoken");
    }

    #[tokio::test]
    async fn cli_profile_then_credentials_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
        std::fs::write(
            home.path().join(".aliyun/config.json"),
            r#"{"current":"work","profiles":[{"name":"default","mode":"AK","access_key_id":"d","access_key_secret":"ds"},{"name":"work","mode":"StsToken","access_key_id":"cliid","access_key_secret":"clisecret","sts_token":"clitoken"}]}"#,
        )
        .unwrap();
        let env = no_ecs(Some(home.path()), &[]);
        let provider = CredentialsProvider::new(&chain_config(), &env, reqwest::Client::new());
        let creds = provider.get().await.unwrap();
        assert_eq!(creds.access_key_id, "cliid");
        assert_eq!(creds.security_token.unwrap().expose(), "clitoken");

        std::fs::remove_file(home.path().join(".aliyun/config.json")).unwrap();
        std::fs::create_dir_all(home.path().join(".alibabacloud")).unwrap();
        std::fs::write(
            home.path().join(".alibabacloud/credentials"),
            "[default]  # the usual one\ntype = access_key\naccess_key_id = iniid ; comment\naccess_key_secret = inisecret\n",
        )
        .unwrap();
        let provider = CredentialsProvider::new(&chain_config(), &env, reqwest::Client::new());
        let creds = provider.get().await.unwrap();
        assert_eq!(creds.access_key_id, "iniid");
        assert_eq!(creds.access_key_secret.expose(), "inisecret");
    }

    #[tokio::test]
    async fn an_empty_chain_explains_every_link() {
        let home = tempfile::tempdir().unwrap();
        let env = no_ecs(Some(home.path()), &[]);
        let provider = CredentialsProvider::new(&chain_config(), &env, reqwest::Client::new());
        let error = provider.get().await.unwrap_err();
        assert!(
            error.contains("environment: ALIBABA_CLOUD_ACCESS_KEY_ID"),
            "{error}"
        );
        assert!(
            error.contains("~/.aliyun/config.json: not found"),
            "{error}"
        );
        assert!(
            error.contains("~/.alibabacloud/credentials: not found"),
            "{error}"
        );
    }

    #[test]
    fn staleness_uses_the_fifteen_minute_margin() {
        let now = Utc::now();
        let mut creds = Credentials {
            access_key_id: "a".into(),
            access_key_secret: Secret::new("b"),
            security_token: None,
            expiration: None,
        };
        assert!(!creds.is_stale(now));
        creds.expiration = Some(now + chrono::Duration::minutes(16));
        assert!(!creds.is_stale(now));
        creds.expiration = Some(now + chrono::Duration::minutes(14));
        assert!(creds.is_stale(now));
    }
}
