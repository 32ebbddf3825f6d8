//! The local PostgreSQL database inside DuckDB, as catalog `pg`.
//!
//! `SELECT … FROM pg.public.orders o JOIN crm.main.customers c USING (customer_id)` in
//! `llm_sql.query` reads `public.orders` on the backend thread, as the calling role, with the
//! statement's snapshot (so it sees the transaction's own earlier writes): a heap scan after
//! the executor's privilege check, or a cursor through Postgres's executor when row-level
//! security applies or the relation is not a plain table ([`producer`]).
//!
//! Before a statement runs, the `pg.<schema>.<table>` names it mentions (found in DuckDB's own
//! syntax tree) are resolved in Postgres, and a DuckDB view of that name is (re)created over
//! the `llm_sql_pg_scan(<token>)` table function with the relation's current columns. The
//! function runs on DuckDB's threads, which never call Postgres: they ask the backend thread
//! for batches of rows ([`pg_scan`]), and the backend thread serves those requests while it
//! waits for DuckDB. Only projected columns are read; filters are applied by DuckDB.

pub mod copy;
pub mod pg_scan;
mod producer;
mod stored;

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::engine::ffi::Connection;
use crate::engine::table_function::ColumnType;
use crate::error::{Error, Result};
use crate::quote;
use pg_scan::{ColumnSpec, ScanSpec};
use producer::Kind;

/// The catalog name of the local database inside DuckDB.
pub const CATALOG: &str = "pg";

/// Sets up a new DuckDB instance: the `pg` catalog, the catalog of copies (compressed, as a
/// DuckDB file would be), the database's stored copies (while the instance may still open
/// files; `may_open_files`: whether it may later too) and the scan function.
pub fn install(conn: &Connection, copies: &copy::Copies, may_open_files: bool) -> Result<()> {
    conn.run(&format!("ATTACH ':memory:' AS {CATALOG}"))?;
    conn.run(&format!(
        "ATTACH ':memory:' AS {} (COMPRESS)",
        copy::CATALOG
    ))?;
    copies.attach_stored(conn, may_open_files);
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
/// does not mention `pg`) and (re)creates their DuckDB views: over the table's copy and a live
/// scan of the pages the copy may not stand for, or over a live scan of it all. Copies are
/// built, rebuilt and dropped only when `may_build` (not while another statement of the
/// instance is running).
pub fn prepare(
    conn: &Connection,
    copies: &copy::Copies,
    may_build: bool,
    tree: Option<&serde_json::Value>,
) -> Result<LocalScans> {
    if crate::engine::security::catalogs(tree)
        .iter()
        .any(|name| name.to_ascii_lowercase().starts_with(copy::CATALOG))
    {
        return Err(Error::permission_denied(format!(
            "{} is llm_sql's own: read local tables as pg.<schema>.<table>",
            copy::CATALOG
        )));
    }
    if may_build {
        copies.sweep(conn)?;
    }
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
        let from = match copies.read(conn, &spec, may_build)? {
            Some(read) if read.live.is_empty() => format!("({})", read.select(&spec)),
            Some(read) => {
                let copied = read.select(&spec);
                let live = spec.part(pg_scan::ScanMode::Blocks(read.live), read.live_share);
                let token = pg_scan::add(live);
                scans.tokens.push(token);
                format!("({copied} UNION ALL SELECT * FROM llm_sql_pg_scan({token}))")
            }
            None => {
                let token = pg_scan::add(spec);
                scans.tokens.push(token);
                format!("llm_sql_pg_scan({token})")
            }
        };
        conn.run(&format!(
            "CREATE SCHEMA IF NOT EXISTS {CATALOG}.{schema}; \
             CREATE OR REPLACE VIEW {CATALOG}.{schema}.{table} AS SELECT {list} FROM {from}",
            schema = quote::ident(&view_schema),
            table = quote::ident(&table),
            list = if select_list.is_empty() {
                "*".to_string()
            } else {
                select_list.join(", ")
            },
        ))?;
    }
    Ok(scans)
}

