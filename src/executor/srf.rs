//! Set-returning functions in "materialize" mode: rows go straight into a tuplestore, which
//! spills to disk beyond `work_mem`, so a result of any size never sits whole in memory and the
//! DuckDB result is closed before the function returns.

use pgrx::pg_sys::{self, Datum};
use pgrx::{PgMemoryContexts, PgSqlErrorCode};

use crate::error::{Error, Result};

pub struct Materialize {
    tupstore: *mut pg_sys::Tuplestorestate,
    pub tupdesc: pg_sys::TupleDesc,
    /// Values are built here and copied into the tuplestore; reset after every chunk.
    rows_context: PgMemoryContexts,
}

impl Materialize {
    /// Prepares `fcinfo` to return a tuplestore. With `expected` the caller's column definition
    /// list gives the row type (`RETURNS SETOF record`); otherwise `single` is the one column type.
    ///
    /// # Safety
    /// `fcinfo` must be the call info of the running function.
    pub unsafe fn start(
        fcinfo: pg_sys::FunctionCallInfo,
        single: Option<pg_sys::Oid>,
    ) -> Result<Self> {
        unsafe {
            let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
            if rsinfo.is_null()
                || (*rsinfo).type_ != pg_sys::NodeTag::T_ReturnSetInfo
                || ((*rsinfo).allowedModes & pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32)
                    == 0
            {
                return Err(Error::new(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "set-valued function called in context that cannot accept a set",
                ));
            }
            let per_query = (*(*rsinfo).econtext).ecxt_per_query_memory;
            let mut per_query_cx = PgMemoryContexts::For(per_query);
            let (tupdesc, tupstore) = per_query_cx.switch_to(|_| {
                let tupdesc = match single {
                    Some(type_oid) => {
                        let desc = pg_sys::CreateTemplateTupleDesc(1);
                        pg_sys::TupleDescInitEntry(desc, 1, c"value".as_ptr(), type_oid, -1, 0);
                        desc
                    }
                    None if (*rsinfo).expectedDesc.is_null() => std::ptr::null_mut(),
                    None => pg_sys::CreateTupleDescCopy((*rsinfo).expectedDesc),
                };
                let random = ((*rsinfo).allowedModes
                    & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Random as i32)
                    != 0;
                let tupstore = pg_sys::tuplestore_begin_heap(random, false, pg_sys::work_mem);
                (tupdesc, tupstore)
            });
            if tupdesc.is_null() {
                return Err(Error::new(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "a column definition list is required for llm_sql.query",
                )
                .with_hint("Write: SELECT * FROM llm_sql.query('…') AS t(a int, b text), or use llm_sql.query_json."));
            }
            (*rsinfo).returnMode = pg_sys::SetFunctionReturnMode::SFRM_Materialize;
            (*rsinfo).setResult = tupstore;
            (*rsinfo).setDesc = tupdesc;
            Ok(Materialize {
                tupstore,
                tupdesc,
                rows_context: PgMemoryContexts::new("llm_sql rows"),
            })
        }
    }

    pub fn natts(&self) -> usize {
        // SAFETY: tupdesc is valid for the whole call.
        unsafe { (*self.tupdesc).natts as usize }
    }

    /// Runs `build` in the rows memory context (reset afterwards), to fill and store rows.
    pub fn in_rows_context<T>(&mut self, build: impl FnOnce(&mut Self) -> T) -> T {
        let context = self.rows_context.value();
        // SAFETY: switches to our own context and back; it is reset only after the rows were
        // copied into the tuplestore.
        unsafe {
            let old = pg_sys::MemoryContextSwitchTo(context);
            let result = build(self);
            pg_sys::MemoryContextSwitchTo(old);
            pg_sys::MemoryContextReset(context);
            result
        }
    }

    pub fn put(&mut self, values: &mut [Datum], nulls: &mut [bool]) {
        // SAFETY: values/nulls have natts entries matching tupdesc; the tuplestore copies them.
        unsafe {
            pg_sys::tuplestore_putvalues(
                self.tupstore,
                self.tupdesc,
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
            )
        };
    }
}
