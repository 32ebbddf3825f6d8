//! Every DuckDB type arrives as its natural Postgres type, with its exact value and with NULLs.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The Postgres type `llm_sql.create_view` gives the DuckDB expression (its natural type).
    fn natural_type(duck_expr: &str) -> String {
        Spi::run("DROP VIEW IF EXISTS natural_type_probe").unwrap();
        Spi::run(&format!(
            "SELECT llm_sql.create_view('natural_type_probe', $d$SELECT {duck_expr} AS v$d$)"
        ))
        .unwrap();
        Spi::get_one::<String>(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'natural_type_probe'::regclass AND attname = 'v'",
        )
        .unwrap()
        .unwrap()
    }

    /// Asserts that `duck_expr` comes back as `pg_type` (its natural type) equal to `expected`
    /// (a Postgres expression), through llm_sql.query, and that a NULL of it comes back NULL.
    fn check(duck_expr: &str, pg_type: &str, expected: &str) {
        assert_eq!(
            natural_type(duck_expr),
            pg_type,
            "natural type of {duck_expr}"
        );
        let same = Spi::get_one::<bool>(&format!(
            "SELECT v IS NOT DISTINCT FROM ({expected})::{pg_type} \
             FROM llm_sql.query($d$SELECT {duck_expr} AS v$d$) AS t(v {pg_type})"
        ));
        assert_eq!(
            same,
            Ok(Some(true)),
            "value of {duck_expr} as {pg_type}, expected {expected}"
        );
        let null = Spi::get_one::<bool>(&format!(
            "SELECT v IS NULL FROM llm_sql.query($d$SELECT CAST(NULL AS {duck_type}) AS v$d$) AS t(v {pg_type})",
            duck_type = duck_type_of(duck_expr)
        ));
        assert_eq!(null, Ok(Some(true)), "NULL of {duck_expr}");
    }

    /// DuckDB's name for the type of an expression.
    fn duck_type_of(duck_expr: &str) -> String {
        Spi::get_one::<String>(&format!(
            "SELECT t FROM llm_sql.query($d$SELECT typeof({duck_expr}) AS t$d$) AS r(t text)"
        ))
        .unwrap()
        .unwrap()
    }

    fn text_of(sql: &str) -> String {
        Spi::get_one::<String>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn boolean() {
        check("true", "boolean", "true");
        check("false", "boolean", "false");
    }

    #[pg_test]
    fn signed_integers() {
        check("(-128)::TINYINT", "smallint", "-128");
        check("(-32768)::SMALLINT", "smallint", "-32768");
        check("2147483647::INTEGER", "integer", "2147483647");
        check(
            "(-9223372036854775808)::BIGINT",
            "bigint",
            "-9223372036854775808",
        );
    }

    #[pg_test]
    fn unsigned_integers() {
        check("255::UTINYINT", "smallint", "255");
        check("65535::USMALLINT", "integer", "65535");
        check("4294967295::UINTEGER", "bigint", "4294967295");
        check(
            "18446744073709551615::UBIGINT",
            "numeric",
            "18446744073709551615",
        );
    }

    #[pg_test]
    fn hugeint() {
        check(
            "(-170141183460469231731687303715884105728)::HUGEINT",
            "numeric",
            "-170141183460469231731687303715884105728",
        );
        check(
            "340282366920938463463374607431768211455::UHUGEINT",
            "numeric",
            "340282366920938463463374607431768211455",
        );
    }

    #[pg_test]
    fn floats() {
        check("1.5::FLOAT", "real", "1.5");
        check("(-0.1)::DOUBLE", "double precision", "-0.1");
        check("'NaN'::DOUBLE", "double precision", "'NaN'");
        check("'-inf'::FLOAT", "real", "'-Infinity'");
    }

    #[pg_test]
    fn decimals_keep_precision_and_scale() {
        // DuckDB stores DECIMAL in 16, 32, 64 or 128 bits depending on the width.
        check("12.34::DECIMAL(4,2)", "numeric(4,2)", "12.34");
        check(
            "(-1234567.891)::DECIMAL(10,3)",
            "numeric(10,3)",
            "-1234567.891",
        );
        check(
            "123456789012.345678::DECIMAL(18,6)",
            "numeric(18,6)",
            "123456789012.345678",
        );
        check(
            "(-1234567890123456789012345678.0123456789)::DECIMAL(38,10)",
            "numeric(38,10)",
            "-1234567890123456789012345678.0123456789",
        );
        check("0.05::DECIMAL(3,2)", "numeric(3,2)", "0.05");
    }

    #[pg_test]
    fn varchar_and_unicode() {
        check("'héllo wörld ✓ 日本'", "text", "'héllo wörld ✓ 日本'");
        check("''", "text", "''");
        check("repeat('x', 100000)", "text", "repeat('x', 100000)");
    }

    #[pg_test]
    fn blob() {
        check("'\\x00\\xFFab'::BLOB", "bytea", "'\\x00ff6162'::bytea");
    }

    #[pg_test]
    fn date() {
        check("DATE '2024-02-29'", "date", "'2024-02-29'");
        check("DATE '1970-01-01'", "date", "'1970-01-01'");
        check("DATE '0044-03-15'", "date", "'0044-03-15'");
        check("'infinity'::DATE", "date", "'infinity'");
        check("'-infinity'::DATE", "date", "'-infinity'");
    }

    #[pg_test]
    fn time() {
        check(
            "TIME '23:59:59.999999'",
            "time without time zone",
            "'23:59:59.999999'",
        );
        check(
            "'12:30:00+05:30'::TIMETZ",
            "time with time zone",
            "'12:30:00+05:30'",
        );
    }

    #[pg_test]
    fn timestamps() {
        check(
            "TIMESTAMP '2024-01-02 03:04:05.123456'",
            "timestamp without time zone",
            "'2024-01-02 03:04:05.123456'",
        );
        check(
            "'2024-01-02 03:04:05'::TIMESTAMP_S",
            "timestamp without time zone",
            "'2024-01-02 03:04:05'",
        );
        check(
            "'2024-01-02 03:04:05.123'::TIMESTAMP_MS",
            "timestamp without time zone",
            "'2024-01-02 03:04:05.123'",
        );
        check(
            "'2024-01-02 03:04:05.123456789'::TIMESTAMP_NS",
            "timestamp without time zone",
            "'2024-01-02 03:04:05.123456'",
        );
        check(
            "'infinity'::TIMESTAMP",
            "timestamp without time zone",
            "'infinity'",
        );
        check(
            "TIMESTAMPTZ '2024-01-02 03:04:05+02'",
            "timestamp with time zone",
            "'2024-01-02 01:04:05+00'",
        );
    }

    #[pg_test]
    fn interval() {
        check(
            "INTERVAL '1 year 2 months 3 days 04:05:06.5'",
            "interval",
            "'1 year 2 mons 3 days 04:05:06.5'",
        );
        check("INTERVAL '-36 hours'", "interval", "'-36 hours'");
    }

    #[pg_test]
    fn uuid() {
        check(
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID",
            "uuid",
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        );
        check(
            "'00000000-0000-0000-0000-000000000001'::UUID",
            "uuid",
            "'00000000-0000-0000-0000-000000000001'",
        );
        check(
            "'ffffffff-ffff-ffff-ffff-ffffffffffff'::UUID",
            "uuid",
            "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        );
    }

    #[pg_test]
    fn json() {
        check(
            "'{\"a\": [1, 2.5, null], \"b\": \"x\"}'::JSON",
            "jsonb",
            "'{\"a\": [1, 2.5, null], \"b\": \"x\"}'",
        );
    }

    #[pg_test]
    fn enum_is_text() {
        Spi::run("SELECT llm_sql.execute($$CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')$$)")
            .unwrap();
        check("'happy'::mood", "text", "'happy'");
    }

    #[pg_test]
    fn bit() {
        check("'101100111'::BIT", "bit varying", "B'101100111'");
    }

    #[pg_test]
    fn lists_of_scalars_are_arrays() {
        check("[1, NULL, 3]", "integer[]", "'{1,NULL,3}'");
        check("['a', 'b c', NULL]", "text[]", "ARRAY['a', 'b c', NULL]");
        check(
            "[1.25, 2.50]::DECIMAL(5,2)[]",
            "numeric(5,2)[]",
            "'{1.25,2.50}'",
        );
        check("[DATE '2024-01-01']", "date[]", "'{2024-01-01}'");
        check("[]::INTEGER[]", "integer[]", "'{}'");
    }

    #[pg_test]
    fn nested_lists_and_lists_of_structs_are_jsonb() {
        check("[[1, 2], [3]]", "jsonb", "'[[1, 2], [3]]'");
        check(
            "[{'a': 1}, {'a': 2}]",
            "jsonb",
            "'[{\"a\": 1}, {\"a\": 2}]'",
        );
    }

    #[pg_test]
    fn fixed_size_arrays_cast_to_vector() {
        check("[1.0, 2.0, 3.5]::FLOAT[3]", "real[]", "'{1,2,3.5}'");
        let v = text_of(
            "SELECT v::text FROM llm_sql.query('SELECT [1.0, 2.0, 3.5]::FLOAT[3] AS v') AS t(v vector(3))",
        );
        assert_eq!(v, "[1,2,3.5]");
        let d = Spi::get_one::<f64>(
            "SELECT v <-> '[1,2,4.5]'::vector FROM llm_sql.query('SELECT [1.0, 2.0, 3.5]::FLOAT[3] AS v') AS t(v vector)",
        );
        assert_eq!(d, Ok(Some(1.0)));
    }

    #[pg_test]
    fn struct_map_union_are_jsonb() {
        check(
            "{'name': 'x', 'n': 1, 'tags': ['a'], 'at': DATE '2024-01-02'}",
            "jsonb",
            "'{\"name\": \"x\", \"n\": 1, \"tags\": [\"a\"], \"at\": \"2024-01-02\"}'",
        );
        check(
            "MAP {'k1': 10, 'k2': NULL}",
            "jsonb",
            "'{\"k1\": 10, \"k2\": null}'",
        );
        check("MAP {1: 'one'}", "jsonb", "'{\"1\": \"one\"}'");
        check(
            "union_value(num := 2)::UNION(num INTEGER, str VARCHAR)",
            "jsonb",
            "'2'",
        );
        check(
            "union_value(str := 'a')::UNION(num INTEGER, str VARCHAR)",
            "jsonb",
            "'\"a\"'",
        );
    }

    #[pg_test]
    fn untyped_null_arrives_as_null() {
        for pg_type in ["text", "integer", "bigint", "numeric"] {
            let n = Spi::get_one::<bool>(&format!(
                "SELECT v IS NULL FROM llm_sql.query('SELECT NULL AS v') AS t(v {pg_type})"
            ));
            assert_eq!(n, Ok(Some(true)), "NULL as {pg_type}");
        }
    }

    #[pg_test]
    fn many_rows_and_nulls_across_chunks() {
        // 5000 rows span three DuckDB chunks; every third value is NULL.
        let (count, nulls, sum) = Spi::get_three::<i64, i64, i64>(
            "SELECT count(*), count(*) FILTER (WHERE v IS NULL), sum(v)::bigint FROM llm_sql.query(
                'SELECT CASE WHEN i % 3 = 0 THEN NULL ELSE i END AS v FROM range(5000) t(i)') AS t(v bigint)",
        )
        .unwrap();
        assert_eq!(count, Some(5000));
        assert_eq!(nulls, Some(1667));
        let expected: i64 = (0..5000i64).filter(|i| i % 3 != 0).sum();
        assert_eq!(sum, Some(expected));
    }

    #[pg_test]
    fn query_json_rows() {
        let rows = Spi::get_one::<pgrx::JsonB>(
            "SELECT jsonb_agg(j ORDER BY j->>'i') FROM llm_sql.query_json(
                $$SELECT i, 'v' || i AS s, [i, i + 1] AS l, {'x': i} AS st, i / 2 AS d, NULL AS n,
                         DATE '2024-01-01' + i::INTEGER AS day FROM range(2) t(i)$$) AS j",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            rows.0,
            serde_json::json!([
                {"i": 0, "s": "v0", "l": [0, 1], "st": {"x": 0}, "d": 0, "n": null, "day": "2024-01-01"},
                {"i": 1, "s": "v1", "l": [1, 2], "st": {"x": 1}, "d": 0.5, "n": null, "day": "2024-01-02"}
            ])
        );
    }

    #[pg_test]
    fn query_json_keeps_duplicate_column_names() {
        let row = Spi::get_one::<pgrx::JsonB>(
            "SELECT * FROM llm_sql.query_json('SELECT 1 AS a, 2 AS a')",
        )
        .unwrap()
        .unwrap();
        assert_eq!(row.0, serde_json::json!({"a": 1, "a_1": 2}));
    }

    #[pg_test]
    fn query_json_decimals_and_big_integers_are_exact() {
        let row = Spi::get_one::<String>(
            "SELECT j::text FROM llm_sql.query_json(
               'SELECT 12345678901234567890.123456789::DECIMAL(38,9) AS d, 170141183460469231731687303715884105727::HUGEINT AS h') j",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            row,
            r#"{"d": 12345678901234567890.123456789, "h": 170141183460469231731687303715884105727}"#
        );
    }
}
