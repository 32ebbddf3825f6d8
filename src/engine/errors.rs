//! DuckDB's errors as Postgres users expect them: DuckDB's error class read from the C API or
//! from the message, and the SQLSTATE, detail and hint a Postgres user would expect for it.

use duckdb::ffi;
use pgrx::PgSqlErrorCode;

use super::ffi::DuckError;
use super::security::{FILES_RULE, WITHDRAWN_MARK};
use crate::error::Error;

/// DuckDB's error classes, as the C API reports them or as its messages begin ("Binder Error: …").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuckClass {
    Parser,
    Catalog,
    Binder,
    Conversion,
    OutOfRange,
    DivideByZero,
    Constraint,
    OutOfMemory,
    Io,
    Interrupt,
    Permission,
    InvalidInput,
    NotImplemented,
    Transaction,
    Dependency,
    Network,
    TypeMismatch,
    Sequence,
    /// FATAL and INTERNAL errors leave the DuckDB instance unusable.
    Fatal,
    Other,
}

impl DuckClass {
    fn from_error_type(t: ffi::duckdb_error_type) -> Option<Self> {
        use DuckClass::*;
        Some(match t {
            ffi::duckdb_error_type_DUCKDB_ERROR_PARSER
            | ffi::duckdb_error_type_DUCKDB_ERROR_SYNTAX => Parser,
            ffi::duckdb_error_type_DUCKDB_ERROR_CATALOG => Catalog,
            ffi::duckdb_error_type_DUCKDB_ERROR_BINDER
            | ffi::duckdb_error_type_DUCKDB_ERROR_PARAMETER_NOT_RESOLVED
            | ffi::duckdb_error_type_DUCKDB_ERROR_PARAMETER_NOT_ALLOWED => Binder,
            ffi::duckdb_error_type_DUCKDB_ERROR_CONVERSION
            | ffi::duckdb_error_type_DUCKDB_ERROR_DECIMAL => Conversion,
            ffi::duckdb_error_type_DUCKDB_ERROR_OUT_OF_RANGE
            | ffi::duckdb_error_type_DUCKDB_ERROR_OBJECT_SIZE => OutOfRange,
            ffi::duckdb_error_type_DUCKDB_ERROR_DIVIDE_BY_ZERO => DivideByZero,
            ffi::duckdb_error_type_DUCKDB_ERROR_CONSTRAINT
            | ffi::duckdb_error_type_DUCKDB_ERROR_INDEX => Constraint,
            ffi::duckdb_error_type_DUCKDB_ERROR_OUT_OF_MEMORY => OutOfMemory,
            ffi::duckdb_error_type_DUCKDB_ERROR_IO => Io,
            ffi::duckdb_error_type_DUCKDB_ERROR_INTERRUPT => Interrupt,
            ffi::duckdb_error_type_DUCKDB_ERROR_PERMISSION => Permission,
            ffi::duckdb_error_type_DUCKDB_ERROR_INVALID_INPUT
            | ffi::duckdb_error_type_DUCKDB_INVALID_CONFIGURATION
            | ffi::duckdb_error_type_DUCKDB_ERROR_SETTINGS => InvalidInput,
            ffi::duckdb_error_type_DUCKDB_ERROR_NOT_IMPLEMENTED => NotImplemented,
            ffi::duckdb_error_type_DUCKDB_ERROR_TRANSACTION => Transaction,
            ffi::duckdb_error_type_DUCKDB_ERROR_DEPENDENCY => Dependency,
            ffi::duckdb_error_type_DUCKDB_ERROR_NETWORK
            | ffi::duckdb_error_type_DUCKDB_ERROR_HTTP
            | ffi::duckdb_error_type_DUCKDB_ERROR_CONNECTION => Network,
            ffi::duckdb_error_type_DUCKDB_ERROR_MISMATCH_TYPE
            | ffi::duckdb_error_type_DUCKDB_ERROR_INVALID_TYPE
            | ffi::duckdb_error_type_DUCKDB_ERROR_UNKNOWN_TYPE => TypeMismatch,
            ffi::duckdb_error_type_DUCKDB_ERROR_SEQUENCE => Sequence,
            ffi::duckdb_error_type_DUCKDB_ERROR_FATAL
            | ffi::duckdb_error_type_DUCKDB_ERROR_INTERNAL => Fatal,
            ffi::duckdb_error_type_DUCKDB_ERROR_INVALID => return None,
            _ => Other,
        })
    }

