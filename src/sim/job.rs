//! A simulated job: its script (frames that advance one per poll,
//! generated benchmark steps, or steps by wall-clock time), the steps it
//! has now, and the summary `DescribeDtsJobs` gives of it.

use std::collections::BTreeMap;

use super::scenario::{AfterEnd, Frame, SimStep};

/// A job ready to serve: frames expanded, one per poll.
#[derive(Debug, Clone)]
pub struct SimJob {
    pub id: String,
    pub name: Option<String>,
    pub region: String,
    pub job_type: String,
    pub status: String,
    pub tags: BTreeMap<String, String>,
    pub after_end: AfterEnd,
    pub script: Script,
    /// Polls answered so far.
    pub polls: u64,
}

#[derive(Debug, Clone)]
pub enum Script {
    Frames(Vec<Frame>),
    /// Generated steps for the benchmark; latency changes every poll when `moving`.
    Generated {
        moving: bool,
        steps: usize,
        sub_steps: usize,
    },
    /// Steps by wall-clock time: each from its instant on, whoever asks and
    /// how often (a fleet that fails while nobody fetches its steps).
    Timed(Vec<(chrono::DateTime<chrono::Utc>, Vec<SimStep>)>),
}

impl SimJob {
    /// A job that always answers the same steps.
    pub fn fixed(id: &str, region: &str, steps: Vec<SimStep>) -> Self {
        SimJob {
            id: id.to_string(),
            name: Some(format!("{id} (fixed)")),
            region: region.to_string(),
            job_type: "MIGRATION".into(),
            status: "Migrating".into(),
            tags: BTreeMap::new(),
            after_end: AfterEnd::RepeatLast,
            script: Script::Frames(vec![Frame::Steps(steps)]),
            polls: 0,
        }
    }

    /// A benchmark job: `steps` steps of `sub_steps` sub-steps, latency changing every poll.
    pub fn generated(id: &str, region: &str, steps: usize, sub_steps: usize) -> Self {
        Self::generated_with(id, region, steps, sub_steps, true)
    }

    /// Like [`SimJob::generated`]; with `moving = false` every poll answers the same.
    pub fn generated_with(
        id: &str,
        region: &str,
        steps: usize,
        sub_steps: usize,
        moving: bool,
    ) -> Self {
        SimJob {
            id: id.to_string(),
            name: Some(format!("bench {id}")),
            region: region.to_string(),
            job_type: "SYNC".into(),
            status: "Synchronizing".into(),
            tags: BTreeMap::new(),
            after_end: AfterEnd::RepeatLast,
            script: Script::Generated {
                steps,
                sub_steps,
                moving,
            },
            polls: 0,
        }
    }

    /// Number of scripted polls before the job repeats or loops.
    pub fn scripted_polls(&self) -> usize {
        match &self.script {
            Script::Frames(frames) => frames.len(),
            Script::Generated { .. } | Script::Timed(_) => 0,
        }
    }

