//! Silences as `dtswatch silence list --format json`, `/api/v1/silences`
//! and the status page show them: the database's (added at run time) that
//! have not ended, then the config's. And the ones in force, for telling
//! which alerts are silenced now.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::json::SilenceJson;
use crate::config::SilenceConfig;
use crate::rules::silence::Silence;
use crate::store::{StoreError, silences};

/// Every silence that has not ended, database first, with its source and author.
pub async fn list(
    conn: &mut AnyConnection,
    configured: &[SilenceConfig],
    now: DateTime<Utc>,
) -> Result<Vec<SilenceJson>, StoreError> {
    let mut listed = Vec::new();
    for row in silences::current(conn, now).await? {
        let silence = row.to_silence()?;
        listed.push(SilenceJson::of(
            &silence,
            "runtime",
            row.created_by.clone(),
            now,
        ));
    }
    for (i, config) in configured.iter().enumerate() {
        let silence = Silence::from_config(i, config);
        listed.push(SilenceJson::of(&silence, "config", None, now));
    }
    Ok(listed)
}

/// The silences that may hold a notification back now or later.
pub async fn in_force(
    conn: &mut AnyConnection,
    configured: &[SilenceConfig],
    now: DateTime<Utc>,
) -> Result<Vec<Silence>, StoreError> {
    let mut all = Vec::new();
    for row in silences::current(conn, now).await? {
        all.push(row.to_silence()?);
    }
    all.extend(
        configured
            .iter()
            .enumerate()
            .map(|(i, c)| Silence::from_config(i, c)),
    );
    Ok(all)
}
