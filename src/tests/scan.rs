//! The streaming scan that runs llm_sql.query/query_json in FROM.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::outcome;
    use pgrx::prelude::*;

    fn plan(sql: &str) -> String {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
             DECLARE line text; plan text := '';
             BEGIN FOR line IN EXECUTE 'EXPLAIN ' || q LOOP plan := plan || line || E'\\n'; END LOOP;
             RETURN plan; END $f$",
        )
        .unwrap();
        Spi::get_one_with_args::<String>("SELECT pg_temp.plan_of($1)", &[sql.into()])
            .unwrap()
            .unwrap()
    }

    #[pg_test]
    fn from_clause_calls_use_the_streaming_scan() {
        let p = plan("SELECT * FROM llm_sql.query('SELECT 1 AS a') AS t(a int)");
        assert!(p.contains("Custom Scan (DuckDB Scan)"), "{p}");
        assert!(p.contains("DuckDB Query: SELECT 1 AS a"), "{p}");
        let p = plan("SELECT * FROM llm_sql.query_json('SELECT 1 AS a')");
        assert!(p.contains("Custom Scan (DuckDB Scan)"), "{p}");
    }

    #[pg_test]
    fn limit_stops_duckdb_early() {
        // A trillion rows: this only finishes because the scan stops pulling after three.
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM (SELECT * FROM llm_sql.query('SELECT i FROM range(1000000000000) t(i)') AS t(i bigint) LIMIT 3) s",
        );
        assert_eq!(n, Ok(Some(3)));
    }

    #[pg_test]
    fn quals_and_projections_run_on_top() {
        let (n, s) = Spi::get_two::<i64, String>(
            "SELECT count(*), string_agg(upper(name), ',' ORDER BY id) FROM llm_sql.query(
               $$SELECT i AS id, 'n' || i AS name FROM range(100) t(i)$$) AS t(id bigint, name text)
             WHERE id % 25 = 0",
        )
        .unwrap();
        assert_eq!((n, s.as_deref()), (Some(4), Some("N0,N25,N50,N75")));
    }

    #[pg_test]
    fn rescans_rerun_the_query() {
        Spi::run("SET LOCAL enable_hashjoin = off").unwrap();
        Spi::run("SET LOCAL enable_mergejoin = off").unwrap();
        Spi::run("SET LOCAL enable_material = off").unwrap();
        let sql = "SELECT count(*) FROM generate_series(1, 4) g
                   JOIN llm_sql.query('SELECT i FROM range(10) t(i)') AS q(i bigint) ON q.i < g";
        assert!(plan(sql).contains("Nested Loop"));
        assert_eq!(Spi::get_one::<i64>(sql), Ok(Some(1 + 2 + 3 + 4)));
    }

    #[pg_test]
    fn two_streams_in_one_statement() {
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM llm_sql.query('SELECT i FROM range(3000) t(i)') a(i bigint),
                                  llm_sql.query('SELECT i FROM range(3) t(i)') b(i bigint)",
        );
        assert_eq!(n, Ok(Some(9000)));
    }

    #[pg_test]
    fn parameters_and_prepared_statements() {
        let v = Spi::get_one_with_args::<i32>(
            "SELECT a FROM llm_sql.query($1) AS t(a int)",
            &["SELECT 5 AS a".into()],
        );
        assert_eq!(v, Ok(Some(5)));
        Spi::run("PREPARE duck(text) AS SELECT a FROM llm_sql.query($1) AS t(a int)").unwrap();
        assert_eq!(
            Spi::get_one::<i32>("EXECUTE duck('SELECT 6 AS a')"),
            Ok(Some(6))
        );
        Spi::run("DEALLOCATE duck").unwrap();
        let got = outcome("SELECT * FROM llm_sql.query(NULL::text) AS t(a int)");
        assert!(got.starts_with("22004"), "{got}");
    }

    #[pg_test]
    fn error_in_the_middle_of_a_stream_leaves_duckdb_usable() {
        let got = outcome(
            "SELECT count(*) FROM llm_sql.query($$SELECT CASE WHEN i = 5000 THEN error('boom') ELSE i END AS v
                                                 FROM range(10000) t(i)$$) AS t(v bigint)",
        );
        assert!(got.contains("boom"), "{got}");
        // The primary connection was released: session state (a table) is still reachable.
        Spi::run("SELECT llm_sql.execute('CREATE TABLE after_error AS SELECT 1 AS x')").unwrap();
        assert_eq!(
            Spi::get_one::<i32>(
                "SELECT x FROM llm_sql.query('SELECT x FROM after_error') AS t(x int)"
            ),
            Ok(Some(1))
        );
    }

    #[pg_test]
    fn cursor_reads_part_of_a_stream() {
        Spi::run("DECLARE c CURSOR FOR SELECT i FROM llm_sql.query('SELECT i FROM range(1000000000) t(i)') AS t(i bigint)").unwrap();
        let first = Spi::get_one::<i64>("FETCH 1 FROM c");
        assert_eq!(first, Ok(Some(0)));
        // While the cursor keeps its stream open, other DuckDB work goes on.
        assert_eq!(
            Spi::get_one::<i32>("SELECT a FROM llm_sql.query('SELECT 9 AS a') AS t(a int)"),
            Ok(Some(9))
        );
        let next = Spi::get_one::<i64>("FETCH 1 FROM c");
        assert_eq!(next, Ok(Some(1)));
        Spi::run("CLOSE c").unwrap();
    }

    #[pg_test]
    fn lateral_and_select_list_calls_still_work() {
        let s = Spi::get_one::<i64>(
            "SELECT sum(t.a) FROM (VALUES ('SELECT 1 AS a'), ('SELECT 2 AS a')) v(q), LATERAL llm_sql.query(v.q) AS t(a int)",
        );
        assert_eq!(s, Ok(Some(3)));
        let j = Spi::get_one::<pgrx::JsonB>("SELECT llm_sql.query_json('SELECT 1 AS a')")
            .unwrap()
            .unwrap();
        assert_eq!(j.0, serde_json::json!({"a": 1}));
    }

    #[pg_test]
    fn revoked_execute_is_enforced_by_the_scan() {
        Spi::run("CREATE ROLE no_duck").unwrap();
        Spi::run("REVOKE EXECUTE ON FUNCTION llm_sql.query(text) FROM PUBLIC").unwrap();
        Spi::run("SET ROLE no_duck").unwrap();
        let got = outcome("SELECT * FROM llm_sql.query('SELECT 1') AS t(a int)");
        assert!(
            got.starts_with("42501: permission denied for function query"),
            "{got}"
        );
        let got = outcome("SELECT * FROM llm_sql.query_json('SELECT 1')");
        assert_eq!(got, "ok", "query_json keeps its own grant");
    }
}