    /// The steps the job has now, without advancing it: the last frame a
    /// poll was served (the first before any), the generated steps of the
    /// last poll, or the timed steps in force at `now`.
    pub fn current_steps(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<SimStep> {
        let served = self.polls.saturating_sub(1);
        match &self.script {
            Script::Frames(frames) => frames
                .iter()
                .take(served as usize + 1)
                .rev()
                .find_map(|f| match f {
                    Frame::Steps(steps) => Some(steps.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
            // Latency keeps moving between polls too, as DTS's sweep shows it.
            Script::Generated {
                steps,
                sub_steps,
                moving,
            } => generated_steps(
                *steps,
                *sub_steps,
                if *moving {
                    served.wrapping_add(now.timestamp().unsigned_abs())
                } else {
                    0
                },
            ),
            Script::Timed(frames) => timed(frames, now),
        }
    }

    /// `DescribeDtsJobs`'s view of the job now: its status (failed when a
    /// step failed, finished when every step did), the delay of its
    /// incremental step and its first error.
    pub fn summary(&self, now: chrono::DateTime<chrono::Utc>) -> JobSummary {
        let steps = self.current_steps(now);
        let all = || {
            steps
                .iter()
                .flat_map(|s| std::iter::once(s).chain(s.sub.iter()))
        };
        let failed = all().any(|s| {
            s.state
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .eq_ignore_ascii_case("failed")
        });
        let finished = !steps.is_empty()
            && steps.iter().all(|s| {
                s.state
                    .trim_start_matches(|c: char| !c.is_alphanumeric())
                    .eq_ignore_ascii_case("finished")
            });
        let status = match (
            failed,
            finished,
            self.job_type.to_ascii_uppercase().as_str(),
        ) {
            (true, _, "MIGRATION") => "MigrationFailed".to_string(),
            (true, _, "SYNC") => "SynchronizationFailed".to_string(),
            (true, _, _) => "Failed".to_string(),
            (false, true, _) => "Finished".to_string(),
            _ => self.status.clone(),
        };
        let errored = all().find(|s| s.err.as_deref().is_some_and(|e| !e.is_empty()));
        JobSummary {
            status,
            delay_ms: steps
                .iter()
                .filter_map(|s| s.latency_ms)
                .filter(|l| *l >= 0)
                .max(),
            error_message: errored.and_then(|s| s.err.clone()),
            error_code: errored.and_then(|s| s.error_code.clone()),
        }
    }

    /// The frame for the next poll (at `now`), advancing the job.
    pub fn next_frame(&mut self, now: chrono::DateTime<chrono::Utc>) -> Frame {
        let index = self.polls;
        self.polls += 1;
        match &self.script {
            Script::Frames(frames) if frames.is_empty() => Frame::Steps(Vec::new()),
            Script::Frames(frames) => {
                let n = frames.len() as u64;
                let i = match self.after_end {
                    AfterEnd::RepeatLast => index.min(n - 1),
                    AfterEnd::Loop => index % n,
                };
                frames[i as usize].clone()
            }
            Script::Generated {
                steps,
                sub_steps,
                moving,
            } => Frame::Steps(generated_steps(
                *steps,
                *sub_steps,
                if *moving { index } else { 0 },
            )),
            Script::Timed(frames) => Frame::Steps(timed(frames, now)),
        }
    }
}

/// What `DescribeDtsJobs` says of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub status: String,
    pub delay_ms: Option<i64>,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
}

/// The timed steps in force at `now` (the first ones before their time).
fn timed(
    frames: &[(chrono::DateTime<chrono::Utc>, Vec<SimStep>)],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<SimStep> {
    frames
        .iter()
        .rev()
        .find(|(at, _)| *at <= now)
        .or(frames.first())
        .map(|(_, steps)| steps.clone())
        .unwrap_or_default()
}

fn generated_steps(steps: usize, sub_steps: usize, poll: u64) -> Vec<SimStep> {
    (0..steps)
        .map(|s| SimStep {
            id: Some(format!("step{s:02}")),
            name: format!("阶段{s}"),
            code: Some(format!("{:02}", s + 1)),
            serial: Some(s as i64 + 1),
            state: if s + 1 == steps {
                "Running".into()
            } else {
                "Finished".into()
            },
            progress: if s + 1 == steps { 50 } else { 100 },
            latency_ms: Some(((poll * 7919 + s as u64 * 104_729) % 90_000) as i64),
            sub: (0..sub_steps)
                .map(|u| SimStep {
                    id: Some(format!("step{s:02}_{u:04}")),
                    name: format!("shard{u}"),
                    code: Some(format!("{:02}", s + 1)),
                    serial: Some(u as i64 + 1),
                    state: "Running".into(),
                    progress: 50,
                    latency_ms: Some(((poll * 6151 + u as u64 * 15_485_863) % 90_000) as i64),
                    ..SimStep::default()
                })
                .collect(),
            ..SimStep::default()
        })
        .collect()
}
