//! `llm_sql_fdw`: the foreign data wrapper behind `llm_sql.import_schema`.
//!
//! An imported relation is a foreign table of server `llm_sql_duckdb` with option `relation`
//! (the DuckDB relation, e.g. `"crm"."main"."customers"`). Scanning it runs
//! `SELECT <columns> FROM <relation> [WHERE …] [LIMIT n]` in the reader's DuckDB, streaming rows
//! as the `DuckDB Scan` does. WHERE clauses that mean exactly the same in DuckDB (`crate::pushdown`) go
//! into the DuckDB query, where DuckDB's scanners push them on to PostgreSQL, MySQL and SQLite;
//! Postgres still rechecks every clause. LIMIT goes too when every clause went and nothing
//! (ordering, grouping, joins) stands between the scan and the limit.

use std::ffi::{CStr, CString};

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;

use super::rows::{stop_running, stop_running_callback, RunningScan};
use crate::error::OrReport;
use crate::{pushdown, quote};

/// `llm_sql_internal.fdw_handler()`: the FDW's callbacks.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_fdw_handler(_fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    unsafe {
        let routine =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FdwRoutine>()) as *mut pg_sys::FdwRoutine;
        (*routine).type_ = pg_sys::NodeTag::T_FdwRoutine;
        (*routine).GetForeignRelSize = Some(rel_size);
        (*routine).GetForeignPaths = Some(paths);
        (*routine).GetForeignPlan = Some(plan);
        (*routine).BeginForeignScan = Some(begin);
        (*routine).IterateForeignScan = Some(iterate);
        (*routine).ReScanForeignScan = Some(rescan);
        (*routine).EndForeignScan = Some(end);
        (*routine).ExplainForeignScan = Some(explain);
        Datum::from(routine)
    }
}

finfo_v1!(pg_finfo_llm_sql_fdw_handler);

/// The wrapper's validator: a foreign table takes exactly one option, `relation`, naming a
/// DuckDB relation as three quoted identifiers (`"alias"."schema"."table"`, what
/// `import_schema` writes); servers, mappings and the wrapper take none. Since every role may
/// create foreign tables on `llm_sql_duckdb`, a `relation` holding other DuckDB SQL (a table
/// function reading files, say) would run as whoever reads the table: it is refused here.
#[pg_extern(
    immutable,
    parallel_safe,
    sql = r#"
CREATE FUNCTION llm_sql_internal.fdw_validator(options text[], catalog oid) RETURNS void
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
"#
)]
fn fdw_validator(options: Option<Vec<Option<String>>>, catalog: Option<Oid>) {
    let check = || -> crate::error::Result<()> {
        let options: Vec<String> = options.unwrap_or_default().into_iter().flatten().collect();
        let table = catalog == Some(pg_sys::ForeignTableRelationId);
        for option in &options {
            let (name, value) = option.split_once('=').unwrap_or((option, ""));
            if !(table && name == "relation") {
                return Err(crate::error::Error::new(
                    pgrx::PgSqlErrorCode::ERRCODE_FDW_INVALID_OPTION_NAME,
                    format!("invalid option \"{name}\""),
                )
                .with_hint(
                    "Only foreign tables take an option, relation; llm_sql.import_schema sets it.",
                ));
            }
            if !three_quoted_identifiers(value) {
                return Err(crate::error::Error::new(
                    pgrx::PgSqlErrorCode::ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
                    format!("invalid relation {value:?}"),
                )
                .with_hint(
                    "relation names a DuckDB table or view as \"attachment\".\"schema\".\"table\".",
                ));
            }
        }
        if table && !options.iter().any(|o| o.starts_with("relation=")) {
            return Err(crate::error::Error::new(
                pgrx::PgSqlErrorCode::ERRCODE_FDW_OPTION_NAME_NOT_FOUND,
                "a foreign table of llm_sql_fdw needs the option relation",
            ));
        }
        Ok(())
    };
    check().or_report()
}

