//! pg_cancel_backend, statement_timeout and pg_terminate_backend stop DuckDB work promptly, and
//! the backend stays usable (cancel, timeout) or exits cleanly (terminate).

use std::thread;
use std::time::{Duration, Instant};

use llm_sql_client_tests::*;

#[test]
fn cancel_stops_a_long_duckdb_aggregate_within_a_second() {
    let (error, took, mut worker) = cancel_running(
        superuser(),
        "SELECT * FROM llm_sql.query('SELECT count(*) FROM range(1000000000000) t(i)') AS t(c bigint)",
        "range(1000000000000)",
        Duration::ZERO,
    );
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(
        describe(&error).contains("canceling statement due to user request"),
        "{}",
        describe(&error)
    );
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    // The same backend keeps working, with its DuckDB.
    let v: i64 = worker
        .query_one(
            "SELECT x FROM llm_sql.query('SELECT 41 + 1 AS x') AS t(x bigint)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, 42);
}

#[test]
fn cancel_stops_a_long_stream_of_rows_within_a_second() {
    let (error, took, mut worker) = cancel_running(
        superuser(),
        "SELECT count(*) FROM llm_sql.query('SELECT i, i::VARCHAR AS s FROM range(1000000000000) t(i)') AS t(i bigint, s text)",
        "range(1000000000000) t(i)') AS t(i bigint",
        Duration::ZERO,
    );
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    let n: i64 = worker
        .query_one(
            "SELECT count(*) FROM llm_sql.query_json('SELECT * FROM range(3)')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

#[test]
fn cancel_stops_duckdb_execute_within_a_second() {
    let (error, took, mut worker) = cancel_running(
        superuser(),
        "SELECT llm_sql.execute('CREATE TABLE big AS SELECT count(*) AS c FROM range(1000000000000) t(i), range(3) u(j)')",
        "range(3) u(j)",
        Duration::ZERO,
    );
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    let r = worker.simple_query("SELECT * FROM llm_sql.query('SELECT * FROM big') AS t(c bigint)");
    assert!(
        r.is_err(),
        "the cancelled CREATE TABLE must not have created the table"
    );
}

#[test]
fn statement_timeout_stops_duckdb_within_a_second_of_the_deadline() {
    let mut session = superuser();
    session
        .batch_execute("SET statement_timeout = '500ms'")
        .unwrap();
    let started = Instant::now();
    let error = session
        .simple_query("SELECT * FROM llm_sql.query('SELECT count(*) FROM range(1000000000000) t(i)') AS t(c bigint)")
        .expect_err("the statement should time out");
    let took = started.elapsed();
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(
        describe(&error).contains("statement timeout"),
        "{}",
        describe(&error)
    );
    assert!(
        took < Duration::from_millis(1500),
        "timed out after {took:?}"
    );
    session.batch_execute("SET statement_timeout = 0").unwrap();
    let v: i32 = session
        .query_one(
            "SELECT a FROM llm_sql.query('SELECT 1 AS a') AS t(a int)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, 1);
}

#[test]
fn terminate_ends_the_session_and_nothing_else() {
    let mut worker = superuser();
    let pid = backend_pid(&mut worker);
    let handle = thread::spawn(move || {
        worker.simple_query("SELECT * FROM llm_sql.query('SELECT count(*) FROM range(1000000000000) t(i)') AS t(c bigint)")
    });
    let mut observer = superuser();
    wait_until_running(&mut observer, pid, "range(1000000000000)");
    let started = Instant::now();
    observer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let error = handle.join().unwrap().expect_err("the session should end");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "terminate took {:?}",
        started.elapsed()
    );
    let state = sqlstate(&error);
    assert!(
        state == "57P01" || error.is_closed(),
        "{}",
        describe(&error)
    );
    // The server and other sessions are unaffected (no crash, no restart).
    let gone: bool = observer
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
            &[&pid],
        )
        .unwrap()
        .get(0);
    assert!(gone);
    let v: i32 = observer
        .query_one(
            "SELECT a FROM llm_sql.query('SELECT 5 AS a') AS t(a int)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, 5);
}

#[test]
fn cancel_stops_a_duckdb_query_reading_local_tables_within_a_second() {
    let mut setup = superuser();
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS cancel_local;
             CREATE TABLE cancel_local AS SELECT g AS i FROM generate_series(1, 2000000) g;",
        )
        .unwrap();
    let (error, took, mut worker) = cancel_running(
        superuser(),
        "SELECT * FROM llm_sql.query('SELECT count(*) FROM pg.public.cancel_local a, range(100000) b WHERE a.i + b.range < 0') AS t(c bigint)",
        "pg.public.cancel_local",
        Duration::ZERO,
    );
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    // The backend keeps working, local reads included.
    let n: i64 = worker
        .query_one(
            "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM pg.public.cancel_local') AS t(n bigint)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 2_000_000);
}
