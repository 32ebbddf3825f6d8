use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

#[pg_extern]
fn duckdb_version() -> String {
    unsafe {
        std::ffi::CStr::from_ptr(duckdb::ffi::duckdb_library_version())
            .to_string_lossy()
            .into_owned()
    }
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
