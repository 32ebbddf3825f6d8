//! The local PostgreSQL database inside DuckDB, as catalog `pg`.
//!
//! `SELECT … FROM pg.public.orders o JOIN crm.main.customers c USING (customer_id)` in
//! `llm_sql.query` reads `public.orders` through SPI, on the backend thread, as the calling role:
//! Postgres checks its privileges (column privileges included) and applies row-level security,
//! and the scan sees the transaction's own earlier writes (it uses the statement's snapshot).
//!
//! Before a statement runs, the `pg.<schema>.<table>` names it mentions (found in DuckDB's own
//! syntax tree) are resolved in Postgres, and a DuckDB view of that name is (re)created over
//! the `llm_sql_pg_scan(<token>)` table function with the relation's current columns. The
//! function runs on DuckDB's threads, which never call Postgres: they ask the backend thread
//! for batches of rows ([`scan`]), and the backend thread serves those requests while it waits
//! for DuckDB. Only projected columns are fetched; filters are applied by DuckDB.

pub mod pg_scan;

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::engine::ffi::Connection;
use crate::engine::table_function::ColumnType;
use crate::error::{Error, Result};
use crate::quote;
use pg_scan::{ColumnSpec, ScanSpec};

/// The catalog name of the local database inside DuckDB.
pub const CATALOG: &str = "pg";

/// Sets up a new DuckDB instance: the `pg` catalog and the scan function.
pub fn install(conn: &Connection) -> Result<()> {
    conn.run(&format!("ATTACH ':memory:' AS {CATALOG}"))?;
    pg_scan::register(conn)
}

/// Whether `sql` may name catalog `pg` at all (cheap test before parsing).
pub fn mentions_catalog(sql: &str) -> bool {
    sql.to_ascii_lowercase().contains(CATALOG)
}

/// `(schema, table)` of every table a SELECT's syntax tree reads from catalog `pg`; `schema`
/// is `None` for the two-part form `pg.table` (resolved with Postgres's search_path).
fn referenced(tree: &serde_json::Value) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    collect_tables(tree, &mut found);
    found.sort();
    found.dedup();
    found
}

