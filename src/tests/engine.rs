//! The engine's SQL API: query with column lists, execute, create_view, settings, reset, and
//! the way errors reach Postgres.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::outcome;
    use pgrx::prelude::*;

    fn assert_state(sql: &str, sqlstate: &str, contains: &str) {
        let got = outcome(sql);
        assert!(
            got.starts_with(&format!("{sqlstate}: ")),
            "{sql}\n  expected SQLSTATE {sqlstate}, got: {got}"
        );
        assert!(
            got.contains(contains),
            "{sql}\n  expected message containing {contains:?}, got: {got}"
        );
        // The backend and its DuckDB keep working after every error.
        let after = Spi::get_one::<i64>(
            "SELECT x FROM llm_sql.query('SELECT 7::BIGINT AS x') AS t(x bigint)",
        );
        assert_eq!(after, Ok(Some(7)), "DuckDB unusable after: {sql}");
    }

    #[pg_test]
    fn query_returns_typed_rows() {
        let x = Spi::get_one::<i32>("SELECT x FROM llm_sql.query('SELECT 42 AS x') AS t(x int)");
        assert_eq!(x, Ok(Some(42)));
    }

    #[pg_test]
    fn column_list_with_wrong_count_names_both_sides() {
        assert_state(
            "SELECT * FROM llm_sql.query('SELECT 1 AS a, ''x'' AS b') AS t(a int)",
            "42804",
            "the column definition list has 1 columns, but the DuckDB query returns 2",
        );
    }

    #[pg_test]
    fn column_list_with_impossible_type_names_column_and_types() {
        let got = outcome(
            "SELECT * FROM llm_sql.query('SELECT 1 AS a, true AS flag') AS t(a int, flag date)",
        );
        assert!(got.starts_with("42804: "), "{got}");
        assert!(got.contains("column 2 (\"flag\")"), "{got}");
        assert!(got.contains("BOOLEAN"), "{got}");
        assert!(got.contains("date"), "{got}");
    }

    #[pg_test]
    fn column_list_types_are_cast_like_postgres_casts() {
        let (a, b, c) = Spi::get_three::<String, i64, String>(
            "SELECT a, b, c::text FROM llm_sql.query('SELECT 42 AS a, 7::INTEGER AS b, 3.14159::DOUBLE AS c')
               AS t(a text, b bigint, c numeric(5,2))",
        )
        .unwrap();
        assert_eq!(
            (a.as_deref(), b, c.as_deref()),
            (Some("42"), Some(7), Some("3.14"))
        );
        let v = Spi::get_one::<String>(
            "SELECT v FROM llm_sql.query('SELECT ''abcdef'' AS v') AS t(v varchar(3))",
        );
        assert_eq!(v, Ok(Some("abc".to_string())));
    }

    #[pg_test]
    fn query_without_column_list_is_a_clear_error() {
        let got = outcome("SELECT * FROM llm_sql.query('SELECT 1')");
        assert!(got.contains("column definition list is required"), "{got}");
    }

    #[pg_test]
    fn null_and_empty_sql_are_errors() {
        assert_state(
            "SELECT * FROM llm_sql.query(NULL) AS t(a int)",
            "22004",
            "sql must not be NULL",
        );
        assert_state(
            "SELECT * FROM llm_sql.query_json(NULL)",
            "22004",
            "sql must not be NULL",
        );
        assert_state(
            "SELECT llm_sql.execute(NULL)",
            "22004",
            "sql must not be NULL",
        );
        assert_state(
            "SELECT * FROM llm_sql.query('  ') AS t(a int)",
            "42601",
            "empty",
        );
        assert_state(
            "SELECT * FROM llm_sql.query(' -- nothing') AS t(a int)",
            "42601",
            "no statement",
        );
    }

    #[pg_test]
    fn execute_returns_rows_changed_and_state_persists_in_the_session() {
        assert_eq!(Spi::get_one::<i64>("SELECT llm_sql.execute('CREATE TABLE items(id INTEGER PRIMARY KEY, name VARCHAR)')"), Ok(Some(0)));
        assert_eq!(
            Spi::get_one::<i64>("SELECT llm_sql.execute($$INSERT INTO items SELECT i, 'n' || i FROM range(10) t(i)$$)"),
            Ok(Some(10))
        );
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT llm_sql.execute('UPDATE items SET name = upper(name) WHERE id < 4')"
            ),
            Ok(Some(4))
        );
        // Several statements: the changes add up.
        assert_eq!(
            Spi::get_one::<i64>("SELECT llm_sql.execute('DELETE FROM items WHERE id = 0; DELETE FROM items WHERE id > 7')"),
            Ok(Some(3))
        );
        let names = Spi::get_one::<String>(
            "SELECT string_agg(name, ',' ORDER BY id) FROM llm_sql.query('SELECT id, name FROM items') AS t(id int, name text)",
        );
        assert_eq!(names, Ok(Some("N1,N2,N3,n4,n5,n6,n7".to_string())));
        // A query of several statements returns the rows of the last one.
        let last = Spi::get_one::<i64>(
            "SELECT * FROM llm_sql.query('CREATE TEMP TABLE tmp AS SELECT 5 AS x; SELECT x * 2 FROM tmp') AS t(y bigint)",
        );
        assert_eq!(last, Ok(Some(10)));
    }

    #[pg_test]
    fn create_view_types_columns_from_duckdb() {
        let name = Spi::get_one::<String>(
            "SELECT llm_sql.create_view('public.sales_v', $$SELECT 1::BIGINT AS id, 'x' AS label, 9.99::DECIMAL(6,2) AS price,
                                                           [1,2] AS tags, {'a': 1} AS meta, DATE '2024-05-01' AS day$$)",
        );
        assert_eq!(name, Ok(Some("public.sales_v".to_string())));
        let columns = Spi::get_one::<String>(
            "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
               FROM pg_attribute WHERE attrelid = 'public.sales_v'::regclass AND attnum > 0",
        );
        assert_eq!(
            columns,
            Ok(Some(
                "id bigint, label text, price numeric(6,2), tags integer[], meta jsonb, day date"
                    .to_string()
            ))
        );
        let price = Spi::get_one::<String>("SELECT price::text FROM public.sales_v");
        assert_eq!(price, Ok(Some("9.99".to_string())));
        // Exists already: an error unless or_replace.
        assert_state(
            "SELECT llm_sql.create_view('public.sales_v', 'SELECT 1 AS id')",
            "42P07",
            "already exists",
        );
        let replaced = Spi::get_one::<String>(
            "SELECT llm_sql.create_view('sales_v', $$SELECT 2::BIGINT AS id, 'y' AS label, 1.5::DECIMAL(6,2) AS price,
                                                   [3] AS tags, {'a': 2} AS meta, DATE '2024-05-02' AS day$$, or_replace => true)",
        );
        assert_eq!(replaced, Ok(Some("public.sales_v".to_string())));
        assert_eq!(Spi::get_one::<i64>("SELECT id FROM sales_v"), Ok(Some(2)));
    }

    #[pg_test]
    fn create_view_quotes_names_and_dedupes_columns() {
        let name = Spi::get_one::<String>(
            r#"SELECT llm_sql.create_view('"Odd View"', 'SELECT 1 AS "a b", 2 AS "a b", $$it''s$$ AS q')"#,
        );
        assert_eq!(name, Ok(Some(r#"public."Odd View""#.to_string())));
        let row = Spi::get_one::<pgrx::JsonB>(r#"SELECT to_jsonb(v) FROM "Odd View" v"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            row.0,
            serde_json::json!({"a b": 1, "a b_1": 2, "q": "it's"})
        );
        assert_state(
            "SELECT llm_sql.create_view('a.b.c.d', 'SELECT 1')",
            "42601",
            "",
        );
        assert_state(
            "SELECT llm_sql.create_view('v2', 'SELECT 1; SELECT 2')",
            "22023",
            "single DuckDB query",
        );
        assert_state(
            "SELECT llm_sql.create_view(NULL, 'SELECT 1')",
            "22004",
            "name must not be NULL",
        );
    }

    #[pg_test]
    fn superuser_install_only_uses_the_local_extension_repository() {
        // An extension that is not shipped with llm_sql: INSTALL must look only in the local
        // directory (no download attempt, which would hang or name a URL here).
        let got = outcome("SELECT llm_sql.execute('INSTALL httpfs')");
        assert!(
            got.contains("Failed to install local extension \"httpfs\""),
            "{got}"
        );
        assert!(
            !got.contains("http://") && !got.contains("https://"),
            "{got}"
        );
        // Shipped extensions load from there.
        Spi::run("SELECT llm_sql.execute('LOAD sqlite')").unwrap();
        let loaded = Spi::get_one::<bool>(
            "SELECT (j->>'loaded')::bool FROM llm_sql.query_json($$SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'sqlite_scanner'$$) AS j",
        );
        assert_eq!(loaded, Ok(Some(true)));
    }

    #[pg_test]
    fn settings_follow_gucs_after_reset() {
        Spi::run("SET llm_sql.duckdb_memory_limit = '300MB'").unwrap();
        Spi::run("SET llm_sql.duckdb_threads = 3").unwrap();
        Spi::run("SELECT llm_sql.duckdb_reset()").unwrap();
        let threads = Spi::get_one::<String>(
            "SELECT value FROM llm_sql.duckdb_settings() WHERE name = 'threads'",
        );
        assert_eq!(threads, Ok(Some("3".to_string())));
        let memory = Spi::get_one::<String>(
            "SELECT value FROM llm_sql.duckdb_settings() WHERE name = 'memory_limit'",
        );
        assert_eq!(memory, Ok(Some("286.1 MiB".to_string())));
        let autoinstall = Spi::get_one::<String>(
            "SELECT value FROM llm_sql.duckdb_settings() WHERE name = 'autoinstall_known_extensions'",
        );
        assert_eq!(autoinstall, Ok(Some("false".to_string())));
        let ext_dir = Spi::get_one::<String>(
            "SELECT value FROM llm_sql.duckdb_settings() WHERE name = 'extension_directory'",
        )
        .unwrap()
        .unwrap();
        assert!(ext_dir.ends_with("/llm_sql/duckdb_extensions"), "{ext_dir}");
        let temp_dir = Spi::get_one::<String>(
            "SELECT value FROM llm_sql.duckdb_settings() WHERE name = 'temp_directory'",
        )
        .unwrap()
        .unwrap();
        let pid = Spi::get_one::<i32>("SELECT pg_backend_pid()")
            .unwrap()
            .unwrap();
        assert!(
            temp_dir.contains(&format!("pgsql_tmp_llm_sql_{pid}_")),
            "{temp_dir}"
        );
    }

    #[pg_test]
    fn bad_settings_give_a_clear_error() {
        Spi::run("SET llm_sql.duckdb_memory_limit = 'lots'").unwrap();
        Spi::run("SELECT llm_sql.duckdb_reset()").unwrap();
        let got = outcome("SELECT * FROM llm_sql.query('SELECT 1') AS t(a int)");
        assert!(got.contains("memory_limit"), "{got}");
        Spi::run("RESET llm_sql.duckdb_memory_limit").unwrap();
        assert_eq!(
            Spi::get_one::<i32>("SELECT a FROM llm_sql.query('SELECT 1 AS a') AS t(a int)"),
            Ok(Some(1))
        );
    }

    #[pg_test]
    fn reset_drops_duckdb_state() {
        Spi::run("SELECT llm_sql.execute('CREATE TABLE kept AS SELECT 1 AS x')").unwrap();
        assert_eq!(
            Spi::get_one::<i32>("SELECT x FROM llm_sql.query('SELECT x FROM kept') AS t(x int)"),
            Ok(Some(1))
        );
        Spi::run("SELECT llm_sql.duckdb_reset()").unwrap();
        assert_state(
            "SELECT * FROM llm_sql.query('SELECT x FROM kept') AS t(x int)",
            "42P01",
            "kept",
        );
    }

    #[pg_test]
    fn settings_are_superuser_only() {
        Spi::run("CREATE ROLE settings_user").unwrap();
        Spi::run("SET ROLE settings_user").unwrap();
        assert_state(
            "SET llm_sql.duckdb_threads = 64",
            "42501",
            "permission denied",
        );
        assert_state(
            "SET llm_sql.duckdb_memory_limit = '100GB'",
            "42501",
            "permission denied",
        );
        assert_state(
            "SET llm_sql.duckdb_extension_directory = '/tmp'",
            "42501",
            "permission denied",
        );
        assert_state(
            "SET llm_sql.no_such_setting = 1",
            "42602",
            "invalid configuration parameter name",
        );
    }

    #[pg_test]
    fn duckdb_errors_have_fitting_sqlstates() {
        assert_state(
            "SELECT * FROM llm_sql.query('SELEC 1') AS t(a int)",
            "42601",
            "Parser Error",
        );
        assert_state(
            "SELECT * FROM llm_sql.query('SELECT * FROM no_such_table') AS t(a int)",
            "42P01",
            "no_such_table",
        );
        assert_state(
            "SELECT * FROM llm_sql.query('SELECT no_such_col FROM range(1)') AS t(a int)",
            "42703",
            "no_such_col",
        );
        assert_state(
            "SELECT * FROM llm_sql.query('SELECT no_such_fn(1)') AS t(a int)",
            "42883",
            "no_such_fn",
        );
        assert_state(
            "SELECT * FROM llm_sql.query($$SELECT 'abc'::INTEGER$$) AS t(a int)",
            "22P02",
            "Conversion Error",
        );
        assert_state(
            "SELECT * FROM llm_sql.query('SELECT 300::TINYINT') AS t(a int)",
            "22003",
            "",
        );
        assert_state(
            "SELECT * FROM llm_sql.query($$SELECT * FROM read_csv('/nonexistent/file.csv')$$) AS t(a int)",
            "58030",
            "IO Error",
        );
        Spi::run("SELECT llm_sql.execute('CREATE TABLE c(id INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v > 0))')").unwrap();
        Spi::run("SELECT llm_sql.execute('INSERT INTO c VALUES (1, 1)')").unwrap();
        assert_state(
            "SELECT llm_sql.execute('INSERT INTO c VALUES (1, 2)')",
            "23505",
            "Constraint Error",
        );
        assert_state(
            "SELECT llm_sql.execute('INSERT INTO c VALUES (2, NULL)')",
            "23502",
            "NOT NULL",
        );
        assert_state(
            "SELECT llm_sql.execute('INSERT INTO c VALUES (3, -1)')",
            "23514",
            "CHECK",
        );
    }

    #[pg_test]
    fn out_of_memory_is_53200_and_the_backend_survives() {
        Spi::run("SET llm_sql.duckdb_memory_limit = '32MB'").unwrap();
        Spi::run("SET llm_sql.duckdb_max_temp_directory_size = '0KB'").unwrap();
        Spi::run("SELECT llm_sql.duckdb_reset()").unwrap();
        assert_state(
            "SELECT * FROM llm_sql.query('SELECT count(DISTINCT i::VARCHAR || ''-padding-padding'') FROM range(20000000) t(i)') AS t(a bigint)",
            "53200",
            "Out of Memory",
        );
    }

    #[pg_test]
    fn unsupported_types_are_named() {
        let got = outcome("SELECT * FROM llm_sql.query('SELECT 1::BIGNUM AS big') AS t(a numeric)");
        assert!(got.starts_with("0A000: "), "{got}");
        assert!(got.contains("BIGNUM"), "{got}");
    }
    #[pg_test]
    fn parameters_are_bound_never_spliced() {
        let row = Spi::get_one::<String>(
            "SELECT concat_ws('|', a, b, c, d, e, f) FROM llm_sql.query(
                'SELECT $1 + 1 AS a, $2 AS b, typeof($3) AS c, $3 AS d, $4 AS e, $5 IS NULL AS f',
                41, 'it''s', 12345678901234567.89, date '2024-02-29', NULL::int)
             AS t(a int, b text, c text, d numeric, e date, f bool)",
        )
        .unwrap();
        assert_eq!(
            row.as_deref(),
            Some("42|it's|DECIMAL(19,2)|12345678901234567.89|2024-02-29|t")
        );
        // A value that looks like SQL stays a value.
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM range(3) WHERE $1 = ''x''',
                                             'x'' OR 1=1 --') AS t(n bigint)"
            )
            .unwrap(),
            Some(0)
        );
        assert_eq!(
            Spi::get_one::<pgrx::JsonB>(
                "SELECT llm_sql.query_json('SELECT $2 AS b, $1 AS a', VARIADIC ARRAY[1, 2])"
            )
            .unwrap()
            .map(|j| j.0.to_string()),
            Some(r#"{"a":1,"b":2}"#.to_string())
        );
        Spi::run(
            "SELECT llm_sql.execute('CREATE OR REPLACE TABLE bound AS SELECT $1::INT AS x, $2 AS y', 7, 'seven')",
        )
        .unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT llm_sql.execute('DELETE FROM bound WHERE x = $1', 7)")
                .unwrap(),
            Some(1)
        );
        // $n without its value says how to pass it; extra values are an error too.
        let missing = outcome("SELECT * FROM llm_sql.query_json('SELECT $1 AS a')");
        assert!(
            missing.starts_with("42P02") && missing.contains("HINT") && missing.contains("bound"),
            "{missing}"
        );
        for (sql, state) in [
            (
                "SELECT * FROM llm_sql.query_json('SELECT $2 AS a', 1)",
                "42P02",
            ),
            (
                "SELECT * FROM llm_sql.query_json('SELECT 1 AS a', 1)",
                "22023",
            ),
            (
                "SELECT * FROM llm_sql.query_json('SELECT $name AS a', 1)",
                "42P02",
            ),
        ] {
            let error = outcome(sql);
            assert!(error.starts_with(state), "{sql}: {error}");
        }
    }

    #[pg_test]
    fn create_view_or_replace_with_other_columns_says_what_to_do() {
        Spi::run("SELECT llm_sql.create_view('replaced', 'SELECT 1 AS a, 2 AS b')").unwrap();
        assert_eq!(
            outcome(
                "SELECT llm_sql.create_view('replaced', 'SELECT 1 AS a, 2 AS b, 3 AS c', or_replace => true)"
            ),
            "ok"
        );
        let error =
            outcome("SELECT llm_sql.create_view('replaced', 'SELECT 1 AS a', or_replace => true)");
        assert!(
            error.starts_with("42P16") && error.contains("DROP VIEW"),
            "{error}"
        );
    }
}
