//! One error type for all of llm_sql, and the only place that turns errors into Postgres ERRORs.
//!
//! Code below the SQL functions returns `Result<T, Error>`; `Error::report` raises it with its
//! SQLSTATE, message, detail and hint. Raising goes through pgrx's guarded unwinding, so Rust
//! destructors (DuckDB handles, buffers) run before Postgres takes over.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[derive(Debug, Clone)]
pub struct Error {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Error::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Error::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message)
    }

    /// Raises this error as a Postgres ERROR. Does not return.
    pub fn report(self) -> ! {
        self.into_report().report(PgLogLevel::ERROR);
        unreachable!("ERROR-level reports do not return")
    }

    /// Sends this as a WARNING to the client (and the log), and goes on.
    pub fn warn(self) {
        self.into_report().report(PgLogLevel::WARNING);
    }

    fn into_report(self) -> ErrorReport {
        let mut report = ErrorReport::new(self.code, self.message, "llm_sql");
        if let Some(detail) = self.detail {
            report = report.set_detail(detail);
        }
        if let Some(hint) = self.hint {
            report = report.set_hint(hint);
        }
        report
    }
}

/// An argument that must not be NULL: its value, or an error naming it.
pub fn required<T>(value: Option<T>, name: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{name} must not be NULL"),
        )
    })
}

/// Unwraps a result inside a SQL function, raising the error as a Postgres ERROR.
pub trait OrReport<T> {
    fn or_report(self) -> T;
}

impl<T> OrReport<T> for Result<T> {
    fn or_report(self) -> T {
        self.unwrap_or_else(|e| e.report())
    }
}

impl From<pgrx::spi::SpiError> for Error {
    /// SPI-level failures (Postgres ERRORs raised inside SPI propagate as themselves).
    fn from(error: pgrx::spi::SpiError) -> Self {
        Error::internal(format!("SPI: {error}"))
    }
}
