//! One DuckDB per backend: created on first use, private to its session, and many sessions can
//! use theirs at once. Login roles get exactly the file rights their Postgres roles give.

use std::thread;
use std::time::{Duration, Instant};

use llm_sql_client_tests::*;

#[test]
fn each_backend_has_its_own_duckdb() {
    let mut a = superuser();
    let mut b = superuser();
    a.batch_execute("SELECT llm_sql.execute('CREATE TABLE mine AS SELECT 1 AS x')")
        .unwrap();
    let x: i32 = a
        .query_one(
            "SELECT x FROM llm_sql.query('SELECT x FROM mine') AS t(x int)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(x, 1);
    let error = b
        .simple_query("SELECT * FROM llm_sql.query('SELECT x FROM mine') AS t(x int)")
        .expect_err("another backend must not see the table");
    assert_eq!(sqlstate(&error), "42P01", "{}", describe(&error));
}

#[test]
fn many_sessions_query_at_once() {
    let workers: Vec<_> = (0..12)
        .map(|n: i64| {
            thread::spawn(move || {
                let mut c = superuser();
                let sum: i64 = c
                    .query_one(
                        "SELECT s FROM llm_sql.query(format('SELECT sum(i)::BIGINT AS s FROM range(%s) t(i)', $1::bigint)) AS t(s bigint)",
                        &[&(100_000 + n)],
                    )
                    .unwrap()
                    .get(0);
                let m = 100_000 + n;
                assert_eq!(sum, m * (m - 1) / 2);
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn login_role_without_file_roles_cannot_touch_server_files() {
    create_login_role("app_user", "app-secret-1", "");
    let mut app = login("app_user", "app-secret-1");
    for sql in [
        "SELECT * FROM llm_sql.query_json($$SELECT * FROM read_csv('/etc/passwd')$$)",
        "SELECT * FROM llm_sql.query_json($$SELECT * FROM glob('/*')$$)",
        "SELECT llm_sql.execute($$COPY (SELECT 1) TO '/tmp/llm_sql_app_user.csv'$$)",
        "SELECT llm_sql.execute($$ATTACH '/tmp/llm_sql_app_user.duckdb'$$)",
        "SELECT llm_sql.execute($$SET disabled_filesystems = ''$$)",
        "SELECT llm_sql.execute($$LOAD postgres$$)",
    ] {
        let error = app.simple_query(sql).expect_err(sql);
        assert_eq!(sqlstate(&error), "42501", "{sql}: {}", describe(&error));
    }
    assert!(!std::path::Path::new("/tmp/llm_sql_app_user.csv").exists());
    let error = app
        .simple_query("SET llm_sql.duckdb_memory_limit = '64GB'")
        .expect_err("superuser-only setting");
    assert_eq!(sqlstate(&error), "42501", "{}", describe(&error));
    // Analytics on its own data work.
    let n: i64 = app
        .query_one(
            "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM range(1000)') AS t(n bigint)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
}

#[test]
fn login_role_with_both_file_roles_can_use_files() {
    create_login_role(
        "etl_user",
        "etl-secret-1",
        "IN ROLE pg_read_server_files, pg_write_server_files",
    );
    let mut etl = login("etl_user", "etl-secret-1");
    let path = format!("/tmp/llm_sql_etl_{}.parquet", std::process::id());
    etl.batch_execute(&format!(
        "SELECT llm_sql.execute($$COPY (SELECT i, i * 2 AS j FROM range(100) t(i)) TO '{path}' (FORMAT parquet)$$)"
    ))
    .unwrap();
    let total: i64 = etl
        .query_one(&format!("SELECT s FROM llm_sql.query($$SELECT sum(j)::BIGINT AS s FROM '{path}'$$) AS t(s bigint)"), &[])
        .unwrap()
        .get(0);
    assert_eq!(total, 9900);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_sessions_first_query_already_streams() {
    // The planner support function loads llm_sql while the first query is planned, so its
    // planner hook is in place before paths are built.
    let mut fresh = superuser();
    let plan: Vec<String> = fresh
        .query(
            "EXPLAIN SELECT * FROM llm_sql.query('SELECT 1 AS a') AS t(a int)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("Custom Scan (DuckDB Scan)")),
        "{plan:?}"
    );
}

/// PgBouncer and other poolers run DISCARD ALL between clients: DuckDB's state must not reach
/// the next client of the same backend.
#[test]
fn discard_all_resets_the_backends_duckdb() {
    let mut pooled = superuser();
    pooled
        .batch_execute(
            "SELECT llm_sql.execute('CREATE TABLE first_clients AS SELECT 1 AS x');
             SELECT llm_sql.execute('SET VARIABLE first_clients_secret = 42');",
        )
        .unwrap();
    let secret = "SELECT s FROM llm_sql.query('SELECT getvariable(''first_clients_secret'')::INT') AS t(s int)";
    let seen: Option<i32> = pooled.query_one(secret, &[]).unwrap().get(0);
    assert_eq!(seen, Some(42));
    pooled.batch_execute("DISCARD ALL").unwrap();
    let error = pooled
        .simple_query("SELECT * FROM llm_sql.query('SELECT x FROM first_clients') AS t(x int)")
        .expect_err("the table must be gone");
    assert_eq!(sqlstate(&error), "42P01", "{}", describe(&error));
    let seen: Option<i32> = pooled.query_one(secret, &[]).unwrap().get(0);
    assert_eq!(seen, None);
    // Other DISCARDs leave it alone.
    pooled
        .batch_execute(
            "SELECT llm_sql.execute('CREATE TABLE kept AS SELECT 1 AS x'); DISCARD PLANS; DISCARD TEMP",
        )
        .unwrap();
    assert_eq!(
        count(
            &mut pooled,
            "SELECT x::int8 FROM llm_sql.query('SELECT x FROM kept') AS t(x int)"
        ),
        1
    );
}

/// With client_connection_check_interval set, Postgres ends a plain query within that interval
/// of its client going away; a DuckDB query must end as promptly.
#[test]
fn a_lost_client_stops_its_duckdb_query() {
    let fragment = "range(100000000000) lost_client";
    let sql = format!(
        "SELECT * FROM llm_sql.query('SELECT count(*) FROM {fragment} WHERE hash(lost_client.range) = 0') AS t(n bigint)"
    );
    let mut client = psql(&[
        "-c",
        "SET client_connection_check_interval = '200ms'",
        "-c",
        &sql,
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut observer = superuser();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        let row = observer
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND strpos(query, $1) > 0
                   AND pid <> pg_backend_pid()",
                &[&fragment],
            )
            .unwrap();
        if let Some(row) = row {
            break row.get(0);
        }
        assert!(Instant::now() < deadline, "the query never started");
        thread::sleep(Duration::from_millis(20));
    };
    thread::sleep(Duration::from_millis(300));
    client.kill().unwrap();
    client.wait().unwrap();
    let lost_at = Instant::now();
    let gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1";
    while observer.query_one(gone, &[&pid]).unwrap().get::<_, i64>(0) > 0 {
        assert!(
            lost_at.elapsed() < Duration::from_secs(5),
            "the backend of the lost client still runs its DuckDB query"
        );
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!("backend gone {:?} after its client", lost_at.elapsed());
}