    /// Errors raised while preparing a statement only carry their message, which always starts
    /// with DuckDB's exception name.
    fn from_message(message: &str) -> Self {
        use DuckClass::*;
        let prefix = message.split(" Error:").next().unwrap_or("");
        match prefix {
            "Parser" | "Syntax" => Parser,
            "Catalog" => Catalog,
            "Binder" | "Parameter Not Resolved" | "Parameter Not Allowed" => Binder,
            "Conversion" | "Decimal" => Conversion,
            "Out of Range" | "Object Size" => OutOfRange,
            "Divide by Zero" => DivideByZero,
            "Constraint" | "Index" => Constraint,
            "Out of Memory" => OutOfMemory,
            "IO" => Io,
            "INTERRUPT" | "Interrupt" => Interrupt,
            "Permission" => Permission,
            "Invalid Input" | "Invalid Configuration" | "Settings" => InvalidInput,
            "Not implemented" | "Not Implemented" => NotImplemented,
            "TransactionContext" | "Transaction" => Transaction,
            "Dependency" => Dependency,
            "Network" | "HTTP" | "Connection" => Network,
            "Mismatch Type" | "Invalid Type" | "Unknown Type" => TypeMismatch,
            "Sequence" => Sequence,
            "FATAL" | "INTERNAL" | "Fatal" | "Internal" => Fatal,
            _ => Other,
        }
    }

    pub fn of(error: &DuckError) -> Self {
        error
            .kind
            .and_then(Self::from_error_type)
            .unwrap_or_else(|| Self::from_message(&error.message))
    }
}

/// Picks the SQLSTATE that a Postgres user would expect for a DuckDB error.
fn sqlstate(class: DuckClass, message: &str) -> PgSqlErrorCode {
    use DuckClass::*;
    use PgSqlErrorCode::*;
    let lower = message.to_ascii_lowercase();
    match class {
        Parser => ERRCODE_SYNTAX_ERROR,
        Catalog if lower.contains("already exists") => ERRCODE_DUPLICATE_OBJECT,
        Catalog if lower.contains("function") || lower.contains("macro") => {
            ERRCODE_UNDEFINED_FUNCTION
        }
        Catalog if lower.contains("schema with name") => ERRCODE_INVALID_SCHEMA_NAME,
        Catalog if lower.contains("does not exist") && !lower.contains("column") => {
            ERRCODE_UNDEFINED_TABLE
        }
        Catalog => ERRCODE_UNDEFINED_OBJECT,
        Binder if lower.contains("column") && lower.contains("not found") => {
            ERRCODE_UNDEFINED_COLUMN
        }
        Binder if lower.contains("referenced column") => ERRCODE_UNDEFINED_COLUMN,
        Binder if lower.contains("no function matches") => ERRCODE_UNDEFINED_FUNCTION,
        Binder if lower.contains("group by") => ERRCODE_GROUPING_ERROR,
        Binder => ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
        Conversion if lower.contains("out of range") => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        Conversion => ERRCODE_INVALID_TEXT_REPRESENTATION,
        OutOfRange => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        DivideByZero => ERRCODE_DIVISION_BY_ZERO,
        Constraint if lower.contains("not null") => ERRCODE_NOT_NULL_VIOLATION,
        Constraint if lower.contains("check constraint") => ERRCODE_CHECK_VIOLATION,
        Constraint if lower.contains("foreign key") => ERRCODE_FOREIGN_KEY_VIOLATION,
        Constraint
            if lower.contains("unique")
                || lower.contains("primary key")
                || lower.contains("duplicate key") =>
        {
            ERRCODE_UNIQUE_VIOLATION
        }
        Constraint => ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION,
        OutOfMemory => ERRCODE_OUT_OF_MEMORY,
        Io if lower.contains("connect to") => ERRCODE_CONNECTION_FAILURE,
        Io => ERRCODE_IO_ERROR,
        Interrupt => ERRCODE_QUERY_CANCELED,
        Permission => ERRCODE_INSUFFICIENT_PRIVILEGE,
        InvalidInput => ERRCODE_INVALID_PARAMETER_VALUE,
        NotImplemented => ERRCODE_FEATURE_NOT_SUPPORTED,
        Transaction if lower.contains("conflict") => ERRCODE_T_R_SERIALIZATION_FAILURE,
        Transaction => ERRCODE_INVALID_TRANSACTION_STATE,
        Dependency => ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
        Network => ERRCODE_CONNECTION_FAILURE,
        TypeMismatch => ERRCODE_DATATYPE_MISMATCH,
        Sequence => ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED,
        Fatal | Other => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
    }
}

