//! Table functions written in Rust, registered on a DuckDB connection.
//!
//! An implementation of [`TableFunction`] only sees safe values: the call's arguments, the
//! columns DuckDB reads, and an [`Output`] chunk that checks every write against the column's
//! type and the chunk's capacity. The C callbacks here do the rest: they own the bind and scan
//! data (freed by DuckDB through the destructors given with them), catch every panic, and turn
//! errors into DuckDB errors, so nothing unwinds into DuckDB.
//!
//! DuckDB calls these callbacks on its own threads: an implementation must never call
//! Postgres from them (`crate::local::pg_scan` hands the work to the backend thread).

use std::ffi::{c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use duckdb::ffi;

use super::ffi::{Connection, DuckError, DuckResult};

/// The column types a table function can return (the ones values cross the boundary in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Bool,
    SmallInt,
    Integer,
    BigInt,
    Float,
    Double,
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since 1970-01-01 00:00.
    Timestamp,
    /// Microseconds since 1970-01-01 00:00 UTC.
    TimestampTz,
    /// An integer of at most `width` digits (38 at most), `scale` of them after the point.
    Decimal {
        width: u8,
        scale: u8,
    },
    /// 16 bytes as DuckDB keeps a UUID (a hugeint whose top bit is flipped).
    Uuid,
    /// UTF-8 text.
    Varchar,
    Blob,
}

impl ColumnType {
    fn id(self) -> ffi::duckdb_type {
        match self {
            ColumnType::Bool => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
            ColumnType::SmallInt => ffi::DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT,
            ColumnType::Integer => ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER,
            ColumnType::BigInt => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
            ColumnType::Float => ffi::DUCKDB_TYPE_DUCKDB_TYPE_FLOAT,
            ColumnType::Double => ffi::DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE,
            ColumnType::Date => ffi::DUCKDB_TYPE_DUCKDB_TYPE_DATE,
            ColumnType::Timestamp => ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP,
            ColumnType::TimestampTz => ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ,
            ColumnType::Decimal { .. } => ffi::DUCKDB_TYPE_DUCKDB_TYPE_DECIMAL,
            ColumnType::Uuid => ffi::DUCKDB_TYPE_DUCKDB_TYPE_UUID,
            ColumnType::Varchar => ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR,
            ColumnType::Blob => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BLOB,
        }
    }

    /// Bytes per value in a vector; `None` for strings.
    pub fn width(self) -> Option<usize> {
        Some(match self {
            ColumnType::Bool => 1,
            ColumnType::SmallInt => 2,
            ColumnType::Integer | ColumnType::Float | ColumnType::Date => 4,
            ColumnType::BigInt
            | ColumnType::Double
            | ColumnType::Timestamp
            | ColumnType::TimestampTz => 8,
            // DuckDB's physical types for DECIMAL(width, _).
            ColumnType::Decimal { width, .. } => match width {
                0..=4 => 2,
                5..=9 => 4,
                10..=18 => 8,
                _ => 16,
            },
            ColumnType::Uuid => 16,
            ColumnType::Varchar | ColumnType::Blob => return None,
        })
    }

    /// A new logical type, for the caller to destroy.
    fn logical(self) -> ffi::duckdb_logical_type {
        // SAFETY: constructors returning owned types.
        unsafe {
            match self {
                ColumnType::Decimal { width, scale } => {
                    ffi::duckdb_create_decimal_type(width.clamp(1, 38), scale.min(width))
                }
                other => ffi::duckdb_create_logical_type(other.id()),
            }
        }
    }

    /// Whether `logical` is this type.
    fn is(self, logical: ffi::duckdb_logical_type) -> bool {
        // SAFETY: reads of a valid logical type.
        unsafe {
            ffi::duckdb_get_type_id(logical) == self.id()
                && match self {
                    ColumnType::Decimal { width, scale } => {
                        ffi::duckdb_decimal_width(logical) == width.clamp(1, 38)
                            && ffi::duckdb_decimal_scale(logical) == scale.min(width)
                    }
                    _ => true,
                }
        }
    }
}

