//! Step snapshots stored compactly. A snapshot is split into its structure
//! (every step's non-volatile fields, stored once per distinct content in
//! `step_states`, and the ordered list of their ids in `snapshots`) and its
//! volatile numbers (latency and progress per step, a short varint blob on the
//! poll row). An unchanged poll reuses the snapshot id and stores no blob.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::StoreError;
use crate::dts::{JobSnapshot, Step};

/// A step without its volatile numbers or children, with its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredStep {
    pub path: String,
    pub step: Step,
}

/// The volatile numbers of one step: latency (ms) and progress.
pub type Volatile = (Option<i64>, Option<i64>);

/// Splits a snapshot into structure and volatile numbers, both in walk order.
pub fn split(snapshot: &JobSnapshot) -> (Vec<StoredStep>, Vec<Volatile>) {
    let mut structure = Vec::new();
    let mut volatile = Vec::new();
    for (path, step, _) in snapshot.walk() {
        volatile.push((step.latency_ms, step.progress));
        let mut bare = step.clone();
        bare.latency_ms = None;
        bare.progress = None;
        bare.sub_steps = Vec::new();
        structure.push(StoredStep { path, step: bare });
    }
    (structure, volatile)
}

/// Rebuilds a snapshot from its structure and volatile numbers.
pub fn join(structure: &[StoredStep], volatile: &[Volatile]) -> Result<JobSnapshot, StoreError> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, stored) in structure.iter().enumerate() {
        let mut step = stored.step.clone();
        if let Some((latency, progress)) = volatile.get(i) {
            step.latency_ms = *latency;
            step.progress = *progress;
        }
        match stored.path.split_once('/') {
            None => steps.push(step),
            Some((parent, _)) => {
                let parent = steps
                    .iter_mut()
                    .rev()
                    .find(|s| &*s.key == parent)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "sub-step {} stored before its parent",
                            stored.path
                        ))
                    })?;
                parent.sub_steps.push(step);
            }
        }
    }
    Ok(JobSnapshot { steps })
}

fn push_varint(out: &mut Vec<u8>, mut value: u128) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u128> {
    let mut value: u128 = 0;
    for shift in (0..128).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u128::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// `None` → 0, `Some(v)` → zigzag(v) + 1.
fn encode_optional(out: &mut Vec<u8>, value: Option<i64>) {
    match value {
        None => push_varint(out, 0),
        Some(v) => push_varint(out, u128::from(((v << 1) ^ (v >> 63)) as u64) + 1),
    }
}

fn decode_optional(bytes: &[u8], at: &mut usize) -> Option<Option<i64>> {
    let raw = read_varint(bytes, at)?;
    if raw == 0 {
        return Some(None);
    }
    let zigzag = u64::try_from(raw - 1).ok()?;
    Some(Some(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)))
}

/// True when two snapshots differ at most in latency and progress: the same
/// stored structure serves both. Compares in place, without allocating.
pub fn same_structure(a: &JobSnapshot, b: &JobSnapshot) -> bool {
    fn same(a: &[Step], b: &[Step]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.key == y.key
                    && x.id == y.id
                    && x.name == y.name
                    && x.code == y.code
                    && x.serial == y.serial
                    && x.state == y.state
                    && x.state_raw == y.state_raw
                    && x.err_msg == y.err_msg
                    && x.error_details == y.error_details
                    && x.need_acceleration == y.need_acceleration
                    && x.redis_phase == y.redis_phase
                    && x.sub_job_count == y.sub_job_count
                    && same(&x.sub_steps, &y.sub_steps)
            })
    }
    same(&a.steps, &b.steps)
}

/// The volatile numbers of a snapshot, encoded, in walk order.
pub fn encode_volatile_of(snapshot: &JobSnapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(snapshot.steps.len() * 20);
    for step in &snapshot.steps {
        encode_optional(&mut out, step.latency_ms);
        encode_optional(&mut out, step.progress);
        for sub in &step.sub_steps {
            encode_optional(&mut out, sub.latency_ms);
            encode_optional(&mut out, sub.progress);
        }
    }
    out
}

pub fn encode_volatile(values: &[Volatile]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for (latency, progress) in values {
        encode_optional(&mut out, *latency);
        encode_optional(&mut out, *progress);
    }
    out
}

