//! Attachments inside one backend: SQLite and DuckDB files, every bad input, who may attach
//! and use what, and the functions that would reach around attachments. (Remote servers,
//! passwords and persistence across sessions are tested in client_tests/tests/attachments.rs.)

#[pgrx::pg_schema]
mod tests {
    use crate::tests::outcome;
    use pgrx::prelude::*;

    /// A path under /tmp unique to this test backend.
    fn temp_path(name: &str) -> String {
        format!("/tmp/llm_sql_attach_{}_{name}", std::process::id())
    }

    /// Writes a SQLite file with table `t(id, name)` of `rows` rows, as the superuser.
    fn sqlite_file(name: &str, rows: i64) -> String {
        let path = temp_path(name);
        let _ = std::fs::remove_file(&path);
        let quoted = path.replace('\'', "''");
        Spi::run(&format!(
            "SELECT llm_sql.execute($d$LOAD sqlite; ATTACH '{quoted}' AS mk (TYPE sqlite);
             CREATE TABLE mk.t AS SELECT range AS id, 'n' || range AS name FROM range({rows});
             DETACH mk$d$)"
        ))
        .unwrap();
        path
    }

    fn attach(alias: &str, dsn: &str, extra: &str) -> String {
        outcome(&format!(
            "SELECT llm_sql.attach({}, {}{extra})",
            literal(alias),
            literal(dsn)
        ))
    }

    fn literal(text: &str) -> String {
        format!("'{}'", text.replace('\'', "''"))
    }

    fn count(duck_sql: &str) -> Result<Option<i64>, pgrx::spi::Error> {
        Spi::get_one::<i64>(&format!(
            "SELECT n FROM llm_sql.query($d${duck_sql}$d$) AS t(n bigint)"
        ))
    }

    fn aliases() -> Vec<String> {
        Spi::get_one::<Vec<String>>(
            "SELECT coalesce(array_agg(alias ORDER BY alias), '{}') FROM llm_sql.attachments()",
        )
        .unwrap()
        .unwrap()
    }

    fn as_role(role: &str, grants: &str) {
        Spi::run(&format!("CREATE ROLE {role} {grants}")).unwrap();
        Spi::run(&format!("SET ROLE {role}")).unwrap();
    }

    #[pg_test]
    fn attaches_queries_and_detaches_a_sqlite_file() {
        let path = sqlite_file("crm.sqlite", 800);
        let reply = Spi::get_one::<pgrx::JsonB>(&format!(
            "SELECT llm_sql.attach('crm', {})",
            literal(&path)
        ))
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(reply["status"], "attached");
        assert_eq!(reply["alias"], "crm");
        assert_eq!(reply["type"], "sqlite");
        assert_eq!(count("SELECT count(*) FROM crm.t"), Ok(Some(800)));
        assert_eq!(
            count("SELECT count(*) FROM crm.main.t WHERE id < 10"),
            Ok(Some(10))
        );
        let row = Spi::get_three::<String, bool, bool>(
            "SELECT type, read_only, attached_in_session FROM llm_sql.attachments() WHERE alias = 'crm'",
        )
        .unwrap();
        assert_eq!(row, (Some("sqlite".into()), Some(true), Some(true)));
        // Read-only by default: DuckDB refuses writes.
        let got = outcome("SELECT llm_sql.execute('INSERT INTO crm.t VALUES (1, ''x'')')");
        assert!(
            got.contains("read-only") || got.contains("read only"),
            "{got}"
        );

        assert_eq!(
            Spi::get_one::<bool>("SELECT llm_sql.detach('crm')"),
            Ok(Some(true))
        );
        assert!(aliases().is_empty());
        let got = outcome("SELECT * FROM llm_sql.query_json('SELECT count(*) FROM crm.t')");
        assert!(
            got.starts_with("42P01") || got.starts_with("3F000"),
            "{got}"
        );
        assert!(outcome("SELECT llm_sql.detach('crm')").starts_with("42704"));
        assert_eq!(
            Spi::get_one::<bool>("SELECT llm_sql.detach('crm', if_exists => true)"),
            Ok(Some(false))
        );
    }

    #[pg_test]
    fn attaches_a_duckdb_file_read_write_and_infers_types() {
        let path = temp_path("warehouse.duckdb");
        let _ = std::fs::remove_file(&path);
        Spi::run(&format!(
            "SELECT llm_sql.execute($d$ATTACH '{path}' AS mk; CREATE TABLE mk.sales AS SELECT range AS id FROM range(42); DETACH mk$d$)"
        ))
        .unwrap();
        assert_eq!(attach("wh", &path, ", read_only => false"), "ok");
        assert_eq!(count("SELECT count(*) FROM wh.sales"), Ok(Some(42)));
        Spi::run("SELECT llm_sql.execute('INSERT INTO wh.sales VALUES (100)')").unwrap();
        assert_eq!(count("SELECT count(*) FROM wh.sales"), Ok(Some(43)));
        assert_eq!(
            Spi::get_one::<String>("SELECT type FROM llm_sql.attachments() WHERE alias = 'wh'"),
            Ok(Some("duckdb".into()))
        );
        Spi::run("SELECT llm_sql.detach('wh')").unwrap();
    }

    #[pg_test]
    fn every_bad_input_is_a_clear_error_and_leaves_nothing_behind() {
        let good = sqlite_file("good.sqlite", 3);
        let corrupt = temp_path("corrupt.sqlite");
        std::fs::write(&corrupt, "this is not a SQLite database ".repeat(200)).unwrap();
        let directory = temp_path("dir.sqlite");
        let _ = std::fs::create_dir(&directory);
        assert_eq!(attach("dup", &good, ""), "ok");
        let cases: Vec<(String, &str)> = vec![
            (
                format!("SELECT llm_sql.attach(NULL, {})", literal(&good)),
                "22004",
            ),
            ("SELECT llm_sql.attach('a', NULL)".into(), "22004"),
            (
                format!(
                    "SELECT llm_sql.attach('a', {}, read_only => NULL)",
                    literal(&good)
                ),
                "22004",
            ),
            ("SELECT llm_sql.attach('a', '   ')".into(), "22023"),
            (
                format!("SELECT llm_sql.attach('', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('Crm', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('1crm', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('a-b', {})", literal(&good)),
                "42602",
            ),
            (
                format!(
                    "SELECT llm_sql.attach('{}', {})",
                    "a".repeat(64),
                    literal(&good)
                ),
                "42602",
            ),
            (
                format!(
                    "SELECT llm_sql.attach('x''); COPY t TO ''/tmp/x''; --', {})",
                    literal(&good)
                ),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('memory', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('pg', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('pg_stuff', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('llm_sql', {})", literal(&good)),
                "42602",
            ),
            (
                format!(
                    "SELECT llm_sql.attach('information_schema', {})",
                    literal(&good)
                ),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('select', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('table', {})", literal(&good)),
                "42602",
            ),
            (
                format!("SELECT llm_sql.attach('dup', {})", literal(&good)),
                "42710",
            ),
            (
                format!(
                    "SELECT llm_sql.attach('a', {}, type => 'oracle')",
                    literal(&good)
                ),
                "22023",
            ),
            (
                "SELECT llm_sql.attach('a', '/tmp/data.csv')".into(),
                "22023",
            ),
            (
                format!(
                    "SELECT llm_sql.attach('a', {})",
                    literal(&temp_path("missing.sqlite"))
                ),
                "58P01",
            ),
            (
                format!("SELECT llm_sql.attach('a', {})", literal(&directory)),
                "42809",
            ),
            (
                format!("SELECT llm_sql.attach('a', {})", literal(&corrupt)),
                "",
            ),
            (
                "SELECT llm_sql.attach('a', 'host=127.0.0.1 port=1 dbname=nothing')".into(),
                "08006",
            ),
        ];
        for (sql, state) in cases {
            let got = outcome(&sql);
            assert_ne!(got, "ok", "{sql} should fail");
            assert!(
                got.starts_with(state),
                "{sql}\n  expected {state}, got: {got}"
            );
            assert_eq!(
                aliases(),
                vec!["dup".to_string()],
                "{sql} left something behind"
            );
        }
        // The corrupt file's error says what is wrong with it.
        let got = outcome(&format!(
            "SELECT llm_sql.attach('a', {})",
            literal(&corrupt)
        ));
        assert!(got.contains("not a database"), "{got}");
        // The attachment that was there still works.
        assert_eq!(count("SELECT count(*) FROM dup.t"), Ok(Some(3)));
    }

    #[pg_test]
    fn dsn_and_alias_cannot_inject_into_duckdb() {
        let marker = temp_path("pwned.csv");
        let _ = std::fs::remove_file(&marker);
        let hostile = format!("/tmp/x.sqlite'); COPY (SELECT 1) TO '{marker}'; --");
        let got = attach("evil", &hostile, ", type => 'sqlite'");
        assert!(got.starts_with("58P01"), "{got}");
        let hostile = format!("/tmp/x.sqlite' AS y; COPY (SELECT 1) TO '{marker}'; --.sqlite");
        let got = attach("evil", &hostile, "");
        assert!(got.starts_with("58P01"), "{got}");
        let got = attach(
            "postgres",
            &format!("host=127.0.0.1 port=1 dbname='x'' (TYPE sqlite); COPY (SELECT 1) TO ''{marker}''; --'"),
            "",
        );
        // Refused as unparseable libpq syntax or by the server: either way, no statement ran.
        assert!(
            got.starts_with("22023") || got.starts_with("08006"),
            "{got}"
        );
        let got = attach(
            "postgres",
            &format!(
                r"host=127.0.0.1 port=1 dbname='x\' (TYPE sqlite); COPY (SELECT 1) TO \'{marker}\'; --'"
            ),
            "",
        );
        assert!(got.starts_with("08006"), "{got}");
        assert!(
            !std::path::Path::new(&marker).exists(),
            "a hostile DSN ran a statement"
        );
        // A real file whose name has quotes, semicolons and comment marks attaches fine.
        let odd = sqlite_file("it's; -- odd.sqlite", 7);
        assert_eq!(attach("odd", &odd, ""), "ok");
        assert_eq!(count("SELECT count(*) FROM odd.t"), Ok(Some(7)));
        assert_eq!(
            Spi::get_one::<String>("SELECT dsn FROM llm_sql.attachments() WHERE alias = 'odd'"),
            Ok(Some(odd))
        );
    }

    #[pg_test]
    fn attaching_files_needs_the_server_file_roles() {
        let path = sqlite_file("roles.sqlite", 5);
        as_role("attach_nobody", "");
        let got = attach("f1", &path, "");
        assert!(
            got.starts_with("42501") && got.contains("pg_read_server_files"),
            "{got}"
        );
        Spi::run("RESET ROLE").unwrap();
        as_role("attach_reader", "IN ROLE pg_read_server_files");
        assert_eq!(attach("f2", &path, ""), "ok");
        assert_eq!(count("SELECT count(*) FROM f2.t"), Ok(Some(5)));
        let got = attach("f3", &path, ", read_only => false");
        assert!(
            got.starts_with("42501") && got.contains("pg_write_server_files"),
            "{got}"
        );
    }

    #[pg_test]
    fn attaching_servers_needs_superuser_or_attach_role() {
        Spi::run("CREATE ROLE federators").unwrap();
        as_role("attach_analyst", "IN ROLE federators");
        let dsn = "postgresql://u:secret@127.0.0.1:1/db";
        let got = attach("r1", dsn, "");
        assert!(
            got.starts_with("42501") && got.contains("attach_role"),
            "{got}"
        );
        assert!(!got.contains("secret"), "{got}");
        Spi::run("RESET ROLE").unwrap();
        Spi::run("SET llm_sql.attach_role = 'federators'").unwrap();
        Spi::run("SET ROLE attach_analyst").unwrap();
        // Past the permission check, the connection itself is tried (and refused here).
        let got = attach("r1", dsn, "");
        assert!(got.starts_with("08006"), "{got}");
        assert!(!got.contains("secret"), "the password leaked: {got}");
        // Non-superusers cannot change the setting.
        assert!(outcome("SET llm_sql.attach_role = ''").starts_with("42501"));
    }

    #[pg_test]
    fn only_owner_superusers_and_grantees_use_an_attachment() {
        let path = sqlite_file("acl.sqlite", 4);
        Spi::run("CREATE ROLE acl_owner IN ROLE pg_read_server_files").unwrap();
        Spi::run("CREATE ROLE acl_friend").unwrap();
        Spi::run("CREATE ROLE acl_stranger").unwrap();
        Spi::run("SET ROLE acl_owner").unwrap();
        assert_eq!(attach("acl", &path, ""), "ok");
        assert_eq!(count("SELECT count(*) FROM acl.t"), Ok(Some(4)));

        Spi::run("SET ROLE acl_stranger").unwrap();
        assert!(aliases().is_empty(), "a stranger sees the attachment");
        let got = outcome("SELECT * FROM llm_sql.query_json('SELECT count(*) FROM acl.t')");
        assert!(
            got.starts_with("42501") && got.contains("attachment \"acl\""),
            "{got}"
        );
        let got = outcome("SELECT * FROM llm_sql.query_json('SELECT count(*) FROM acl.main.t')");
        assert!(got.starts_with("42501"), "{got}");
        assert!(outcome("SELECT llm_sql.detach('acl')").starts_with("42501"));
        assert!(
            outcome("SELECT llm_sql.grant_attachment('acl', 'acl_stranger')").starts_with("42501")
        );

        Spi::run("SET ROLE acl_owner").unwrap();
        Spi::run("SELECT llm_sql.grant_attachment('acl', 'acl_friend')").unwrap();
        Spi::run("SET ROLE acl_friend").unwrap();
        assert_eq!(aliases(), vec!["acl".to_string()]);
        assert_eq!(count("SELECT count(*) FROM acl.t"), Ok(Some(4)));
        // A grantee may use it, not drop or re-grant it.
        assert!(outcome("SELECT llm_sql.detach('acl')").starts_with("42501"));
        assert!(
            outcome("SELECT llm_sql.grant_attachment('acl', 'acl_stranger')").starts_with("42501")
        );

        Spi::run("RESET ROLE").unwrap();
        Spi::run("SELECT llm_sql.revoke_attachment('acl', 'acl_friend')").unwrap();
        Spi::run("SET ROLE acl_friend").unwrap();
        assert!(aliases().is_empty());
        let got = outcome("SELECT * FROM llm_sql.query_json('SELECT count(*) FROM acl.t')");
        assert!(got.starts_with("42501"), "{got}");
    }

    #[pg_test]
    fn functions_that_reach_around_attachments_are_refused() {
        let path = sqlite_file("gate.sqlite", 2);
        assert_eq!(attach("gate", &path, ""), "ok");
        Spi::run("CREATE ROLE gate_user").unwrap();
        Spi::run("SELECT llm_sql.grant_attachment('gate', 'gate_user')").unwrap();
        Spi::run("SET ROLE gate_user").unwrap();
        // The grantee's DuckDB has the sqlite extension loaded, for `gate`.
        assert_eq!(count("SELECT count(*) FROM gate.t"), Ok(Some(2)));
        for sql in [
            format!("SELECT * FROM llm_sql.query_json($d$SELECT * FROM sqlite_scan('{path}', 't')$d$)"),
            format!("SELECT * FROM llm_sql.query_json($d$SELECT * FROM \"SQLite_Scan\" ('{path}', 't')$d$)"),
            format!("SELECT * FROM llm_sql.query_json($d$SELECT * FROM system.main.sqlite_scan('{path}', 't')$d$)"),
            format!("SELECT * FROM llm_sql.query_json($d$SELECT * FROM query('SELECT * FROM sqlite_' || 'scan(''{path}'', ''t'')')$d$)"),
            format!("SELECT llm_sql.execute($d$CREATE TABLE copy AS SELECT * FROM sqlite_scan /* x */ ('{path}', 't')$d$)"),
            format!("SELECT llm_sql.execute($d$CREATE MACRO m() AS TABLE SELECT * FROM sqlite_scan('{path}', 't')$d$)"),
            "SELECT * FROM llm_sql.query_json($d$SELECT * FROM postgres_scan('host=127.0.0.1 dbname=postgres', 'public', 'x')$d$)".to_string(),
            "SELECT * FROM llm_sql.query_json($d$SELECT * FROM postgres_query('gate', 'SELECT 1')$d$)".to_string(),
            // DuckDB nests comments; the decision does not read text at all.
            format!("SELECT llm_sql.execute($d$CREATE TABLE a AS SELECT * FROM sqlite_scan /* /* */ */ ('{path}', 't')$d$)"),
            format!("SELECT llm_sql.execute($d$CREATE VIEW v AS SELECT * FROM sqlite_scan('{path}', 't')$d$)"),
            format!("SELECT llm_sql.execute($d$CREATE TABLE tgt (id INT, name VARCHAR); INSERT INTO tgt SELECT * FROM sqlite_scan('{path}', 't')$d$)"),
            format!("SELECT * FROM llm_sql.query_json($d$CREATE MACRO m2(p) AS (SELECT count(*) FROM sqlite_scan(p, 't')); SELECT m2('{path}')$d$)"),
            format!("SELECT * FROM llm_sql.query_json($d$WITH c AS (SELECT * FROM sqlite_scan('{path}', 't')) SELECT * FROM c$d$)"),
            format!("SELECT * FROM llm_sql.query_json($d$EXPLAIN SELECT * FROM sqlite_scan('{path}', 't')$d$)"),
            "SELECT * FROM llm_sql.query_json($d$SELECT * FROM (FROM sqlite_query('gate', 'SELECT * FROM t'))$d$)".to_string(),
            format!("SELECT llm_sql.execute($d$CALL sqlite_attach('{path}')$d$)"),
            "SELECT * FROM llm_sql.query_json($d$SELECT * FROM query_table('gate.t')$d$)".to_string(),
            "SELECT * FROM llm_sql.query_json($d$SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))$d$)".to_string(),
            "SELECT * FROM llm_sql.query_json($d$SELECT json_serialize_plan('SELECT 1')$d$)".to_string(),
            "SELECT * FROM llm_sql.query_json($d$SELECT * FROM enable_peg_parser()$d$)".to_string(),
        ] {
            let got = outcome(&sql);
            // The postgres extension is not even loaded here: its functions do not exist.
            let absent = sql.contains("postgres_") && got.starts_with("42883");
            assert!(
                got.starts_with("42501") || absent,
                "{sql}\n  expected permission denied, got: {got}"
            );
        }
        // Every table function of the scanner extension is withdrawn, whatever it is called with.
        let withdrawn = Spi::get_one::<Vec<String>>(
            "SELECT array_agg(DISTINCT j->>'function_name') FROM llm_sql.query_json($d$
                SELECT function_name FROM duckdb_functions()
                 WHERE function_type = 'table' AND starts_with(function_name, 'sqlite_')$d$) AS j",
        )
        .unwrap()
        .unwrap_or_default();
        assert!(withdrawn.len() >= 3, "{withdrawn:?}");
        for name in &withdrawn {
            for args in ["", "1", "'gate', 'x', 3"] {
                let got = outcome(&format!(
                    "SELECT * FROM llm_sql.query_json($d$SELECT * FROM {name}({args})$d$)"
                ));
                assert!(
                    got.starts_with("42501") && got.contains("llm_sql.attach()"),
                    "{name}({args}): {got}"
                );
            }
        }
        // Nothing was created on the way.
        assert!(
            outcome("SELECT * FROM llm_sql.query_json('SELECT * FROM a')").starts_with("42P01")
        );
        assert!(
            outcome("SELECT * FROM llm_sql.query_json('SELECT * FROM v')").starts_with("42P01")
        );
        // Names that merely look alike are fine.
        assert_eq!(
            count("SELECT count(*) FROM (SELECT 'sqlite_scan(' AS query) AS postgres_stuff"),
            Ok(Some(1))
        );
        // Superusers may call them.
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            count(&format!("SELECT count(*) FROM sqlite_scan('{path}', 't')")),
            Ok(Some(2))
        );
    }

    #[pg_test]
    fn import_schema_makes_postgres_views_that_follow_the_attachment_rules() {
        let path = sqlite_file("imp.sqlite", 20);
        assert_eq!(attach("imp", &path, ""), "ok");
        assert_eq!(
            Spi::get_one::<i32>("SELECT llm_sql.import_schema('imp')"),
            Ok(Some(1))
        );
        // A relation in the catalog, with mapped types, queryable with no column list.
        let types = Spi::get_one::<String>(
            "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
             FROM pg_attribute WHERE attrelid = 'imp.t'::regclass AND attnum > 0",
        );
        assert_eq!(types, Ok(Some("id bigint, name text".into())));
        assert_eq!(
            Spi::get_one::<String>("SELECT name FROM imp.t WHERE id = 7"),
            Ok(Some("n7".into()))
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM imp.t"),
            Ok(Some(20))
        );
        // WHERE and LIMIT go to DuckDB where they mean the same; results equal a local copy's.
        Spi::run("CREATE TABLE imp_local AS SELECT * FROM imp.t").unwrap();
        for predicate in [
            "id = 7",
            "id < 10 AND name <> 'n3'",
            "id >= 15 OR id IS NULL",
            "NOT (id > 5)",
            "name = 'n12'",
            "name < 'n2'",
            "id = 7.0",
            "id IS NOT NULL AND name LIKE 'n1%'",
            "id * 2 + 1 > 15",
            "id IN (3, 5, 99) OR name NOT IN ('n1', 'n2')",
            "coalesce(name, 'x') = 'n4'",
            "CASE WHEN id > 10 THEN name ELSE 'small' END = 'small'",
            "name ILIKE 'N1_'",
        ] {
            let count = |table: &str| {
                Spi::get_one::<i64>(&format!("SELECT count(*) FROM {table} WHERE {predicate}"))
            };
            assert_eq!(count("imp.t"), count("imp_local"), "{predicate}");
        }
        Spi::run(
            "CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
             DECLARE line text; plan text := '';
             BEGIN FOR line IN EXECUTE 'EXPLAIN (VERBOSE) ' || q LOOP plan := plan || line || chr(10); END LOOP;
             RETURN plan; END $f$",
        )
        .unwrap();
        let duckdb_query = |sql: &str| {
            let plan =
                Spi::get_one_with_args::<String>("SELECT pg_temp.plan_of($1)", &[sql.into()])
                    .unwrap()
                    .unwrap();
            plan.lines()
                .find_map(|l| l.trim().strip_prefix("DuckDB Query: ").map(str::to_string))
                .unwrap_or_else(|| panic!("no DuckDB query in {plan}"))
        };
        assert_eq!(
            duckdb_query("SELECT * FROM imp.t WHERE id = 7"),
            r#"SELECT "id", "name" FROM "imp"."main"."t" WHERE ("id" = 7)"#
        );
        assert_eq!(
            duckdb_query("SELECT * FROM imp.t WHERE id > 3 LIMIT 2"),
            r#"SELECT "id", "name" FROM "imp"."main"."t" WHERE ("id" > 3) LIMIT 2"#
        );
        // Text order depends on the collation: this database's C.UTF-8 orders as DuckDB does;
        // a linguistic collation is checked in Postgres only, so no LIMIT either.
        assert_eq!(
            duckdb_query("SELECT * FROM imp.t WHERE name < 'n5' LIMIT 2"),
            r#"SELECT "id", "name" FROM "imp"."main"."t" WHERE ("name" < 'n5') LIMIT 2"#
        );
        assert_eq!(
            duckdb_query(r#"SELECT * FROM imp.t WHERE name < 'n5' COLLATE "unicode" LIMIT 2"#),
            r#"SELECT "id", "name" FROM "imp"."main"."t""#
        );
        // Ordering stands between the scan and the limit.
        assert_eq!(
            duckdb_query("SELECT * FROM imp.t ORDER BY name LIMIT 2"),
            r#"SELECT "id", "name" FROM "imp"."main"."t""#
        );
        // Again: the relation exists; or_replace replaces it; another schema works too.
        assert!(outcome("SELECT llm_sql.import_schema('imp')").starts_with("42P07"));
        assert_eq!(
            Spi::get_one::<i32>("SELECT llm_sql.import_schema('imp', or_replace => true)"),
            Ok(Some(1))
        );
        assert_eq!(
            Spi::get_one::<i32>("SELECT llm_sql.import_schema('imp', into_schema => 'imp_copy')"),
            Ok(Some(1))
        );
        // A foreign table's relation is a DuckDB name, never other DuckDB SQL.
        for (statement, sqlstate) in [
            (
                r#"CREATE FOREIGN TABLE evil (x text) SERVER llm_sql_duckdb OPTIONS (relation 'read_text(''/etc/passwd'')')"#,
                "HV024",
            ),
            (
                r#"CREATE FOREIGN TABLE evil (x text) SERVER llm_sql_duckdb OPTIONS (relation '"imp"."main"."t" WHERE false')"#,
                "HV024",
            ),
            (
                r#"CREATE FOREIGN TABLE evil (x text) SERVER llm_sql_duckdb OPTIONS (relation '"imp".main.t')"#,
                "HV024",
            ),
            (
                r#"CREATE FOREIGN TABLE evil (x text) SERVER llm_sql_duckdb OPTIONS (relation '"imp"."main"."t"', extra 'x')"#,
                "HV00D",
            ),
            (
                "CREATE FOREIGN TABLE evil (x text) SERVER llm_sql_duckdb",
                "HV00J",
            ),
            (
                "CREATE SERVER evil FOREIGN DATA WRAPPER llm_sql_fdw OPTIONS (relation 'x')",
                "HV00D",
            ),
        ] {
            let got = outcome(statement);
            assert!(got.starts_with(sqlstate), "{statement}: {got}");
        }
        Spi::run(r#"CREATE FOREIGN TABLE imp_by_hand (id bigint, name text) SERVER llm_sql_duckdb OPTIONS (relation '"imp"."main"."t"')"#).unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM imp_by_hand"),
            Ok(Some(20))
        );
        assert!(outcome("SELECT llm_sql.import_schema('nope')").starts_with("42704"));
        assert!(outcome("SELECT llm_sql.import_schema(NULL)").starts_with("22004"));

        // Ordinary GRANTs on the relation, plus the attachment rule.
        Spi::run("CREATE ROLE imp_reader").unwrap();
        Spi::run("GRANT USAGE ON SCHEMA imp TO imp_reader").unwrap();
        Spi::run("SET ROLE imp_reader").unwrap();
        assert!(outcome("SELECT * FROM imp.t").starts_with("42501"));
        assert!(
            outcome("SELECT llm_sql.import_schema('imp', into_schema => 'mine')")
                .starts_with("42501")
        );
        Spi::run("RESET ROLE").unwrap();
        Spi::run("GRANT SELECT ON imp.t TO imp_reader").unwrap();
        Spi::run("SET ROLE imp_reader").unwrap();
        let got = outcome("SELECT * FROM imp.t");
        assert!(
            got.starts_with("42501") && got.contains("attachment"),
            "{got}"
        );
        Spi::run("RESET ROLE").unwrap();
        Spi::run("SELECT llm_sql.grant_attachment('imp', 'imp_reader')").unwrap();
        Spi::run("SET ROLE imp_reader").unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM imp.t WHERE id < 5"),
            Ok(Some(5))
        );
    }
}
