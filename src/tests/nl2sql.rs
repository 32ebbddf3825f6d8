//! The gate and the runner for model-written SQL, inside one backend: every kind of statement
//! a model could write that must not pass, what must pass, and running read-only, as the
//! caller, under a time limit and a row cap.

#[pgrx::pg_schema]
mod tests {
    use std::time::Duration;

    use crate::nl2sql::{guard, run_read_only};
    use pgrx::prelude::*;
    use pgrx::PgSqlErrorCode;

    fn accounts() {
        Spi::run(
            "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);
             INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 250), (3, 'cy', NULL);
             CREATE SEQUENCE account_ids;
             CREATE FUNCTION sneaky() RETURNS bigint LANGUAGE plpgsql STABLE
                AS 'BEGIN RETURN nextval(''account_ids''); END';",
        )
        .unwrap();
    }

    fn state() -> String {
        Spi::get_one::<String>(
            "SELECT string_agg(id || ':' || owner || ':' || coalesce(balance::text, '-'), ',' ORDER BY id)
               || '/' || (SELECT last_value || ':' || is_called FROM account_ids)
               FROM accounts",
        )
        .unwrap()
        .unwrap_or_default()
    }

    #[pg_test]
    fn every_statement_that_could_change_anything_is_rejected() {
        accounts();
        let before = state();
        let forbidden = [
            "DROP TABLE accounts",
            "DELETE FROM accounts",
            "UPDATE accounts SET balance = 0",
            "INSERT INTO accounts VALUES (4, 'eve', 1)",
            "MERGE INTO accounts a USING accounts b ON a.id = b.id WHEN MATCHED THEN DELETE",
            "WITH gone AS (DELETE FROM accounts RETURNING *) SELECT * FROM gone",
            "WITH x AS (INSERT INTO accounts VALUES (5, 'eve', 1) RETURNING id) SELECT id FROM x",
            "SELECT 1; DELETE FROM accounts",
            "SELECT 1; SELECT 2",
            "COPY accounts TO '/tmp/accounts.csv'",
            "COPY (SELECT * FROM accounts) TO STDOUT",
            "DO $$ BEGIN DELETE FROM accounts; END $$",
            "SET search_path = evil",
            "CALL anything()",
            "SELECT * INTO stolen FROM accounts",
            "SELECT * FROM accounts FOR UPDATE",
            "SELECT * FROM (SELECT * FROM accounts FOR SHARE) s",
            "EXPLAIN ANALYZE DELETE FROM accounts",
            "CREATE TABLE t AS SELECT * FROM accounts",
            "TRUNCATE accounts",
            "GRANT ALL ON accounts TO PUBLIC",
            "BEGIN",
            "VACUUM accounts",
            "",
            "   ;  ",
        ];
        for sql in forbidden {
            let error = guard::check(sql).expect_err(sql);
            assert_eq!(
                error.code,
                PgSqlErrorCode::ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED,
                "{sql}: {}",
                error.message
            );
        }
        // Functions with side effects: refused by name, as the privilege they lack.
        for sql in [
            "SELECT nextval('account_ids')",
            "SELECT setval('account_ids', 42)",
            "SELECT set_config('work_mem', '1GB', false)",
            "SELECT pg_sleep(10)",
            "SELECT pg_advisory_lock(1)",
            "SELECT id FROM accounts WHERE (SELECT pg_terminate_backend(pg_backend_pid()))",
            "SELECT lo_import('/etc/passwd')",
            "SELECT * FROM llm_sql.query_json('SELECT 1')",
            "SELECT llm_sql.embed('text')",
        ] {
            let error = guard::check(sql).expect_err(sql);
            assert_eq!(
                error.code,
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "{sql}: {}",
                error.message
            );
            assert!(
                error.message.contains("function"),
                "{sql}: {}",
                error.message
            );
        }
        assert_eq!(state(), before, "a rejected statement changed something");
        // A function of the caller's own that says it is STABLE passes the gate; what it then
        // runs is held to the same rule.
        let lying = guard::check("SELECT sneaky()").unwrap();
        let error = run_read_only(&lying.sql, 10, Duration::from_secs(5))
            .err()
            .unwrap();
        assert_eq!(
            error.code,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "{}",
            error.message
        );
        assert!(error.message.contains("nextval"), "{}", error.message);
        assert_eq!(state(), before);
    }

    #[pg_test]
    fn queries_that_only_read_pass_as_the_bare_statement() {
        accounts();
        let passes = |sql: &str| {
            guard::check(sql)
                .unwrap_or_else(|e| panic!("{sql}: {}", e.message))
                .sql
        };
        assert_eq!(passes("SELECT 1;"), "SELECT 1");
        assert_eq!(
            passes("-- the answer\nSELECT owner FROM accounts ;\n"),
            "SELECT owner FROM accounts"
        );
        for sql in [
            "WITH rich AS (SELECT * FROM accounts WHERE balance > 150) SELECT owner FROM rich",
            "VALUES (1, 'a'), (2, 'b')",
            "TABLE accounts",
            "SELECT owner, random() FROM accounts ORDER BY 2 LIMIT 1",
            "SELECT now(), clock_timestamp(), gen_random_uuid()",
            "SELECT a.owner FROM accounts a JOIN LATERAL (SELECT count(*) FROM accounts b WHERE b.id < a.id) c ON true",
            "SELECT 'DROP TABLE accounts; --' AS text",
        ] {
            passes(sql);
        }
    }

    #[pg_test]
    fn syntax_and_analysis_errors_keep_postgres_words() {
        accounts();
        let error = guard::check("SELEC owner FROM accounts").unwrap_err();
        assert_eq!(
            error.code,
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            "{}",
            error.message
        );
        let error = guard::check("SELECT nope FROM accounts").unwrap_err();
        assert_eq!(error.code, PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN);
        assert!(error.message.contains("nope"), "{}", error.message);
        let error = guard::check("SELECT * FROM missing_table").unwrap_err();
        assert_eq!(error.code, PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE);
        // The transaction goes on.
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM accounts").unwrap(),
            Some(3)
        );
    }

    #[pg_test]
    fn runs_as_the_caller_under_a_row_cap_and_a_time_limit() {
        accounts();
        let rows = run_read_only(
            "SELECT id, owner FROM accounts ORDER BY id",
            2,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(rows.rows.len(), 2);
        assert!(rows.truncated);
        assert_eq!(rows.rows[0], serde_json::json!({"id": 1, "owner": "ann"}));
        let all = run_read_only(
            "SELECT id FROM accounts -- trailing comment",
            10,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((all.rows.len(), all.truncated), (3, false));
        // Columns that share a name all reach the JSON.
        let pairs = run_read_only(
            "SELECT a.owner, b.owner FROM accounts a JOIN accounts b ON b.id = a.id + 1 ORDER BY a.id",
            10,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            pairs.rows,
            vec![
                serde_json::json!({"owner": "ann", "owner_1": "bob"}),
                serde_json::json!({"owner": "bob", "owner_1": "cy"})
            ]
        );
        // A role without SELECT gets Postgres's own error; RLS filters rows.
        Spi::run(
            "CREATE ROLE nl2sql_reader;
             GRANT SELECT (id, owner) ON accounts TO nl2sql_reader;
             ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own ON accounts FOR SELECT TO nl2sql_reader USING (owner = 'ann');
             SET ROLE nl2sql_reader;",
        )
        .unwrap();
        let error = run_read_only("SELECT balance FROM accounts", 10, Duration::from_secs(5))
            .err()
            .unwrap();
        assert_eq!(error.code, PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE);
        let mine =
            run_read_only("SELECT id, owner FROM accounts", 10, Duration::from_secs(5)).unwrap();
        assert_eq!(
            mine.rows,
            vec![serde_json::json!({"id": 1, "owner": "ann"})]
        );
        Spi::run("RESET ROLE").unwrap();
        // The time limit stops a slow query with an error naming the setting; the caller's
        // own statement_timeout is left as it was and the transaction goes on.
        let started = std::time::Instant::now();
        let error = run_read_only(
            "SELECT count(*) FROM generate_series(1, 100000000) a",
            10,
            Duration::from_millis(200),
        )
        .err()
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(error.code, PgSqlErrorCode::ERRCODE_QUERY_CANCELED);
        assert!(
            error.message.contains("llm_sql.ask_timeout"),
            "{}",
            error.message
        );
        assert_eq!(
            Spi::get_one::<String>("SHOW transaction_read_only")
                .unwrap()
                .as_deref(),
            Some("off")
        );
        Spi::run("INSERT INTO accounts VALUES (7, 'dee', 5)").unwrap();
    }
}
