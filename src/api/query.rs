//! DuckDB from SQL: llm_sql.query, query_json, create_view, execute, duckdb_settings, duckdb_reset.

use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use super::srf::Materialize;
use crate::engine::convert::{ensure_supported, write_json, Converter};
use crate::engine::ffi::DataChunk;
use crate::engine::run::{self, Column, RowSink};
use crate::engine::types::PgType;
use crate::error::{Error, OrReport, Result};

fn required<T>(value: Option<T>, name: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{name} must not be NULL"),
        )
    })
}

/// Makes column names unique the way DuckDB does for tables: a, a_1, a_2, …
fn unique_names(columns: &[Column]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    columns
        .iter()
        .map(|c| {
            let mut name = c.name.clone();
            let mut n = 0;
            while !seen.insert(name.clone()) {
                n += 1;
                name = format!("{}_{n}", c.name);
            }
            name
        })
        .collect()
}

fn describe_columns(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.duck))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows into the caller's column definition list, with Postgres casts where types differ.
struct RecordSink {
    out: Materialize,
    converters: Vec<Converter>,
}

impl RowSink for RecordSink {
    fn columns(&mut self, columns: Vec<Column>) -> Result<()> {
        if columns.len() != self.out.natts() {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!(
                    "the column definition list has {} columns, but the DuckDB query returns {}",
                    self.out.natts(),
                    columns.len()
                ),
            )
            .with_detail(format!("DuckDB returns: {}", describe_columns(&columns))));
        }
        for (i, column) in columns.into_iter().enumerate() {
            let (oid, typmod, name) = self.out.attribute(i);
            let target = PgType { oid, typmod };
            self.converters
                .push(Converter::new(column.duck, Some(target), &name, i + 1)?);
        }
        Ok(())
    }

    fn chunk(&mut self, chunk: &DataChunk) -> Result<()> {
        let converters = &mut self.converters;
        self.out.in_rows_context(|out| {
            let width = converters.len();
            let vectors: Vec<_> = (0..width).map(|c| chunk.column(c)).collect();
            let mut values = vec![Datum::from(0); width];
            let mut nulls = vec![false; width];
            for row in 0..chunk.len() {
                for (c, converter) in converters.iter_mut().enumerate() {
                    let v = &vectors[c];
                    nulls[c] = !v.is_valid(row);
                    values[c] = if nulls[c] {
                        Datum::from(0)
                    } else {
                        converter.datum(v, row)?
                    };
                }
                out.put(&mut values, &mut nulls);
            }
            Ok(())
        })
    }
}

/// Rows as jsonb objects keyed by column name.
struct JsonSink {
    out: Materialize,
    columns: Vec<(String, Column)>,
    jsonb: Option<Converter>,
    utf8_database: bool,
}

impl RowSink for JsonSink {
    fn columns(&mut self, columns: Vec<Column>) -> Result<()> {
        for (i, column) in columns.iter().enumerate() {
            ensure_supported(&column.duck, &column.name, i + 1)?;
        }
        let names = unique_names(&columns);
        self.columns = names
            .into_iter()
            .map(|n| serde_json::Value::from(n).to_string())
            .zip(columns)
            .collect();
        Ok(())
    }

    fn chunk(&mut self, chunk: &DataChunk) -> Result<()> {
        let columns = &self.columns;
        let jsonb = self.jsonb.get_or_insert_with(|| {
            Converter::new(crate::engine::types::DuckType::Json, None, "value", 1)
                .expect("jsonb converter")
        });
        let utf8 = self.utf8_database;
        self.out.in_rows_context(|out| {
            let vectors: Vec<_> = (0..columns.len()).map(|c| chunk.column(c)).collect();
            let mut text = String::new();
            for row in 0..chunk.len() {
                text.clear();
                text.push('{');
                for (c, (key, column)) in columns.iter().enumerate() {
                    if c > 0 {
                        text.push(',');
                    }
                    text.push_str(key);
                    text.push(':');
                    write_json(&column.duck, &vectors[c], row, &mut text, utf8)?;
                }
                text.push('}');
                let mut values = [jsonb.jsonb_from_text(&text)?];
                out.put(&mut values, &mut [false]);
            }
            Ok(())
        })
    }
}

