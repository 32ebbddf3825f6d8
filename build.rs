// libduckdb.so is installed next to llm_sql.so in PostgreSQL's lib directory. Postgres is
// started by `sudo`/init systems that drop LD_LIBRARY_PATH, so the extension finds it through
// its RUNPATH: `$ORIGIN` for the installed extension, and the build-time DUCKDB_LIB_DIR for
// test binaries that run from target/.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