impl From<DuckError> for Error {
    /// DuckDB's message keeps its first paragraph as the message; the rest (the "LINE 1: …"
    /// caret, candidate names) becomes the detail.
    fn from(error: DuckError) -> Self {
        let class = DuckClass::of(&error);
        let text = error.message.trim();
        let (first, rest) = match text.split_once('\n') {
            Some((first, rest)) => (first.trim(), rest.trim()),
            None => (text, ""),
        };
        // The first line decides the SQLSTATE ("Did you mean …" below it names other objects).
        let mut out = Error::new(sqlstate(class, first), format!("DuckDB: {first}"));
        if !rest.is_empty() {
            out = out.with_detail(rest);
        }
        match class {
            DuckClass::OutOfMemory => out.with_hint(
                "Raise llm_sql.duckdb_memory_limit (superuser) and call llm_sql.duckdb_reset(), \
                 or let DuckDB spill: llm_sql.duckdb_temp_directory / duckdb_max_temp_directory_size.",
            ),
            DuckClass::Permission if text.contains("LocalFileSystem") => out
                .with_detail(FILES_RULE)
                .with_hint("Ask a superuser to GRANT pg_read_server_files, pg_write_server_files TO your role."),
            DuckClass::Permission if text.contains(WITHDRAWN_MARK) => {
                out.with_hint("Attach databases with llm_sql.attach() and query them by alias.")
            }
            DuckClass::Fatal => out.with_hint(
                "The DuckDB instance of this session was discarded; the next call starts a fresh one.",
            ),
            _ => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(message: &str) -> DuckClass {
        DuckClass::of(&DuckError {
            kind: None,
            message: message.into(),
        })
    }

    #[test]
    fn classifies_prepare_errors_by_their_prefix() {
        assert_eq!(
            class_of("Parser Error: syntax error at or near \"SELEC\""),
            DuckClass::Parser
        );
        assert_eq!(
            class_of("Catalog Error: Table with name nope does not exist!"),
            DuckClass::Catalog
        );
        assert_eq!(
            class_of("Binder Error: Referenced column \"x\" not found"),
            DuckClass::Binder
        );
        assert_eq!(
            class_of("Permission Error: File system LocalFileSystem has been disabled"),
            DuckClass::Permission
        );
        assert_eq!(class_of("something else"), DuckClass::Other);
    }

    #[test]
    fn maps_classes_to_sqlstates() {
        let e: Error = DuckError {
            kind: None,
            message: "Catalog Error: Table with name nope does not exist!\nDid you mean \"x\"?"
                .into(),
        }
        .into();
        assert_eq!(e.code, PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE);
        assert_eq!(
            e.message,
            "DuckDB: Catalog Error: Table with name nope does not exist!"
        );
        assert_eq!(e.detail.as_deref(), Some("Did you mean \"x\"?"));
        let e: Error = DuckError {
            kind: None,
            message: "Binder Error: Referenced column \"zz\" not found in FROM clause!".into(),
        }
        .into();
        assert_eq!(e.code, PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN);
        let e: Error = DuckError {
            kind: Some(ffi::duckdb_error_type_DUCKDB_ERROR_CONSTRAINT),
            message: "Constraint Error: NOT NULL constraint failed: t.a".into(),
        }
        .into();
        assert_eq!(e.code, PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION);
        let e: Error = DuckError {
            kind: Some(ffi::duckdb_error_type_DUCKDB_ERROR_INTERRUPT),
            message: "INTERRUPT Error: Interrupted!".into(),
        }
        .into();
        assert_eq!(e.code, PgSqlErrorCode::ERRCODE_QUERY_CANCELED);
    }
}