/// What `bind` makes of one call.
pub struct Binding<B> {
    /// The result columns, in order: name and type.
    pub columns: Vec<(String, ColumnType)>,
    /// About how many rows a scan returns, for DuckDB's join order (without it, DuckDB takes
    /// a table function for one row).
    pub estimated_rows: Option<u64>,
    /// The call's data, shared by its scans.
    pub data: B,
}

/// A table function: `NAME(BIGINT, ...)` returning the columns `bind` names.
///
/// Every scan runs on one thread (its rows come in order), and DuckDB pushes the projection
/// down: `init` learns which columns are read.
pub trait TableFunction {
    const NAME: &'static CStr;
    /// How many BIGINT arguments the function takes (all llm_sql's need).
    const BIGINT_ARGUMENTS: usize;
    /// What `bind` makes of one call, shared by its scans.
    type Bound: Send + Sync + 'static;
    /// One scan's state.
    type Scan: Send + Sync + 'static;

    /// The result columns for these arguments, the row estimate and the call's data.
    fn bind(arguments: &[i64]) -> Result<Binding<Self::Bound>, String>;
    /// Starts a scan that reads `projection`: indexes into the bound columns, `None` for
    /// DuckDB's row id (a BIGINT).
    fn init(bound: &Self::Bound, projection: Vec<Option<usize>>) -> Result<Self::Scan, String>;
    /// Writes the next rows of the projected columns into `out`; no rows end the scan.
    fn scan(scan: &Self::Scan, out: &mut Output) -> Result<(), String>;
}

/// Registers `F` on `conn`'s database.
pub fn register<F: TableFunction>(conn: &Connection) -> DuckResult<()> {
    // SAFETY: builds and registers a table function with valid callbacks; the function object
    // is destroyed after registration (DuckDB keeps its own copy).
    unsafe {
        let mut function = ffi::duckdb_create_table_function();
        ffi::duckdb_table_function_set_name(function, F::NAME.as_ptr());
        for _ in 0..F::BIGINT_ARGUMENTS {
            let mut bigint = ColumnType::BigInt.logical();
            ffi::duckdb_table_function_add_parameter(function, bigint);
            ffi::duckdb_destroy_logical_type(&mut bigint);
        }
        ffi::duckdb_table_function_set_bind(function, Some(bind::<F>));
        ffi::duckdb_table_function_set_init(function, Some(init::<F>));
        ffi::duckdb_table_function_set_function(function, Some(scan::<F>));
        ffi::duckdb_table_function_supports_projection_pushdown(function, true);
        let state = ffi::duckdb_register_table_function(conn.raw(), function);
        ffi::duckdb_destroy_table_function(&mut function);
        if state != ffi::DuckDBSuccess {
            return Err(DuckError {
                kind: None,
                message: format!("could not register {}", F::NAME.to_string_lossy()),
            });
        }
    }
    Ok(())
}

/// The bind data DuckDB keeps for a call.
struct Bound<B> {
    columns: usize,
    data: B,
}

unsafe extern "C" fn drop_box<T>(data: *mut c_void) {
    // SAFETY: `data` came from Box::into_raw of the same type, and DuckDB frees it once.
    drop(unsafe { Box::from_raw(data as *mut T) });
}

/// A C string for DuckDB (NUL bytes become spaces).
fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Runs a callback's body: `Some(message)` when it failed or panicked, for DuckDB's error.
fn guarded<F: TableFunction>(
    stage: &str,
    body: impl FnOnce() -> Result<(), String>,
) -> Option<CString> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some(c_text(&message)),
        Err(_) => Some(c_text(&format!(
            "{}: internal error while {stage}",
            F::NAME.to_string_lossy()
        ))),
    }
}

