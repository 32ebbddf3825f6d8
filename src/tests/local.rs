//! The local database as DuckDB catalog `pg`: types, privileges, row-level security, the
//! transaction's own writes, errors while scanning, joins with attachments.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::outcome;
    use pgrx::prelude::*;

    fn json(duck_sql: &str) -> String {
        Spi::get_one::<String>(&format!(
            "SELECT string_agg(j::text, ' ') FROM llm_sql.query_json($d${duck_sql}$d$) j"
        ))
        .unwrap()
        .unwrap_or_default()
    }

    fn count(duck_sql: &str) -> Result<Option<i64>, pgrx::spi::Error> {
        Spi::get_one::<i64>(&format!(
            "SELECT n FROM llm_sql.query($d${duck_sql}$d$) AS t(n bigint)"
        ))
    }

    #[pg_test]
    fn numeric_is_exact_or_an_error_never_a_double() {
        Spi::run(
            "CREATE TABLE loc_money (id int, amount numeric, wide numeric(50,2), tiny numeric(3,5),
                                     tens numeric(4,-2));
             INSERT INTO loc_money VALUES
               (1, 12345678901234567.89, 123456789012345678901234567890123.45, 0.00123, 123400),
               (2, 40.00, -1.5, 0, 0),
               (3, NULL, NULL, NULL, NULL)",
        )
        .unwrap();
        // Every value comes back equal to Postgres's own, sums too.
        let same = |duck_sql: &str, pg_sql: &str| {
            Spi::get_one::<bool>(&format!(
                "SELECT (SELECT array_agg(x ORDER BY id) FROM llm_sql.query($d${duck_sql}$d$)
                           AS t(id int, x numeric))
                        IS NOT DISTINCT FROM (SELECT array_agg(x ORDER BY id) FROM ({pg_sql}) p)"
            ))
            .unwrap()
            .unwrap()
        };
        for column in ["amount", "wide", "tiny", "tens"] {
            assert!(
                same(
                    &format!("SELECT id, {column} FROM pg.public.loc_money"),
                    &format!("SELECT id, {column} AS x FROM loc_money")
                ),
                "{column}"
            );
            assert!(
                same(
                    &format!("SELECT 0, sum({column}) FROM pg.public.loc_money"),
                    &format!("SELECT 0 AS id, sum({column}) AS x FROM loc_money")
                ),
                "sum({column})"
            );
        }
        assert!(json("SELECT amount FROM pg.public.loc_money WHERE id = 1")
            .contains("12345678901234567.890000000"));
        // A value DECIMAL(38,9) cannot hold exactly is an error that names the column and the
        // setting, unless the caller accepts DOUBLE.
        for value in ["1.0000000001", "'NaN'", "1e30"] {
            Spi::run(&format!(
                "UPDATE loc_money SET amount = {value} WHERE id = 3"
            ))
            .unwrap();
            let error = outcome(
                "SELECT * FROM llm_sql.query('SELECT sum(amount) FROM pg.public.loc_money') AS t(s numeric)",
            );
            assert!(
                error.starts_with("22003")
                    && error.contains("\"amount\"")
                    && error.contains("llm_sql.numeric_as_double"),
                "{value}: {error}"
            );
        }
        Spi::run("SET LOCAL llm_sql.numeric_as_double = on").unwrap();
        assert!(
            json("SELECT typeof(amount) t FROM pg.public.loc_money LIMIT 1").contains("DOUBLE")
        );
        assert_eq!(
            outcome("SELECT * FROM llm_sql.query('SELECT sum(amount) FROM pg.public.loc_money') AS t(s float8)"),
            "ok"
        );
    }

    #[pg_test]
    fn reads_local_tables_with_their_types() {
        Spi::run(
            "CREATE TABLE loc_types (i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b bool,
               t text, v varchar(5), c char(3), n numeric(12,3), nu numeric, d date,
               ts timestamp, tz timestamptz, u uuid, j jsonb, bt bytea, arr int[]);
             INSERT INTO loc_types VALUES
               (1, 2, 3, 1.5, 2.25, true, 'héllo', 'ab', 'x', 123456789.125, 1e20, '2024-02-29',
                '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
                '{\"k\": [1, 2]}', '\\xdeadbeef', '{1,2}'),
               (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL);",
        )
        .unwrap();
        let types = json(
            "SELECT typeof(i2) i2, typeof(i4) i4, typeof(i8) i8, typeof(f4) f4, typeof(f8) f8, typeof(b) b,
                    typeof(t) t, typeof(n) n, typeof(nu) nu, typeof(d) d, typeof(ts) ts, typeof(tz) tz,
                    typeof(u) u, typeof(j) j, typeof(bt) bt FROM pg.public.loc_types LIMIT 1",
        );
        for expected in [
            "\"i2\": \"SMALLINT\"",
            "\"i8\": \"BIGINT\"",
            "\"f4\": \"FLOAT\"",
            "\"n\": \"DECIMAL(12,3)\"",
            "\"nu\": \"DECIMAL(38,9)\"",
            "\"d\": \"DATE\"",
            "\"ts\": \"TIMESTAMP\"",
            "\"tz\": \"TIMESTAMP WITH TIME ZONE\"",
            "\"u\": \"UUID\"",
            "\"j\": \"JSON\"",
            "\"bt\": \"BLOB\"",
        ] {
            assert!(types.contains(expected), "{expected} in {types}");
        }
        // Every value comes back as Postgres has it (compared in Postgres, after the round trip).
        let same = Spi::get_one::<bool>(
            "SELECT bool_and(r.i2 IS NOT DISTINCT FROM l.i2 AND r.i8 IS NOT DISTINCT FROM l.i8
                    AND r.f8 IS NOT DISTINCT FROM l.f8 AND r.b IS NOT DISTINCT FROM l.b
                    AND r.t IS NOT DISTINCT FROM l.t AND r.c IS NOT DISTINCT FROM l.c::text
                    AND r.n IS NOT DISTINCT FROM l.n AND r.d IS NOT DISTINCT FROM l.d
                    AND r.ts IS NOT DISTINCT FROM l.ts AND r.tz IS NOT DISTINCT FROM l.tz
                    AND r.u IS NOT DISTINCT FROM l.u AND r.j IS NOT DISTINCT FROM l.j
                    AND r.bt IS NOT DISTINCT FROM l.bt AND r.arr IS NOT DISTINCT FROM l.arr::text)
             FROM llm_sql.query('SELECT i2, i8, f8, b, t, c, n, d, ts, tz, u, j, bt, arr, i4 FROM pg.public.loc_types')
                  AS r(i2 int2, i8 int8, f8 float8, b bool, t text, c text, n numeric, d date,
                       ts timestamp, tz timestamptz, u uuid, j jsonb, bt bytea, arr text, i4 int4)
             JOIN loc_types l ON r.i4 IS NOT DISTINCT FROM l.i4",
        );
        assert_eq!(same, Ok(Some(true)));
        assert_eq!(
            count("SELECT count(*) FROM pg.public.loc_types"),
            Ok(Some(2))
        );
    }

    #[pg_test]
    fn reads_edge_values_exactly_from_tables_and_views() {
        // Every DECIMAL width DuckDB stores differently (2, 4, 8 and 16 bytes), signs and
        // fractions, infinities, trailing blanks, long (TOASTed) text, dropped columns.
        Spi::run(
            "CREATE TABLE loc_edge (id int, gone int, d date, ts timestamp, tz timestamptz,
               n4 numeric(4,1), n9 numeric(9,3), n18 numeric(18,2), n38 numeric(38,0),
               n38s numeric(38,10), nu numeric, c char(6), nm name, o oid, t text, bt bytea,
               u uuid, j json);
             INSERT INTO loc_edge VALUES
               (1, 0, 'infinity', 'infinity', 'infinity', 999.9, 999999.999,
                9999999999999999.99, 99999999999999999999999999999999999999,
                9999999999999999999999999999.9999999999, 12345678901234567890123456789.5,
                'ab', 'pg_class', 4294967295, repeat('long text ', 100000), '', 
                'ffffffff-ffff-ffff-ffff-ffffffffffff', '{\"a\": [1, 2.50]}'),
               (2, 0, '-infinity', '-infinity', '-infinity', -999.9, -0.001, -0.01,
                -99999999999999999999999999999999999999, -0.0000000001, -0.000000001,
                '  x   ', '', 0, '', '\\x00ff', '00000000-0000-0000-0000-000000000000', 'null'),
               (3, 0, '4713-11-24 BC', '4713-11-24 00:00:00 BC', '2000-01-01 00:00:00+00', 0,
                0, 0, 0, 0, 0, '', 'x', 1, 'é', '\\x', '7fffffff-0000-0000-8000-000000000001',
                '1'),
               (4, 0, '1970-01-01', '1969-12-31 23:59:59.999999', '1970-01-01 00:00:00.000001+00',
                0.1, 1.5, 12.34, 1, 1.5, 10000, 'abcdef', 'abc', 42, 'x', '\\x01',
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\"s\"'),
               (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL);
             ALTER TABLE loc_edge DROP COLUMN gone;
             CREATE VIEW loc_edge_view AS SELECT * FROM loc_edge;",
        )
        .unwrap();
        for relation in ["loc_edge", "loc_edge_view"] {
            let same = Spi::get_one::<i64>(&format!(
                "SELECT count(*) FILTER (WHERE r.d IS NOT DISTINCT FROM l.d
                        AND r.ts IS NOT DISTINCT FROM l.ts AND r.tz IS NOT DISTINCT FROM l.tz
                        AND r.n4 IS NOT DISTINCT FROM l.n4 AND r.n9 IS NOT DISTINCT FROM l.n9
                        AND r.n18 IS NOT DISTINCT FROM l.n18 AND r.n38 IS NOT DISTINCT FROM l.n38
                        AND r.n38s IS NOT DISTINCT FROM l.n38s AND r.nu IS NOT DISTINCT FROM l.nu
                        AND r.c IS NOT DISTINCT FROM l.c::text AND r.nm IS NOT DISTINCT FROM l.nm::text
                        AND r.o IS NOT DISTINCT FROM l.o::int8 AND r.t IS NOT DISTINCT FROM l.t
                        AND r.bt IS NOT DISTINCT FROM l.bt AND r.u IS NOT DISTINCT FROM l.u
                        AND r.j::text IS NOT DISTINCT FROM l.j::jsonb::text)
                 FROM llm_sql.query('SELECT * FROM pg.public.{relation}')
                      AS r(id int, d date, ts timestamp, tz timestamptz, n4 numeric, n9 numeric,
                           n18 numeric, n38 numeric, n38s numeric, nu numeric, c text, nm text,
                           o int8, t text, bt bytea, u uuid, j jsonb)
                 JOIN loc_edge l USING (id)"
            ));
            assert_eq!(same, Ok(Some(5)), "{relation}");
        }
        // DuckDB orders and compares them as Postgres does.
        assert!(
            json("SELECT min(u)::text AS lo, max(u)::text AS hi FROM pg.public.loc_edge")
                .contains("\"lo\": \"00000000-0000-0000-0000-000000000000\"")
        );
    }

    #[pg_test]
    fn sees_the_transactions_own_writes_and_the_search_path() {
        Spi::run("CREATE TABLE loc_tx AS SELECT g AS id FROM generate_series(1, 10) g").unwrap();
        assert_eq!(count("SELECT count(*) FROM pg.public.loc_tx"), Ok(Some(10)));
        Spi::run("INSERT INTO loc_tx SELECT g FROM generate_series(11, 15) g").unwrap();
        assert_eq!(count("SELECT count(*) FROM pg.public.loc_tx"), Ok(Some(15)));
        Spi::run("CREATE SCHEMA loc_other; CREATE TABLE loc_other.loc_tx AS SELECT 1 AS id")
            .unwrap();
        // Two-part names follow search_path.
        assert_eq!(count("SELECT count(*) FROM pg.loc_tx"), Ok(Some(15)));
        Spi::run("SET LOCAL search_path = loc_other, public").unwrap();
        assert_eq!(count("SELECT count(*) FROM pg.loc_tx"), Ok(Some(1)));
        assert_eq!(
            count("SELECT count(*) FROM pg.loc_other.loc_tx"),
            Ok(Some(1))
        );
        let got =
            outcome("SELECT * FROM llm_sql.query_json('SELECT * FROM pg.public.no_such_table')");
        assert!(
            got.starts_with("42P01") && got.contains("pg.public.no_such_table"),
            "{got}"
        );
    }

    #[pg_test]
    fn reads_as_the_calling_role_with_privileges_and_row_level_security() {
        Spi::run(
            "CREATE TABLE loc_secret (id int, owner_name text, salary int);
             INSERT INTO loc_secret SELECT g, CASE WHEN g <= 3 THEN 'loc_alice' ELSE 'someone' END, g * 1000
               FROM generate_series(1, 10) g;
             CREATE ROLE loc_alice; CREATE ROLE loc_bob;
             GRANT SELECT (id, owner_name) ON loc_secret TO loc_alice;
             ALTER TABLE loc_secret ENABLE ROW LEVEL SECURITY;
             CREATE POLICY mine ON loc_secret FOR SELECT USING (owner_name = current_user);",
        )
        .unwrap();
        Spi::run("SET ROLE loc_bob").unwrap();
        let got = outcome(
            "SELECT * FROM llm_sql.query_json('SELECT count(*) FROM pg.public.loc_secret')",
        );
        assert!(
            got.starts_with("42501") && got.contains("loc_secret"),
            "{got}"
        );
        // The backend is fine afterwards.
        assert_eq!(count("SELECT 41 + 1"), Ok(Some(42)));
        Spi::run("SET ROLE loc_alice").unwrap();
        // Row-level security: alice sees her 3 rows, through the columns she may read.
        assert_eq!(
            count("SELECT count(id) FROM pg.public.loc_secret"),
            Ok(Some(3))
        );
        let got = outcome(
            "SELECT * FROM llm_sql.query_json('SELECT sum(salary) FROM pg.public.loc_secret')",
        );
        assert!(got.starts_with("42501"), "{got}");
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM pg.public.loc_secret"),
            Ok(Some(10))
        );
        // Without row-level security, column privileges hold as in Postgres: the columns
        // granted, and count(*) with any one of them.
        Spi::run("ALTER TABLE loc_secret DISABLE ROW LEVEL SECURITY; SET ROLE loc_alice").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM pg.public.loc_secret"),
            Ok(Some(10))
        );
        assert_eq!(
            count("SELECT max(id) FROM pg.public.loc_secret"),
            Ok(Some(10))
        );
        let got = outcome(
            "SELECT * FROM llm_sql.query_json('SELECT max(salary) FROM pg.public.loc_secret')",
        );
        assert!(
            got.starts_with("42501") && got.contains("loc_secret"),
            "{got}"
        );
        Spi::run("RESET ROLE").unwrap();
    }

    #[pg_test]
    fn an_error_while_scanning_is_a_postgres_error_and_the_backend_goes_on() {
        // Postgres's last year fits a Postgres timestamp but not DuckDB's.
        Spi::run(
            "CREATE TABLE loc_bad AS SELECT '294276-12-31 23:59:59'::timestamp AS ts;
             CREATE TABLE loc_fine AS SELECT 1 AS x",
        )
        .unwrap();
        let got = outcome("SELECT * FROM llm_sql.query_json('SELECT * FROM pg.public.loc_bad')");
        // The scan's Postgres error, raised again once DuckDB has stopped.
        assert!(
            got.starts_with("22008") && got.contains("\"ts\"") && got.contains("loc_bad"),
            "{got}"
        );
        assert_eq!(
            count("SELECT count(*) FROM pg.public.loc_fine"),
            Ok(Some(1))
        );
    }

    #[pg_test]
    fn joins_local_tables_with_attachments_and_streams_with_limit() {
        Spi::run(
            "CREATE TABLE loc_users AS SELECT g AS id, 'u' || g AS name FROM generate_series(1, 5000) g",
        )
        .unwrap();
        let path = format!("/tmp/llm_sql_local_{}.sqlite", std::process::id());
        let _ = std::fs::remove_file(&path);
        Spi::run(&format!(
            "SELECT llm_sql.execute($d$LOAD sqlite; ATTACH '{path}' AS mk (TYPE sqlite);
             CREATE TABLE mk.scores AS SELECT range * 2 AS id, range AS score FROM range(1, 1001); DETACH mk$d$)"
        ))
        .unwrap();
        Spi::run(&format!("SELECT llm_sql.attach('loc_scores', '{path}')")).unwrap();
        assert_eq!(
            count("SELECT count(*) FROM pg.public.loc_users u JOIN loc_scores.scores s USING (id)"),
            Ok(Some(1000))
        );
        // A LIMIT in Postgres stops the scan early; the next query still works.
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT count(*) FROM (SELECT * FROM llm_sql.query('SELECT id FROM pg.public.loc_users') AS t(id int) LIMIT 3) s"
            ),
            Ok(Some(3))
        );
        assert_eq!(
            count("SELECT max(id) FROM pg.public.loc_users"),
            Ok(Some(5000))
        );
    }
}
