//! Attachments from SQL: llm_sql.attach, detach, attachments, grant_attachment,
//! revoke_attachment. The C-level functions below take plain arguments; the SQL wrappers at the
//! end give them the documented signatures (a parameter named `type`, `name` columns).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;

use super::query::{column_definitions, quote_literal, required};
use crate::attach::{self, dsn};
use crate::error::{Error, OrReport, Result};
use crate::quote;

#[pg_extern(volatile, parallel_unsafe, name = "attach_internal")]
fn attach_internal(
    alias: Option<&str>,
    dsn: Option<&str>,
    kind: Option<&str>,
    read_only: Option<bool>,
    persist: Option<bool>,
) -> JsonB {
    let run = || -> Result<JsonB> {
        Ok(JsonB(attach::attach(
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
    let run = || attach::detach(required(alias, "alias")?, required(if_exists, "if_exists")?);
    run().or_report()
}

// pgrx needs the row type spelled out inline.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn attachments_internal() -> TableIterator<
    'static,
    (
        name!(alias, String),
        name!(type, String),
        name!(dsn, String),
        name!(read_only, bool),
        name!(persistent, bool),
        name!(attached_in_session, bool),
        name!(owner, Option<String>),
        name!(created_at, Option<TimestampWithTimeZone>),
    ),
> {
    let rows = attach::visible()
        .or_report()
        .into_iter()
        .map(|(entry, here)| {
            // SAFETY: catalog lookup; NULL when the owner role was dropped.
            let owner = unsafe {
                let name = pgrx::pg_sys::GetUserNameFromId(entry.owner, true);
                (!name.is_null()).then(|| {
                    std::ffi::CStr::from_ptr(name)
                        .to_string_lossy()
                        .into_owned()
                })
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
        let tables = attach::tables_to_import(alias)?;
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

fn role_oid(role: Option<&str>) -> Result<pgrx::pg_sys::Oid> {
    let role = required(role, "role")?;
    let name = std::ffi::CString::new(role)
        .map_err(|_| Error::invalid_parameter("role must not contain NUL bytes"))?;
    // SAFETY: get_role_oid with missing_ok = true on a NUL-terminated name.
    let oid = unsafe { pgrx::pg_sys::get_role_oid(name.as_ptr(), true) };
    if oid == pgrx::pg_sys::Oid::INVALID {
        return Err(Error::new(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("role \"{role}\" does not exist"),
        ));
    }
    Ok(oid)
}

#[pg_extern(volatile, parallel_unsafe)]
fn grant_attachment_internal(alias: Option<&str>, role: Option<&str>) {
    let run = || attach::set_grant(required(alias, "alias")?, role_oid(role)?, true);
    run().or_report()
}

#[pg_extern(volatile, parallel_unsafe)]
fn revoke_attachment_internal(alias: Option<&str>, role: Option<&str>) {
    let run = || attach::set_grant(required(alias, "alias")?, role_oid(role)?, false);
    run().or_report()
}

pgrx::extension_sql!(
    r#"
CREATE FUNCTION llm_sql.attach(alias text, dsn text, type text DEFAULT NULL,
                               read_only boolean DEFAULT true, persist boolean DEFAULT true)
    RETURNS jsonb LANGUAGE sql VOLATILE PARALLEL UNSAFE
    RETURN llm_sql.attach_internal(alias, dsn, type, read_only, persist);
COMMENT ON FUNCTION llm_sql.attach(text, text, text, boolean, boolean) IS
    'Attaches a SQLite or DuckDB file, or a PostgreSQL or MySQL server, to DuckDB under an alias';
CREATE FUNCTION llm_sql.attachments()
    RETURNS TABLE (alias text, type text, dsn text, read_only boolean, persistent boolean,
                   attached_in_session boolean, owner name, created_at timestamptz)
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    AS $$ SELECT alias, type, dsn, read_only, persistent, attached_in_session, owner::name, created_at
          FROM llm_sql.attachments_internal() $$;
COMMENT ON FUNCTION llm_sql.attachments() IS
    'The attachments you may use (passwords shown as ********)';
CREATE FUNCTION llm_sql.grant_attachment(alias text, role name) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    RETURN llm_sql.grant_attachment_internal(alias, role::text);
CREATE FUNCTION llm_sql.revoke_attachment(alias text, role name) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    RETURN llm_sql.revoke_attachment_internal(alias, role::text);
"#,
    name = "attachment_functions",
    requires = [
        attach_internal,
        attachments_internal,
        grant_attachment_internal,
        revoke_attachment_internal
    ],
);
