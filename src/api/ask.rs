//! SQL surface of text-to-SQL: ask, ask_full, generate_sql, explain_sql, clear_cache, and the
//! tables llm_sql.examples, llm_sql.ask_cache and llm_sql.ask_log.
//!
//! NULL in, NULL out. `ask_full` never raises for a question it cannot answer: the status says
//! so (`clarification_needed`, `error`), so that the caller's transaction goes on. `ask` and
//! `generate_sql` return rows / SQL; a clarification is a NOTICE with no rows, and failing every
//! attempt is an ERROR that names the last problem.

use pgrx::datum::JsonB;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde_json::Value;

use crate::error::{Error, OrReport, Result};
use crate::llm;
use crate::nl2sql::ask::{self, Options};
use crate::run_as::as_extension_owner;

fn full(question: &str, options: Option<JsonB>, execute: bool) -> Result<Value> {
    let options = Options::parse(options.as_ref().map(|o| &o.0))?;
    ask::answer(question, &options, execute)
}

/// The answer's rows or SQL, a NOTICE for a clarification, an ERROR when every attempt failed.
fn settle(report: &Value) -> Result<bool> {
    match report["status"].as_str() {
        Some("ok") => Ok(true),
        Some("clarification_needed") => {
            let questions: Vec<&str> = report["clarifying_questions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            pgrx::notice!("llm_sql.ask needs clarification: {}", questions.join(" "));
            Ok(false)
        }
        _ => {
            let last = report["error"].as_str().unwrap_or("no attempt succeeded");
            Err(Error::new(
                PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
                format!("llm_sql.ask could not answer the question: {last}"),
            )
            .with_hint("llm_sql.ask_full shows every attempt; rephrasing the question, naming tables or adding llm_sql.examples helps."))
        }
    }
}

#[pg_extern(volatile, parallel_unsafe, name = "ask_full")]
fn ask_full(question: Option<&str>, options: default!(Option<JsonB>, "'{}'")) -> Option<JsonB> {
    let question = question?;
    Some(JsonB(full(question, options, true).or_report()))
}

#[pg_extern(volatile, parallel_unsafe, name = "ask")]
fn ask(
    question: Option<&str>,
    options: default!(Option<JsonB>, "'{}'"),
) -> SetOfIterator<'static, JsonB> {
    let Some(question) = question else {
        return SetOfIterator::new(Vec::new());
    };
    let mut report = full(question, options, true).or_report();
    let rows = match settle(&report).or_report() {
        true => match report["rows"].take() {
            Value::Array(rows) => rows,
            _ => Vec::new(),
        },
        false => Vec::new(),
    };
    SetOfIterator::new(rows.into_iter().map(JsonB))
}

#[pg_extern(volatile, parallel_unsafe, name = "generate_sql")]
fn generate_sql(
    question: Option<&str>,
    options: default!(Option<JsonB>, "'{}'"),
) -> Option<String> {
    let question = question?;
    let report = full(question, options, false).or_report();
    match settle(&report).or_report() {
        true => report["sql"].as_str().map(str::to_string),
        false => None,
    }
}

#[pg_extern(volatile, parallel_unsafe, name = "explain_sql")]
fn explain_sql(sql: Option<&str>) -> Option<String> {
    let sql = sql?;
    (|| {
        if sql.trim().is_empty() {
            return Err(Error::invalid_parameter("the SQL is empty"));
        }
        ask::explain(sql, &llm::chat_model(None)?)
    })()
    .map(Some)
    .or_report()
}

/// Empties the question→SQL cache: all of it for a superuser, the caller's entries otherwise.
#[pg_extern(volatile, parallel_unsafe, name = "clear_cache")]
fn clear_cache() -> i64 {
    // SAFETY: reads whether the current user is a superuser.
    let everything = unsafe { pgrx::pg_sys::superuser() };
    let role = crate::run_as::current_user();
    as_extension_owner(|| {
        Ok(Spi::get_one_with_args::<i64>(
            "WITH gone AS (DELETE FROM llm_sql.ask_cache WHERE $1 OR role = $2 RETURNING 1)
             SELECT count(*) FROM gone",
            &[everything.into(), role.into()],
        )?
        .unwrap_or(0))
    })
    .or_report()
}

pgrx::extension_sql!(
    r#"
-- Worked examples for llm_sql.ask: the ones sharing most words with a question go into its
-- prompt. Curated by the DBA (superusers, or roles granted INSERT); readable by everyone.
CREATE TABLE llm_sql.examples (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question text NOT NULL CHECK (question ~ '[^[:space:]]'),
    sql text NOT NULL CHECK (sql ~ '[^[:space:]]'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
GRANT SELECT ON llm_sql.examples TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('llm_sql.examples', '');
COMMENT ON TABLE llm_sql.examples IS
    'Worked question/SQL examples; those sharing most words with a question go into ask''s prompt';

-- Question -> SQL that worked, by normalised question, visible schema, model and role.
-- Only llm_sql's functions read and write it.
CREATE TABLE llm_sql.ask_cache (
    key text PRIMARY KEY,
    role oid NOT NULL,
    sql text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON llm_sql.ask_cache FROM PUBLIC;
COMMENT ON TABLE llm_sql.ask_cache IS 'SQL that answered a question before, reused by ask (llm_sql''s functions only)';

-- Every call of ask / ask_full / generate_sql. Each role sees its own rows, superusers all.
CREATE TABLE llm_sql.ask_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    role name NOT NULL,
    question text NOT NULL,
    sql text,
    status text NOT NULL,
    attempts jsonb,
    engine text,
    row_count bigint,
    duration_ms float8,
    llm_ms float8,
    model text,
    cached boolean,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER TABLE llm_sql.ask_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_questions ON llm_sql.ask_log FOR SELECT USING (role = current_user);
GRANT SELECT ON llm_sql.ask_log TO PUBLIC;
COMMENT ON TABLE llm_sql.ask_log IS 'Every call of ask, ask_full and generate_sql (each role sees its own)';
"#,
    name = "ask_objects",
    requires = ["schema_usage"],
);
