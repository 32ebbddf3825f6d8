//! What lets `llm_sql.embed(text)` be called inline, as in pgvector's
//! `ORDER BY embedding <=> llm_sql.embed('question') LIMIT 5`.
//!
//! `embed` is STABLE: within one statement the same text and model give the same vector, so the
//! planner may use it as an index scan's ordering key (evaluated once). It is not IMMUTABLE:
//! the model comes from a setting that may change between statements, and an IMMUTABLE call
//! would be folded into cached plans and expression indexes. Where Postgres still evaluates it
//! once per row (a sort over a sequential scan, a CTE inlined at several places), the backend
//! remembers the statement's embeddings, so the server is asked once per text and statement.
//!
//! It also refuses what a driver sends for a list bound to `embed($1)`: the parameter arrives
//! untyped, Postgres resolves `embed(text)`, and the list's array literal would be embedded as
//! one text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;

use pgrx::pg_sys;
use pgrx::PgList;

use crate::error::{Error, Result};

/// Most embeddings remembered for one statement.
const REMEMBERED: usize = 64;

/// The current statement's embeddings by (model, text), and the statement they belong to.
#[derive(Default)]
struct StatementEmbeddings {
    statement_start: pg_sys::TimestampTz,
    vectors: HashMap<(String, String), Vec<f32>>,
}

thread_local! {
    static REMEMBERED_EMBEDDINGS: RefCell<StatementEmbeddings> = RefCell::default();
}

/// The current statement's embedding of `input` with `model`, or the one `compute` makes.
pub fn remembered(
    input: &str,
    model: &str,
    compute: impl FnOnce() -> Result<Option<Vec<f32>>>,
) -> Result<Option<Vec<f32>>> {
    // SAFETY: reads the start time of the current statement.
    let statement_start = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    let key = (model.to_string(), input.to_string());
    let known = REMEMBERED_EMBEDDINGS.with(|r| {
        let mut r = r.borrow_mut();
        if r.statement_start != statement_start {
            *r = StatementEmbeddings {
                statement_start,
                vectors: HashMap::new(),
            };
        }
        r.vectors.get(&key).cloned()
    });
    if known.is_some() {
        return Ok(known);
    }
    let values = compute()?;
    if let Some(values) = &values {
        REMEMBERED_EMBEDDINGS.with(|r| {
            let mut r = r.borrow_mut();
            if r.vectors.len() < REMEMBERED {
                r.vectors.insert(key, values.clone());
            }
        });
    }
    Ok(values)
}

/// Refuses an array literal that reached `embed(text)` from a bound parameter.
///
/// # Safety
/// `fcinfo` is the current call's.
pub unsafe fn refuse_bound_array(fcinfo: pg_sys::FunctionCallInfo, input: &str) -> Result<()> {
    // SAFETY: reads the call's expression tree.
    if !unsafe { argument_is_bound(fcinfo) } || !is_array_literal(input) {
        return Ok(());
    }
    Err(Error::invalid_parameter(
        "llm_sql.embed(text) was given an array literal from a bound parameter",
    )
    .with_detail(
        "A driver sends a list or array bound to embed($1) as an untyped parameter, so Postgres \
         picks embed(text) and the list would be embedded as one text.",
    )
    .with_hint(
        "Write embed($1::text[]) to embed each element (it returns vector[]); to embed this \
         exact text, pass it as a literal.",
    ))
}

/// True when the first argument comes from the client rather than the query's text: a Param
/// (generic plans), or the Const a custom plan substitutes for one. Such a Const keeps the
/// Param's location, so the statement's text tells them apart from literals: `$1` there, where
/// a literal starts with a quote (or `$$`/`$tag$`, which a digit never follows).
unsafe fn argument_is_bound(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: fn_expr is the FuncExpr that called us (or NULL when called directly); the active
    // portal's source text is the statement whose plan runs.
    unsafe {
        let expr = (*(*fcinfo).flinfo).fn_expr;
        if expr.is_null() || (*expr).type_ != pg_sys::NodeTag::T_FuncExpr {
            return false;
        }
        let args = PgList::<pg_sys::Node>::from_pg((*expr.cast::<pg_sys::FuncExpr>()).args);
        let Some(first) = args.get_ptr(0) else {
            return false;
        };
        match (*first).type_ {
            pg_sys::NodeTag::T_Param => true,
            pg_sys::NodeTag::T_Const => {
                // (No location: a constant Postgres folded, e.g. from `'{a' || ',b}'`.)
                let Ok(location) = usize::try_from((*first.cast::<pg_sys::Const>()).location)
                else {
                    return false;
                };
                let portal = pg_sys::ActivePortal;
                if portal.is_null() || (*portal).sourceText.is_null() {
                    return false;
                }
                let text = std::ffi::CStr::from_ptr((*portal).sourceText).to_bytes();
                matches!(text.get(location..location + 2), Some([b'$', digit]) if digit.is_ascii_digit())
            }
            _ => false,
        }
    }
}

/// True when `text` is a valid text[] literal (`{a,b}`, `{"a","b"}`), checked by array_in
/// without raising.
fn is_array_literal(text: &str) -> bool {
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return false;
    }
    let Ok(literal) = CString::new(trimmed) else {
        return false;
    };
    let mut escontext = pg_sys::ErrorSaveContext {
        type_: pg_sys::NodeTag::T_ErrorSaveContext,
        error_occurred: false,
        details_wanted: false,
        error_data: std::ptr::null_mut(),
    };
    let mut result = pg_sys::Datum::from(0);
    // SAFETY: array_in of a NUL-terminated string into text[]; soft errors are saved in
    // escontext instead of raised.
    unsafe {
        let mut array_in: pg_sys::FmgrInfo = std::mem::zeroed();
        pg_sys::fmgr_info(pg_sys::Oid::from(pg_sys::F_ARRAY_IN), &mut array_in);
        pg_sys::InputFunctionCallSafe(
            &mut array_in,
            literal.as_ptr().cast_mut(),
            pg_sys::TEXTOID,
            -1,
            std::ptr::addr_of_mut!(escontext).cast(),
            &mut result,
        )
    }
}