fn collect_tables(node: &serde_json::Value, out: &mut Vec<(Option<String>, String)>) {
    match node {
        serde_json::Value::Object(map) => {
            if map.get("type").and_then(|t| t.as_str()) == Some("BASE_TABLE") {
                let text = |key: &str| map.get(key).and_then(|v| v.as_str()).unwrap_or("");
                let (catalog, schema, table) = (
                    text("catalog_name"),
                    text("schema_name"),
                    text("table_name"),
                );
                if catalog == CATALOG {
                    out.push((Some(schema.to_string()), table.to_string()));
                } else if catalog.is_empty() && schema == CATALOG {
                    out.push((None, table.to_string()));
                }
            }
            map.values().for_each(|v| collect_tables(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_tables(v, out)),
        _ => {}
    }
}

/// The scans a statement set up; released when the statement ends.
#[derive(Default)]
pub struct LocalScans {
    tokens: Vec<u64>,
}

impl LocalScans {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Drop for LocalScans {
    fn drop(&mut self) {
        pg_scan::release(&self.tokens);
    }
}

/// Resolves the `pg` tables of a statement's syntax tree (`None`: not a SELECT, or one that
/// does not mention `pg`) and (re)creates their DuckDB views.
pub fn prepare(conn: &Connection, tree: Option<&serde_json::Value>) -> Result<LocalScans> {
    let mut scans = LocalScans::default();
    for (schema, table) in tree.map(referenced).unwrap_or_default() {
        let spec = resolve(schema.as_deref(), &table)?;
        let view_schema = schema.unwrap_or_else(|| "main".to_string());
        let select_list: Vec<String> = spec
            .columns
            .iter()
            .map(|c| {
                let column = quote::ident(&c.name);
                format!("{} AS {column}", c.view_expr.replace("$c", &column))
            })
            .collect();
        let token = pg_scan::add(spec);
        scans.tokens.push(token);
        conn.run(&format!(
                "CREATE SCHEMA IF NOT EXISTS {CATALOG}.{schema}; \
                 CREATE OR REPLACE VIEW {CATALOG}.{schema}.{table} AS SELECT {list} FROM llm_sql_pg_scan({token})",
                schema = quote::ident(&view_schema),
                table = quote::ident(&table),
                list = if select_list.is_empty() {
                    "*".to_string()
                } else {
                    select_list.join(", ")
                },
            ),
        )?;
    }
    Ok(scans)
}

/// Looks the relation up as the current role would (search_path for `pg.table`).
fn resolve(schema: Option<&str>, table: &str) -> Result<ScanSpec> {
    let name = match schema {
        Some(schema) => format!("{}.{}", quote::ident(schema), quote::ident(table)),
        None => quote::ident(table),
    };
    let shown = match schema {
        Some(schema) => format!("{CATALOG}.{schema}.{table}"),
        None => format!("{CATALOG}.{table}"),
    };
    let relid =
        Spi::get_one_with_args::<Oid>("SELECT to_regclass($1)::oid", &[name.as_str().into()])
            .map_err(|e| Error::internal(e.to_string()))?
            .ok_or_else(|| {
                Error::new(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                    format!("relation \"{shown}\" does not exist"),
                )
                .with_hint("In DuckDB, the local database is catalog pg: pg.<schema>.<table>.")
            })?;
    let columns = Spi::connect(|client| {
        let rows = client.select(
            "SELECT attname::text, atttypid, atttypmod FROM pg_catalog.pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            None,
            &[relid.into()],
        )?;
        let mut columns = Vec::new();
        for row in rows {
            let name: String = row.get(1)?.unwrap_or_default();
            let type_oid: Oid = row.get(2)?.unwrap_or(Oid::INVALID);
            let typmod: i32 = row.get(3)?.unwrap_or(-1);
            columns.push(column_spec(name, type_oid, typmod));
        }
        Ok::<_, pgrx::spi::Error>(columns)
    })
    .map_err(|e| Error::internal(e.to_string()))?;
    Ok(ScanSpec::new(name, columns))
}

/// How a column travels: the Postgres expression fetched, the type DuckDB receives, and the
/// DuckDB expression (over `$c`) the view exposes. Types without an exact binary match travel
/// as text in a form that does not depend on DateStyle and friends.
fn column_spec(name: String, type_oid: Oid, typmod: i32) -> ColumnSpec {
    let q = quote::ident(&name);
    let (fetch, transport, view): (String, ColumnType, &str) = match type_oid {
        pg_sys::BOOLOID => (q, ColumnType::Bool, "$c"),
        pg_sys::INT2OID => (q, ColumnType::SmallInt, "$c"),
        pg_sys::INT4OID => (q, ColumnType::Integer, "$c"),
        pg_sys::INT8OID => (q, ColumnType::BigInt, "$c"),
        pg_sys::OIDOID => (format!("{q}::int8"), ColumnType::BigInt, "$c"),
        pg_sys::FLOAT4OID => (q, ColumnType::Float, "$c"),
        pg_sys::FLOAT8OID => (q, ColumnType::Double, "$c"),
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID | pg_sys::NAMEOID => {
            (format!("{q}::text"), ColumnType::Varchar, "$c")
        }
        pg_sys::NUMERICOID => return numeric_spec(name, typmod),
        pg_sys::DATEOID => (
            format!("({q} - DATE '1970-01-01')"),
            ColumnType::Integer,
            "(DATE '1970-01-01' + $c)",
        ),
        pg_sys::TIMESTAMPOID => (
            format!("(extract(epoch FROM {q}) * 1000000)::int8"),
            ColumnType::BigInt,
            "make_timestamp($c)",
        ),
        pg_sys::TIMESTAMPTZOID => (
            format!("(extract(epoch FROM {q}) * 1000000)::int8"),
            ColumnType::BigInt,
            "(make_timestamp($c) AT TIME ZONE 'UTC')",
        ),
        pg_sys::UUIDOID => (
            format!("{q}::text"),
            ColumnType::Varchar,
            "CAST($c AS UUID)",
        ),
        pg_sys::JSONOID | pg_sys::JSONBOID => (
            format!("{q}::text"),
            ColumnType::Varchar,
            "CAST($c AS JSON)",
        ),
        pg_sys::BYTEAOID => (
            format!("encode({q}, 'base64')"),
            ColumnType::Varchar,
            "from_base64($c)",
        ),
        _ => (format!("{q}::text"), ColumnType::Varchar, "$c"),
    };
    ColumnSpec {
        name,
        fetch,
        transport,
        view_expr: view.to_string(),
        exact_scale: None,
    }
}

/// Scale DuckDB uses for unconstrained numeric columns: 29 digits before the point, 9 after.
const UNCONSTRAINED_SCALE: u8 = 9;

/// numeric(p,s) that DuckDB's DECIMAL(38) holds is DECIMAL(p,s) (scale > precision and
/// negative scales, allowed since PostgreSQL 15, widened to a valid DECIMAL). Wider and
/// unconstrained numeric is DECIMAL(38,s) (s = 9 when unconstrained), each value checked to fit
/// exactly; or DOUBLE, inexact, when the caller set llm_sql.numeric_as_double.
fn numeric_spec(name: String, typmod: i32) -> ColumnSpec {
    let fetch = format!("{}::text", quote::ident(&name));
    // (numeric's typmod: precision in the high 16 bits, an 11-bit signed scale in the low ones.)
    let declared = (typmod >= 4).then(|| {
        let packed = typmod - 4;
        ((packed >> 16) & 0xffff, ((packed & 0x7ff) ^ 1024) - 1024)
    });
    let (view_expr, exact_scale) = match declared {
        Some((precision, scale)) if scale >= 0 && precision.max(scale) <= 38 => (
            format!("CAST($c AS DECIMAL({}, {scale}))", precision.max(scale)),
            None,
        ),
        Some((precision, scale)) if scale < 0 && precision - scale <= 38 => (
            format!("CAST($c AS DECIMAL({}, 0))", precision - scale),
            None,
        ),
        _ if crate::settings::NUMERIC_AS_DOUBLE.get() => ("CAST($c AS DOUBLE)".to_string(), None),
        _ => {
            let scale = declared.map_or(UNCONSTRAINED_SCALE, |(_, s)| s.clamp(0, 38) as u8);
            (format!("CAST($c AS DECIMAL(38, {scale}))"), Some(scale))
        }
    };
    ColumnSpec {
        name,
        fetch,
        transport: ColumnType::Varchar,
        view_expr,
        exact_scale,
    }
}
