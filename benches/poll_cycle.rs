//! `cargo bench --bench poll_cycle`: the figures of SPEC section 8.
//!
//! Part 1 — throughput. A simulator in its own process (so that its work is
//! not counted) serves 1,000 jobs of 8 steps × 4 sub-steps whose latency
//! changes every poll. dtswatch polls every job through the real pipeline
//! (fetch, parse, store, diff, rules, outbox) at concurrency 32, cycle after
//! cycle, and we report wall time per cycle, CPU time per job poll (user +
//! system from getrusage), peak RSS, and database bytes per poll over 20
//! cycles — with moving latency, and again with every answer unchanged.
//!
//! Part 2 — alert latency. The daemon, a simulator and a DingTalk receiver in
//! this process; 500 jobs each fail once; we measure from the simulator
//! answering the poll that shows the failure to the receiver getting the
//! message, and report p50 and p99.
//!
//! Options (after `--`): `--jobs N` (default 1000), `--cycles N` (20),
//! `--failures N` (500).

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtswatch::aliyun::Environment;
use dtswatch::app::Clients;
use dtswatch::config::{self, Config};
use dtswatch::poll::{self, Alerting, Recorder};
use dtswatch::sim::{SimJob, SimOptions, SimStep, Simulator};
use dtswatch::store::Store;

struct Args {
    jobs: usize,
    cycles: usize,
    failures: usize,
}

fn args() -> Args {
    let mut args = Args {
        jobs: 1000,
        cycles: 20,
        failures: 500,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match a.as_str() {
            "--jobs" => args.jobs = value(),
            "--cycles" => args.cycles = value(),
            "--failures" => args.failures = value(),
            _ => {}
        }
    }
    args
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Peak resident set size of this process, in bytes: `VmHWM` from
/// /proc/self/status. (getrusage's ru_maxrss survives exec, so a process
/// started by cargo would report cargo's peak.)
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The simulator in its own process; killed when dropped.
struct ExternalSim(Child);

impl Drop for ExternalSim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The simulator in its own process, or the one at `$DTSWATCH_BENCH_SIMULATOR`
/// (started by hand with `dtswatch simulator --generate N`, for profiling this process alone).
fn external_sim(jobs: usize, frozen: bool) -> (Option<ExternalSim>, String) {
    if let Ok(endpoint) = std::env::var("DTSWATCH_BENCH_SIMULATOR") {
        return (None, endpoint);
    }
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dtswatch"));
    command
        .args([
            "simulator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--generate",
            &jobs.to_string(),
        ])
        .env("DTSWATCH_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if frozen {
        command.arg("--frozen");
    }
    let child = command.spawn().expect("the dtswatch binary runs");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the simulator did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Some(ExternalSim(child)), format!("http://{addr}"))
}

const RULES: &str = r#"
[channels.oncall]
type = "webhook"
url = "http://127.0.0.1:9/unused"

[[rules]]
name = "step failed"
kind = "failed"
channels = ["oncall"]

[[rules]]
name = "step error"
kind = "error"
channels = ["oncall"]

[[rules]]
name = "replication lag"
kind = "latency"
threshold = "300s"
for = "5m"
channels = ["oncall"]

[[rules]]
name = "progress stalled"
kind = "stalled"
for = "10m"
channels = ["oncall"]

[[rules]]
name = "finished"
kind = "transition"
to = ["Finished"]
channels = ["oncall"]
"#;

