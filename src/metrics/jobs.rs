//! The per-job families: `dtswatch_job_up` and the per-step gauges
//! (`dtswatch_step_latency_seconds`, `dtswatch_step_progress_ratio`,
//! `dtswatch_step_state`), labelled `dts_job_id`, `dts_job_name`, `region`
//! and `step`. Each job's series are replaced whole by its latest poll, so
//! a step that disappears takes its series with it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::escape;

/// One job's series: whether its last poll succeeded, and its steps as the
/// last successful one saw them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSeries {
    pub name: String,
    pub region: String,
    pub up: bool,
    pub steps: Vec<StepSeries>,
}

/// One step's gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    /// The step's name (`全量迁移`), or `parent › sub-step` for a sub-step.
    pub step: String,
    pub latency_seconds: Option<f64>,
    pub progress_ratio: Option<f64>,
    /// The normalised state (`Running`, `Failed`, …).
    pub state: String,
}

/// The per-job families: (name, help, what of a step they show).
const JOB_UP: (&str, &str) = (
    "dtswatch_job_up",
    "1 when the job's last ListJobStep poll succeeded, 0 when it failed.",
);
const STEP_LATENCY: (&str, &str) = (
    "dtswatch_step_latency_seconds",
    "Incremental latency of each step as the job's last successful poll reported it.",
);
const STEP_PROGRESS: (&str, &str) = (
    "dtswatch_step_progress_ratio",
    "Progress of each step (0 to 1) as the job's last successful poll reported it.",
);
const STEP_STATE: (&str, &str) = (
    "dtswatch_step_state",
    "1 for each step's current state (the `state` label) as the job's last successful poll reported it.",
);

/// `dtswatch_job_up` and the step gauges, labelled `dts_job_id` (never
/// `job`, which Prometheus gives the scrape target), `dts_job_name`,
/// `region` and `step`.
pub(super) fn render_jobs(out: &mut String, jobs: &BTreeMap<String, JobSeries>) {
    let header = |out: &mut String, (name, help): (&str, &str)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    let job_labels = |id: &str, job: &JobSeries| {
        format!(
            "dts_job_id=\"{}\",dts_job_name=\"{}\",region=\"{}\"",
            escape(id),
            escape(&job.name),
            escape(&job.region)
        )
    };
    header(out, JOB_UP);
    for (id, job) in jobs {
        let _ = writeln!(
            out,
            "{}{{{}}} {}",
            JOB_UP.0,
            job_labels(id, job),
            u8::from(job.up)
        );
    }
    type Pick = fn(&StepSeries) -> Option<f64>;
    let picks: [((&str, &str), Pick); 2] = [
        (STEP_LATENCY, |s| s.latency_seconds),
        (STEP_PROGRESS, |s| s.progress_ratio),
    ];
    for (family, pick) in picks {
        header(out, family);
        for (id, job) in jobs {
            for step in unique(&job.steps) {
                if let Some(value) = pick(step) {
                    let _ = writeln!(
                        out,
                        "{}{{{},step=\"{}\"}} {value}",
                        family.0,
                        job_labels(id, job),
                        escape(&step.step)
                    );
                }
            }
        }
    }
    header(out, STEP_STATE);
    for (id, job) in jobs {
        for step in unique(&job.steps) {
            let _ = writeln!(
                out,
                "{}{{{},step=\"{}\",state=\"{}\"}} 1",
                STEP_STATE.0,
                job_labels(id, job),
                escape(&step.step),
                escape(&step.state)
            );
        }
    }
}

/// A job's steps with each `step` label once: two sub-steps of the same
/// name would otherwise be two series with the same labels, which
/// Prometheus rejects.
fn unique(steps: &[StepSeries]) -> impl Iterator<Item = &StepSeries> {
    let mut seen = BTreeSet::new();
    steps.iter().filter(move |s| seen.insert(s.step.as_str()))
}
