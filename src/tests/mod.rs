//! In-backend tests (`cargo pgrx test`): each `#[pg_test]` runs inside a transaction of a real
//! PostgreSQL 18 backend with pgvector and llm_sql installed, against the real embedded DuckDB.
//! Tests that need several sessions, login roles or outside servers live in `client_tests/`.

mod ask;
mod attach;
mod backend;
mod builtin;
mod embeddings;
mod engine;
pub mod llm;
mod local;
mod nl2sql;
mod pushdown;
mod sandbox;
mod scan;
mod security;
mod types;

use pgrx::prelude::*;

/// Runs `sql` in a subtransaction and returns "ok" or "<SQLSTATE>: <message> [DETAIL: …]
/// [HINT: …]", so a test can check an error and then keep using the same backend.
pub fn outcome(sql: &str) -> String {
    // Created once per session, so that it also works after SET ROLE.
    let exists =
        Spi::get_one::<bool>("SELECT to_regprocedure('pg_temp.outcome(text)') IS NOT NULL")
            .unwrap()
            .unwrap_or(false);
    if !exists {
        create_outcome_function();
    }
    Spi::get_one_with_args::<String>("SELECT pg_temp.outcome($1)", &[sql.into()])
        .unwrap()
        .unwrap()
}

fn create_outcome_function() {
    Spi::run(
        "CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $f$
         DECLARE detail text; hint text;
         BEGIN EXECUTE q; RETURN 'ok';
         EXCEPTION WHEN others THEN
           GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
           RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' DETAIL: ' || nullif(detail, ''), '')
                  || coalesce(' HINT: ' || nullif(hint, ''), '');
         END $f$",
    )
    .unwrap();
}
