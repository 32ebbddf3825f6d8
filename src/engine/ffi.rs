//! Owned, safe wrappers around the parts of DuckDB's C API that llm_sql uses.
//!
//! Every handle frees itself on drop, every failure comes back as a [`DuckError`] carrying
//! DuckDB's message and, where the C API reports it, DuckDB's error class. Nothing here knows
//! about Postgres: this is the FFI edge, and it never panics on anything DuckDB returns.

use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::ptr;

use duckdb::ffi;

/// An error reported by DuckDB. `kind` is DuckDB's own error class when the C API exposes it
/// (query results do, prepare/extract errors only carry the "<Class> Error: ..." message).
#[derive(Debug, Clone)]
pub struct DuckError {
    pub kind: Option<ffi::duckdb_error_type>,
    pub message: String,
}

impl DuckError {
    fn from_message(message: impl Into<String>) -> Self {
        DuckError {
            kind: None,
            message: message.into(),
        }
    }
}

pub type DuckResult<T> = Result<T, DuckError>;

// src/engine/shim.cpp: DuckDB's C++ API for what the C API lacks. Both catch every C++
// exception, so nothing unwinds into Rust.
unsafe extern "C" {
    fn llm_sql_extracted_statement_type(
        statements: ffi::duckdb_extracted_statements,
        index: ffi::idx_t,
    ) -> ffi::duckdb_statement_type;
    fn llm_sql_withdraw_function(
        connection: ffi::duckdb_connection,
        name: *const c_char,
        table: bool,
    ) -> *mut c_char;
}

