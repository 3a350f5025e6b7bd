//! The plan: fires once per tick, keeps what it learnt across rebuilds,
//! does O(due) work per wake, and follows what sweeps and polls say.

use std::sync::atomic::Ordering;

use super::*;
use crate::config::JobConfig;
use crate::store::jobs::JobSource;

fn config(poll: &str) -> Config {
    crate::config::parse(
        &format!("[poll]\nschedule = \"@every 10s\"\n{poll}\n[[accounts]]\nname = \"a\"\naccess_key_id = \"x\"\naccess_key_secret = \"y\"\n[[jobs]]\nid = \"j\"\nregion = \"cn-hangzhou\"\n"),
        std::path::Path::new("t.toml"),
        &|_| None,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn watched(id: &str, name: Option<&str>) -> Watched {
    Watched {
        job: Arc::new(JobConfig {
            id: id.into(),
            region: "cn-hangzhou".into(),
            account: "a".into(),
            name: name.map(str::to_string),
            schedule: None,
            zero_etl: None,
            resource_group_id: None,
        }),
        source: JobSource::Config,
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_796_000_000 + seconds, 0).unwrap()
}

fn polls(due: &[Due]) -> Vec<(&str, Priority)> {
    let mut ids: Vec<(&str, Priority)> = due
        .iter()
        .filter_map(|d| match d {
            Due::Poll {
                watched, priority, ..
            } => Some((watched.job.id.as_str(), *priority)),
            Due::Sweep { .. } => None,
        })
        .collect();
    ids.sort();
    ids
}

fn ids(due: &[Due]) -> Vec<&str> {
    polls(due).into_iter().map(|(id, _)| id).collect()
}

fn sweeps(due: &[Due]) -> usize {
    due.iter()
        .filter(|d| matches!(d, Due::Sweep { .. }))
        .count()
}

fn listed(id: &str, status: &str, error: Option<&str>) -> DiscoveredJob {
    DiscoveredJob {
        id: id.into(),
        name: None,
        status: Some(status.into()),
        job_type: crate::config::JobType::Sync,
        region: "cn-hangzhou".into(),
        tags: Default::default(),
        delay_ms: Some(1_000),
        error_message: error.map(str::to_string),
        error_codes: Vec::new(),
    }
}

#[test]
fn due_jobs_fire_once_per_tick_and_move_on() {
    let mut plan = Plan::default();
    let config = config("mode = \"per_job\"\njitter = \"0s\"");
    plan.rebuild(vec![watched("a", None), watched("b", None)], &config, at(1));
    assert_eq!(plan.next_fire(), Some(at(10)));
    assert!(plan.take_due(at(9)).is_empty());
    assert_eq!(ids(&plan.take_due(at(10))), ["a", "b"]);
    assert!(plan.take_due(at(10)).is_empty(), "each tick fires once");
    assert_eq!(plan.next_fire(), Some(at(20)));
    // After a long sleep: one fire, not one per missed tick.
    assert_eq!(ids(&plan.take_due(at(95))), ["a", "b"]);
    assert!(plan.take_due(at(95)).is_empty());
    assert_eq!(plan.next_fire(), Some(at(100)));
}

#[test]
fn a_rebuild_keeps_unchanged_jobs_and_their_busy_flags() {
    let mut plan = Plan::default();
    let config = config("mode = \"per_job\"\njitter = \"0s\"");
    plan.rebuild(vec![watched("a", None), watched("b", None)], &config, at(1));
    let due = plan.take_due(at(10));
    let Some(Due::Poll {
        watched: w, busy, ..
    }) = due.first()
    else {
        panic!("a poll is due");
    };
    busy.store(true, Ordering::SeqCst);
    let busy_id = w.job.id.clone();
    // "b" is renamed (a change), "a" stays as it was, "c" is new.
    plan.rebuild(
        vec![
            watched("a", None),
            watched("b", Some("renamed")),
            watched("c", None),
        ],
        &config,
        at(12),
    );
    assert_eq!(plan.len(), 3);
    assert_eq!(plan.next_fire(), Some(at(20)));
    let due = plan.take_due(at(20));
    assert_eq!(ids(&due), ["a", "b", "c"]);
    let kept = due
        .iter()
        .find_map(|d| match d {
            Due::Poll { watched, busy, .. } if watched.job.id == busy_id => Some(busy),
            _ => None,
        })
        .unwrap();
    assert!(kept.load(Ordering::SeqCst), "a running poll stays known");
    plan.rebuild(vec![watched("c", None)], &config, at(21));
    let left: Vec<&str> = plan.periods(at(21)).iter().map(|(id, _)| *id).collect();
    assert_eq!(left, ["c"]);
}

#[test]
fn a_wake_costs_what_is_due_not_what_is_watched() {
    let mut plan = Plan::default();
    let config = config("mode = \"per_job\"\njitter = \"9s\"");
    let jobs: Vec<Watched> = (0..10_000)
        .map(|i| watched(&format!("job{i:05}"), None))
        .collect();
    plan.rebuild(jobs, &config, at(1));
    let mut woke = 0;
    let mut worst = 0;
    let mut now = at(1);
    while woke < 50 {
        let Some(next) = plan.next_fire() else { break };
        now = now.max(next);
        COMPARISONS.with(|c| c.set(0));
        let due = plan.take_due(now);
        let made = COMPARISONS.with(|c| c.get());
        if !due.is_empty() {
            woke += 1;
            // Each due job is taken and put back: a few log2(10,000) comparisons each.
            let allowed = 60 * due.len() as u64 + 60;
            assert!(
                made <= allowed,
                "{made} comparisons for {} due jobs of 10,000",
                due.len()
            );
            worst = worst.max(made);
        }
    }
    assert_eq!(woke, 50);
    assert!(worst < 10_000, "never a walk over every job: {worst}");
}

#[test]
fn quiet_jobs_are_refreshed_slowly_and_news_is_fetched_at_once() {
    let mut plan = Plan::default();
    let config = config("mode = \"adaptive\"\nrefresh = \"5m\"\njitter = \"0s\"");
    plan.rebuild(vec![watched("a", None), watched("b", None)], &config, at(1));
    assert_eq!(plan.sweeps(), 1);
    // The first tick: the sweep only; the jobs wait for what it says.
    let due = plan.take_due(at(10));
    assert_eq!(sweeps(&due), 1);
    assert!(polls(&due).is_empty());
    let group: Group = Arc::new(("a".into(), "cn-hangzhou".into()));
    let quiet = [
        listed("a", "Synchronizing", None),
        listed("b", "Synchronizing", None),
    ];
    assert_eq!(plan.apply_sweep(&group, Some(&quiet), None, at(11)), 0);
    // Their first fetch is a refresh, spread over the refresh interval.
    let mut first = Vec::new();
    let mut tick = 20;
    while first.len() < 2 && tick <= 310 {
        for (id, priority) in polls(&plan.take_due(at(tick))) {
            assert_eq!(priority, Priority::Refresh);
            first.push(id.to_string());
            plan.apply_poll(id, Facts::default(), at(tick));
        }
        plan.apply_sweep(&group, Some(&quiet), None, at(tick));
        tick += 10;
    }
    assert_eq!(first.len(), 2, "both fetched within the refresh interval");
    // Quiet: no job polled at the next ticks, only sweeps.
    let t = tick;
    for tick in [t, t + 10, t + 20] {
        let due = plan.take_due(at(tick));
        assert_eq!(sweeps(&due), 1);
        assert!(polls(&due).is_empty(), "tick {tick}");
        assert_eq!(plan.apply_sweep(&group, Some(&quiet), None, at(tick)), 0);
    }
    // "b" fails: pulled forward now, urgent.
    let news = [
        listed("a", "Synchronizing", None),
        listed("b", "SynchronizationFailed", Some("DTS-1020042 boom")),
    ];
    let t = t + 21;
    assert_eq!(plan.apply_sweep(&group, Some(&news), None, at(t)), 1);
    assert_eq!(polls(&plan.take_due(at(t))), [("b", Priority::Urgent)]);
    // Failing, it is fetched every tick from now on; "a" waits for its refresh.
    plan.apply_poll(
        "b",
        Facts {
            failing: true,
            ..Facts::default()
        },
        at(t),
    );
    plan.apply_sweep(&group, Some(&news), None, at(t + 9));
    assert_eq!(polls(&plan.take_due(at(t + 9))), [("b", Priority::Poll)]);
    let refreshed = plan.take_due(at(t + 320));
    assert!(
        polls(&refreshed).contains(&("a", Priority::Refresh)),
        "{:?}",
        polls(&refreshed)
    );
}

#[test]
fn a_failed_sweep_or_a_job_it_does_not_list_falls_back_to_every_tick() {
    let mut plan = Plan::default();
    let config = config("mode = \"adaptive\"\nrefresh = \"5m\"\njitter = \"0s\"");
    plan.rebuild(vec![watched("a", None), watched("b", None)], &config, at(1));
    let group: Group = Arc::new(("a".into(), "cn-hangzhou".into()));
    plan.take_due(at(10));
    let both = [
        listed("a", "Synchronizing", None),
        listed("b", "Synchronizing", None),
    ];
    plan.apply_sweep(&group, Some(&both), None, at(11));
    for id in ["a", "b"] {
        plan.apply_poll(id, Facts::default(), at(11));
    }
    assert!(polls(&plan.take_due(at(20))).is_empty());
    // Only "a" is listed: "b" is polled on schedule again.
    plan.apply_sweep(&group, Some(&both[..1]), None, at(21));
    assert_eq!(ids(&plan.take_due(at(30))), ["b"]);
    // The sweep fails: everything is polled on schedule.
    plan.apply_sweep(&group, None, None, at(31));
    assert_eq!(ids(&plan.take_due(at(40))), ["a", "b"]);
    // An alerting job is polled every tick whatever the sweep says.
    plan.apply_poll(
        "a",
        Facts {
            alerting: true,
            ..Facts::default()
        },
        at(40),
    );
    plan.apply_sweep(&group, Some(&both), None, at(41));
    assert_eq!(ids(&plan.take_due(at(50))), ["a"]);
}
