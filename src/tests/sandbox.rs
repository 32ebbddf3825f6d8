//! The sandbox around model-written SQL: code the caller did not choose to trust never runs,
//! however the query reaches it.

#[pgrx::pg_schema]
mod tests {
    use std::time::Duration;

    use crate::nl2sql::{guard, run_read_only};
    use pgrx::prelude::*;
    use pgrx::PgSqlErrorCode;

    fn trap_file() -> String {
        format!("/tmp/llm_sql_trap_{}", std::process::id())
    }

    /// Objects of an ordinary role, `trapper`, every one of which would run its functions if
    /// read: each function writes a server file (a superuser's COPY is allowed in a read-only
    /// transaction and survives the rollback). Function calls are counted
    /// (track_functions), so a call that ran would show even where the file cannot be written.
    fn trap() {
        let _ = std::fs::remove_file(trap_file());
        Spi::run(&format!(
            "SET track_functions = 'all';
             CREATE ROLE trapper; CREATE ROLE victim;
             CREATE SCHEMA trap AUTHORIZATION trapper;
             GRANT USAGE ON SCHEMA trap TO PUBLIC;
             CREATE TABLE accounts (id int PRIMARY KEY, owner text);
             INSERT INTO accounts VALUES (1, 'ann');
             GRANT SELECT ON accounts TO victim;
             SET ROLE trapper;
             CREATE FUNCTION trap.f() RETURNS int LANGUAGE plpgsql STABLE AS $f$
             BEGIN
               EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L', '{file}');
               RETURN 1;
             END $f$;
             CREATE FUNCTION trap.eq(int, int) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS
               $f$ BEGIN RETURN trap.f() OPERATOR(pg_catalog.=) 1; END $f$;
             CREATE FUNCTION trap.step(int, int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
               $f$ BEGIN RETURN trap.f(); END $f$;
             CREATE FUNCTION trap.g() RETURNS int LANGUAGE sql STABLE AS 'SELECT 7';
             CREATE VIEW trap.v AS SELECT trap.f() AS x;
             CREATE DOMAIN trap.d AS text CHECK (trap.f() OPERATOR(pg_catalog.=) 1);
             CREATE TYPE trap.c AS (a trap.d);
             CREATE OPERATOR trap.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = trap.eq);
             CREATE OPERATOR trap.= (LEFTARG = int, RIGHTARG = int, FUNCTION = trap.eq);
             CREATE AGGREGATE trap.agg(int) (SFUNC = trap.step, STYPE = int);
             CREATE TABLE trap.t (a int);
             INSERT INTO trap.t VALUES (1);
             ALTER TABLE trap.t ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON trap.t USING (trap.f() OPERATOR(pg_catalog.=) 1);
             GRANT SELECT ON trap.t, trap.v TO PUBLIC;
             RESET ROLE;",
            file = trap_file()
        ))
        .unwrap();
    }

    /// How often trapper's functions ran in this transaction.
    fn trap_calls() -> i64 {
        Spi::get_one::<i64>(
            "SELECT coalesce(sum(pg_stat_get_xact_function_calls(p.oid)), 0)::int8
               FROM pg_proc p WHERE p.pronamespace = 'trap'::regnamespace",
        )
        .unwrap()
        .unwrap_or(0)
    }

    fn refused(error: &crate::error::Error, sql: &str) {
        assert_eq!(
            error.code,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "{sql}: {}",
            error.message
        );
    }

    /// `sql` is refused by the gate and, run without the gate, by the sandbox itself.
    fn refused_twice(sql: &str) {
        refused(&guard::check(sql).expect_err(sql), sql);
        let error = run_read_only(sql, 10, Duration::from_secs(5))
            .err()
            .unwrap_or_else(|| panic!("{sql} ran"));
        refused(&error, sql);
    }