/// Copies a C string owned by DuckDB; NULL becomes `fallback`.
fn copy_cstr(ptr: *const c_char, fallback: &str) -> String {
    if ptr.is_null() {
        fallback.to_string()
    } else {
        // SAFETY: DuckDB returns NUL-terminated strings that stay valid for this call.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Copies and frees a C string that DuckDB allocated for the caller.
fn take_cstr(ptr: *mut c_char) -> String {
    let s = copy_cstr(ptr, "");
    if !ptr.is_null() {
        // SAFETY: the pointer was allocated by DuckDB for us and is freed exactly once.
        unsafe { ffi::duckdb_free(ptr.cast()) };
    }
    s
}

/// SQL text handed to DuckDB must not contain NUL bytes.
pub fn to_cstring(text: &str) -> DuckResult<CString> {
    CString::new(text).map_err(|_| {
        DuckError::from_message("Invalid Input Error: SQL text must not contain NUL bytes")
    })
}

/// An open DuckDB database (one per llm_sql engine).
pub struct Database {
    raw: ffi::duckdb_database,
}

impl Database {
    /// Opens an in-memory database with the given `name = value` options applied before start,
    /// so that limits and security settings hold from the first statement on.
    pub fn open_in_memory(options: &[(&str, String)]) -> DuckResult<Self> {
        // SAFETY: each C API call receives valid pointers; the config is destroyed on every path.
        unsafe {
            let mut config: ffi::duckdb_config = ptr::null_mut();
            if ffi::duckdb_create_config(&mut config) != ffi::DuckDBSuccess {
                return Err(DuckError::from_message(
                    "could not allocate a DuckDB configuration",
                ));
            }
            for (name, value) in options {
                let (c_name, c_value) = (to_cstring(name)?, to_cstring(value)?);
                if ffi::duckdb_set_config(config, c_name.as_ptr(), c_value.as_ptr())
                    != ffi::DuckDBSuccess
                {
                    ffi::duckdb_destroy_config(&mut config);
                    return Err(DuckError::from_message(format!(
                        "Invalid Input Error: DuckDB rejected setting {name} = '{value}'"
                    )));
                }
            }
            let mut raw: ffi::duckdb_database = ptr::null_mut();
            let mut error: *mut c_char = ptr::null_mut();
            let state = ffi::duckdb_open_ext(ptr::null(), &mut raw, config, &mut error);
            ffi::duckdb_destroy_config(&mut config);
            if state != ffi::DuckDBSuccess {
                let message = take_cstr(error);
                return Err(DuckError::from_message(if message.is_empty() {
                    "could not open DuckDB".to_string()
                } else {
                    message
                }));
            }
            Ok(Database { raw })
        }
    }

    pub fn connect(&self) -> DuckResult<Connection> {
        let mut raw: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: self.raw is an open database.
        if unsafe { ffi::duckdb_connect(self.raw, &mut raw) } != ffi::DuckDBSuccess {
            return Err(DuckError::from_message(
                "could not connect to the DuckDB database",
            ));
        }
        Ok(Connection { raw })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: closes the database exactly once; all connections were dropped before.
        unsafe { ffi::duckdb_close(&mut self.raw) };
    }
}

/// A connection to a [`Database`]. Must be dropped before its database.
pub struct Connection {
    raw: ffi::duckdb_connection,
}

/// The raw handle, only for `duckdb_interrupt`, which DuckDB allows from any thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InterruptTarget(pub ffi::duckdb_connection);
// SAFETY: duckdb_interrupt is documented as safe to call from another thread; the watcher
// guarantees the connection outlives every use (see engine::interrupt).
unsafe impl Send for InterruptTarget {}

impl InterruptTarget {
    pub fn interrupt(self) {
        // SAFETY: see the Send impl above.
        unsafe { ffi::duckdb_interrupt(self.0) };
    }
}

impl Connection {
    /// The raw handle, for registering functions.
    pub fn raw(&self) -> ffi::duckdb_connection {
        self.raw
    }

    pub fn interrupt_target(&self) -> InterruptTarget {
        InterruptTarget(self.raw)
    }

    /// Splits `sql` into statements with DuckDB's own parser.
    pub fn extract(&self, sql: &str) -> DuckResult<Statements<'_>> {
        let text = to_cstring(sql)?;
        let mut raw: ffi::duckdb_extracted_statements = ptr::null_mut();
        // SAFETY: valid connection and NUL-terminated text; `raw` is destroyed by Statements.
        let count = unsafe { ffi::duckdb_extract_statements(self.raw, text.as_ptr(), &mut raw) };
        let statements = Statements {
            conn: self,
            raw,
            count: count as usize,
        };
        if count == 0 {
            // SAFETY: raw came from duckdb_extract_statements.
            let error = copy_cstr(unsafe { ffi::duckdb_extract_statements_error(raw) }, "");
            if !error.is_empty() {
                return Err(DuckError::from_message(error));
            }
        }
        Ok(statements)
    }
}

impl Connection {
    /// Runs llm_sql's own statements (not user SQL) to completion.
    pub fn run(&self, sql: &str) -> DuckResult<()> {
        let statements = self.extract(sql)?;
        for i in 0..statements.len() {
            statements.prepare(i)?.execute_streaming()?;
        }
        Ok(())
    }

    /// Runs a query of llm_sql's own whose first column is VARCHAR, and returns that column.
    pub fn query_strings(&self, sql: &str) -> DuckResult<Vec<Option<String>>> {
        let statements = self.extract(sql)?;
        let mut values = Vec::new();
        for i in 0..statements.len() {
            let mut result = statements.prepare(i)?.execute_streaming()?;
            while let Some(chunk) = result.next_chunk()? {
                let column = chunk.column(0);
                for row in 0..chunk.len() {
                    values.push(column.is_valid(row).then(|| {
                        // SAFETY: llm_sql's own queries return VARCHAR in their first column.
                        String::from_utf8_lossy(unsafe { column.bytes(row) }).into_owned()
                    }));
                }
            }
        }
        Ok(values)
    }
}

impl Connection {
    /// Replaces function `name` (a table function if `table`, else a scalar function) in the
    /// system catalog of this connection's database by one whose binding always fails with a
    /// permission error, so that no statement of this database can call it any more.
    pub fn withdraw_function(&self, name: &str, table: bool) -> DuckResult<()> {
        let c_name = to_cstring(name)?;
        // SAFETY: valid connection and NUL-terminated name; an error message is ours to free.
        let error = unsafe { llm_sql_withdraw_function(self.raw, c_name.as_ptr(), table) };
        if error.is_null() {
            Ok(())
        } else {
            Err(DuckError::from_message(take_cstr(error)))
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: disconnects exactly once.
        unsafe { ffi::duckdb_disconnect(&mut self.raw) };
    }
}

/// The statements of one SQL text, as DuckDB's parser split them.
pub struct Statements<'c> {
    conn: &'c Connection,
    raw: ffi::duckdb_extracted_statements,
    count: usize,
}

impl Statements<'_> {
    pub fn len(&self) -> usize {
        self.count
    }

    /// Parses, binds and plans statement `index` without running it.
    pub fn prepare(&self, index: usize) -> DuckResult<Prepared> {
        let mut raw: ffi::duckdb_prepared_statement = ptr::null_mut();
        // SAFETY: index < count; the prepared statement is destroyed by Prepared even on error.
        let state = unsafe {
            ffi::duckdb_prepare_extracted_statement(self.conn.raw, self.raw, index as u64, &mut raw)
        };
        let prepared = Prepared { raw };
        if state != ffi::DuckDBSuccess {
            // SAFETY: raw is a (failed) prepared statement, which still carries its error.
            let error = copy_cstr(unsafe { ffi::duckdb_prepare_error(raw) }, "prepare failed");
            return Err(DuckError::from_message(error));
        }
        Ok(prepared)
    }
}

