//! What `ask` keeps: the question→SQL cache (`llm_sql.ask_cache`) and the audit log
//! (`llm_sql.ask_log`). Both are written as llm_sql's owner, never in a read-only transaction
//! (BEGIN READ ONLY, a standby), where answers are still given.

use pgrx::prelude::*;
use serde_json::Value;

use crate::error::Result;
use crate::run_as::as_extension_owner;
use crate::run_as::current_user;
use crate::settings;

/// The cache key: the normalised question, everything the caller can see, how the SQL was
/// written (`how`: the model, the candidates, the answer format), the role.
pub fn cache_key(question: &str, fingerprint: &str, how: &str, max_rows: usize) -> Result<String> {
    let normalised = question
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let normalised = normalised.trim_end_matches(['?', '!', '.', ' ']);
    let material = format!(
        "{normalised}\u{1f}{fingerprint}\u{1f}{}\u{1f}{}\u{1f}{}",
        how,
        current_user().to_u32(),
        max_rows
    );
    Ok(
        Spi::get_one_with_args::<String>("SELECT pg_catalog.md5($1)", &[material.into()])?
            .unwrap_or_default(),
    )
}

pub fn cached_sql(key: &str) -> Result<Option<String>> {
    let ttl = settings::ASK_CACHE_TTL_S.get();
    if ttl <= 0 {
        return Ok(None);
    }
    as_extension_owner(|| {
        Ok(Spi::get_one_with_args::<String>(
            "SELECT (SELECT sql FROM llm_sql.ask_cache
                      WHERE key = $1
                        AND created_at > pg_catalog.now() - pg_catalog.make_interval(secs => $2))",
            &[key.into(), f64::from(ttl).into()],
        )?)
    })
}

pub fn read_only_transaction() -> bool {
    // SAFETY: reads the backend's transaction state.
    unsafe { pg_sys::XactReadOnly || pg_sys::RecoveryInProgress() }
}

pub fn remember(key: &str, sql: &str) -> Result<()> {
    if settings::ASK_CACHE_TTL_S.get() <= 0 || read_only_transaction() {
        return Ok(());
    }
    let role = current_user();
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO llm_sql.ask_cache (key, role, sql) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET sql = excluded.sql, created_at = pg_catalog.now()",
            &[key.into(), role.into(), sql.into()],
        )?;
        Ok(())
    })
}

/// Writes the call to llm_sql.ask_log; returns its id.
pub fn log(question: &str, report: &Value) -> Result<i64> {
    let role = current_user();
    let report = pgrx::datum::JsonB(report.clone());
    as_extension_owner(|| {
        Ok(Spi::get_one_with_args::<i64>(
            "INSERT INTO llm_sql.ask_log (role, question, sql, status, attempts, engine, row_count,
                                          duration_ms, llm_ms, model, cached)
             SELECT (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = $1), $2, r->>'sql', r->>'status', r->'attempts', r->>'engine',
                    (r->>'row_count')::int8, (r->>'duration_ms')::float8, (r->>'llm_ms')::float8,
                    r->>'model', (r->>'cached')::bool
               FROM (SELECT $3::jsonb AS r) AS answer
             RETURNING id",
            &[role.into(), question.into(), report.into()],
        )?
        .unwrap_or(0))
    })
}
