//! The SQL surface: thin functions that check arguments, call into the modules and convert
//! results. One file per family of SQL functions.

/// Declares the record Postgres looks up (`pg_finfo_<symbol>`) to call a hand-written C
/// function with the version-1 calling convention.
macro_rules! finfo_v1 {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record =
                pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

mod ask;
pub mod attach;
mod comments;
mod embed;
pub mod fdw;
mod inline_embed;
mod llm;
mod params;
pub mod query;
mod retired;
mod rows;
pub mod scan;
mod srf;