    #[pg_test]
    fn an_untrusted_roles_code_never_runs_however_the_query_reaches_it() {
        trap();
        for sql in [
            "SELECT trap.f()",
            "SELECT * FROM trap.v",
            "SELECT 'x'::trap.d",
            "SELECT CAST('x' AS trap.d) AS v",
            // Analysis alone would run the domain's CHECK for a composite literal.
            "SELECT '(x)'::trap.c",
            "SELECT 1 OPERATOR(trap.===) 1",
            "SELECT trap.agg(x) FROM (VALUES (1), (2)) AS v(x)",
            "SELECT id FROM accounts WHERE id OPERATOR(trap.=) 1",
            "WITH w AS (SELECT * FROM trap.v) SELECT x FROM w",
            "SELECT (SELECT x FROM trap.v) AS y FROM accounts",
        ] {
            refused_twice(sql);
        }
        // An operator found through the search_path, ahead of pg_catalog's.
        Spi::run("SET search_path = trap, pg_catalog, public").unwrap();
        refused_twice("SELECT owner FROM accounts WHERE id = 1");
        Spi::run("RESET search_path").unwrap();
        // A row-level security policy, for a role it applies to.
        Spi::run("SET ROLE victim").unwrap();
        refused_twice("SELECT count(*) FROM trap.t");
        refused_twice("SELECT trap.f()");
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(trap_calls(), 0, "a function of trapper ran");
        assert!(!std::path::Path::new(&trap_file()).exists());
        // Trusted only when the caller says so, and then only IMMUTABLE or STABLE ones.
        refused_twice("SELECT trap.g()");
        Spi::run("SET llm_sql.ask_trusted_roles = 'someone, trapper'").unwrap();
        let rows = run_read_only("SELECT trap.g() AS g", 10, Duration::from_secs(5)).unwrap();
        assert_eq!(rows.rows, vec![serde_json::json!({"g": 7})]);
        assert!(guard::check("SELECT trap.g()").is_ok());
        Spi::run("RESET llm_sql.ask_trusted_roles").unwrap();
    }

    #[pg_test]
    fn trusted_functions_are_held_to_the_same_rule_inside() {
        let file = format!("/tmp/llm_sql_mine_{}", std::process::id());
        let _ = std::fs::remove_file(&file);
        Spi::run(&format!(
            "CREATE FUNCTION mine_duckdb() RETURNS bigint LANGUAGE sql STABLE
                AS $f$ SELECT llm_sql.execute('CREATE TABLE leaked AS SELECT 1 AS x') $f$;
             CREATE FUNCTION mine_copy_now() RETURNS int LANGUAGE plpgsql VOLATILE AS $f$
             BEGIN
               EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L', '{file}');
               RETURN 1;
             END $f$;
             -- Its expression, prepared once in this transaction, is not announced again, so
             -- the volatile function it calls is reached.
             CREATE FUNCTION mine_copy(go bool) RETURNS int LANGUAGE plpgsql STABLE AS $f$
             DECLARE done int;
             BEGIN done := CASE WHEN go THEN mine_copy_now() ELSE 0 END; RETURN done; END $f$;
             SELECT mine_copy(false);"
        ))
        .unwrap();
        // The caller's own functions may run, but not llm_sql's inside them (DuckDB state
        // would outlive the rollback) ...
        let error = run_read_only("SELECT mine_duckdb()", 10, Duration::from_secs(5))
            .err()
            .unwrap();
        assert_eq!(error.code, PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE);
        assert!(error.message.contains("llm_sql's own"), "{}", error.message);
        let leaked = Spi::get_one::<i64>(
            "SELECT count(*) FROM llm_sql.query_json($$SELECT * FROM duckdb_tables() WHERE table_name = 'leaked'$$)",
        )
        .unwrap();
        assert_eq!(leaked, Some(0));
        // ... nor any utility statement (COPY TO a file or a program, SET, DO, ...).
        let error = run_read_only("SELECT mine_copy(true)", 10, Duration::from_secs(5))
            .err()
            .unwrap();
        assert_eq!(error.code, PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE);
        assert!(error.message.contains("COPY"), "{}", error.message);
        assert!(!std::path::Path::new(&file).exists());
    }

    #[pg_test]
    fn session_locks_a_query_took_are_released() {
        // A plpgsql expression already prepared in this transaction is not prepared again, so
        // the function it calls is not announced again: a trusted function can still take a
        // session lock, which outlives the rollback. The sandbox releases it.
        Spi::run(
            "CREATE FUNCTION lock_it(k int) RETURNS int LANGUAGE plpgsql STABLE AS $f$
             DECLARE taken bool;
             BEGIN taken := pg_catalog.pg_try_advisory_lock(k); RETURN k; END $f$;
             SELECT lock_it(41);
             SELECT pg_advisory_unlock(41);
             SELECT pg_advisory_lock(40);",
        )
        .unwrap();
        let held = |key: i32| {
            Spi::get_one_with_args::<i64>(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1
                    AND pid = pg_backend_pid()",
                &[key.into()],
            )
            .unwrap()
            .unwrap_or(0)
        };
        let rows = run_read_only("SELECT lock_it(42) AS k", 10, Duration::from_secs(5)).unwrap();
        assert_eq!(rows.rows, vec![serde_json::json!({"k": 42})]);
        assert_eq!(held(42), 0, "the query's session lock outlived it");
        // A lock held before the query is the caller's own and stays.
        assert_eq!(held(40), 1);
        Spi::run("SELECT pg_advisory_unlock(40)").unwrap();
    }
}
