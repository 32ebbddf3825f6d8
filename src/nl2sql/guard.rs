//! The gate for SQL a model wrote: Postgres's own parser and analyzer decide, never a look at
//! the text. What passes is exactly one query that only reads:
//!
//! - one statement, and it is a SELECT (or VALUES / TABLE / WITH … SELECT): no utility
//!   statements (COPY, DO, SET, CALL, DDL), no INSERT / UPDATE / DELETE / MERGE, also not
//!   inside a WITH;
//! - no SELECT INTO, no FOR UPDATE / SHARE at any level;
//! - every function it would call passes `sandbox::check_function`: in the query as written
//!   and as the rewriter expands it (views, row-level security policies), in the CHECK
//!   constraints of the domains it coerces to, through the operators and aggregates it uses.
//!
//! Analysis already runs with the sandbox on (parsing a literal of a composite type can run a
//! domain's CHECK). The query then runs in a read-only subtransaction that is always rolled
//! back (`super::run`), with the sandbox enforcing the same rule on whatever actually runs.

use std::ffi::{c_void, CStr, CString};

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use super::sandbox;
use crate::error::{Error, Result};
use crate::pushdown;
use crate::run_as::current_user;
use crate::subxact::{self, OnSuccess};

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
    /// The result's columns, in order, named as in the answer's rows.
    pub columns: Vec<Column>,
}

/// A result column: its name and its type as Postgres writes it.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub type_name: String,
}

/// Checks `sql`. Syntax and analysis errors come back with Postgres's own message.
pub fn check(sql: &str) -> Result<Checked> {
    let text = CString::new(sql).map_err(|_| prohibited("the SQL contains a zero byte"))?;
    // Parse analysis takes locks and may fail: in a subtransaction that is always undone.
    subxact::run(OnSuccess::RollBack, || {
        sandbox::enforced(|| {
            // SAFETY: parses and analyses a NUL-terminated string; the trees live in the
            // current memory context and are only read (the rewriter works on a copy).
            unsafe { check_parsed(&text) }
        })
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
        let duckdb = pushdown::query(query);
        let mut findings = Findings {
            caller: current_user(),
            problem: None,
        };
        walk(query.cast(), (&mut findings as *mut Findings).cast());
        // What will run: views expanded, row-level security policies added.
        let rewritten = pg_sys::QueryRewrite(pg_sys::copyObjectImpl(query.cast()).cast());
        if !rewritten.is_null() {
            for i in 0..(*rewritten).length {
                if findings.problem.is_none() {
                    walk(
                        pg_sys::list_nth(rewritten, i).cast(),
                        (&mut findings as *mut Findings).cast(),
                    );
                }
            }
        }
        if let Some(problem) = findings.problem {
            return Err(problem);
        }
        Ok(Checked {
            sql: statement_text(text, raw),
            duckdb,
            columns: result_columns(query),
        })
    }
}

/// The visible entries of the query's target list. Names shared by several columns become
/// name, name_1, … as in the answer's rows (`super::answer_rows`).
unsafe fn result_columns(query: *mut pg_sys::Query) -> Vec<Column> {
    let mut names = Vec::new();
    let mut types = Vec::new();
    unsafe {
        let list = (*query).targetList;
        let length = if list.is_null() { 0 } else { (*list).length };
        for i in 0..length {
            let entry = pg_sys::list_nth(list, i) as *mut pg_sys::TargetEntry;
            if (*entry).resjunk {
                continue;
            }
            let expression = (*entry).expr as *const pg_sys::Node;
            let type_name = pg_sys::format_type_with_typemod(
                pg_sys::exprType(expression),
                pg_sys::exprTypmod(expression),
            );
            types.push(CStr::from_ptr(type_name).to_string_lossy().into_owned());
            names.push(match (*entry).resname.is_null() {
                true => "?column?".to_string(),
                false => CStr::from_ptr((*entry).resname)
                    .to_string_lossy()
                    .into_owned(),
            });
        }
    }
    crate::quote::unique(names.iter().map(String::as_str))
        .into_iter()
        .zip(types)
        .map(|(name, type_name)| Column { name, type_name })
        .collect()
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

struct Findings {
    /// Whose ask: the owner of a function decides whether it may run.
    caller: Oid,
    problem: Option<Error>,
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
                findings.problem = Some(prohibited("only queries that read are allowed"));
                return true;
            }
            if !(*query).rowMarks.is_null() {
                findings.problem = Some(prohibited(
                    "FOR UPDATE / FOR SHARE locks rows and is not allowed",
                ));
                return true;
            }
            return sort_operators(query, findings)
                || pg_sys::query_tree_walker_impl(query, Some(walk), context, 0);
        }
        if pg_sys::check_functions_in_node(node, Some(untrusted_function), context) {
            return true;
        }
        if (*node).type_ == pg_sys::NodeTag::T_CoerceToDomain
            && domain_constraints((*(node as *mut pg_sys::CoerceToDomain)).resulttype, context)
        {
            return true;
        }
        pg_sys::expression_tree_walker_impl(node, Some(walk), context)
    }
}

/// The functions behind the operators that ORDER BY, GROUP BY, DISTINCT and window clauses
/// compare with (a type's own operators: for a type another role created, its functions).
unsafe fn sort_operators(query: *mut pg_sys::Query, findings: &mut Findings) -> bool {
    // SAFETY: lists of SortGroupClause nodes of an analysed query.
    unsafe {
        let clauses = [
            (*query).sortClause,
            (*query).groupClause,
            (*query).distinctClause,
        ];
        for list in clauses.into_iter().filter(|l| !l.is_null()) {
            for i in 0..(*list).length {
                let clause = pg_sys::list_nth(list, i) as *mut pg_sys::SortGroupClause;
                for operator in [(*clause).eqop, (*clause).sortop] {
                    if operator != Oid::INVALID {
                        let function = pg_sys::get_opcode(operator);
                        if untrusted_function(function, (findings as *mut Findings).cast()) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }
}

/// Walks the CHECK constraints of `domain` (and of the domains it is based on).
unsafe fn domain_constraints(domain: Oid, context: *mut c_void) -> bool {
    // SAFETY: the typcache's constraint list of an existing domain. The reference lives in the
    // current memory context, which calls back into it when it is reset.
    unsafe {
        let reference = pg_sys::palloc0(std::mem::size_of::<pg_sys::DomainConstraintRef>())
            as *mut pg_sys::DomainConstraintRef;
        pg_sys::InitDomainConstraintRef(domain, reference, pg_sys::CurrentMemoryContext, false);
        let constraints = (*reference).constraints;
        if constraints.is_null() {
            return false;
        }
        for i in 0..(*constraints).length {
            let constraint = pg_sys::list_nth(constraints, i) as *mut pg_sys::DomainConstraintState;
            if !(*constraint).check_expr.is_null() && walk((*constraint).check_expr.cast(), context)
            {
                return true;
            }
        }
        false
    }
}

/// True (and the finding recorded) for a function the sandbox would refuse.
#[pg_guard]
unsafe extern "C-unwind" fn untrusted_function(function: Oid, context: *mut c_void) -> bool {
    // SAFETY: `context` is the Findings passed by check_parsed.
    let findings = unsafe { &mut *(context as *mut Findings) };
    match sandbox::check_function(function, findings.caller) {
        Ok(()) => false,
        Err(why) => {
            findings.problem = Some(sandbox::refused(why));
            true
        }
    }
}