impl Statements<'_> {
    /// The type DuckDB's parser gave statement `index`, known before anything binds it
    /// (INVALID when `index` is out of range).
    pub fn statement_type(&self, index: usize) -> ffi::duckdb_statement_type {
        // SAFETY: `raw` came from duckdb_extract_statements and lives as long as `self`; the
        // shim checks the index.
        unsafe { llm_sql_extracted_statement_type(self.raw, index as ffi::idx_t) }
    }
}

impl Drop for Statements<'_> {
    fn drop(&mut self) {
        // SAFETY: destroys exactly once (also required when extraction failed).
        unsafe { ffi::duckdb_destroy_extracted(&mut self.raw) };
    }
}

/// A value bound to a statement's `$n`, in DuckDB's terms (the caller converts from Postgres).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// An exact decimal: the digits as an integer, its width and scale (width <= 38).
    Decimal(i128, u8, u8),
    Text(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00 (UTC for `TimestampTz`).
    Timestamp(i64),
    TimestampTz(i64),
}

/// An owned duckdb_value.
struct Value(ffi::duckdb_value);

impl Drop for Value {
    fn drop(&mut self) {
        // SAFETY: created by one of DuckDB's duckdb_create_* functions, destroyed once.
        unsafe { ffi::duckdb_destroy_value(&mut self.0) };
    }
}

impl Param {
    fn value(&self) -> Value {
        // SAFETY: each constructor copies its input into a new DuckDB value.
        Value(unsafe {
            match self {
                Param::Null => ffi::duckdb_create_null_value(),
                Param::Bool(b) => ffi::duckdb_create_bool(*b),
                Param::Int(i) => ffi::duckdb_create_int64(*i),
                Param::Float(f) => ffi::duckdb_create_double(*f),
                Param::Decimal(digits, width, scale) => {
                    ffi::duckdb_create_decimal(ffi::duckdb_decimal {
                        width: *width,
                        scale: *scale,
                        value: ffi::duckdb_hugeint {
                            lower: *digits as u64,
                            upper: (*digits >> 64) as i64,
                        },
                    })
                }
                Param::Text(t) => {
                    ffi::duckdb_create_varchar_length(t.as_ptr().cast(), t.len() as u64)
                }
                Param::Date(days) => ffi::duckdb_create_date(ffi::duckdb_date { days: *days }),
                Param::Timestamp(micros) => {
                    ffi::duckdb_create_timestamp(ffi::duckdb_timestamp { micros: *micros })
                }
                Param::TimestampTz(micros) => {
                    ffi::duckdb_create_timestamp_tz(ffi::duckdb_timestamp { micros: *micros })
                }
            }
        })
    }
}

/// A prepared statement: its result columns are known before it runs.
pub struct Prepared {
    raw: ffi::duckdb_prepared_statement,
}

impl Prepared {
    /// The names of the statement's parameters (`"1"` for `$1`, `"name"` for `$name`).
    pub fn parameter_names(&self) -> Vec<String> {
        // SAFETY: valid prepared statement; names are freed by take_cstr.
        let count = unsafe { ffi::duckdb_nparams(self.raw) };
        (1..=count)
            .map(|i| take_cstr(unsafe { ffi::duckdb_parameter_name(self.raw, i) }.cast_mut()))
            .collect()
    }

