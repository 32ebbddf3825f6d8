//! Every llm_sql setting (GUC), with its default and documentation, in one place.
//!
//! DuckDB resource settings are per backend: think "× max_connections". The defaults let 100
//! connections run DuckDB at once on a modest server (100 × 128 MB of DuckDB buffers, 2 threads
//! each only while a query runs, ≤ 1 GB of spill files each). They are read when a backend's
//! DuckDB is created; `llm_sql.duckdb_reset()` applies changed values. Only superusers may change
//! them (a DBA can give an analytics role more with ALTER ROLE … SET).

use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static DUCKDB_MEMORY_LIMIT: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"128MB"));
pub static DUCKDB_THREADS: GucSetting<i32> = GucSetting::<i32>::new(2);
pub static DUCKDB_TEMP_DIRECTORY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c""));
pub static DUCKDB_MAX_TEMP_DIRECTORY_SIZE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"1GB"));
pub static DUCKDB_EXTENSION_DIRECTORY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c""));
pub static ATTACH_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static ATTACH_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// Registers the settings; called from `_PG_init`.
pub fn init() {
    GucRegistry::define_string_guc(
        c"llm_sql.attach_role",
        c"Members of this role may attach remote servers (postgres, mysql); empty: superusers only.",
        c"Attaching files needs pg_read_server_files (and pg_write_server_files for read-write) instead.",
        &ATTACH_ROLE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.attach_timeout",
        c"How long llm_sql.attach (and re-attaching in a new session) waits for a server to answer.",
        c"PostgreSQL sources get it as libpq connect_timeout (whole seconds, at least 2).",
        &ATTACH_TIMEOUT_MS,
        100,
        600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_memory_limit",
        c"Memory limit of each backend's DuckDB (e.g. 128MB, 4GB).",
        c"DuckDB spills to llm_sql.duckdb_temp_directory beyond it. Applied when the backend's DuckDB is created.",
        &DUCKDB_MEMORY_LIMIT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.duckdb_threads",
        c"Worker threads of each backend's DuckDB.",
        c"Threads only run while a DuckDB query runs. Applied when the backend's DuckDB is created.",
        &DUCKDB_THREADS,
        1,
        256,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_temp_directory",
        c"Directory for DuckDB spill files; empty means base/pgsql_tmp of the data directory.",
        c"Each backend uses its own subdirectory, removed when its DuckDB closes and by a server restart.",
        &DUCKDB_TEMP_DIRECTORY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_max_temp_directory_size",
        c"Most disk space each backend's DuckDB may use for spill files (e.g. 1GB).",
        c"",
        &DUCKDB_MAX_TEMP_DIRECTORY_SIZE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_extension_directory",
        c"Directory DuckDB loads its extensions from; empty means $libdir/llm_sql/duckdb_extensions.",
        c"DuckDB never downloads extensions: they are installed there with llm_sql.",
        &DUCKDB_EXTENSION_DIRECTORY,
        GucContext::Suset,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init on the backend thread; reserves the prefix so that typos in
    // llm_sql.* names are errors instead of silent placeholders.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"llm_sql".as_ptr()) };
}

/// `llm_sql.attach_timeout`.
pub fn attach_timeout() -> std::time::Duration {
    std::time::Duration::from_millis(ATTACH_TIMEOUT_MS.get().max(1) as u64)
}

/// The value of a string setting, `None` when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `$libdir` of this server, where llm_sql.so and its DuckDB extensions are installed.
pub fn pkglib_dir() -> String {
    // SAFETY: pkglib_path is a NUL-terminated path set at backend start.
    unsafe { CStr::from_ptr(std::ptr::addr_of!(pgrx::pg_sys::pkglib_path).cast()) }
        .to_string_lossy()
        .into_owned()
}