fn bench_config(db: &std::path::Path, endpoint: &str, jobs: usize) -> Config {
    let mut text = format!(
        "[storage]\npath = \"{}\"\n\n[poll]\nconcurrency = 32\nmax_rps = 1000000\ntimeout = \"30s\"\n\n[[accounts]]\nname = \"bench\"\naccess_key_id = \"dtswatch-demo\"\naccess_key_secret = \"dtswatch-demo-secret\"\nendpoint = \"{endpoint}\"\n\n{RULES}\n",
        db.display()
    );
    for i in 0..jobs {
        text.push_str(&format!(
            "[[jobs]]\nid = \"bench{i:04}\"\nregion = \"cn-hangzhou\"\n\n"
        ));
    }
    config::parse(&text, std::path::Path::new("bench.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls every job once, 32 at a time, through the real pipeline (as the daemon does).
async fn cycle(
    config: &Arc<Config>,
    clients: &Arc<Clients>,
    recorder: &Arc<Recorder>,
    alerting: &Arc<Alerting>,
) {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.poll.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for job in config.jobs.iter().cloned() {
        let (semaphore, clients, recorder, alerting) = (
            semaphore.clone(),
            clients.clone(),
            recorder.clone(),
            alerting.clone(),
        );
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.unwrap();
            Box::pin(async {
                let client = clients.get(&job.account).unwrap();
                let started = Instant::now();
                let result = poll::fetch(client, &job).await;
                if let Err(failure) = &result {
                    panic!("poll of {} failed: {}", job.id, failure.error);
                }
                recorder
                    .record(
                        &job,
                        "config",
                        chrono::Utc::now(),
                        started.elapsed(),
                        &result,
                        alerting.as_ref(),
                    )
                    .await
                    .unwrap();
            })
            .await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

struct Throughput {
    wall: Vec<Duration>,
    cpu_per_poll: Vec<Duration>,
    bytes_per_poll: f64,
}

async fn throughput(jobs: usize, cycles: usize, frozen: bool) -> Throughput {
    let (_sim, endpoint) = external_sim(jobs, frozen);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let config = Arc::new(bench_config(&path, &endpoint, jobs));
    let store = Store::open(&path).await.unwrap();
    let clients = Arc::new(Clients::build(&config, &Environment::default()).unwrap());
    let recorder = Arc::new(Recorder::new(store.clone()));
    let alerting = Arc::new(Alerting::from_config(&config));
    // Warm-up: connections, and every job's first snapshot.
    cycle(&config, &clients, &recorder, &alerting).await;
    store.vacuum().await.unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let mut wall = Vec::new();
    let mut cpu_per_poll = Vec::new();
    for _ in 0..cycles {
        let (start, cpu) = (Instant::now(), cpu_time());
        cycle(&config, &clients, &recorder, &alerting).await;
        wall.push(start.elapsed());
        cpu_per_poll.push((cpu_time() - cpu) / jobs as u32);
    }
    store.vacuum().await.unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    Throughput {
        wall,
        cpu_per_poll,
        bytes_per_poll: after.saturating_sub(before) as f64 / (cycles * jobs) as f64,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// When each job's first alert reached the robot.
type Arrivals = Arc<Mutex<std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>>>;

/// A DingTalk robot that accepts everything and notes when each job's first
/// alert arrived (its "resolved" message later, or a mention twice in one
/// message, does not count again).
async fn receiver() -> (String, Arrivals) {
    let received: Arrivals = Default::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/robot/send",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                let at = chrono::Utc::now();
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let text = json["markdown"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
                    if word.len() == 7
                        && word.starts_with("lat")
                        && word[3..].bytes().all(|b| b.is_ascii_digit())
                    {
                        sink.lock().unwrap().entry(word.to_string()).or_insert(at);
                    }
                }
                r#"{"errcode":0,"errmsg":"ok"}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("http://{addr}/robot/send?access_token=bench"),
        received,
    )
}

/// Time from the failing answer to the robot receiving the alert, for each of `failures` jobs.
async fn alert_latency(failures: usize) -> Vec<Duration> {
    // Job i runs, fails at poll 2 + i % 10, then runs again: failures spread over ten polls.
    let jobs: Vec<SimJob> = (0..failures)
        .map(|i| {
            let ok = SimStep {
                id: Some("s1".into()),
                name: "全量迁移".into(),
                code: Some("03".into()),
                state: "Running".into(),
                progress: 50,
                ..Default::default()
            };
            let failed = SimStep {
                state: "Failed".into(),
                err: Some("DTS-1020042 boom".into()),
                ..ok.clone()
            };
            let mut frames = vec![dtswatch::sim::Frame::Steps(vec![ok.clone()]); 2 + i % 10];
            frames.push(dtswatch::sim::Frame::Steps(vec![failed]));
            frames.push(dtswatch::sim::Frame::Steps(vec![ok]));
            let mut job = SimJob::fixed(&format!("lat{i:04}"), "cn-hangzhou", Vec::new());
            job.script = dtswatch::sim::scenario::Script::Frames(frames);
            job
        })
        .collect();
    let sim = Simulator::start(SimOptions {
        jobs,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let (url, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "[storage]\npath = \"{}\"\n\n[poll]\nschedule = \"@every 1s\"\njitter = \"0s\"\nconcurrency = 32\nmax_rps = 1000000\n\n[server]\nlisten = \"off\"\n\n[[accounts]]\nname = \"bench\"\naccess_key_id = \"dtswatch-demo\"\naccess_key_secret = \"dtswatch-demo-secret\"\nendpoint = \"{}\"\n\n[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{url}\"\nrate_limit = \"off\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"oncall\"]\n\n",
        dir.path().join("latency.db").display(),
        sim.endpoint()
    );
    for i in 0..failures {
        text.push_str(&format!(
            "[[jobs]]\nid = \"lat{i:04}\"\nregion = \"cn-hangzhou\"\n\n"
        ));
    }
    let config = config::parse(&text, std::path::Path::new("latency.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(dtswatch::daemon::run(
        config,
        Environment::default(),
        async move {
            let _ = stopped.await;
        },
        Default::default(),
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.lock().unwrap().len() < failures {
        assert!(
            Instant::now() < deadline,
            "only {} of {failures} alerts arrived",
            received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    daemon.await.unwrap().unwrap();
    // The answer that showed the failure: the job's (2 + i % 10 + 1)-th request.
    let requests = sim.requests();
    let mut latencies = Vec::new();
    for (job, at) in received.lock().unwrap().iter() {
        let i: usize = job[3..].parse().unwrap();
        let failing = requests
            .iter()
            .filter(|r| r.job_id.as_deref() == Some(job.as_str()))
            .nth(2 + i % 10)
            .expect("the failing poll");
        latencies.push((*at - failing.at).to_std().unwrap_or_default());
    }
    latencies.sort();
    latencies
}

fn main() {
    let args = args();
    // The runtime `dtswatch run` uses.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("dtswatch benchmark: {} jobs × (8 steps × 4 sub-steps), concurrency 32, {} cycles\n", args.jobs, args.cycles);
        let moving = throughput(args.jobs, args.cycles, false).await;
        let rss = peak_rss();
        let frozen = throughput(args.jobs, args.cycles, true).await;
        let wall = median(moving.wall.clone());
        let cpu = median(moving.cpu_per_poll.clone());
        println!("poll cycle of {} jobs, wall (median of {}):   {:>8.3} s      (target ≤ 2 s)", args.jobs, args.cycles, wall.as_secs_f64());
        println!("CPU per job poll, user+system (median):  {:>8.1} µs     (target ≤ 150 µs)", cpu.as_secs_f64() * 1e6);
        println!("peak RSS after {} cycles:                 {:>8.1} MB     (target ≤ 40 MB)", args.cycles + 1, rss as f64 / 1_048_576.0);
        println!("database bytes per unchanged poll:        {:>8.1} B      (target ≤ 200 B)", frozen.bytes_per_poll);
        println!("database bytes per poll, latency moving:  {:>8.1} B", moving.bytes_per_poll);
        println!("CPU per job poll, unchanged answers:      {:>8.1} µs", median(frozen.cpu_per_poll.clone()).as_secs_f64() * 1e6);
        if args.failures > 0 {
            let latencies = alert_latency(args.failures).await;
            println!(
                "alert latency over {} failures:           p50 {:.1} ms, p99 {:.1} ms (failing answer → DingTalk receiver)",
                latencies.len(),
                percentile(&latencies, 0.5).as_secs_f64() * 1e3,
                percentile(&latencies, 0.99).as_secs_f64() * 1e3
            );
        }
    });
}