/// `"a"."b"."c"`: three double-quoted identifiers (with `""` inside for a quote), nothing else.
fn three_quoted_identifiers(text: &str) -> bool {
    let mut parts = 0;
    let mut chars = text.chars().peekable();
    while chars.next() == Some('"') {
        let mut empty = true;
        loop {
            match chars.next() {
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                }
                Some('"') => break,
                Some(_) => {}
                None => return false,
            }
            empty = false;
        }
        if empty {
            return false;
        }
        parts += 1;
        match chars.next() {
            None => return parts == 3,
            Some('.') => {}
            Some(_) => return false,
        }
    }
    false
}

pgrx::extension_sql!(
    r#"
CREATE FUNCTION llm_sql_internal.fdw_handler() RETURNS fdw_handler
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'llm_sql_fdw_handler';
COMMENT ON FUNCTION llm_sql_internal.fdw_handler() IS
    'Handler of the llm_sql_fdw foreign data wrapper (called by Postgres)';
CREATE FOREIGN DATA WRAPPER llm_sql_fdw HANDLER llm_sql_internal.fdw_handler
    VALIDATOR llm_sql_internal.fdw_validator;
-- Reading a foreign table runs DuckDB SQL as the reader, like llm_sql.query itself.
-- Postgres calls the handler and the validator itself, without checking EXECUTE.
REVOKE EXECUTE ON FUNCTION llm_sql_internal.fdw_handler(), llm_sql_internal.fdw_validator(text[], oid) FROM PUBLIC;
CREATE SERVER llm_sql_duckdb FOREIGN DATA WRAPPER llm_sql_fdw;
GRANT USAGE ON FOREIGN SERVER llm_sql_duckdb TO PUBLIC;
"#,
    name = "fdw",
    requires = ["schema_usage", fdw_validator],
);

/// Remote row estimate: unknown, so a middling constant that keeps joins sensible.
const ESTIMATED_ROWS: f64 = 1000.0;

#[pg_guard]
unsafe extern "C-unwind" fn rel_size(
    _root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreigntableid: Oid,
) {
    unsafe { (*baserel).rows = ESTIMATED_ROWS };
}

#[pg_guard]
unsafe extern "C-unwind" fn paths(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreigntableid: Oid,
) {
    unsafe {
        let rows = (*baserel).rows;
        let path = pg_sys::create_foreignscan_path(
            root,
            baserel,
            std::ptr::null_mut(),
            rows,
            0,
            100.0,
            100.0 + rows,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        pg_sys::add_path(baserel, path.cast());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plan(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    foreigntableid: Oid,
    _best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    unsafe {
        let relation = crate::pushdown::foreign_table::relation_option(foreigntableid)
            .unwrap_or_else(|| {
                pgrx::error!("foreign table {foreigntableid:?} has no relation option")
            });
        let relid = (*baserel).relid;
        let natts = (*baserel).max_attr;
        let mut names = Vec::new();
        for attnum in 1..=natts {
            let name = pg_sys::get_attname(foreigntableid, attnum, true);
            names.push(if name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            });
        }
        let columns: Vec<String> = names
            .iter()
            .map(|n| {
                if n.is_empty() {
                    "NULL".into()
                } else {
                    quote::ident(n)
                }
            })
            .collect();
        let mut sql = format!("SELECT {} FROM {relation}", columns.join(", "));
        let clauses = pgrx::PgList::<pg_sys::RestrictInfo>::from_pg(scan_clauses);
        let mut pushed = Vec::new();
        let mut all_pushed = true;
        for rinfo in clauses.iter_ptr() {
            let scope = OneRelation {
                relid,
                names: &names,
            };
            match pushdown::expression((*rinfo).clause.cast(), &scope) {
                Some(condition) => pushed.push(condition),
                None => all_pushed = false,
            }
        }
        if !pushed.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&pushed.join(" AND "));
        }
        if all_pushed {
            if let Some(limit) = pushable_limit(root) {
                sql.push_str(&format!(" LIMIT {limit}"));
            }
        }
        // Every clause is also checked here: pushing is only an optimisation.
        let local = pg_sys::extract_actual_clauses(scan_clauses, false);
        let c_sql = CString::new(sql).unwrap_or_default();
        let private = pgrx::PgList::<pg_sys::Node>::new();
        let mut private = private;
        private.push(pg_sys::makeString(pg_sys::pstrdup(c_sql.as_ptr())).cast());
        pg_sys::make_foreignscan(
            tlist,
            local,
            relid,
            std::ptr::null_mut(),
            private.into_pg(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            outer_plan,
        )
    }
}

/// The LIMIT (plus OFFSET) of a query that reads only this relation with nothing in between.
unsafe fn pushable_limit(root: *mut pg_sys::PlannerInfo) -> Option<u64> {
    unsafe {
        let parse = (*root).parse;
        let limit = (*root).limit_tuples;
        let simple = (*parse).sortClause.is_null()
            && (*parse).groupClause.is_null()
            && (*parse).distinctClause.is_null()
            && (*parse).havingQual.is_null()
            && !(*parse).hasAggs
            && !(*parse).hasWindowFuncs
            && !(*parse).hasTargetSRFs
            && pg_sys::bms_num_members((*root).all_baserels) == 1;
        (simple && (1.0..1e15).contains(&limit)).then(|| limit.ceil() as u64)
    }
}

/// Names the scanned foreign table's columns in its pushed-down WHERE clauses.
struct OneRelation<'a> {
    relid: u32,
    names: &'a [String],
}

