//! The SQL surface: thin functions that check arguments, call into the modules and convert
//! results. One file per family of SQL functions.

mod ask;
pub mod attach;
mod comments;
mod copies;
mod embed;
mod inline_embed;
mod llm;
mod params;
pub mod query;
mod retired;