unsafe extern "C" fn bind<F: TableFunction>(info: ffi::duckdb_bind_info) {
    let failed = guarded::<F>("binding", || {
        let arguments: Vec<i64> = (0..F::BIGINT_ARGUMENTS)
            .map(|i| {
                // SAFETY: argument i exists and is a BIGINT (as registered); the value is ours.
                unsafe {
                    let mut value = ffi::duckdb_bind_get_parameter(info, i as u64);
                    let number = ffi::duckdb_get_int64(value);
                    ffi::duckdb_destroy_value(&mut value);
                    number
                }
            })
            .collect();
        let Binding {
            columns,
            estimated_rows,
            data,
        } = F::bind(&arguments)?;
        if let Some(rows) = estimated_rows {
            // SAFETY: a plain setter on this bind call; the estimate is not exact.
            unsafe { ffi::duckdb_bind_set_cardinality(info, rows, false) };
        }
        for (name, column_type) in &columns {
            let name = c_text(name);
            // SAFETY: a fresh logical type, destroyed after DuckDB copied it.
            unsafe {
                let mut t = column_type.logical();
                ffi::duckdb_bind_add_result_column(info, name.as_ptr(), t);
                ffi::duckdb_destroy_logical_type(&mut t);
            }
        }
        let bound = Box::new(Bound {
            columns: columns.len(),
            data,
        });
        // SAFETY: DuckDB owns the bind data from here and frees it with drop_box.
        unsafe {
            ffi::duckdb_bind_set_bind_data(
                info,
                Box::into_raw(bound).cast(),
                Some(drop_box::<Bound<F::Bound>>),
            )
        };
        Ok(())
    });
    if let Some(message) = failed {
        // SAFETY: reports the error to DuckDB, which copies the message.
        unsafe { ffi::duckdb_bind_set_error(info, message.as_ptr()) };
    }
}

unsafe extern "C" fn init<F: TableFunction>(info: ffi::duckdb_init_info) {
    let failed = guarded::<F>("starting the scan", || {
        // SAFETY: the bind data set in `bind`, alive for as long as the call is.
        let bound = unsafe { &*(ffi::duckdb_init_get_bind_data(info) as *const Bound<F::Bound>) };
        // SAFETY: plain reads of the projection DuckDB asks for.
        let projection = unsafe {
            (0..ffi::duckdb_init_get_column_count(info))
                .map(|i| {
                    let index = ffi::duckdb_init_get_column_index(info, i) as usize;
                    (index < bound.columns).then_some(index)
                })
                .collect()
        };
        let scan = Box::new(F::init(&bound.data, projection)?);
        // SAFETY: one thread per scan; DuckDB owns the init data and frees it with drop_box.
        unsafe {
            ffi::duckdb_init_set_max_threads(info, 1);
            ffi::duckdb_init_set_init_data(
                info,
                Box::into_raw(scan).cast(),
                Some(drop_box::<F::Scan>),
            );
        }
        Ok(())
    });
    if let Some(message) = failed {
        // SAFETY: reports the error to DuckDB, which copies the message.
        unsafe { ffi::duckdb_init_set_error(info, message.as_ptr()) };
    }
}

unsafe extern "C" fn scan<F: TableFunction>(
    info: ffi::duckdb_function_info,
    output: ffi::duckdb_data_chunk,
) {
    let failed = guarded::<F>("scanning", || {
        // SAFETY: the init data set in `init`, alive until the scan's end.
        let scan = unsafe { &*(ffi::duckdb_function_get_init_data(info) as *const F::Scan) };
        // SAFETY: `output` is this call's chunk; Output only writes within its checks.
        let mut out = unsafe { Output::new(output) };
        F::scan(scan, &mut out)
    });
    if let Some(message) = failed {
        // SAFETY: reports the error to DuckDB, which copies the message.
        unsafe { ffi::duckdb_function_set_error(info, message.as_ptr()) };
    }
}

/// The chunk a scan fills: one vector per projected column. Every write is checked against
/// the vector's type and the chunk's capacity.
pub struct Output {
    raw: ffi::duckdb_data_chunk,
    columns: usize,
    capacity: usize,
}

impl Output {
    /// # Safety
    /// `raw` must be the output chunk DuckDB passed to the scan callback.
    unsafe fn new(raw: ffi::duckdb_data_chunk) -> Output {
        // SAFETY: a valid chunk (the caller's contract).
        let columns = unsafe { ffi::duckdb_data_chunk_get_column_count(raw) } as usize;
        // SAFETY: a constant of the library.
        let capacity = unsafe { ffi::duckdb_vector_size() } as usize;
        Output {
            raw,
            columns,
            capacity,
        }
    }