fn text_arg(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> Option<String> {
    // SAFETY: reads argument `index` of the running function, declared as text in SQL.
    unsafe { pgrx::fcinfo::pg_getarg::<String>(fcinfo, index) }
}

/// `llm_sql.query(sql text) RETURNS SETOF record`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_query(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let run = || -> Result<()> {
        let sql = required(text_arg(fcinfo, 0), "sql")?;
        // SAFETY: fcinfo is this call's.
        let out = unsafe { Materialize::start(fcinfo, None)? };
        run::query(
            &sql,
            &mut RecordSink {
                out,
                converters: Vec::new(),
            },
        )
    };
    run().or_report();
    Datum::from(0)
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_llm_sql_query() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `llm_sql.query_json(sql text) RETURNS SETOF jsonb`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_query_json(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let run = || -> Result<()> {
        let sql = required(text_arg(fcinfo, 0), "sql")?;
        // SAFETY: fcinfo is this call's.
        let out = unsafe { Materialize::start(fcinfo, Some(pg_sys::JSONBOID))? };
        // SAFETY: reads the session's fixed database encoding.
        let utf8_database =
            unsafe { pg_sys::GetDatabaseEncoding() } == pg_sys::pg_enc::PG_UTF8 as i32;
        run::query(
            &sql,
            &mut JsonSink {
                out,
                columns: Vec::new(),
                jsonb: None,
                utf8_database,
            },
        )
    };
    run().or_report();
    Datum::from(0)
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_llm_sql_query_json() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

pgrx::extension_sql!(
    r#"
CREATE FUNCTION llm_sql.query(sql text) RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query';
COMMENT ON FUNCTION llm_sql.query(text) IS
    'Runs DuckDB SQL and returns its rows; call with a column definition list: AS t(a int, b text)';
CREATE FUNCTION llm_sql.query_json(sql text) RETURNS SETOF jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query_json';
COMMENT ON FUNCTION llm_sql.query_json(text) IS
    'Runs DuckDB SQL and returns each row as a jsonb object keyed by column name';
"#,
    name = "query_functions",
);

/// Creates a Postgres view over a DuckDB query, typed from DuckDB's result schema.
#[pg_extern(volatile, parallel_unsafe)]
fn create_view(
    name: Option<&str>,
    sql: Option<&str>,
    or_replace: default!(Option<bool>, false),
) -> String {
    create_view_impl(name, sql, or_replace).or_report()
}

fn create_view_impl(
    name: Option<&str>,
    sql: Option<&str>,
    or_replace: Option<bool>,
) -> Result<String> {
    let name = required(name, "name")?;
    let sql = required(sql, "sql")?;
    let or_replace = required(or_replace, "or_replace")?;
    let columns = run::describe(sql)?;
    if columns.is_empty() {
        return Err(Error::invalid_parameter(
            "the DuckDB statement returns no columns to make a view of",
        ));
    }
    let names = unique_names(&columns);
    let mut definitions = Vec::with_capacity(columns.len());
    for (i, (column, name)) in columns.into_iter().zip(&names).enumerate() {
        let converter = Converter::new(column.duck, None, name, i + 1)?;
        definitions.push(format!(
            "{} {}",
            quote_ident(name),
            converter.natural.sql_name()
        ));
    }
    let qualified = Spi::get_one_with_args::<String>(
        "SELECT string_agg(quote_ident(part), '.') FROM unnest(parse_ident($1)) AS part",
        &[name.into()],
    )
    .map_err(|e| Error::invalid_parameter(format!("invalid view name \"{name}\": {e}")))?
    .ok_or_else(|| Error::invalid_parameter(format!("invalid view name \"{name}\"")))?;
    let statement = format!(
        "CREATE {}VIEW {qualified} AS SELECT * FROM llm_sql.query({}) AS duckdb({})",
        if or_replace { "OR REPLACE " } else { "" },
        quote_literal(sql)?,
        definitions.join(", ")
    );
    Spi::run(&statement)
        .map_err(|e| Error::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()))?;
    Spi::get_one_with_args::<String>(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
        &[qualified.into()],
    )
    .map_err(|e| Error::internal(e.to_string()))?
    .ok_or_else(|| Error::internal("the view was not created"))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> Result<String> {
    let c = std::ffi::CString::new(text)
        .map_err(|_| Error::invalid_parameter("sql must not contain NUL bytes"))?;
    // SAFETY: quote_literal_cstr returns a palloc'd, correctly escaped literal.
    Ok(
        unsafe { std::ffi::CStr::from_ptr(pg_sys::quote_literal_cstr(c.as_ptr())) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Runs DuckDB statements (DDL, DML, …) and returns the number of rows they changed.
#[pg_extern(volatile, parallel_unsafe)]
fn execute(sql: Option<&str>) -> i64 {
    let run = || run::execute(required(sql, "sql")?);
    i64::try_from(run().or_report()).unwrap_or(i64::MAX)
}

/// The effective DuckDB settings of this backend (for the current role's instance).
#[pg_extern(volatile, parallel_unsafe)]
fn duckdb_settings() -> TableIterator<'static, (name!(name, String), name!(value, Option<String>))>
{
    struct Collect(Vec<(String, Option<String>)>);
    impl RowSink for Collect {
        fn columns(&mut self, _: Vec<Column>) -> Result<()> {
            Ok(())
        }
        fn chunk(&mut self, chunk: &DataChunk) -> Result<()> {
            let (names, values) = (chunk.column(0), chunk.column(1));
            for row in 0..chunk.len() {
                // SAFETY: both columns are VARCHAR; validity is checked first.
                let text = |v: &crate::engine::ffi::Vector<'_>| {
                    v.is_valid(row)
                        .then(|| String::from_utf8_lossy(unsafe { v.bytes(row) }).into_owned())
                };
                self.0
                    .push((text(&names).unwrap_or_default(), text(&values)));
            }
            Ok(())
        }
    }
    let mut rows = Collect(Vec::new());
    run::query(
        "SELECT name, value FROM duckdb_settings() ORDER BY name",
        &mut rows,
    )
    .or_report();
    TableIterator::new(rows.0)
}

/// Drops this backend's DuckDB; the next call creates a fresh one with the current settings.
#[pg_extern(volatile, parallel_unsafe)]
fn duckdb_reset() {
    crate::engine::reset();
}
