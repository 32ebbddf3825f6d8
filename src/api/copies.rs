//! Columnar copies of local tables (`crate::local::copy`): llm_sql.warm and llm_sql.local_copies.

use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

use crate::error::{required, Error, OrReport, Result};
use crate::local::copy::Warmed;
use crate::session::Session;

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.warm(tbl regclass) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.warm(regclass) IS
    'Copies a table now for pg.<schema>.<table> to read: stored for every session of the database when the caller may maintain the table, else into this session''s DuckDB; returns the rows copied';
"#
)]
fn warm_copy(tbl: Option<Oid>) -> i64 {
    (|| -> Result<i64> {
        let relid = required(tbl, "tbl")?;
        let session = Session::open()?;
        if session.nested() {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_OBJECT_IN_USE,
                "llm_sql.warm cannot run while another DuckDB statement of this session is running",
            ));
        }
        let options = session.instance.duckdb_options();
        let warmed =
            crate::local::warm(session.conn(), &session.instance.copies, relid, &options)?;
        Ok(match warmed {
            Warmed::Stored { rows, attached } => {
                if !attached {
                    // A restricted instance cannot open files any more: a new one attaches it.
                    crate::session::discard(&session.instance);
                    pgrx::notice!("llm_sql: this session's DuckDB will be reopened to read the stored copy (its DuckDB temporary tables and in-memory copies are dropped)");
                }
                rows
            }
            Warmed::InSession { rows } => {
                pgrx::notice!("llm_sql: the copy is kept for this session only: storing it for every session needs the MAINTAIN privilege on the table");
                rows
            }
        } as i64)
    })()
    .or_report()
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.local_copies(
    OUT tbl regclass, OUT blocks bigint, OUT copied_blocks bigint, OUT copied_rows bigint,
    OUT bytes bigint, OUT uses bigint, OUT last_copied_blocks bigint, OUT last_live_blocks bigint,
    OUT stored boolean)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.local_copies() IS
    'The copies of tables this session''s DuckDB (for the current role) reads, stored for every session or its own, and how the last statement read each';
"#
)]
#[allow(clippy::type_complexity)]
fn local_copies_listing() -> TableIterator<
    'static,
    (
        name!(tbl, Oid),
        name!(blocks, i64),
        name!(copied_blocks, i64),
        name!(copied_rows, i64),
        name!(bytes, i64),
        name!(uses, i64),
        name!(last_copied_blocks, i64),
        name!(last_live_blocks, i64),
        name!(stored, bool),
    ),
> {
    let list = crate::session::current()
        .map(|instance| instance.copies.list())
        .or_report();
    TableIterator::new(list.into_iter().map(|c| {
        (
            c.relid,
            c.blocks,
            c.copied_blocks,
            c.rows,
            c.bytes,
            c.uses,
            c.last_copied_blocks,
            c.last_live_blocks,
            c.stored,
        )
    }))
}