    /// Binds each `(n, value)` to parameter `$n`.
    pub fn bind(&self, values: &[(usize, &Param)]) -> DuckResult<()> {
        for (number, param) in values {
            let value = param.value();
            // SAFETY: a valid statement and value; DuckDB copies the value.
            let state = unsafe { ffi::duckdb_bind_value(self.raw, *number as u64, value.0) };
            if state != ffi::DuckDBSuccess {
                // SAFETY: the statement carries the error of the failed bind.
                let error = copy_cstr(unsafe { ffi::duckdb_prepare_error(self.raw) }, "");
                return Err(DuckError::from_message(format!(
                    "could not bind parameter ${number}: {error}"
                )));
            }
        }
        Ok(())
    }

    pub fn column_count(&self) -> usize {
        // SAFETY: valid prepared statement.
        unsafe { ffi::duckdb_prepared_statement_column_count(self.raw) as usize }
    }

    pub fn column_name(&self, col: usize) -> String {
        // SAFETY: the returned string is owned by us and must be freed.
        take_cstr(
            unsafe { ffi::duckdb_prepared_statement_column_name(self.raw, col as u64) }.cast_mut(),
        )
    }

    pub fn column_type(&self, col: usize) -> LogicalType {
        // SAFETY: returns an owned logical type.
        LogicalType::owned(unsafe {
            ffi::duckdb_prepared_statement_column_logical_type(self.raw, col as u64)
        })
    }

    /// Runs the statement; rows are produced as they are fetched, not materialized up front.
    pub fn execute_streaming(&self) -> DuckResult<QueryResult> {
        // SAFETY: a zeroed duckdb_result is the documented initial state; it is destroyed by
        // QueryResult on every path.
        unsafe {
            let mut raw: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_execute_prepared_streaming(self.raw, &mut raw);
            let result = QueryResult { raw };
            if state != ffi::DuckDBSuccess {
                return Err(result.error().unwrap_or_else(|| {
                    DuckError::from_message("the statement failed without an error message")
                }));
            }
            Ok(result)
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: destroys exactly once.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.raw) };
    }
}

/// The result of a statement, read one chunk at a time.
pub struct QueryResult {
    raw: ffi::duckdb_result,
}

impl QueryResult {
    /// DuckDB's error for this result, if it has one.
    fn error(&self) -> Option<DuckError> {
        let mut raw = self.raw;
        // SAFETY: the result is valid; the message is owned by the result and copied here.
        unsafe {
            let message = ffi::duckdb_result_error(&mut raw);
            (!message.is_null()).then(|| DuckError {
                kind: Some(ffi::duckdb_result_error_type(&mut raw)),
                message: copy_cstr(message, ""),
            })
        }
    }

    pub fn column_count(&self) -> usize {
        let mut raw = self.raw;
        // SAFETY: valid result.
        unsafe { ffi::duckdb_column_count(&mut raw) as usize }
    }

    pub fn column_name(&self, col: usize) -> String {
        let mut raw = self.raw;
        // SAFETY: the name is owned by the result.
        copy_cstr(
            unsafe { ffi::duckdb_column_name(&mut raw, col as u64) },
            "?column?",
        )
    }

    pub fn column_type(&self, col: usize) -> LogicalType {
        let mut raw = self.raw;
        // SAFETY: returns an owned logical type.
        LogicalType::owned(unsafe { ffi::duckdb_column_logical_type(&mut raw, col as u64) })
    }

    /// True when the result is the count of rows a statement changed (INSERT, UPDATE, ...).
    pub fn counts_changed_rows(&self) -> bool {
        // SAFETY: valid result.
        let kind = unsafe { ffi::duckdb_result_return_type(self.raw) };
        kind == ffi::duckdb_result_type_DUCKDB_RESULT_TYPE_CHANGED_ROWS
    }

    /// The next chunk of rows, `None` at the end. A failure while producing rows (a cast error,
    /// an interrupt, running out of memory) is reported here.
    pub fn next_chunk(&mut self) -> DuckResult<Option<DataChunk>> {
        // SAFETY: valid result; a non-null chunk is owned by us.
        let chunk = unsafe { ffi::duckdb_fetch_chunk(self.raw) };
        if !chunk.is_null() {
            return Ok(Some(DataChunk { raw: chunk }));
        }
        match self.error() {
            Some(error) => Err(error),
            None => Ok(None),
        }
    }
}

