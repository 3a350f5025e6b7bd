//! `cargo bench --bench poll_cycle`: the figures of SPEC section 8, measured
//! on the process users run. The real `dtswatch run` binary runs as a child
//! process against the DTS simulator in this process (so the simulator's
//! work is not counted), and everything is read from outside: the daemon's
//! own CPU (`wait4` rusage when it exits, start-up included, and
//! `/proc/PID/stat` over the steady cycles), its peak RSS (`VmHWM`), what it
//! counted in `/metrics`, and the database it wrote (compacted copies taken
//! with `VACUUM INTO` while it runs).
//!
//! Part 1 — throughput. N jobs of 8 steps × 4 sub-steps on `@every P`
//! (latency moving every poll, then again with every answer unchanged).
//! Part 2 — alert latency. 500 jobs each fail once; a DingTalk receiver in
//! this process notes when each alert arrives; p50/p99 from the simulator
//! answering the failing poll to the receiver getting the message.
//!
//! Options (after `--`): `--jobs N` (1000), `--cycles N` (10), `--period S`
//! (seconds between a job's polls, default 3), `--failures N` (500, 0 skips
//! part 2).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtswatch::sim::{Frame, SimJob, SimOptions, SimStep, Simulator};
use dtswatch::store::{Store, polls};

struct Args {
    jobs: usize,
    cycles: u64,
    period: u64,
    failures: usize,
}

