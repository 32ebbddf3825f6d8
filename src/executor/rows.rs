//! DuckDB rows as Postgres rows: the caller's column definition list (`llm_sql.query`) or one
//! jsonb object per row (`llm_sql.query_json`). Shared by the set-returning functions and the
//! streaming scan.

use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode;

use crate::engine::convert::{ensure_supported, write_json, Converter};
use crate::engine::ffi::Vector;
use crate::engine::types::{DuckType, PgType};
use crate::error::{Error, Result};
use crate::session::run::{Column, RowStream};

pub enum RowShape {
    Record(Vec<Converter>),
    Json {
        keys: Vec<String>,
        types: Vec<DuckType>,
        jsonb: Box<Converter>,
        text: String,
        utf8: bool,
    },
}

/// Makes column names unique the way DuckDB does for tables: a, a_1, a_2, …
pub fn unique_names(columns: &[Column]) -> Vec<String> {
    crate::quote::unique(columns.iter().map(|c| c.name.as_str()))
}

/// Type and name of attribute `i` (0-based) of a tuple descriptor.
///
/// # Safety
/// `tupdesc` must be valid and `i < natts`.
unsafe fn attribute(tupdesc: pg_sys::TupleDesc, i: usize) -> (PgType, String) {
    unsafe {
        let attr = pg_sys::TupleDescAttr(tupdesc, i as i32);
        let name = std::ffi::CStr::from_ptr((*attr).attname.data.as_ptr())
            .to_string_lossy()
            .into_owned();
        (
            PgType {
                oid: (*attr).atttypid,
                typmod: (*attr).atttypmod,
            },
            name,
        )
    }
}

impl RowShape {
    /// Plans the conversion of DuckDB's `columns` into rows of `tupdesc` (the caller's column
    /// definition list), or into one jsonb per row.
    ///
    /// # Safety
    /// `tupdesc` must be a valid tuple descriptor (ignored for `json`).
    pub unsafe fn plan(
        columns: &[Column],
        tupdesc: pg_sys::TupleDesc,
        json: bool,
    ) -> Result<RowShape> {
        if json {
            for (i, column) in columns.iter().enumerate() {
                ensure_supported(&column.duck, &column.name, i + 1)?;
            }
            let keys = unique_names(columns)
                .into_iter()
                .map(|n| serde_json::Value::from(n).to_string())
                .collect();
            // SAFETY: reads the session's fixed database encoding.
            let utf8 = unsafe { pg_sys::GetDatabaseEncoding() } == pg_sys::pg_enc::PG_UTF8 as i32;
            return Ok(RowShape::Json {
                keys,
                types: columns.iter().map(|c| c.duck.clone()).collect(),
                jsonb: Box::new(Converter::new(DuckType::Json, None, "value", 1)?),
                text: String::new(),
                utf8,
            });
        }
        // SAFETY: the caller passes a valid descriptor.
        let natts = unsafe { (*tupdesc).natts } as usize;
        if columns.len() != natts {
            let described: Vec<String> = columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.duck))
                .collect();
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!(
                    "the column definition list has {natts} columns, but the DuckDB query returns {}",
                    columns.len()
                ),
            )
            .with_detail(format!("DuckDB returns: {}", described.join(", "))));
        }
        let mut converters = Vec::with_capacity(natts);
        for (i, column) in columns.iter().enumerate() {
            // SAFETY: i < natts.
            let (target, name) = unsafe { attribute(tupdesc, i) };
            converters.push(Converter::new(
                column.duck.clone(),
                Some(target),
                &name,
                i + 1,
            )?);
        }
        Ok(RowShape::Record(converters))
    }

    /// Fills `values`/`nulls` with row `row` of the current chunk's `vectors`.
    pub fn fill(
        &mut self,
        vectors: &[Vector<'_>],
        row: usize,
        values: &mut [Datum],
        nulls: &mut [bool],
    ) -> Result<()> {
        match self {
            RowShape::Record(converters) => {
                for (c, converter) in converters.iter_mut().enumerate() {
                    let v = &vectors[c];
                    nulls[c] = !v.is_valid(row);
                    values[c] = if nulls[c] {
                        Datum::from(0)
                    } else {
                        converter.datum(v, row)?
                    };
                }
            }
            RowShape::Json {
                keys,
                types,
                jsonb,
                text,
                utf8,
            } => {
                text.clear();
                text.push('{');
                for (c, (key, duck)) in keys.iter().zip(types.iter()).enumerate() {
                    if c > 0 {
                        text.push(',');
                    }
                    text.push_str(key);
                    text.push(':');
                    write_json(duck, &vectors[c], row, text, *utf8)?;
                }
                text.push('}');
                values[0] = jsonb.jsonb_from_text(text)?;
                nulls[0] = false;
            }
        }
        Ok(())
    }
}

/// A DuckDB query being read into tuples one row at a time (the streaming custom scan and the
/// foreign data wrapper), boxed behind a pointer in the executor's scan state.
pub struct RunningScan {
    stream: RowStream,
    shape: RowShape,
    row: usize,
}

impl RunningScan {
    /// Starts `sql` and plans its rows into `tupdesc` (or jsonb rows).
    ///
    /// # Safety
    /// `tupdesc` must be a valid tuple descriptor.
    pub unsafe fn start(sql: &str, tupdesc: pg_sys::TupleDesc, json: bool) -> Result<RunningScan> {
        let stream = RowStream::open(sql, &[])?;
        // SAFETY: the caller's descriptor.
        let shape = unsafe { RowShape::plan(&stream.columns, tupdesc, json)? };
        Ok(RunningScan {
            stream,
            shape,
            row: 0,
        })
    }

    /// Fills `values`/`nulls` with the next row; false at the end.
    pub fn next_row(&mut self, values: &mut [Datum], nulls: &mut [bool]) -> Result<bool> {
        while self.row >= self.stream.len() {
            if !self.stream.next_chunk()? {
                return Ok(false);
            }
            self.row = 0;
        }
        self.shape
            .fill(self.stream.vectors(), self.row, values, nulls)?;
        self.row += 1;
        Ok(true)
    }
}

/// Drops the running scan behind `slot`, if any.
///
/// # Safety
/// `slot` points at a field that is null or holds a pointer from `Box::into_raw`.
pub unsafe fn stop_running(slot: *mut *mut RunningScan) {
    // SAFETY: see the function's contract.
    unsafe {
        let running = std::mem::replace(&mut *slot, std::ptr::null_mut());
        if !running.is_null() {
            drop(Box::from_raw(running));
        }
    }
}

/// Memory-context reset callback (argument: the `*mut *mut RunningScan` field): stops the
/// DuckDB query when the executor's memory goes away without the scan's end callback (errors,
/// cancels).
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn stop_running_callback(arg: *mut std::ffi::c_void) {
    // SAFETY: registered with a pointer to a running-scan field.
    unsafe { stop_running(arg.cast()) };
}