impl pushdown::Scope for OneRelation<'_> {
    unsafe fn column(&self, var: *mut pg_sys::Var) -> Option<String> {
        unsafe {
            let attno = (*var).varattno;
            let usable = (*var).varno as u32 == self.relid && (*var).varlevelsup == 0 && attno > 0;
            let name = self.names.get(attno as usize - 1).filter(|n| !n.is_empty());
            usable.then(|| name.map(|n| quote::ident(n))).flatten()
        }
    }
}

/// Per-scan state, in the executor's memory; the running DuckDB query is a Rust box.
#[repr(C)]
struct FdwState {
    sql: *mut std::ffi::c_char,
    running: *mut RunningScan,
    cleanup: pg_sys::MemoryContextCallback,
}

#[pg_guard]
unsafe extern "C-unwind" fn begin(node: *mut pg_sys::ForeignScanState, _eflags: i32) {
    unsafe {
        let scan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
        let sql = pg_sys::list_nth((*scan).fdw_private, 0) as *mut pg_sys::String;
        let state = pg_sys::palloc0(std::mem::size_of::<FdwState>()) as *mut FdwState;
        (*state).sql = (*sql).sval;
        (*state).cleanup.func = Some(stop_running_callback);
        (*state).cleanup.arg = (&raw mut (*state).running).cast();
        let estate = (*node).ss.ps.state;
        pg_sys::MemoryContextRegisterResetCallback((*estate).es_query_cxt, &mut (*state).cleanup);
        (*node).fdw_state = state.cast();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn iterate(
    node: *mut pg_sys::ForeignScanState,
) -> *mut pg_sys::TupleTableSlot {
    unsafe {
        let state = (*node).fdw_state as *mut FdwState;
        let slot = (*node).ss.ss_ScanTupleSlot;
        pg_sys::ExecClearTuple(slot);
        if (*state).running.is_null() {
            let sql = CStr::from_ptr((*state).sql).to_string_lossy();
            let running = RunningScan::start(&sql, (*slot).tts_tupleDescriptor, false);
            (*state).running = Box::into_raw(Box::new(running.or_report()));
        }
        let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
        let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
        let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
        // Values go to the per-tuple memory (the current context in IterateForeignScan).
        if !(*(*state).running).next_row(values, nulls).or_report() {
            return slot;
        }
        pg_sys::ExecStoreVirtualTuple(slot)
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn rescan(node: *mut pg_sys::ForeignScanState) {
    unsafe { stop_running(&raw mut (*((*node).fdw_state as *mut FdwState)).running) };
}

#[pg_guard]
unsafe extern "C-unwind" fn end(node: *mut pg_sys::ForeignScanState) {
    unsafe {
        if !(*node).fdw_state.is_null() {
            stop_running(&raw mut (*((*node).fdw_state as *mut FdwState)).running);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn explain(
    node: *mut pg_sys::ForeignScanState,
    es: *mut pg_sys::ExplainState,
) {
    unsafe {
        let state = (*node).fdw_state as *mut FdwState;
        pg_sys::ExplainPropertyText(c"DuckDB Query".as_ptr(), (*state).sql, es);
    }
}