fn args() -> Args {
    let mut args = Args {
        jobs: 1000,
        cycles: 10,
        period: 3,
        failures: 500,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match a.as_str() {
            "--jobs" => args.jobs = value() as usize,
            "--cycles" => args.cycles = value(),
            "--period" => args.period = value().max(1),
            "--failures" => args.failures = value() as usize,
            _ => {}
        }
    }
    args
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `dtswatch run` as a child process; killed if dropped while running.
struct Daemon {
    child: Child,
    metrics: SocketAddr,
}

/// What the kernel says about the daemon once it exited.
struct Exited {
    cpu: Duration,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

impl Daemon {
    fn start(config: &Path, metrics: SocketAddr) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_dtswatch"))
            .args(["run", "-c"])
            .arg(config)
            .env("DTSWATCH_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the dtswatch binary runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(metrics).is_err() {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, metrics }
    }

    /// User + system CPU so far, from `/proc/PID/stat` (clock-tick resolution).
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
        Duration::from_secs_f64((ticks(11) + ticks(12)) / clock_ticks())
    }

    /// Peak resident set size, from `/proc/PID/status`.
    fn peak_rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
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

    /// A counter or gauge from `/metrics`, summed over the series whose text contains `filter`.
    async fn metric(&self, name: &str, filter: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .and_then(|r| r.error_for_status())
            .expect("the daemon serves /metrics")
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(filter))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }

    /// SIGTERM, then the kernel's account of the whole run.
    fn stop(mut self) -> Exited {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscalls on our own child; `usage` is written by wait4.
        let usage = unsafe {
            libc::kill(pid, libc::SIGTERM);
            let mut status = 0;
            let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
            libc::wait4(pid, &mut status, 0, usage.as_mut_ptr());
            usage.assume_init()
        };
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        // Reaped already: nothing left for Drop to kill.
        let _ = self.child.try_wait();
        std::mem::forget(self);
        Exited {
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ACCOUNT: &str = "[[accounts]]\nname = \"bench\"\naccess_key_id = \"dtswatch-demo\"\naccess_key_secret = \"dtswatch-demo-secret\"\n";

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

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

fn jobs_toml(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| format!("[[jobs]]\nid = \"{prefix}{i:04}\"\nregion = \"cn-hangzhou\"\n\n"))
        .collect()
}

struct Throughput {
    cpu_total: Duration,
    polls_total: f64,
    cpu_steady: Duration,
    polls_steady: f64,
    peak_rss: u64,
    bytes_per_poll: f64,
    wall: Duration,
}

/// A compacted copy of the daemon's database and the polls it holds.
async fn measure_db(db: &Path, copy: &Path) -> (u64, i64) {
    let store = Store::open(db).await.expect("the daemon's database opens");
    let _ = std::fs::remove_file(copy);
    store.copy_to(copy).await.expect("VACUUM INTO");
    store.close().await;
    let copied = Store::open(copy).await.expect("the copy opens");
    let mut conn = copied.pool().acquire().await.expect("a connection");
    let polls = polls::count(&mut conn).await.expect("polls counted");
    drop(conn);
    copied.close().await;
    (std::fs::metadata(copy).map(|m| m.len()).unwrap_or(0), polls)
}

async fn throughput(args: &Args, moving: bool) -> Throughput {
    let jobs: Vec<SimJob> = (0..args.jobs)
        .map(|i| SimJob::generated_with(&format!("bench{i:04}"), "cn-hangzhou", 8, 4, moving))
        .collect();
    let sim = Simulator::start(SimOptions {
        jobs,
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let metrics = free_addr();
    let config = write_config(
        dir.path(),
        &format!(
            "[storage]\npath = \"{}\"\n\n[poll]\nschedule = \"@every {}s\"\njitter = \"{}s\"\nconcurrency = 32\nmax_rps = 1000000\ntimeout = \"30s\"\n\n[server]\nlisten = \"{metrics}\"\n\n{ACCOUNT}endpoint = \"{}\"\n\n{RULES}\n{}",
            db.display(),
            args.period,
            args.period / 2,
            sim.endpoint(),
            jobs_toml("bench", args.jobs)
        ),
    );
    let daemon = Daemon::start(&config, metrics);
    let jobs = args.jobs as f64;
    // Warm-up: every job polled once (connections, first snapshots).
    while daemon
        .metric("dtswatch_polls_total", "outcome=\"ok\"")
        .await
        < jobs
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (warm_bytes, warm_polls) = measure_db(&db, &dir.path().join("warm.db")).await;
    let (cpu_before, polls_before) = (
        daemon.cpu(),
        daemon.metric("dtswatch_polls_total", "").await,
    );
    let target = polls_before + jobs * args.cycles as f64;
    let window = Instant::now();
    while daemon.metric("dtswatch_polls_total", "").await < target {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = window.elapsed();
    let (cpu_after, polls_after) = (
        daemon.cpu(),
        daemon.metric("dtswatch_polls_total", "").await,
    );
    let (end_bytes, end_polls) = measure_db(&db, &dir.path().join("end.db")).await;
    let peak_rss = daemon.peak_rss();
    let polls_total = daemon.metric("dtswatch_polls_total", "").await;
    let exited = daemon.stop();
    Throughput {
        cpu_total: exited.cpu,
        polls_total,
        cpu_steady: cpu_after.saturating_sub(cpu_before),
        polls_steady: polls_after - polls_before,
        peak_rss,
        bytes_per_poll: end_bytes.saturating_sub(warm_bytes) as f64
            / (end_polls - warm_polls).max(1) as f64,
        wall,
    }
}

/// When each job's first alert reached the robot.
type Arrivals = Arc<Mutex<BTreeMap<String, chrono::DateTime<chrono::Utc>>>>;

/// A DingTalk robot that accepts everything and notes when each job's first alert arrived.
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
                        let mut arrivals = sink.lock().unwrap_or_else(|p| p.into_inner());
                        arrivals.entry(word.to_string()).or_insert(at);
                    }
                }
                r#"{"errcode":0,"errmsg":"ok"}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let addr = listener.local_addr().expect("receiver address");
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
            let mut frames = vec![Frame::Steps(vec![ok.clone()]); 2 + i % 10];
            frames.push(Frame::Steps(vec![failed]));
            frames.push(Frame::Steps(vec![ok]));
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
    .expect("simulator");
    let (url, received) = receiver().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let metrics = free_addr();
    let config = write_config(
        dir.path(),
        &format!(
            "[storage]\npath = \"{}\"\n\n[poll]\nschedule = \"@every 1s\"\njitter = \"0s\"\nconcurrency = 32\nmax_rps = 1000000\n\n[server]\nlisten = \"{metrics}\"\n\n{ACCOUNT}endpoint = \"{}\"\n\n[channels.oncall]\ntype = \"dingtalk\"\nurl = \"{url}\"\nrate_limit = \"off\"\n\n[[rules]]\nname = \"step failed\"\nkind = \"failed\"\nchannels = [\"oncall\"]\n\n{}",
            dir.path().join("latency.db").display(),
            sim.endpoint(),
            jobs_toml("lat", failures)
        ),
    );
    let daemon = Daemon::start(&config, metrics);
    let deadline = Instant::now() + Duration::from_secs(120);
    let arrived = || received.lock().unwrap_or_else(|p| p.into_inner()).len();
    while arrived() < failures {
        assert!(
            Instant::now() < deadline,
            "only {} of {failures} alerts arrived",
            arrived()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.stop();
    // The answer that showed the failure: the job's (2 + i % 10 + 1)-th request.
    let requests = sim.requests();
    let mut latencies = Vec::new();
    for (job, at) in received.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let i: usize = job[3..].parse().unwrap_or(0);
        if let Some(failing) = requests
            .iter()
            .filter(|r| r.job_id.as_deref() == Some(job.as_str()))
            .nth(2 + i % 10)
        {
            latencies.push((*at - failing.at).to_std().unwrap_or_default());
        }
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(index.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn micros_per(cpu: Duration, polls: f64) -> f64 {
    cpu.as_secs_f64() * 1e6 / polls.max(1.0)
}

fn report(label: &str, t: &Throughput, args: &Args) {
    println!("{label}:");
    println!(
        "  CPU per job poll, start-up included:  {:>8.1} µs   ({:.2} s over {} polls)",
        micros_per(t.cpu_total, t.polls_total),
        t.cpu_total.as_secs_f64(),
        t.polls_total
    );
    println!(
        "  CPU per job poll, steady cycles:      {:>8.1} µs   ({} polls in {:.1} s)",
        micros_per(t.cpu_steady, t.polls_steady),
        t.polls_steady,
        t.wall.as_secs_f64()
    );
    println!(
        "  peak RSS:                             {:>8.1} MB   ({:.1} KB per job)",
        t.peak_rss as f64 / 1_048_576.0,
        t.peak_rss as f64 / 1024.0 / args.jobs as f64
    );
    println!(
        "  database bytes per poll:              {:>8.1} B",
        t.bytes_per_poll
    );
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        println!(
            "dtswatch benchmark: `dtswatch run` as a process, {} jobs × (8 steps × 4 sub-steps), every {} s, {} cycles measured\n",
            args.jobs, args.period, args.cycles
        );
        let moving = throughput(&args, true).await;
        report("latency moving every poll", &moving, &args);
        let frozen = throughput(&args, false).await;
        report("every answer unchanged", &frozen, &args);
        if args.failures > 0 {
            let latencies = alert_latency(args.failures).await;
            println!(
                "alert latency over {} failures: p50 {:.1} ms, p99 {:.1} ms (failing answer → DingTalk receiver)",
                latencies.len(),
                percentile(&latencies, 0.5).as_secs_f64() * 1e3,
                percentile(&latencies, 0.99).as_secs_f64() * 1e3
            );
        }
    });
}
