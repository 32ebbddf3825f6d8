//! The gate for SQL a model wrote: Postgres's own parser and analyzer decide, never a look at
//! the text. What passes is exactly one query that only reads:
//!
//! - one statement, and it is a SELECT (or VALUES / TABLE / WITH … SELECT): no utility
//!   statements (COPY, DO, SET, CALL, DDL), no INSERT / UPDATE / DELETE / MERGE, also not
//!   inside a WITH;
//! - no SELECT INTO, no FOR UPDATE / SHARE at any level;
//! - no volatile function (nextval, setval, set_config, pg_sleep, pg_terminate_backend,
//!   pg_advisory_lock, dblink, lo_import, …) except the few that only produce values (random,
//!   clock_timestamp, gen_random_uuid, …).
//!
//! The query then runs in a read-only subtransaction that is always rolled back
//! (`super::run`), so even a function that lies about its volatility cannot write.

use std::ffi::{c_void, CStr, CString};

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{Error, Result};
use crate::pushdown;
use crate::subxact::{self, OnSuccess};

/// Volatile pg_catalog functions that only produce a value.
const HARMLESS_VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
];

fn prohibited(message: impl Into<String>) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED,
        message,
    )
}

/// A query that passed the gate.
#[derive(Debug)]
pub struct Checked {
    /// The text of its one statement, without a trailing semicolon.
    pub sql: String,
    /// Its DuckDB form, when it reads only attachments and DuckDB computes it exactly as
    /// Postgres would.
    pub duckdb: Option<pushdown::DuckQuery>,
}

/// Checks `sql`. Syntax and analysis errors come back with Postgres's own message.
pub fn check(sql: &str) -> Result<Checked> {
    let text = CString::new(sql).map_err(|_| prohibited("the SQL contains a zero byte"))?;
    // Parse analysis takes locks and may fail: in a subtransaction that is always undone.
    subxact::run(OnSuccess::RollBack, || {
        // SAFETY: parses and analyses a NUL-terminated string; the trees live in the current
        // memory context and are only read.
        unsafe { check_parsed(&text) }
    })
}

unsafe fn check_parsed(text: &CStr) -> Result<Checked> {
    unsafe {
        let statements = pg_sys::raw_parser(text.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        let count = if statements.is_null() {
            0
        } else {
            (*statements).length
        };
        if count != 1 {
            return Err(prohibited(format!(
                "exactly one SQL statement is allowed, not {count}"
            )));
        }
        let raw = pg_sys::list_nth(statements, 0) as *mut pg_sys::RawStmt;
        let statement = (*raw).stmt;
        if (*statement).type_ != pg_sys::NodeTag::T_SelectStmt {
            let kind = CStr::from_ptr(pg_sys::CreateCommandName(statement)).to_string_lossy();
            return Err(prohibited(format!(
                "only a SELECT query is allowed, not {kind}"
            )));
        }
        if !(*(statement as *mut pg_sys::SelectStmt))
            .intoClause
            .is_null()
        {
            return Err(prohibited("SELECT INTO creates a table and is not allowed"));
        }
        let query = pg_sys::parse_analyze_fixedparams(
            raw,
            text.as_ptr(),
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
        );
        let mut findings = Findings::default();
        walk(query.cast(), (&mut findings as *mut Findings).cast());
        if let Some(problem) = findings.problem {
            return Err(prohibited(problem));
        }
        Ok(Checked {
            sql: statement_text(text, raw),
            duckdb: pushdown::query(query),
        })
    }
}

/// The text of the parsed statement alone: comments and whitespace around it and a trailing
/// semicolon stay out.
unsafe fn statement_text(text: &CStr, raw: *mut pg_sys::RawStmt) -> String {
    let bytes = text.to_bytes();
    let (start, len) = unsafe { ((*raw).stmt_location, (*raw).stmt_len) };
    let start = (start.max(0) as usize).min(bytes.len());
    let end = match len {
        0 => bytes.len(),
        len => (start + len as usize).min(bytes.len()),
    };
    let statement = String::from_utf8_lossy(&bytes[start..end]);
    statement
        .trim()
        .trim_end_matches(';')
        .trim_end()
        .to_string()
}

#[derive(Default)]
struct Findings {
    problem: Option<String>,
}

/// Walks every query level (subqueries, CTEs, sublinks) and every expression.
#[pg_guard]
unsafe extern "C-unwind" fn walk(node: *mut pg_sys::Node, context: *mut c_void) -> bool {
    if node.is_null() {
        return false;
    }
    // SAFETY: `context` is the Findings passed by check_parsed; nodes come from the analyzer.
    unsafe {
        let findings = &mut *(context as *mut Findings);
        if (*node).type_ == pg_sys::NodeTag::T_Query {
            let query = node as *mut pg_sys::Query;
            if (*query).commandType != pg_sys::CmdType::CMD_SELECT
                || !(*query).utilityStmt.is_null()
                || (*query).hasModifyingCTE
            {
                findings.problem = Some("only queries that read are allowed".into());
                return true;
            }
            if !(*query).rowMarks.is_null() {
                findings.problem =
                    Some("FOR UPDATE / FOR SHARE locks rows and is not allowed".into());
                return true;
            }
            return pg_sys::query_tree_walker_impl(query, Some(walk), context, 0);
        }
        if pg_sys::check_functions_in_node(node, Some(volatile_function), context) {
            return true;
        }
        pg_sys::expression_tree_walker_impl(node, Some(walk), context)
    }
}

/// True (and the finding recorded) for a volatile function outside the harmless few.
#[pg_guard]
unsafe extern "C-unwind" fn volatile_function(function: Oid, context: *mut c_void) -> bool {
    // SAFETY: catalog lookups of an existing function; `context` as in walk.
    unsafe {
        if pg_sys::func_volatile(function) as u8 != pg_sys::PROVOLATILE_VOLATILE {
            return false;
        }
        let name_ptr = pg_sys::get_func_name(function);
        let name = if name_ptr.is_null() {
            String::new()
        } else {
            CStr::from_ptr(name_ptr).to_string_lossy().into_owned()
        };
        let in_catalog =
            pg_sys::get_func_namespace(function) == Oid::from(pg_sys::PG_CATALOG_NAMESPACE);
        if in_catalog && HARMLESS_VOLATILE.contains(&name.as_str()) {
            return false;
        }
        let findings = &mut *(context as *mut Findings);
        findings.problem = Some(format!(
            "function {name}() may change data or state (it is VOLATILE) and is not allowed"
        ));
        true
    }
}