pub fn decode_volatile(bytes: &[u8]) -> Result<Vec<Volatile>, StoreError> {
    let mut at = 0;
    let mut values = Vec::new();
    while at < bytes.len() {
        let latency = decode_optional(bytes, &mut at);
        let progress = decode_optional(bytes, &mut at);
        match (latency, progress) {
            (Some(l), Some(p)) => values.push((l, p)),
            _ => return Err(StoreError::Corrupt("truncated volatile values".into())),
        }
    }
    Ok(values)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Stores the structure (reusing rows already stored) and returns its snapshot id.
pub async fn save_structure(
    conn: &mut AnyConnection,
    structure: &[StoredStep],
) -> Result<i64, StoreError> {
    let mut ids = Vec::with_capacity(structure.len() * 3);
    for stored in structure {
        let body = serde_json::to_string(stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let hash = sha256(body.as_bytes());
        sqlx::query(
            "INSERT INTO step_states (hash, body) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(&hash)
        .bind(&body)
        .execute(&mut *conn)
        .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM step_states WHERE hash = $1")
            .bind(&hash)
            .fetch_one(&mut *conn)
            .await?;
        push_varint(&mut ids, id as u128);
    }
    let hash = sha256(&ids);
    sqlx::query(
        "INSERT INTO snapshots (hash, steps) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
    )
    .bind(&hash)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT id FROM snapshots WHERE hash = $1")
            .bind(&hash)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The step state ids a snapshot's `steps` blob lists.
pub fn step_ids(blob: &[u8]) -> Result<Vec<i64>, StoreError> {
    let mut at = 0;
    let mut ids = Vec::new();
    while at < blob.len() {
        let id = read_varint(blob, &mut at)
            .ok_or_else(|| StoreError::Corrupt("a snapshot's step list is truncated".into()))?;
        ids.push(
            i64::try_from(id).map_err(|_| {
                StoreError::Corrupt("a snapshot lists an impossible step id".into())
            })?,
        );
    }
    Ok(ids)
}

/// The structure of snapshot `id`.
pub async fn load_structure(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Vec<StoredStep>, StoreError> {
    let blob: Vec<u8> = sqlx::query_scalar("SELECT steps FROM snapshots WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("snapshot {id} is missing")))?;
    let mut structure = Vec::new();
    for step_id in step_ids(&blob)? {
        let body: String = sqlx::query_scalar("SELECT body FROM step_states WHERE id = $1")
            .bind(step_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("step state {step_id} is missing")))?;
        structure
            .push(serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(structure)
}

/// The snapshot poll `poll_id` of `job` saw: its structure joined with the
/// volatile numbers in force at that poll.
pub async fn load_snapshot(
    conn: &mut AnyConnection,
    job: i64,
    poll_id: i64,
    snapshot_id: i64,
) -> Result<(JobSnapshot, Vec<u8>), StoreError> {
    let structure = load_structure(conn, snapshot_id).await?;
    let volatile = super::polls::volatile_at(conn, job, poll_id)
        .await?
        .unwrap_or_default();
    let snapshot = join(&structure, &decode_volatile(&volatile)?)?;
    Ok((snapshot, volatile))
}

/// Rebuilds snapshots of stored polls, caching structures by snapshot id.
#[derive(Default)]
pub struct SnapshotCache {
    structures: std::collections::HashMap<i64, Vec<StoredStep>>,
}

impl SnapshotCache {
    pub async fn load(
        &mut self,
        conn: &mut AnyConnection,
        snapshot_id: i64,
        volatile: &[u8],
    ) -> Result<JobSnapshot, StoreError> {
        let structure = match self.structures.entry(snapshot_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(load_structure(conn, snapshot_id).await?)
            }
        };
        join(structure, &decode_volatile(volatile)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dts::api::parse_list_job_step;

    #[test]
    fn volatile_values_round_trip_compactly() {
        let values = vec![
            (Some(1), Some(100)),
            (None, Some(0)),
            (Some(-1), None),
            (Some(420_000), Some(63)),
            (Some(i64::MAX), Some(i64::MIN)),
        ];
        let bytes = encode_volatile(&values);
        assert_eq!(decode_volatile(&bytes).unwrap(), values);
        // Small numbers take one byte each.
        assert_eq!(encode_volatile(&[(Some(1), Some(63))]).len(), 2);
        assert!(decode_volatile(&[0x80]).is_err());
    }

    #[test]
    fn split_and_join_round_trip_the_seed() {
        let response = parse_list_job_step(include_bytes!(
            "../../tests/fixtures/list_job_step_seed.json"
        ))
        .unwrap();
        let snapshot = JobSnapshot::from_response(&response);
        let (structure, volatile) = split(&snapshot);
        assert_eq!(structure.len(), 2);
        assert_eq!(
            structure[1].path,
            "l02c1f7h179****/mj3z9w9s10am68o_0004_0000"
        );
        assert_eq!(join(&structure, &volatile).unwrap(), snapshot);
    }

    #[test]
    fn same_structure_ignores_volatile_numbers_only() {
        let response = parse_list_job_step(include_bytes!(
            "../../tests/fixtures/list_job_step_seed.json"
        ))
        .unwrap();
        let a = JobSnapshot::from_response(&response);
        let mut b = a.clone();
        b.steps[0].sub_steps[0].latency_ms = Some(5);
        assert!(same_structure(&a, &b));
        assert_eq!(encode_volatile_of(&b), encode_volatile(&split(&b).1));
        b.steps[0].sub_steps[0].err_msg = None;
        assert!(!same_structure(&a, &b));
    }

    #[test]
    fn structure_ignores_volatile_numbers() {
        let response = parse_list_job_step(include_bytes!(
            "../../tests/fixtures/list_job_step_seed.json"
        ))
        .unwrap();
        let a = JobSnapshot::from_response(&response);
        let mut b = a.clone();
        b.steps[0].latency_ms = Some(99_999);
        b.steps[0].progress = Some(1);
        assert_eq!(split(&a).0, split(&b).0);
        assert_ne!(split(&a).1, split(&b).1);
    }
}
