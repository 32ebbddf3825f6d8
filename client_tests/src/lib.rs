//! Test harness for client-side tests. `client_tests/run` starts a fresh PostgreSQL 18 cluster with
//! llm_sql installed and exports where it listens; these helpers connect to it.

pub use llm_sql_tpch as tpch;

use std::time::{Duration, Instant};

pub use postgres::{Client, Error};

/// A port client_tests/run exported (the test cluster's, the remote servers').
pub fn env_port(name: &str) -> u16 {
    std::env::var(name)
        .unwrap_or_else(|_| {
            panic!("{name} is not set: run the client tests through client_tests/run (or scripts/test)")
        })
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a port number"))
}

fn port() -> u16 {
    env_port("LLM_SQL_TEST_PORT")
}

/// A URL of the project's LLM test server (`options` chooses its key, faults, …).
pub fn llm_url(options: &str) -> String {
    let base =
        std::env::var("LLM_SQL_TEST_LLM_URL").unwrap_or_else(|_| "http://127.0.0.1:25440".into());
    format!("{base}/{options}")
}

/// How many requests the LLM test server answered for `key`.
pub fn llm_requests(key: &str) -> u64 {
    ureq::get(llm_url(&format!("_stats/{key}")))
        .call()
        .unwrap()
        .body_mut()
        .read_json::<serde_json::Value>()
        .unwrap()["requests"]
        .as_u64()
        .unwrap_or(0)
}

/// The first column of every row of `sql`, as text.
pub fn texts(client: &mut Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

pub const DATABASE: &str = "llm_sql_test";

/// How a superuser connects (Unix socket, peer authentication mapped for root).
pub fn superuser_config() -> postgres::Config {
    let mut config = postgres::Config::new();
    config
        .host("/tmp")
        .port(port())
        .user("postgres")
        .dbname(DATABASE);
    config
}

/// A superuser session.
pub fn superuser() -> Client {
    superuser_config()
        .connect(postgres::NoTls)
        .expect("connect as superuser")
}

/// A session of a login role over TCP with its password, like any application would connect.
pub fn login(role: &str, password: &str) -> Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(port())
        .user(role)
        .password(password)
        .dbname(DATABASE)
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect as {role}: {e}"))
}

/// Creates (or recreates) a login role with the given extra clauses, e.g. "IN ROLE pg_read_server_files".
pub fn create_login_role(name: &str, password: &str, clauses: &str) {
    let mut su = superuser();
    su.batch_execute(&format!(
        "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN PASSWORD '{password}' {clauses};"
    ))
    .unwrap();
}

/// The backend pid of a session.
pub fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

/// "SQLSTATE: message" of a failed statement (defined in the TPC-H crate, which the benchmark
/// shares).
pub use tpch::describe;

/// SQLSTATE of a failed statement.
pub fn sqlstate(error: &postgres::Error) -> String {
    error
        .code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {error}"))
}

/// Waits until `pid` shows `query_fragment` as its active query (so a cancel hits DuckDB, not
/// the parser), at most 10 s.
pub fn wait_until_running(observer: &mut Client, pid: i32, query_fragment: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = observer
            .query_opt(
                "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND strpos(query, $2) > 0",
                &[&pid, &query_fragment],
            )
            .unwrap();
        if row.is_some() {
            // Give DuckDB a moment to be well inside the query.
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        assert!(Instant::now() < deadline, "the query never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `sql` in `worker`, cancels it from another session once `fragment` shows in
/// pg_stat_activity (and `settle` later), and returns the error, how long the cancel took to end
/// it, and the session for further use.
pub fn cancel_running(
    mut worker: Client,
    sql: &'static str,
    fragment: &str,
    settle: Duration,
) -> (Error, Duration, Client) {
    let pid = backend_pid(&mut worker);
    let handle = std::thread::spawn(move || {
        let result = worker.simple_query(sql);
        (result, Instant::now(), worker)
    });
    let mut observer = superuser();
    wait_until_running(&mut observer, pid, fragment);
    std::thread::sleep(settle);
    let cancelled_at = Instant::now();
    let sent: bool = observer
        .query_one("SELECT pg_cancel_backend($1)", &[&pid])
        .unwrap()
        .get(0);
    assert!(sent);
    let (result, ended_at, worker) = handle.join().unwrap();
    let error = result.expect_err("the query should have been cancelled");
    (error, ended_at - cancelled_at, worker)
}

/// The bigint a query returns.
pub fn count(client: &mut Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).unwrap().get(0)
}

/// With statement_timeout = `ms`, `sql` ends with a statement timeout within a second more.
pub fn times_out(worker: &mut Client, sql: &str, ms: u64) {
    worker
        .batch_execute(&format!("SET statement_timeout = '{ms}ms'"))
        .unwrap();
    let started = Instant::now();
    let error = worker.simple_query(sql).unwrap_err();
    assert!(
        describe(&error).contains("statement timeout"),
        "{}",
        describe(&error)
    );
    let limit = Duration::from_millis(ms + 1000);
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
}

/// Waits (at most 30 s) until `table` has `want` rows with an embedding: the background worker
/// drains the queue on its own schedule.
pub fn wait_for_embeddings(client: &mut Client, table: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let sql = format!("SELECT count(*) FROM {table} WHERE embedding IS NOT NULL");
    while count(client, &sql) < want {
        assert!(
            Instant::now() < deadline,
            "the worker did not embed the rows of {table}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A port on 127.0.0.1 where connections are accepted and never answered.
pub fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

/// psql connected to the test database as the superuser: it sends parameters untyped
/// (`\bind`), as many drivers do, and a test can kill it to lose a client abruptly.
pub fn psql(args: &[&str]) -> std::process::Command {
    let program = std::env::var("LLM_SQL_TEST_PSQL")
        .expect("LLM_SQL_TEST_PSQL is not set: run the client tests through client_tests/run");
    let mut command = std::process::Command::new(program);
    command
        .args([
            "-h",
            "/tmp",
            "-p",
            &port().to_string(),
            "-U",
            "postgres",
            "-d",
            DATABASE,
        ])
        .args(["-XAtq", "-v", "ON_ERROR_STOP=1"])
        .args(args);
    command
}