/// Builds the copy of relation `relid` now (`llm_sql.warm`): stored in the data directory for
/// every session when the current role may maintain the table (as VACUUM and ANALYZE need:
/// the file takes server disk), written by a DuckDB instance opened with `options`; else in
/// this instance only.
pub fn warm(
    conn: &Connection,
    copies: &copy::Copies,
    relid: Oid,
    options: &[(&str, String)],
) -> Result<copy::Warmed> {
    let names = Spi::get_two_with_args::<String, String>(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
        &[relid.into()],
    )
    .map_err(|e| Error::internal(e.to_string()))?;
    let (Some(schema), Some(table)) = names else {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("relation with OID {} does not exist", u32::from(relid)),
        ));
    };
    let spec = resolve(Some(&schema), &table)?;
    copies.warm(conn, &spec, may_maintain(relid).then_some(options))
}

/// Stores again the stored copies that a new build would improve by more than
/// [`copy::REFRESH_SHARE`] of their table (the background worker's duty), but not those
/// `skip` names, each in a subtransaction of its own: the tables refreshed with their rows,
/// and the errors of those that could not be.
pub fn refresh_stored(
    conn: &Connection,
    copies: &copy::Copies,
    options: &[(&str, String)],
    skip: impl Fn(Oid) -> bool,
) -> Result<Vec<(Oid, Result<u64>)>> {
    let behind = copies.stored_behind(conn, copy::REFRESH_SHARE)?;
    let mut refreshed = Vec::new();
    for relid in behind.into_iter().filter(|relid| !skip(*relid)) {
        let stored = crate::subxact::run(crate::subxact::OnSuccess::Keep, || {
            match warm(conn, copies, relid, options)? {
                copy::Warmed::Stored { rows, .. } => Ok(rows),
                copy::Warmed::InSession { .. } => Err(Error::permission_denied(
                    "storing a copy needs the MAINTAIN privilege on the table",
                )),
            }
        });
        refreshed.push((relid, stored));
    }
    Ok(refreshed)
}

