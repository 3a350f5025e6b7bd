//! Several `dtswatch run` processes on one real PostgreSQL database
//! (`pg.rs`): one leads, the others stand by; killed, frozen and restarted
//! leaders, and a restarted PostgreSQL, cost no alert and at most one
//! duplicate per failover. Jobs flip between failed and running in the
//! simulator; a signature-checking webhook receives every notification.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dtswatch::sim::{SimOptions, Simulator};
use sqlx::any::AnyPoolOptions;

use crate::helpers::{DaemonProcess, TestConfig, eventually, free_port, one_step_job, run_cli};
use crate::peers::webhook::Webhook;
use crate::pg::{self, PgServer};

const FAILOVER: &str = "3s";

/// One notified event as the webhook received it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Received {
    job: String,
    status: String,
    fingerprint: String,
    at: String,
}

fn received(webhook: &Webhook, rule: &str) -> Vec<Received> {
    webhook
        .accepted()
        .iter()
        .flat_map(|request| {
            let body = request.json();
            body["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a["labels"]["rule"] == rule)
                .map(|a| Received {
                    job: a["labels"]["job_id"].as_str().unwrap_or("").to_string(),
                    status: a["status"].as_str().unwrap_or("").to_string(),
                    fingerprint: a["fingerprint"].as_str().unwrap_or("").to_string(),
                    at: a["at"].as_str().unwrap_or("").to_string(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The same notification received more than once: (event, times).
fn duplicates(events: &[Received]) -> Vec<(Received, usize)> {
    let mut counts: BTreeMap<&Received, usize> = BTreeMap::new();
    for event in events {
        *counts.entry(event).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(e, n)| (e.clone(), n))
        .collect()
}

/// Distinct (job, status) transitions received, per job in order.
fn distinct_by_job(events: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut by_job: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in events {
        if seen.insert(event.clone()) {
            by_job
                .entry(event.job.clone())
                .or_default()
                .push(event.status.clone());
        }
    }
    by_job
}

/// The lease as the database holds it: (instance, term, held).
async fn lease(url: &str) -> Option<(String, i64, bool)> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .ok()?;
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT instance, term, CASE WHEN expires_at > dtswatch_now_ms() THEN 1 ELSE 0 END FROM ha_lease WHERE id = 1",
    )
    .fetch_optional(&pool)
    .await
    .ok()?;
    pool.close().await;
    row.map(|(instance, term, held)| (instance, term, held == 1))
}

/// Instances of dtswatch on one database, a simulator and a webhook.
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
    sim: Simulator,
    webhook: Webhook,
    jobs: Vec<String>,
    instances: BTreeMap<String, (DaemonProcess, PathBuf, u16)>,
}

impl Cluster {
    async fn new(url: String, jobs: usize) -> Self {
        let ids: Vec<String> = (0..jobs).map(|i| format!("dtsha{i:02}")).collect();
        let sim = Simulator::start(SimOptions {
            jobs: ids.iter().map(|id| one_step_job(id, "Running")).collect(),
            ..SimOptions::default()
        })
        .await
        .unwrap();
        Self {
            dir: tempfile::tempdir().unwrap(),
            url,
            sim,
            webhook: Webhook::start().await,
            jobs: ids,
            instances: BTreeMap::new(),
        }
    }

    fn config(&self, instance: &str, port: u16) -> PathBuf {
        let ids: Vec<&str> = self.jobs.iter().map(String::as_str).collect();
        let config = TestConfig::new(&self.sim.endpoint())
            .daemon()
            .postgres(&self.url)
            .jobs(&ids)
            .set("server", "listen", &format!("\"127.0.0.1:{port}\""))
            .set("server", "insecure", "true")
            .with(&format!(
                "[ha]\nfailover = \"{FAILOVER}\"\ninstance = \"{instance}\"\n\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"hook\"]\n\n[watchdog]\nchannels = [\"hook\"]\nno_successful_poll = \"10m\"",
                self.webhook.url(),
                self.webhook.secret
            ));
        let dir = self.dir.path().join(instance);
        std::fs::create_dir_all(&dir).unwrap();
        config.write(&dir)
    }

    fn log(&self, instance: &str) -> PathBuf {
        self.dir.path().join(format!("{instance}.log"))
    }

    /// Starts (or restarts) `instance`, logging at info to its log file.
    fn start(&mut self, instance: &str) {
        let port = self
            .instances
            .get(instance)
            .map(|(_, _, port)| *port)
            .unwrap_or_else(free_port);
        let config = self.config(instance, port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(instance))
            .unwrap();
        let process = DaemonProcess::start_logging_at(&config, "info", log);
        self.instances
            .insert(instance.to_string(), (process, config, port));
    }

    fn process(&mut self, instance: &str) -> &mut DaemonProcess {
        &mut self.instances.get_mut(instance).unwrap().0
    }

    async fn healthz(&self, instance: &str) -> Option<String> {
        let port = self.instances.get(instance)?.2;
        let response = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .ok()?;
        response.text().await.ok()
    }

    /// Waits until some instance holds the lease; returns it and the term.
    async fn leader(&self) -> (String, i64) {
        eventually("an instance leads", async || {
            lease(&self.url)
                .await
                .filter(|(_, _, held)| *held)
                .map(|(i, t, _)| (i, t))
        })
        .await
    }

    /// Waits until an instance leads in a term after `term`.
    async fn leader_after(&self, term: i64) -> (String, i64) {
        eventually("a new leader", async || {
            lease(&self.url)
                .await
                .filter(|(_, t, held)| *held && *t > term)
                .map(|(i, t, _)| (i, t))
        })
        .await
    }

    /// Flips every job to failed (`fail`) or running.
    fn flip(&self, fail: bool) {
        for id in &self.jobs {
            self.sim
                .add_job(one_step_job(id, if fail { "Failed" } else { "Running" }));
        }
    }

    /// Waits until every job's latest distinct notification is `status`
    /// and it has had `count` of them in all.
    async fn delivered(&self, status: &str, count: usize) {
        eventually(
            &format!("{count} {status} notifications per job"),
            async || {
                let by_job = distinct_by_job(&received(&self.webhook, "step failed"));
                self.jobs
                    .iter()
                    .all(|id| {
                        by_job.get(id).is_some_and(|statuses| {
                            statuses.last().map(String::as_str) == Some(status)
                                && statuses.iter().filter(|s| *s == status).count() == count
                        })
                    })
                    .then_some(())
            },
        )
        .await;
    }

    fn log_text(&self, instance: &str) -> String {
        std::fs::read_to_string(self.log(instance)).unwrap_or_default()
    }

    fn config_path(&self, instance: &str) -> &Path {
        &self.instances[instance].1
    }
}

/// Every job notified firing, resolved, firing, … `rounds` times, each once.
fn assert_alternating(events: &[Received], jobs: &[String], rounds: usize) {
    let by_job = distinct_by_job(events);
    for id in jobs {
        let expected: Vec<&str> = (0..rounds)
            .map(|r| if r % 2 == 0 { "firing" } else { "resolved" })
            .collect();
        assert_eq!(
            by_job
                .get(id)
                .map(|v| v.iter().map(String::as_str).collect::<Vec<_>>()),
            Some(expected),
            "notifications of {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_notify_each_change_once() {
    let Some(url) = pg::database("ha_two") else {
        return;
    };
    let mut cluster = Cluster::new(url, 10).await;
    cluster.start("east");
    cluster.start("west");
    let (leader, term) = cluster.leader().await;
    let standby = if leader == "east" { "west" } else { "east" };
    eventually("the standby says so on /healthz", async || {
        cluster
            .healthz(standby)
            .await
            .filter(|h| h.starts_with(&format!("standby: {leader} leads (term {term})")))
    })
    .await;
    let healthz = cluster.healthz(&leader).await.unwrap();
    assert!(
        healthz.starts_with(&format!("leader (term {term})")),
        "{healthz}"
    );
    // 10 jobs × 10 flips: 100 state changes, 50 failures and 50 recoveries.
    for round in 0..10 {
        cluster.flip(round % 2 == 0);
        let status = if round % 2 == 0 { "firing" } else { "resolved" };
        cluster.delivered(status, round / 2 + 1).await;
    }
    let events = received(&cluster.webhook, "step failed");
    assert_alternating(&events, &cluster.jobs, 10);
    assert_eq!(duplicates(&events), [], "no notification twice");
    assert_eq!(events.len(), 100);
    // Only the leader polled and delivered; the term never moved.
    assert_eq!(cluster.leader().await, (leader.clone(), term));
    let status = run_cli(cluster.config_path(standby), &["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status
            .stdout
            .starts_with(&format!("leader: {leader} (term {term}")),
        "{}",
        status.stdout
    );
    for (instance, role) in [(leader.as_str(), "LEADER"), (standby, "STANDBY")] {
        assert!(
            status
                .stdout
                .lines()
                .any(|l| l.starts_with(instance) && l.contains(role)),
            "{instance} as {role} in:\n{}",
            status.stdout
        );
    }
    let json = run_cli(
        cluster.config_path(standby),
        &["status", "--format", "json"],
    );
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["ha"]["leader"], leader.as_str());
    assert_eq!(json["ha"]["term"], term);
    let polled = json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["id"].as_str().unwrap().starts_with("dtsha"))
        .count();
    assert_eq!(polled, 10);
    // Every command reads the shared database.
    let history = run_cli(cluster.config_path(standby), &["history", "dtsha00"]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(history.stdout.contains("Failed"), "{}", history.stdout);
    let outbox = run_cli(cluster.config_path(standby), &["outbox"]);
    assert_eq!(outbox.code, 0, "{}", outbox.stderr);
    let added = run_cli(
        cluster.config_path(standby),
        &[
            "silence",
            "add",
            "--job",
            "dtsha00",
            "--rule",
            "step failed",
            "--for",
            "1h",
            "--comment",
            "from the standby's host",
        ],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let listed = run_cli(
        cluster.config_path(leader.as_str()),
        &["silence", "list", "--format", "json"],
    );
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let silence = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["comment"] == "from the standby's host")
        .expect("the silence is in the shared database");
    let id = silence["id"].as_str().unwrap().to_string();
    let expired = run_cli(cluster.config_path(standby), &["silence", "expire", &id]);
    assert_eq!(expired.code, 0, "{}", expired.stderr);
    let once = run_cli(cluster.config_path(standby), &["once"]);
    assert_eq!(once.code, 1, "once refuses beside a leader");
    assert!(
        once.stderr
            .contains(&format!("{leader} leads this database (term {term})")),
        "{}",
        once.stderr
    );
    // The standby's status page names the leader.
    let page = reqwest::get(format!(
        "http://127.0.0.1:{}/",
        cluster.instances[standby].2
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        page.contains(&format!("<b>{leader}</b> (term {term}, 2 instances)")),
        "{page}"
    );
    for instance in ["east", "west"] {
        let port = cluster.instances[instance].2;
        let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let parsed = crate::helpers::parse_prometheus(&metrics);
        let leading = if instance == leader { 1.0 } else { 0.0 };
        assert_eq!(parsed["dtswatch_ha_leader"], leading, "{instance}");
        assert_eq!(parsed["dtswatch_ha_term"], term as f64, "{instance}");
    }
    // A clean stop of the leader hands over at once, not after the lease.
    let before = Instant::now();
    assert_eq!(cluster.process(&leader).terminate(), Some(0));
    let (next, next_term) = cluster.leader_after(term).await;
    assert_eq!((next.as_str(), next_term), (standby, term + 1));
    assert!(
        before.elapsed() < Duration::from_secs(3),
        "handed over in {:?}",
        before.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_ten_times_loses_nothing() {
    let Some(url) = pg::database("ha_kill") else {
        return;
    };
    let mut cluster = Cluster::new(url.clone(), 6).await;
    cluster.start("a");
    cluster.start("b");
    let mut failover_ms = Vec::new();
    for round in 0..10u64 {
        let (leader, term) = cluster.leader().await;
        // A flip, and the leader killed somewhere while it polls, records or sends.
        cluster.flip(round % 2 == 0);
        let status = if round % 2 == 0 { "firing" } else { "resolved" };
        tokio::time::sleep(Duration::from_millis(150 * round)).await;
        let killed = Instant::now();
        cluster.process(&leader).kill();
        let (next, next_term) = cluster.leader_after(term).await;
        assert_ne!(next, leader);
        assert_eq!(next_term, term + 1);
        failover_ms.push(killed.elapsed().as_millis());
        cluster.start(&leader);
        cluster.delivered(status, round as usize / 2 + 1).await;
    }
    let events = received(&cluster.webhook, "step failed");
    assert_alternating(&events, &cluster.jobs, 10);
    let dups = duplicates(&events);
    assert!(
        dups.iter().all(|(_, n)| *n == 2),
        "never more than one duplicate of a notification: {dups:?}"
    );
    assert!(
        dups.len() <= 10,
        "at most one duplicate per failover: {dups:?}"
    );
    // The killed processes leave the instance list once unseen for 2 × failover.
    eventually("status lists the two live instances", async || {
        let status = run_cli(cluster.config_path("a"), &["status", "--format", "json"]);
        let json: serde_json::Value = serde_json::from_str(&status.stdout).ok()?;
        let mut roles: Vec<(String, String)> = json["ha"]["instances"]
            .as_array()?
            .iter()
            .map(|i| {
                (
                    i["instance"].as_str().unwrap_or("").to_string(),
                    i["role"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        roles.sort();
        let names: Vec<&str> = roles.iter().map(|(n, _)| n.as_str()).collect();
        let leaders = roles.iter().filter(|(_, r)| r == "leader").count();
        (names == ["a", "b"] && leaders == 1).then_some(())
    })
    .await;
    failover_ms.sort();
    eprintln!(
        "FAILOVER kill→new lease over 10 failovers: p50 {} ms, max {} ms; duplicates {}",
        failover_ms[failover_ms.len() / 2],
        failover_ms[failover_ms.len() - 1],
        dups.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_wakes_up_sends_nothing_and_steps_down() {
    let Some(url) = pg::database("ha_frozen") else {
        return;
    };
    let mut cluster = Cluster::new(url, 4).await;
    cluster.start("first");
    let (_, term) = cluster.leader().await;
    cluster.start("second");
    // The webhook refuses for now: the leader's notifications wait for a retry.
    cluster.webhook.fail(100_000);
    cluster.flip(true);
    eventually("the leader tried to send", async || {
        (!cluster.webhook.log.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    cluster.process("first").signal("STOP");
    cluster.webhook.fail(0);
    let (leader, new_term) = cluster.leader_after(term).await;
    assert_eq!((leader.as_str(), new_term), ("second", term + 1));
    cluster.delivered("firing", 1).await;
    let delivered = cluster.webhook.accepted().len();
    cluster.process("first").signal("CONT");
    eventually("the woken leader says it steps down", async || {
        cluster
            .log_text("first")
            .contains("stepping down")
            .then_some(())
    })
    .await;
    eventually("the woken leader is a standby", async || {
        cluster
            .healthz("first")
            .await
            .filter(|h| h.starts_with("standby: second leads"))
    })
    .await;
    // Long enough for its retry timer and its next polls.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<String> = cluster.webhook.accepted()[delivered..]
        .iter()
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(after, Vec::<String>::new(), "the woken leader sent nothing");
    let events = received(&cluster.webhook, "step failed");
    assert_eq!(duplicates(&events), []);
    assert_alternating(&events, &cluster.jobs, 1);
    assert_eq!(cluster.leader().await, ("second".to_string(), new_term));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_costs_no_alert_and_no_leader_is_reported() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("ha_restart");
    let mut cluster = Cluster::new(url, 4).await;
    cluster.start("solo");
    cluster.leader().await;
    cluster.flip(true);
    cluster.delivered("firing", 1).await;
    // A restart while a change is being noticed: nothing is lost.
    cluster.flip(false);
    server.restart();
    cluster.delivered("resolved", 1).await;
    // A longer outage: nobody can lead, and the instance says so directly.
    server.stop();
    cluster.flip(true);
    let no_leader = eventually("the no-leader alert", async || {
        received(&cluster.webhook, "watchdog: no leader")
            .into_iter()
            .find(|e| e.status == "firing")
    })
    .await;
    assert_eq!(no_leader.job, "dtswatch");
    server.restart();
    eventually("the no-leader alert resolved", async || {
        received(&cluster.webhook, "watchdog: no leader")
            .into_iter()
            .find(|e| e.status == "resolved")
    })
    .await;
    cluster.delivered("firing", 2).await;
    let events = received(&cluster.webhook, "step failed");
    assert_alternating(&events, &cluster.jobs, 3);
    assert_eq!(duplicates(&events), []);
}
