//! A streaming scan for `llm_sql.query(…)` and `llm_sql.query_json(…)` in FROM.
//!
//! Postgres runs a set-returning function in FROM by storing all of its rows in a tuplestore
//! (spilling to disk beyond work_mem) before the first row moves on. For DuckDB results that
//! costs more than the query itself, and a `LIMIT 10` still computes every row. This planner
//! hook replaces such a function scan by a custom scan that hands DuckDB's rows to the executor
//! one at a time, straight from DuckDB's chunks: nothing is stored, and DuckDB stops as soon as
//! Postgres stops asking.
//!
//! The function expression is not executed, so the scan checks EXECUTE permission itself, as
//! the executor would. LATERAL calls, WITH ORDINALITY and ROWS FROM keep the function scan.

use std::ffi::{c_char, CStr};

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;

use super::rows::{stop_running, stop_running_callback, RunningScan};
use crate::error::{required, OrReport, Result};

static mut PREVIOUS_HOOK: pg_sys::set_rel_pathlist_hook_type = None;

const NAME: &CStr = c"DuckDB Scan";

static mut PATH_METHODS: pg_sys::CustomPathMethods = pg_sys::CustomPathMethods {
    CustomName: NAME.as_ptr(),
    PlanCustomPath: Some(plan_path),
    ReparameterizeCustomPathByChild: None,
};

static mut SCAN_METHODS: pg_sys::CustomScanMethods = pg_sys::CustomScanMethods {
    CustomName: NAME.as_ptr(),
    CreateCustomScanState: Some(create_state),
};

static mut EXEC_METHODS: pg_sys::CustomExecMethods = pg_sys::CustomExecMethods {
    CustomName: NAME.as_ptr(),
    BeginCustomScan: Some(begin),
    ExecCustomScan: Some(exec),
    EndCustomScan: Some(end),
    ReScanCustomScan: Some(rescan),
    MarkPosCustomScan: None,
    RestrPosCustomScan: None,
    EstimateDSMCustomScan: None,
    InitializeDSMCustomScan: None,
    ReInitializeDSMCustomScan: None,
    InitializeWorkerCustomScan: None,
    ShutdownCustomScan: None,
    ExplainCustomScan: Some(explain),
};

/// Installs the planner hook; called from `_PG_init`.
pub fn init() {
    // SAFETY: runs once, on the backend thread, while the library loads.
    unsafe {
        PREVIOUS_HOOK = pg_sys::set_rel_pathlist_hook;
        pg_sys::set_rel_pathlist_hook = Some(set_rel_pathlist);
    }
}

/// Which llm_sql function `funcid` is: Some(false) for query, Some(true) for query_json.
unsafe fn llm_sql_function(funcid: Oid) -> Option<bool> {
    unsafe {
        let namespace = pg_sys::get_namespace_name(pg_sys::get_func_namespace(funcid));
        if namespace.is_null() || CStr::from_ptr(namespace) != c"llm_sql" {
            return None;
        }
        let name = pg_sys::get_func_name(funcid);
        match (!name.is_null()).then(|| CStr::from_ptr(name).to_bytes()) {
            Some(b"query") => Some(false),
            Some(b"query_json") => Some(true),
            _ => None,
        }
    }
}

