//! Foreign tables of `llm_sql_fdw` (what `llm_sql.import_schema` creates): the DuckDB relation
//! each one reads, so that a query over them can run in DuckDB as one statement.

use std::ffi::CStr;

use pgrx::pg_sys::{self, Oid};

/// The DuckDB relation a foreign table reads, when it is a foreign table of `llm_sql_fdw`.
///
/// # Safety
/// Catalog lookups: call inside a transaction.
pub unsafe fn duckdb_relation(relid: Oid) -> Option<String> {
    unsafe {
        let table = pg_sys::GetForeignTable(relid);
        let server = pg_sys::GetForeignServer((*table).serverid);
        let wrapper = pg_sys::GetForeignDataWrapper((*server).fdwid);
        (CStr::from_ptr((*wrapper).fdwname) == c"llm_sql_fdw")
            .then(|| relation_option(relid))
            .flatten()
    }
}

/// The foreign table's `relation` option.
///
/// # Safety
/// Catalog lookups: call inside a transaction, for a foreign table.
pub unsafe fn relation_option(foreigntableid: Oid) -> Option<String> {
    unsafe {
        let table = pg_sys::GetForeignTable(foreigntableid);
        let options = pgrx::PgList::<pg_sys::DefElem>::from_pg((*table).options);
        let found = options.iter_ptr().find_map(|def| {
            let name = CStr::from_ptr((*def).defname);
            (name == c"relation").then(|| {
                CStr::from_ptr(pg_sys::defGetString(def))
                    .to_string_lossy()
                    .into_owned()
            })
        });
        found
    }
}
