//! Quoting for the SQL that llm_sql writes itself. Postgres and DuckDB quote identifiers the
//! same way: in double quotes, with `"` doubled inside.

/// A double-quoted identifier, valid in Postgres and in DuckDB.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A DuckDB string literal (DuckDB has no backslash escapes in plain literals). Postgres
/// literals go through `quote_literal_cstr` instead (`api::query::quote_literal`).
pub fn duck_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