/// The single function call of a function RTE that this scan can run, and which one it is.
unsafe fn scannable_call(rte: *mut pg_sys::RangeTblEntry) -> Option<(*mut pg_sys::FuncExpr, bool)> {
    unsafe {
        if (*rte).rtekind != pg_sys::RTEKind::RTE_FUNCTION || (*rte).funcordinality {
            return None;
        }
        let functions = (*rte).functions;
        if functions.is_null() || (*functions).length != 1 {
            return None;
        }
        let rtfunc = pg_sys::list_nth(functions, 0) as *mut pg_sys::RangeTblFunction;
        let expr = (*rtfunc).funcexpr as *mut pg_sys::FuncExpr;
        if expr.is_null() || (*expr).xpr.type_ != pg_sys::NodeTag::T_FuncExpr {
            return None;
        }
        if (*expr).args.is_null() || (*(*expr).args).length != 1 {
            return None;
        }
        llm_sql_function((*expr).funcid).map(|json| (expr, json))
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn set_rel_pathlist(
    root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    rti: pg_sys::Index,
    rte: *mut pg_sys::RangeTblEntry,
) {
    unsafe {
        if let Some(previous) = PREVIOUS_HOOK {
            #[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
            pg_sys::ffi::pg_guard_ffi_boundary(|| previous(root, rel, rti, rte));
        }
        let Some((expr, json)) = scannable_call(rte) else {
            return;
        };
        // A LATERAL argument needs the function scan's parameter plumbing: keep it.
        if !(*rel).lateral_relids.is_null() {
            return;
        }
        let path =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::CustomPath>()) as *mut pg_sys::CustomPath;
        (*path).path.type_ = pg_sys::NodeTag::T_CustomPath;
        (*path).path.pathtype = pg_sys::NodeTag::T_CustomScan;
        (*path).path.parent = rel;
        (*path).path.pathtarget = (*rel).reltarget;
        (*path).path.rows = (*rel).rows;
        (*path).path.startup_cost = 0.0;
        (*path).path.total_cost = (*rel).rows * pg_sys::cpu_tuple_cost;
        (*path).custom_private = pg_sys::list_make2_impl(
            pg_sys::NodeTag::T_List,
            pg_sys::ListCell {
                ptr_value: pg_sys::makeInteger(json as i32).cast(),
            },
            pg_sys::ListCell {
                ptr_value: pg_sys::makeInteger(u32::from((*expr).funcid) as i32).cast(),
            },
        );
        (*path).methods = std::ptr::addr_of!(PATH_METHODS);
        // The function scan path is replaced, not merely out-priced.
        (*rel).pathlist = std::ptr::null_mut();
        pg_sys::add_path(rel, path.cast());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plan_path(
    root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    best_path: *mut pg_sys::CustomPath,
    tlist: *mut pg_sys::List,
    clauses: *mut pg_sys::List,
    _custom_plans: *mut pg_sys::List,
) -> *mut pg_sys::Plan {
    unsafe {
        let relid = (*rel).relid;
        let rte = *(*root).simple_rte_array.add(relid as usize);
        let (expr, _) = scannable_call(rte).expect("the path was made for an llm_sql call");
        let scan =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::CustomScan>()) as *mut pg_sys::CustomScan;
        (*scan).scan.plan.type_ = pg_sys::NodeTag::T_CustomScan;
        // Not a relation scan: the output columns are described by custom_scan_tlist.
        (*scan).scan.scanrelid = 0;
        (*scan).scan.plan.targetlist = tlist;
        (*scan).scan.plan.qual = pg_sys::extract_actual_clauses(clauses, false);
        (*scan).custom_exprs = pg_sys::list_make1_impl(
            pg_sys::NodeTag::T_List,
            pg_sys::ListCell {
                ptr_value: pg_sys::list_nth((*expr).args, 0),
            },
        );
        let mut colnames: *mut pg_sys::List = std::ptr::null_mut();
        let mut colvars: *mut pg_sys::List = std::ptr::null_mut();
        pg_sys::expandRTE(
            rte,
            relid as i32,
            0,
            pg_sys::VarReturningType::VAR_RETURNING_DEFAULT,
            -1,
            false,
            &mut colnames,
            &mut colvars,
        );
        let mut scan_tlist: *mut pg_sys::List = std::ptr::null_mut();
        for i in 0..(*colvars).length {
            let var = pg_sys::list_nth(colvars, i) as *mut pg_sys::Expr;
            // Column names (for error messages) come from the column definition list.
            let name = (*(pg_sys::list_nth(colnames, i) as *mut pg_sys::String)).sval;
            let entry = pg_sys::makeTargetEntry(var, (i + 1) as i16, name, false);
            scan_tlist = pg_sys::lappend(scan_tlist, entry.cast());
        }
        (*scan).custom_scan_tlist = scan_tlist;
        (*scan).custom_private = (*best_path).custom_private;
        (*scan).methods = std::ptr::addr_of!(SCAN_METHODS);
        scan.cast()
    }
}

#[repr(C)]
struct DuckScanState {
    css: pg_sys::CustomScanState,
    sql: *mut pg_sys::ExprState,
    json: bool,
    funcid: Oid,
    running: *mut RunningScan,
    /// Drops `running` if the query ends without EndCustomScan (errors, cancels).
    cleanup: pg_sys::MemoryContextCallback,
}

unsafe fn private_int(list: *mut pg_sys::List, n: i32) -> i32 {
    unsafe { (*(pg_sys::list_nth(list, n) as *mut pg_sys::Integer)).ival }
}

#[pg_guard]
unsafe extern "C-unwind" fn create_state(cscan: *mut pg_sys::CustomScan) -> *mut pg_sys::Node {
    unsafe {
        let state = pg_sys::palloc0(std::mem::size_of::<DuckScanState>()) as *mut DuckScanState;
        (*state).css.ss.ps.type_ = pg_sys::NodeTag::T_CustomScanState;
        (*state).css.methods = std::ptr::addr_of!(EXEC_METHODS);
        (*state).json = private_int((*cscan).custom_private, 0) != 0;
        (*state).funcid = Oid::from(private_int((*cscan).custom_private, 1) as u32);
        state.cast()
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn begin(
    node: *mut pg_sys::CustomScanState,
    estate: *mut pg_sys::EState,
    _eflags: i32,
) {
    unsafe {
        let state = node as *mut DuckScanState;
        // The executor checks EXECUTE on functions it runs; this scan replaces that call.
        let funcid = (*state).funcid;
        let acl = pg_sys::object_aclcheck(
            pg_sys::ProcedureRelationId,
            funcid,
            crate::run_as::current_user(),
            pg_sys::ACL_EXECUTE as _,
        );
        if acl != pg_sys::AclResult::ACLCHECK_OK {
            pg_sys::aclcheck_error(
                acl,
                pg_sys::ObjectType::OBJECT_FUNCTION,
                pg_sys::get_func_name(funcid),
            );
        }
        let cscan = (*node).ss.ps.plan as *mut pg_sys::CustomScan;
        let sql_expr = pg_sys::list_nth((*cscan).custom_exprs, 0) as *mut pg_sys::Expr;
        (*state).sql = pg_sys::ExecInitExpr(sql_expr, &mut (*node).ss.ps);
        (*state).cleanup.func = Some(stop_running_callback);
        (*state).cleanup.arg = (&raw mut (*state).running).cast();
        pg_sys::MemoryContextRegisterResetCallback((*estate).es_query_cxt, &mut (*state).cleanup);
    }
}

/// Evaluates the SQL argument and starts the DuckDB query.
unsafe fn start(state: *mut DuckScanState) -> Result<RunningScan> {
    unsafe {
        let econtext = (*state).css.ss.ps.ps_ExprContext;
        let mut is_null = false;
        let datum = pg_sys::ExecEvalExpr((*state).sql, econtext, &mut is_null);
        let sql: Option<String> = String::from_datum(datum, is_null);
        let tupdesc = (*(*state).css.ss.ss_ScanTupleSlot).tts_tupleDescriptor;
        RunningScan::start(&required(sql, "sql")?, tupdesc, (*state).json)
    }
}

/// The next row into the scan slot; an empty slot at the end.
#[pg_guard]
unsafe extern "C-unwind" fn next_row(ss: *mut pg_sys::ScanState) -> *mut pg_sys::TupleTableSlot {
    unsafe {
        let state = ss as *mut DuckScanState;
        let slot = (*ss).ss_ScanTupleSlot;
        clear_slot(slot);
        if (*state).running.is_null() {
            (*state).running = Box::into_raw(Box::new(start(state).or_report()));
        }
        let running = &mut *(*state).running;
        let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
        let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
        let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
        // Values live in the per-tuple memory, which ExecScan resets before the next row.
        // (CurrentMemoryContext is set directly: this runs once per row.)
        let old = pg_sys::CurrentMemoryContext;
        pg_sys::CurrentMemoryContext = (*(*ss).ps.ps_ExprContext).ecxt_per_tuple_memory;
        let filled = running.next_row(values, nulls);
        pg_sys::CurrentMemoryContext = old;
        if !filled.or_report() {
            return slot;
        }
        store_virtual(slot, natts)
    }
}

/// `ExecClearTuple` for the scan's virtual slot, without a call per row: unless a parent node
/// materialized it (then it owns memory to free), the slot's values live in the per-tuple
/// context and clearing is only marking it empty.
unsafe fn clear_slot(slot: *mut pg_sys::TupleTableSlot) {
    unsafe {
        if (*slot).tts_flags & pg_sys::TTS_FLAG_SHOULDFREE as u16 != 0 {
            if let Some(clear) = (*(*slot).tts_ops).clear {
                #[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
                pg_sys::ffi::pg_guard_ffi_boundary(|| clear(slot));
            }
        }
        (*slot).tts_flags |= pg_sys::TTS_FLAG_EMPTY as u16;
        (*slot).tts_nvalid = 0;
    }
}

/// `ExecStoreVirtualTuple`: marks the slot's values/nulls arrays as a complete tuple.
unsafe fn store_virtual(
    slot: *mut pg_sys::TupleTableSlot,
    natts: usize,
) -> *mut pg_sys::TupleTableSlot {
    unsafe {
        (*slot).tts_flags &= !(pg_sys::TTS_FLAG_EMPTY as u16);
        (*slot).tts_nvalid = natts as i16;
        slot
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn recheck(
    _ss: *mut pg_sys::ScanState,
    _slot: *mut pg_sys::TupleTableSlot,
) -> bool {
    true
}

// Postgres's ExecScan, called without pgrx's per-call guard: this runs once per row, and the
// guard (a sigsetjmp and a thread check) cost about a tenth of the scan. It is sound because
// `exec` is a plain frame with nothing to drop, so an ERROR raised inside ExecScan may longjmp
// across it like across any C frame; errors of our own are raised inside the guarded `next_row`.
unsafe extern "C-unwind" {
    #[link_name = "ExecScan"]
    fn exec_scan_unguarded(
        node: *mut pg_sys::ScanState,
        access: pg_sys::ExecScanAccessMtd,
        recheck: pg_sys::ExecScanRecheckMtd,
    ) -> *mut pg_sys::TupleTableSlot;
}

#[allow(ffi_unwind_calls, reason = "deliberately unguarded, see above")]
unsafe extern "C-unwind" fn exec(
    node: *mut pg_sys::CustomScanState,
) -> *mut pg_sys::TupleTableSlot {
    unsafe { exec_scan_unguarded(&mut (*node).ss, Some(next_row), Some(recheck)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn end(node: *mut pg_sys::CustomScanState) {
    unsafe { stop_running(&raw mut (*(node as *mut DuckScanState)).running) };
}

#[pg_guard]
unsafe extern "C-unwind" fn rescan(node: *mut pg_sys::CustomScanState) {
    unsafe {
        stop_running(&raw mut (*(node as *mut DuckScanState)).running);
        pg_sys::ExecScanReScan(&mut (*node).ss);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn explain(
    node: *mut pg_sys::CustomScanState,
    _ancestors: *mut pg_sys::List,
    es: *mut pg_sys::ExplainState,
) {
    unsafe {
        let state = node as *mut DuckScanState;
        let cscan = (*node).ss.ps.plan as *mut pg_sys::CustomScan;
        let sql_expr = pg_sys::list_nth((*cscan).custom_exprs, 0) as *mut pg_sys::Const;
        let label = if (*state).json {
            c"DuckDB Query (jsonb rows)"
        } else {
            c"DuckDB Query"
        };
        if (*sql_expr).xpr.type_ == pg_sys::NodeTag::T_Const && !(*sql_expr).constisnull {
            let text = pg_sys::text_to_cstring((*sql_expr).constvalue.cast_mut_ptr());
            pg_sys::ExplainPropertyText(label.as_ptr(), text, es);
        } else {
            pg_sys::ExplainPropertyText(
                label.as_ptr(),
                c"(computed at run time)".as_ptr() as *const c_char,
                es,
            );
        }
    }
}

/// Planner support for llm_sql.query/query_json. Its only job is to be called while the first
/// query using them is planned: that loads this library, whose `_PG_init` installs the hook
/// before the planner builds paths, so even a session's first query gets the streaming scan.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_query_support(_fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    Datum::from(0)
}

finfo_v1!(pg_finfo_llm_sql_query_support);

pgrx::extension_sql!(
    r#"
CREATE FUNCTION llm_sql_internal.query_support(internal) RETURNS internal
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'llm_sql_query_support';
COMMENT ON FUNCTION llm_sql_internal.query_support(internal) IS
    'Planner support of query and query_json: their DuckDB Scan (called by Postgres)';
ALTER FUNCTION llm_sql.query(text) SUPPORT llm_sql_internal.query_support;
ALTER FUNCTION llm_sql.query_json(text) SUPPORT llm_sql_internal.query_support;
-- The planner calls it itself, without checking EXECUTE.
REVOKE EXECUTE ON FUNCTION llm_sql_internal.query_support(internal) FROM PUBLIC;
"#,
    name = "query_support",
    requires = ["query_functions"],
);