impl Drop for QueryResult {
    fn drop(&mut self) {
        // SAFETY: destroys exactly once.
        unsafe { ffi::duckdb_destroy_result(&mut self.raw) };
    }
}

/// Up to 2048 rows of a result; every vector in it is flat (the C API flattens fetched chunks).
pub struct DataChunk {
    raw: ffi::duckdb_data_chunk,
}

impl DataChunk {
    pub fn len(&self) -> usize {
        // SAFETY: valid chunk.
        unsafe { ffi::duckdb_data_chunk_get_size(self.raw) as usize }
    }

    pub fn column(&self, col: usize) -> Vector<'_> {
        // SAFETY: valid chunk and column index (checked by callers against the result width).
        Vector::new(unsafe { ffi::duckdb_data_chunk_get_vector(self.raw, col as u64) })
    }
}

impl Drop for DataChunk {
    fn drop(&mut self) {
        // SAFETY: destroys exactly once.
        unsafe { ffi::duckdb_destroy_data_chunk(&mut self.raw) };
    }
}

/// A borrowed, flat column vector (or a child of a nested one).
#[derive(Clone, Copy)]
pub struct Vector<'a> {
    raw: ffi::duckdb_vector,
    data: *const u8,
    validity: *const u64,
    _chunk: PhantomData<&'a DataChunk>,
}

impl<'a> Vector<'a> {
    fn new(raw: ffi::duckdb_vector) -> Self {
        // SAFETY: raw is a valid vector; data/validity stay valid while the chunk lives.
        unsafe {
            Vector {
                raw,
                data: ffi::duckdb_vector_get_data(raw) as *const u8,
                validity: ffi::duckdb_vector_get_validity(raw),
                _chunk: PhantomData,
            }
        }
    }

    pub fn is_valid(&self, row: usize) -> bool {
        // A NULL validity mask means "no NULLs in this vector".
        self.validity.is_null() || {
            // SAFETY: row < vector length, so the bit is inside the mask.
            let word = unsafe { *self.validity.add(row / 64) };
            word & (1u64 << (row % 64)) != 0
        }
    }

    /// The fixed-width value at `row`.
    ///
    /// # Safety
    /// `T` must be the physical type DuckDB uses for this vector, and `row` in range.
    pub unsafe fn value<T: Copy>(&self, row: usize) -> T {
        unsafe { std::ptr::read_unaligned((self.data as *const T).add(row)) }
    }

    /// The bytes of the VARCHAR/BLOB/BIT value at `row`.
    ///
    /// # Safety
    /// The vector must hold `duckdb_string_t` values and `row` must be in range.
    pub unsafe fn bytes(&self, row: usize) -> &'a [u8] {
        unsafe {
            let s = (self.data as *mut ffi::duckdb_string_t).add(row);
            let len = ffi::duckdb_string_t_length(*s) as usize;
            let ptr = ffi::duckdb_string_t_data(s) as *const u8;
            std::slice::from_raw_parts(ptr, len)
        }
    }

    /// Offset and length of the LIST/MAP entry at `row` in the child vector.
    ///
    /// # Safety
    /// The vector must be a LIST or MAP vector and `row` in range.
    pub unsafe fn list_entry(&self, row: usize) -> (usize, usize) {
        let entry: ffi::duckdb_list_entry = unsafe { self.value(row) };
        (entry.offset as usize, entry.length as usize)
    }

    pub fn list_child(&self) -> Vector<'a> {
        // SAFETY: only called on LIST/MAP vectors.
        Vector::new(unsafe { ffi::duckdb_list_vector_get_child(self.raw) })
    }

    pub fn array_child(&self) -> Vector<'a> {
        // SAFETY: only called on ARRAY vectors.
        Vector::new(unsafe { ffi::duckdb_array_vector_get_child(self.raw) })
    }

    pub fn struct_child(&self, index: usize) -> Vector<'a> {
        // SAFETY: only called on STRUCT/UNION vectors with index < child count.
        Vector::new(unsafe { ffi::duckdb_struct_vector_get_child(self.raw, index as u64) })
    }
}

