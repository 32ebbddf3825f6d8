//! Quoting for the SQL that llm_sql writes itself. Postgres and DuckDB quote identifiers the
//! same way: in double quotes, with `"` doubled inside.

/// A double-quoted identifier, valid in Postgres and in DuckDB.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A DuckDB string literal (DuckDB has no backslash escapes in plain literals). Postgres
/// literals go through `pg_literal`.
pub fn duck_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A Postgres string literal, escaped by Postgres itself (whatever standard_conforming_strings
/// says).
pub fn pg_literal(text: &str) -> crate::error::Result<String> {
    let c = std::ffi::CString::new(text)
        .map_err(|_| crate::error::Error::invalid_parameter("text must not contain NUL bytes"))?;
    // SAFETY: quote_literal_cstr returns a palloc'd, correctly escaped literal.
    Ok(
        unsafe { std::ffi::CStr::from_ptr(pgrx::pg_sys::quote_literal_cstr(c.as_ptr())) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// A Postgres identifier, quoted only where Postgres needs it (as `quote_ident` does).
pub fn pg_ident(name: &str) -> String {
    let Ok(text) = std::ffi::CString::new(name) else {
        return ident(name);
    };
    // SAFETY: quote_identifier reads a NUL-terminated string and returns it or a palloc'd copy.
    unsafe { std::ffi::CStr::from_ptr(pgrx::pg_sys::quote_identifier(text.as_ptr())) }
        .to_string_lossy()
        .into_owned()
}

/// Names made unique the way DuckDB does for tables: a, a_1, a_2, …
pub fn unique<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .map(|original| {
            let mut name = original.to_string();
            let mut n = 0;
            while !seen.insert(name.clone()) {
                n += 1;
                name = format!("{original}_{n}");
            }
            name
        })
        .collect()
}
