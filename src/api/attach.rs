//! Attachments from SQL: llm_sql.attach, detach, attachments, import_schema, grant_attachment,
//! revoke_attachment. Each is the C function itself, declared with its documented signature (a
//! parameter named `type`, `name` arguments and columns): no SQL wrapper, no internal function.

use std::ffi::CStr;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::JsonB;

use super::query::column_definitions;
use crate::attach::{self, dsn};
use crate::error::required;
use crate::error::{Error, OrReport, Result};
use crate::quote;
use crate::quote::pg_literal as quote_literal;
use crate::session::attachments;

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.attach(alias text, dsn text, type text DEFAULT NULL,
                               read_only boolean DEFAULT true, persist boolean DEFAULT true)
    RETURNS jsonb LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.attach(text, text, text, boolean, boolean) IS
    'Attaches a SQLite or DuckDB file, or a PostgreSQL or MySQL server, to DuckDB under an alias';
"#
)]
fn attach_database(
    alias: Option<&str>,
    dsn: Option<&str>,
    kind: Option<&str>,
    read_only: Option<bool>,
    persist: Option<bool>,
) -> JsonB {
    let run = || -> Result<JsonB> {
        Ok(JsonB(attachments::attach(
            required(alias, "alias")?,
            required(dsn, "dsn")?,
            kind,
            required(read_only, "read_only")?,
            required(persist, "persist")?,
        )?))
    };
    run().or_report()
}

/// Forgets an attachment in this session and in the registry.
#[pg_extern(volatile, parallel_unsafe)]
fn detach(alias: Option<&str>, if_exists: default!(Option<bool>, false)) -> bool {
    let run = || attachments::detach(required(alias, "alias")?, required(if_exists, "if_exists")?);
    run().or_report()
}

/// A role's name as a Postgres `name` value (pgrx maps no Rust type to `name`).
pub struct RoleName(String);

impl IntoDatum for RoleName {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let bytes = self.0.as_bytes();
        let len = bytes.len().min(pg_sys::NAMEDATALEN as usize - 1);
        // SAFETY: a zeroed NameData of NAMEDATALEN bytes in the current memory context, with
        // at most NAMEDATALEN - 1 bytes copied in (role names are never longer).
        unsafe {
            let name = pg_sys::palloc0(pg_sys::NAMEDATALEN as usize).cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), name, len);
            Some(pg_sys::Datum::from(name))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::NAMEOID
    }
}

// SAFETY: returns the datum `into_datum` made (or NULL), as pgrx does for its own types.
unsafe impl pgrx::callconv::BoxRet for RoleName {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            // SAFETY: a datum of the declared return type.
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

// SAFETY: the SQL type is `name`, which `into_datum` produces.
unsafe impl SqlTranslatable for RoleName {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(RoleName);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("name"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("name")));
}

// pgrx needs the row type spelled out inline.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn attachments() -> TableIterator<
    'static,
    (
        name!(alias, String),
        name!(type, String),
        name!(dsn, String),
        name!(read_only, bool),
        name!(persistent, bool),
        name!(attached_in_session, bool),
        name!(owner, Option<RoleName>),
        name!(created_at, Option<TimestampWithTimeZone>),
    ),
> {
    let rows = attachments::visible()
        .or_report()
        .into_iter()
        .map(|(entry, here)| {
            // SAFETY: catalog lookup; NULL when the owner role was dropped.
            let owner = unsafe {
                let name = pg_sys::GetUserNameFromId(entry.owner, true);
                (!name.is_null())
                    .then(|| RoleName(CStr::from_ptr(name).to_string_lossy().into_owned()))
            };
            (
                entry.alias,
                entry.kind.name().to_string(),
                dsn::redact(&entry.dsn),
                entry.read_only,
                entry.persistent,
                here,
                owner,
                entry.created_at,
            )
        })
        .collect::<Vec<_>>();
    TableIterator::new(rows)
}

/// Makes every table and view of an attachment a foreign table of `llm_sql_fdw` in
/// `into_schema` (default: the alias), typed from DuckDB's schema, so that any driver can query
/// it; WHERE and LIMIT go to DuckDB where they mean the same (see `api::fdw`). A name found in
/// several schemas of the source is imported as `<schema>_<name>`.
#[pg_extern(volatile, parallel_unsafe)]
fn import_schema(
    alias: Option<&str>,
    into_schema: default!(Option<&str>, "NULL"),
    or_replace: default!(Option<bool>, false),
) -> i32 {
    let run = || -> Result<i32> {
        let alias = required(alias, "alias")?;
        let or_replace = required(or_replace, "or_replace")?;
        let tables = attachments::tables_to_import(alias)?;
        let schema = into_schema.unwrap_or(alias);
        Spi::run(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote::ident(schema)
        ))?;
        let mut imported = 0;
        for (source_schema, table) in &tables {
            let shared = tables.iter().filter(|(_, t)| t == table).count() > 1;
            let name = if shared {
                format!("{source_schema}_{table}")
            } else {
                table.clone()
            };
            let relation = format!(
                "\"{alias}\".{}.{}",
                quote::ident(source_schema),
                quote::ident(table)
            );
            let columns = column_definitions(&format!("SELECT * FROM {relation}"))?;
            let qualified = format!("{}.{}", quote::ident(schema), quote::ident(&name));
            if or_replace {
                Spi::run(&format!("DROP FOREIGN TABLE IF EXISTS {qualified}"))?;
            }
            Spi::run(&format!(
                "CREATE FOREIGN TABLE {qualified} ({}) SERVER llm_sql_duckdb OPTIONS (relation {})",
                columns.join(", "),
                quote_literal(&relation)?
            ))?;
            imported += 1;
        }
        Ok(imported)
    };
    run().or_report()
}

fn role_oid(role: Option<&CStr>) -> Result<pg_sys::Oid> {
    let role = required(role, "role")?;
    // SAFETY: get_role_oid with missing_ok = true on a NUL-terminated name.
    let oid = unsafe { pg_sys::get_role_oid(role.as_ptr(), true) };
    if oid == pg_sys::Oid::INVALID {
        return Err(Error::new(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("role \"{}\" does not exist", role.to_string_lossy()),
        ));
    }
    Ok(oid)
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.grant_attachment(alias text, role name) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.grant_attachment(text, name) IS
    'Lets a role (and its members) use an attachment; its owner or a superuser may';
"#
)]
fn grant_attachment(alias: Option<&str>, role: Option<&CStr>) {
    let run = || attach::set_grant(required(alias, "alias")?, role_oid(role)?, true);
    run().or_report()
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.revoke_attachment(alias text, role name) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.revoke_attachment(text, name) IS
    'Takes back what grant_attachment gave';
"#
)]
fn revoke_attachment(alias: Option<&str>, role: Option<&CStr>) {
    let run = || attach::set_grant(required(alias, "alias")?, role_oid(role)?, false);
    run().or_report()
}

pgrx::extension_sql!(
    r#"
COMMENT ON FUNCTION llm_sql.attachments() IS
    'The attachments you may use (passwords shown as ********)';
"#,
    name = "attachment_functions",
    requires = [attachments],
);