fn may_maintain(relid: Oid) -> bool {
    let user = crate::run_as::current_user();
    // SAFETY: a catalog lookup on the backend thread, for a relation that exists.
    unsafe {
        pg_sys::pg_class_aclcheck(relid, user, pg_sys::ACL_MAINTAIN as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
    }
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
    // (reltuples is -1 until the first VACUUM or ANALYZE; views have none.)
    let estimated_rows = Spi::get_one_with_args::<f32>(
        "SELECT reltuples FROM pg_catalog.pg_class WHERE oid = $1",
        &[relid.into()],
    )
    .map_err(|e| Error::internal(e.to_string()))?
    .filter(|rows| *rows >= 0.0)
    .map(|rows| rows as u64);
    let columns = Spi::connect(|client| {
        let rows = client.select(
            "SELECT attname::text, attnum, atttypid, atttypmod FROM pg_catalog.pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            None,
            &[relid.into()],
        )?;
        let mut columns = Vec::new();
        for row in rows {
            let name: String = row.get(1)?.unwrap_or_default();
            let attnum: i16 = row.get(2)?.unwrap_or(0);
            let type_oid: Oid = row.get(3)?.unwrap_or(Oid::INVALID);
            let typmod: i32 = row.get(4)?.unwrap_or(-1);
            columns.push(column_spec(name, attnum, type_oid, typmod));
        }
        Ok::<_, pgrx::spi::Error>(columns)
    })
    .map_err(|e| Error::internal(e.to_string()))?;
    Ok(ScanSpec::new(relid, name, columns, estimated_rows))
}

/// How a column travels: how pg_columns.c converts its values, the type DuckDB receives, and
/// the DuckDB expression (over `$c`) the view exposes. Types without an exact binary match
/// travel as their `::text` (read through the executor).
fn column_spec(name: String, attnum: i16, type_oid: Oid, typmod: i32) -> ColumnSpec {
    let (kind, transport, view) = match type_oid {
        pg_sys::BOOLOID => (Kind::Bool, ColumnType::Bool, "$c"),
        pg_sys::INT2OID => (Kind::Int2, ColumnType::SmallInt, "$c"),
        pg_sys::INT4OID => (Kind::Int4, ColumnType::Integer, "$c"),
        pg_sys::INT8OID => (Kind::Int8, ColumnType::BigInt, "$c"),
        pg_sys::OIDOID => (Kind::Oid, ColumnType::BigInt, "$c"),
        pg_sys::FLOAT4OID => (Kind::Float4, ColumnType::Float, "$c"),
        pg_sys::FLOAT8OID => (Kind::Float8, ColumnType::Double, "$c"),
        pg_sys::TEXTOID | pg_sys::VARCHAROID => (Kind::Text, ColumnType::Varchar, "$c"),
        pg_sys::BPCHAROID => (Kind::Bpchar, ColumnType::Varchar, "$c"),
        pg_sys::NAMEOID => (Kind::Name, ColumnType::Varchar, "$c"),
        pg_sys::NUMERICOID => numeric_kind(typmod),
        pg_sys::DATEOID => (Kind::Date, ColumnType::Date, "$c"),
        pg_sys::TIMESTAMPOID => (Kind::Timestamp, ColumnType::Timestamp, "$c"),
        pg_sys::TIMESTAMPTZOID => (Kind::Timestamp, ColumnType::TimestampTz, "$c"),
        pg_sys::UUIDOID => (Kind::Uuid, ColumnType::Uuid, "$c"),
        pg_sys::JSONOID => (Kind::Text, ColumnType::Varchar, "CAST($c AS JSON)"),
        pg_sys::JSONBOID => (Kind::Jsonb, ColumnType::Varchar, "CAST($c AS JSON)"),
        pg_sys::BYTEAOID => (Kind::Bytea, ColumnType::Blob, "$c"),
        _ => (Kind::AsText, ColumnType::Varchar, "$c"),
    };
    ColumnSpec {
        name,
        attnum,
        type_oid,
        typmod,
        kind,
        transport,
        view_expr: view.to_string(),
    }
}

/// Scale DuckDB uses for unconstrained numeric columns: 29 digits before the point, 9 after.
const UNCONSTRAINED_SCALE: u8 = 9;

/// numeric(p,s) that DuckDB's DECIMAL(38) holds is DECIMAL(p,s) (scale > precision and
/// negative scales, allowed since PostgreSQL 15, widened to a valid DECIMAL). Wider and
/// unconstrained numeric is DECIMAL(38,s) (s = 9 when unconstrained). Every value is checked
/// to fit exactly (pg_columns.c raises 22003 otherwise); or DOUBLE, rounded as Postgres's own
/// cast rounds it, when the caller set llm_sql.numeric_as_double.
fn numeric_kind(typmod: i32) -> (Kind, ColumnType, &'static str) {
    // (numeric's typmod: precision in the high 16 bits, an 11-bit signed scale in the low ones.)
    let declared = (typmod >= 4).then(|| {
        let packed = typmod - 4;
        ((packed >> 16) & 0xffff, ((packed & 0x7ff) ^ 1024) - 1024)
    });
    let decimal = |width: i32, scale: i32| {
        let transport = ColumnType::Decimal {
            width: width as u8,
            scale: scale as u8,
        };
        (Kind::Decimal, transport, "$c")
    };
    match declared {
        Some((precision, scale)) if scale >= 0 && precision.max(scale) <= 38 => {
            decimal(precision.max(scale), scale)
        }
        Some((precision, scale)) if scale < 0 && precision - scale <= 38 => {
            decimal(precision - scale, 0)
        }
        _ if crate::settings::NUMERIC_AS_DOUBLE.get() => {
            (Kind::NumericDouble, ColumnType::Double, "$c")
        }
        _ => decimal(
            38,
            declared.map_or(i32::from(UNCONSTRAINED_SCALE), |(_, s)| s.clamp(0, 38)),
        ),
    }
}