/// A DuckDB logical type (owned).
pub struct LogicalType {
    raw: ffi::duckdb_logical_type,
}

impl LogicalType {
    fn owned(raw: ffi::duckdb_logical_type) -> Self {
        LogicalType { raw }
    }

    pub fn id(&self) -> ffi::DUCKDB_TYPE {
        // SAFETY: valid logical type.
        unsafe { ffi::duckdb_get_type_id(self.raw) }
    }

    /// The alias of the type, e.g. "JSON" for DuckDB's JSON type (a VARCHAR underneath).
    pub fn alias(&self) -> Option<String> {
        // SAFETY: returns an owned string or NULL.
        let ptr = unsafe { ffi::duckdb_logical_type_get_alias(self.raw) };
        (!ptr.is_null()).then(|| take_cstr(ptr))
    }

    pub fn decimal_width_scale(&self) -> (u8, u8) {
        // SAFETY: only meaningful for DECIMAL; returns 0 otherwise.
        unsafe {
            (
                ffi::duckdb_decimal_width(self.raw),
                ffi::duckdb_decimal_scale(self.raw),
            )
        }
    }

    pub fn decimal_internal_type(&self) -> ffi::DUCKDB_TYPE {
        // SAFETY: valid logical type.
        unsafe { ffi::duckdb_decimal_internal_type(self.raw) }
    }

    pub fn enum_internal_type(&self) -> ffi::DUCKDB_TYPE {
        // SAFETY: valid logical type.
        unsafe { ffi::duckdb_enum_internal_type(self.raw) }
    }

    pub fn enum_dictionary(&self) -> Vec<String> {
        // SAFETY: valid ENUM type; each value is an owned string.
        let size = unsafe { ffi::duckdb_enum_dictionary_size(self.raw) };
        (0..size)
            .map(|i| take_cstr(unsafe { ffi::duckdb_enum_dictionary_value(self.raw, i as u64) }))
            .collect()
    }

    pub fn list_child(&self) -> LogicalType {
        // SAFETY: valid LIST type; returns an owned type.
        LogicalType::owned(unsafe { ffi::duckdb_list_type_child_type(self.raw) })
    }

    pub fn array_child(&self) -> (LogicalType, usize) {
        // SAFETY: valid ARRAY type.
        unsafe {
            (
                LogicalType::owned(ffi::duckdb_array_type_child_type(self.raw)),
                ffi::duckdb_array_type_array_size(self.raw) as usize,
            )
        }
    }

    pub fn map_key_value(&self) -> (LogicalType, LogicalType) {
        // SAFETY: valid MAP type.
        unsafe {
            (
                LogicalType::owned(ffi::duckdb_map_type_key_type(self.raw)),
                LogicalType::owned(ffi::duckdb_map_type_value_type(self.raw)),
            )
        }
    }

    /// Name and type of every STRUCT field.
    pub fn struct_fields(&self) -> Vec<(String, LogicalType)> {
        // SAFETY: valid STRUCT type; names and types are owned.
        let count = unsafe { ffi::duckdb_struct_type_child_count(self.raw) };
        (0..count)
            .map(|i| unsafe {
                (
                    take_cstr(ffi::duckdb_struct_type_child_name(self.raw, i)),
                    LogicalType::owned(ffi::duckdb_struct_type_child_type(self.raw, i)),
                )
            })
            .collect()
    }

    /// Name and type of every UNION member.
    pub fn union_members(&self) -> Vec<(String, LogicalType)> {
        // SAFETY: valid UNION type; names and types are owned.
        let count = unsafe { ffi::duckdb_union_type_member_count(self.raw) };
        (0..count)
            .map(|i| unsafe {
                (
                    take_cstr(ffi::duckdb_union_type_member_name(self.raw, i)),
                    LogicalType::owned(ffi::duckdb_union_type_member_type(self.raw, i)),
                )
            })
            .collect()
    }
}

impl Drop for LogicalType {
    fn drop(&mut self) {
        // SAFETY: destroys exactly once.
        unsafe { ffi::duckdb_destroy_logical_type(&mut self.raw) };
    }
}
