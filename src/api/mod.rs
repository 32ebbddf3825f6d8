//! The SQL surface: thin functions that check arguments, call into the modules and convert
//! results. One file per family of SQL functions.

pub mod query;
mod rows;
pub mod scan;
mod srf;
