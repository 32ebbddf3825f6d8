//! What a non-superuser can and cannot do through llm_sql (SET ROLE inside the test backend;
//! login roles are covered in client_tests/).

#[pgrx::pg_schema]
mod tests {
    use crate::tests::outcome;
    use pgrx::prelude::*;

    fn as_role(role: &str, grants: &str) {
        Spi::run(&format!("CREATE ROLE {role} {grants}")).unwrap();
        Spi::run(&format!("SET ROLE {role}")).unwrap();
    }

    fn denied(sql: &str, contains: &str) {
        let got = outcome(sql);
        assert!(
            got.starts_with("42501: "),
            "{sql}\n  expected permission denied, got: {got}"
        );
        assert!(
            got.contains(contains),
            "{sql}\n  expected {contains:?} in: {got}"
        );
    }

    fn q(duck_sql: &str) -> String {
        format!("SELECT * FROM llm_sql.query_json($d${duck_sql}$d$)")
    }

    fn x(duck_sql: &str) -> String {
        format!("SELECT llm_sql.execute($d${duck_sql}$d$)")
    }

    /// Writes a small CSV file that the postgres server can read.
    fn server_csv() -> String {
        let path = format!("/tmp/llm_sql_test_{}.csv", std::process::id());
        Spi::run(&format!(
            "COPY (SELECT 1 AS a, 'secret' AS b) TO '{path}' WITH (FORMAT csv, HEADER)"
        ))
        .unwrap();
        path
    }

    #[pg_test]
    fn ordinary_role_cannot_read_server_files() {
        let csv = server_csv();
        as_role("reader_none", "");
        for sql in [
            q(&format!("SELECT * FROM read_csv('{csv}')")),
            q("SELECT * FROM read_csv('/etc/passwd')"),
            q("SELECT * FROM read_text('/etc/hostname')"),
            q("SELECT * FROM read_blob('/etc/hostname')"),
            q("SELECT * FROM read_parquet('/tmp/anything.parquet')"),
            q("SELECT * FROM read_json('/etc/hostname')"),
            q("SELECT * FROM glob('/etc/*')"),
            q("SELECT * FROM sniff_csv('/etc/passwd')"),
            q("SELECT * FROM read_text('file:///etc/hostname')"),
        ] {
            denied(&sql, "LocalFileSystem");
        }
        denied(&x("ATTACH '/tmp/some.duckdb' AS f"), "ATTACH");
        denied(&x("ATTACH '/tmp/some.sqlite' AS f (TYPE sqlite)"), "ATTACH");
    }

    #[pg_test]
    fn ordinary_role_cannot_write_server_files() {
        as_role("writer_none", "");
        let path = format!("/tmp/llm_sql_never_{}.csv", std::process::id());
        // Refused by statement type before DuckDB binds anything.
        denied(&x(&format!("COPY (SELECT 1) TO '{path}'")), "COPY");
        denied(
            &x(&format!("EXPORT DATABASE '{path}.dir'")),
            "EXPORT DATABASE",
        );
        let got = outcome(&x(&format!("EXPLAIN ANALYZE COPY (SELECT 1) TO '{path}'")));
        assert!(got.starts_with("42501"), "{got}");
        let got = outcome(&x(&format!(
            "CALL enable_logging(storage='file', storage_config={{'path': '{path}.logs'}})"
        )));
        assert!(got.contains("LocalFileSystem"), "{got}");
        assert!(!std::path::Path::new(&path).exists());
        assert!(!std::path::Path::new(&format!("{path}.dir")).exists());
        assert!(!std::path::Path::new(&format!("{path}.logs")).exists());
    }

    #[pg_test]
    fn read_server_files_alone_is_not_enough() {
        let csv = server_csv();
        as_role("reader_only", "IN ROLE pg_read_server_files");
        let got = outcome(&q(&format!("SELECT * FROM read_csv('{csv}')")));
        assert!(got.starts_with("42501"), "{got}");
        assert!(
            got.contains("pg_read_server_files and pg_write_server_files"),
            "{got}"
        );
    }