    /// Vector `column`, if it exists, is of type `expected` and has room for `rows`.
    fn vector(
        &self,
        column: usize,
        expected: ColumnType,
        rows: usize,
    ) -> Result<ffi::duckdb_vector, String> {
        if column >= self.columns || rows > self.capacity {
            return Err(format!(
                "internal error: writing {rows} rows to column {column} of a chunk of {} columns and {} rows",
                self.columns, self.capacity
            ));
        }
        // SAFETY: column < the chunk's column count; the logical type is ours to destroy.
        let (vector, matches) = unsafe {
            let vector = ffi::duckdb_data_chunk_get_vector(self.raw, column as u64);
            let mut logical = ffi::duckdb_vector_get_column_type(vector);
            let matches = expected.is(logical);
            ffi::duckdb_destroy_logical_type(&mut logical);
            (vector, matches)
        };
        if !matches {
            return Err(format!(
                "internal error: column {column} is not of type {expected:?}"
            ));
        }
        Ok(vector)
    }

    /// Writes `rows` fixed-width values of type `ty` to `column`: `data` holds them in
    /// DuckDB's layout, and a non-zero `nulls[row]` makes a row NULL.
    pub fn write_fixed(
        &mut self,
        column: usize,
        ty: ColumnType,
        data: &[u8],
        nulls: &[u8],
        rows: usize,
    ) -> Result<(), String> {
        let width = ty
            .width()
            .ok_or("internal error: strings written as fixed")?;
        if data.len() < rows * width || nulls.len() < rows {
            return Err(format!("internal error: short buffers for {rows} rows"));
        }
        let vector = self.vector(column, ty, rows)?;
        // SAFETY: a vector of `ty` (checked) with room for `rows` values of `width` bytes, and
        // `data` holds at least that many.
        unsafe {
            let out = ffi::duckdb_vector_get_data(vector) as *mut u8;
            std::ptr::copy_nonoverlapping(data.as_ptr(), out, rows * width);
            for (row, _) in nulls[..rows].iter().enumerate().filter(|(_, n)| **n != 0) {
                set_null(vector, row);
            }
        }
        Ok(())
    }

    /// Writes `rows` strings of a VARCHAR or BLOB `column`: row r is
    /// `bytes[offsets[r]..offsets[r + 1]]`, NULL where `nulls[r]` is non-zero.
    pub fn write_strings(
        &mut self,
        column: usize,
        ty: ColumnType,
        offsets: &[u32],
        bytes: &[u8],
        nulls: &[u8],
        rows: usize,
    ) -> Result<(), String> {
        if ty.width().is_some() || offsets.len() <= rows || nulls.len() < rows {
            return Err(format!("internal error: short buffers for {rows} strings"));
        }
        let vector = self.vector(column, ty, rows)?;
        for row in 0..rows {
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            let value = bytes
                .get(start..end)
                .ok_or("internal error: string offsets beyond the bytes")?;
            if ty == ColumnType::Varchar && std::str::from_utf8(value).is_err() {
                return Err(format!("row {row} of column {column} is not valid UTF-8"));
            }
            // SAFETY: a string vector (checked above) with room for the row; DuckDB copies
            // the bytes, which are UTF-8 for VARCHAR (checked just above).
            unsafe {
                if nulls[row] != 0 {
                    set_null(vector, row);
                } else {
                    ffi::duckdb_unsafe_vector_assign_string_element_len(
                        vector,
                        row as u64,
                        value.as_ptr().cast(),
                        value.len() as u64,
                    );
                }
            }
        }
        Ok(())
    }

    /// Sets how many rows the chunk holds (0 ends the scan).
    pub fn set_len(&mut self, rows: usize) -> Result<(), String> {
        if rows > self.capacity {
            return Err(format!(
                "internal error: {rows} rows for a chunk of {}",
                self.capacity
            ));
        }
        // SAFETY: a valid chunk, within its capacity.
        unsafe { ffi::duckdb_data_chunk_set_size(self.raw, rows as u64) };
        Ok(())
    }
}

/// # Safety
/// `vector` must be a writable output vector with a row `row`.
unsafe fn set_null(vector: ffi::duckdb_vector, row: usize) {
    // SAFETY: see the function's contract.
    unsafe {
        ffi::duckdb_vector_ensure_validity_writable(vector);
        ffi::duckdb_validity_set_row_invalid(ffi::duckdb_vector_get_validity(vector), row as u64);
    }
}
