// libduckdb.so is installed next to llm_sql.so in PostgreSQL's lib directory. Postgres is
// started by `sudo`/init systems that drop LD_LIBRARY_PATH, so the extension finds it through
// its RUNPATH: `$ORIGIN` for the installed extension, and the build-time DUCKDB_LIB_DIR for
// test binaries that run from target/.
//
// src/local/pg_columns.c converts Postgres rows into DuckDB's column layout, and
// src/local/pg_copy.c builds and checks columnar copies of tables; they are compiled
// against the server headers of the PostgreSQL that pgrx builds for (its pg_config).
//
// src/engine/shim.cpp uses DuckDB's C++ API for what the C API lacks; it is compiled against
// the C++ headers of the same DuckDB release, which scripts/setup unpacks from the
// libduckdb-sys crate into DUCKDB_CPP_INCLUDE_DIR.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=DUCKDB_CPP_INCLUDE_DIR");
    println!("cargo:rerun-if-changed=src/engine/shim.cpp");
    println!("cargo:rerun-if-changed=src/local/pg_columns.c");
    println!("cargo:rerun-if-changed=src/local/pg_columns.h");
    println!("cargo:rerun-if-changed=src/local/pg_copy.c");
    println!("cargo:rerun-if-env-changed=PGRX_PG_CONFIG_PATH");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    let Ok(include) = std::env::var("DUCKDB_CPP_INCLUDE_DIR") else {
        panic!(
            "DUCKDB_CPP_INCLUDE_DIR is not set: it names the C++ headers of DuckDB 1.5.5 that \
             scripts/setup unpacks (source scripts/lib.sh, or run scripts/setup first)"
        );
    };
    compile_pg_columns();
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/engine/shim.cpp")
        .include(&include)
        // The release build of libduckdb.so: the same class layouts as its headers without DEBUG.
        .define("NDEBUG", None)
        .warnings(false)
        .compile("llm_sql_duckdb_shim");
}

fn compile_pg_columns() {
    let major = (13..=99)
        .find(|v| std::env::var(format!("CARGO_FEATURE_PG{v}")).is_ok())
        .expect("one pgNN feature is enabled");
    let pg_config = pgrx_pg_config::Pgrx::from_config()
        .and_then(|pgrx| pgrx.get(&format!("pg{major}")))
        .unwrap_or_else(|e| panic!("no pg_config for PostgreSQL {major} (cargo pgrx init): {e}"));
    let include = pg_config
        .includedir_server()
        .unwrap_or_else(|e| panic!("pg_config --includedir-server failed: {e}"));
    cc::Build::new()
        .file("src/local/pg_columns.c")
        .file("src/local/pg_copy.c")
        .include(include)
        // As Postgres itself is compiled.
        .flag("-fno-strict-aliasing")
        .flag("-fwrapv")
        .flag("-std=gnu11")
        .warnings(true)
        // Postgres's own inline functions leave parameters unused.
        .flag("-Wno-unused-parameter")
        .compile("llm_sql_pg_columns");
}