    #[pg_test]
    fn members_of_both_file_roles_can_read_and_write_files() {
        let csv = server_csv();
        as_role(
            "file_user",
            "IN ROLE pg_read_server_files, pg_write_server_files",
        );
        let b = Spi::get_one::<String>(&format!("SELECT b FROM llm_sql.query($d$SELECT * FROM read_csv('{csv}')$d$) AS t(a int, b text)"));
        assert_eq!(b, Ok(Some("secret".to_string())));
        let out = format!("/tmp/llm_sql_test_out_{}.csv", std::process::id());
        Spi::run(&x(&format!(
            "COPY (SELECT 42 AS answer) TO '{out}' (HEADER)"
        )))
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "answer\n42\n");
        let _ = std::fs::remove_file(&out);
        // Still no extension loading or settings.
        denied(&x("LOAD sqlite"), "LOAD");
        denied(&x("SET threads = 8"), "SET");
    }

    #[pg_test]
    fn ordinary_role_cannot_load_extensions_or_change_settings() {
        as_role("tinkerer", "");
        denied(&x("INSTALL httpfs"), "LOAD/INSTALL");
        denied(&x("LOAD sqlite"), "LOAD/INSTALL");
        denied(&x("LOAD '/tmp/evil.duckdb_extension'"), "LOAD/INSTALL");
        denied(&x("SET disabled_filesystems = ''"), "SET");
        denied(&x("RESET disabled_filesystems"), "SET");
        denied(&x("SET lock_configuration = false"), "SET");
        denied(&x("SET GLOBAL enable_external_access = true"), "SET");
        denied(&x("PRAGMA threads = 64"), "SET");
        denied(&x("PRAGMA enable_profiling"), "");
        denied(&x("DETACH memory"), "DETACH");
        denied(&x("PREPARE p AS SELECT 1"), "PREPARE");
        // Extensions that open their own files and connections are not even loaded.
        let got = outcome(&q(
            "SELECT * FROM postgres_scan('dbname=postgres', 'pg_catalog', 'pg_authid')",
        ));
        assert!(got.contains("postgres_scan"), "{got}");
        let got = outcome(&q("SELECT * FROM sqlite_scan('/tmp/x.db', 't')"));
        assert!(got.contains("sqlite_scan"), "{got}");
        // DuckDB itself holds the line too: its configuration is locked.
        let locked = Spi::get_one::<String>(
            "SELECT value FROM llm_sql.duckdb_settings() WHERE name = 'lock_configuration'",
        );
        assert_eq!(locked, Ok(Some("true".to_string())));
        // Ordinary analytics still work.
        let n = Spi::get_one::<i64>(
            "SELECT n FROM llm_sql.query('CREATE TABLE mine AS SELECT * FROM range(10) t(i); SELECT sum(i) AS n FROM mine') AS t(n bigint)",
        );
        assert_eq!(n, Ok(Some(45)));
    }

    #[pg_test]
    fn superuser_state_is_not_visible_after_set_role() {
        Spi::run("SELECT llm_sql.execute($$CREATE TABLE su_only AS SELECT 'top secret' AS s$$)")
            .unwrap();
        as_role("curious", "");
        let got = outcome(&q("SELECT * FROM su_only"));
        assert!(got.starts_with("42P01"), "{got}");
        Spi::run("RESET ROLE").unwrap();
        let s = Spi::get_one::<String>(
            "SELECT s FROM llm_sql.query('SELECT s FROM su_only') AS t(s text)",
        );
        assert_eq!(s, Ok(Some("top secret".to_string())));
    }

    #[pg_test]
    fn security_definer_functions_run_with_their_owner_rights() {
        let csv = server_csv();
        Spi::run(&format!(
            "CREATE FUNCTION read_as_owner() RETURNS text SECURITY DEFINER LANGUAGE sql AS
             $f$ SELECT b FROM llm_sql.query($d$SELECT * FROM read_csv('{csv}')$d$) AS t(a int, b text) $f$"
        ))
        .unwrap();
        Spi::run("CREATE ROLE definer_caller").unwrap();
        Spi::run("GRANT EXECUTE ON FUNCTION read_as_owner() TO definer_caller").unwrap();
        Spi::run("SET ROLE definer_caller").unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT read_as_owner()"),
            Ok(Some("secret".to_string()))
        );
        // ... but the caller's own calls stay restricted.
        let got = outcome(&q(&format!("SELECT * FROM read_csv('{csv}')")));
        assert!(got.starts_with("42501"), "{got}");
    }
}
