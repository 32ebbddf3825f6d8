//! Attachments across sessions and against real servers: a second PostgreSQL 18 cluster and a
//! MariaDB server that client_tests/run starts on 127.0.0.1, plus SQLite files.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use llm_sql_client_tests::*;

const REMOTE_PG_PASSWORD: &str = "r3m0te'pa;ss";
const MYSQL_PASSWORD: &str = "my;p@ss'w";

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// postgresql://remote_reader:<password>@127.0.0.1:<port>/crm
fn remote_pg_uri(password: &str) -> String {
    format!(
        "postgresql://remote_reader:{}@127.0.0.1:{}/crm",
        percent(password),
        env_port("LLM_SQL_REMOTE_PG_PORT")
    )
}

fn mysql_dsn(password: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user=shop password='{}' database=shop",
        env_port("LLM_SQL_MYSQL_PORT"),
        password.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// A superuser session that records the server's NOTICE/WARNING messages.
fn superuser_with_notices() -> (Client, Arc<Mutex<Vec<String>>>) {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let client = superuser_config()
        .notice_callback(move |n| {
            sink.lock()
                .unwrap()
                .push(format!("{}: {}", n.severity(), n.message()))
        })
        .connect(postgres::NoTls)
        .unwrap();
    (client, notices)
}

fn attach(client: &mut Client, alias: &str, dsn: &str, extra: &str) -> Result<(), Error> {
    client
        .query_one(
            &format!("SELECT llm_sql.attach($1, $2{extra})::text"),
            &[&alias, &dsn],
        )
        .map(|_| ())
}

fn count(client: &mut Client, duck_sql: &str) -> Result<i64, Error> {
    client
        .query_one(
            "SELECT n FROM llm_sql.query($1) AS t(n bigint)",
            &[&duck_sql],
        )
        .map(|row| row.get(0))
}

fn cleanup(client: &mut Client, aliases: &[&str]) {
    for alias in aliases {
        client
            .execute("SELECT llm_sql.detach($1, if_exists => true)", &[alias])
            .unwrap();
    }
}

/// Fills the remote cluster's crm database directly (not through llm_sql).
fn seed_remote_pg() {
    let mut remote = postgres::Config::new()
        .host("127.0.0.1")
        .port(env_port("LLM_SQL_REMOTE_PG_PORT"))
        .user("remote_reader")
        .password(REMOTE_PG_PASSWORD)
        .dbname("crm")
        .connect(postgres::NoTls)
        .unwrap();
    remote
        .batch_execute(
            "DROP TABLE IF EXISTS customers;
             CREATE TABLE customers AS SELECT g AS customer_id, 'c' || g AS name FROM generate_series(1, 250) g;",
        )
        .unwrap();
}

#[test]
fn postgres_server_attachment_never_shows_its_password() {
    seed_remote_pg();
    let mut su = superuser();
    cleanup(&mut su, &["remote_crm"]);
    attach(
        &mut su,
        "remote_crm",
        &remote_pg_uri(REMOTE_PG_PASSWORD),
        "",
    )
    .unwrap();
    assert_eq!(
        count(&mut su, "SELECT count(*) FROM remote_crm.public.customers").unwrap(),
        250
    );
    let dsn: String = su
        .query_one(
            "SELECT dsn FROM llm_sql.attachments() WHERE alias = 'remote_crm'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(dsn.contains("remote_reader:********@"), "{dsn}");
    // Nothing DuckDB shows carries the password: databases, secrets, settings.
    let shown: String = su
        .query_one(
            "SELECT string_agg(j::text, ' ') FROM (
               SELECT j FROM llm_sql.query_json('SELECT * FROM duckdb_databases()') j
               UNION ALL SELECT j FROM llm_sql.query_json('SELECT * FROM duckdb_secrets()') j) s",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(shown.contains("remote_crm"), "{shown}");
    assert!(
        !shown.contains("pa;ss") && !shown.contains("pa%3Bss"),
        "{shown}"
    );
    // A wrong password: the remote's message, without the password.
    let error = attach(&mut su, "remote_bad", &remote_pg_uri("wrong'secret;pw"), "").unwrap_err();
    let message = describe(&error);
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(
        !message.contains("wrong'secret") && !message.contains("secret%3Bpw"),
        "{message}"
    );
    let listed: i64 = su
        .query_one(
            "SELECT count(*) FROM llm_sql.attachments() WHERE alias = 'remote_bad'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(listed, 0, "a failed attach left an entry behind");
    // The registry itself is not readable by ordinary roles.
    create_login_role("registry_snoop", "snoop", "");
    let mut snoop = login("registry_snoop", "snoop");
    let error = snoop
        .query("SELECT dsn FROM llm_sql.attachment_registry", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&error), "42501");
    cleanup(&mut su, &["remote_crm"]);
}

#[test]
fn mysql_server_attachment_reads_mariadb() {
    let mut su = superuser();
    cleanup(&mut su, &["shop_rw", "shop"]);
    // Write the data through a read-write attachment (DuckDB's MySQL extension), then read it
    // through a read-only one.
    attach(
        &mut su,
        "shop_rw",
        &mysql_dsn(MYSQL_PASSWORD),
        ", read_only => false, persist => false",
    )
    .unwrap();
    su.query_one(
        "SELECT llm_sql.execute('DROP TABLE IF EXISTS shop_rw.items; CREATE TABLE shop_rw.items AS SELECT range AS id FROM range(321)')",
        &[],
    )
    .unwrap();
    attach(&mut su, "shop", &mysql_dsn(MYSQL_PASSWORD), "").unwrap();
    assert_eq!(
        count(&mut su, "SELECT count(*) FROM shop.items").unwrap(),
        321
    );
    let error = su
        .query_one("SELECT llm_sql.execute('DELETE FROM shop.items')", &[])
        .unwrap_err();
    assert!(
        describe(&error).to_lowercase().contains("read"),
        "{}",
        describe(&error)
    );
    let dsn: String = su
        .query_one(
            "SELECT dsn FROM llm_sql.attachments() WHERE alias = 'shop'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        dsn.contains("password='********'") && !dsn.contains("p@ss"),
        "{dsn}"
    );
    let error = attach(&mut su, "shop_bad", &mysql_dsn("not;it"), "").unwrap_err();
    let message = describe(&error);
    assert!(message.contains("Access denied"), "{message}");
    assert!(!message.contains("not;it"), "{message}");
    cleanup(&mut su, &["shop_rw", "shop"]);
}

#[test]
fn attach_timeout_bounds_a_server_that_never_answers() {
    let port = silent_server();
    let mut su = superuser();
    su.batch_execute("SET llm_sql.attach_timeout = '1500ms'")
        .unwrap();
    for (alias, dsn, limit) in [
        (
            "dead_mysql",
            format!("mysql://shop:x@127.0.0.1:{port}/shop"),
            5.0,
        ),
        // libpq's connect_timeout counts whole seconds, at least 2.
        (
            "dead_pg",
            format!("host=127.0.0.1 port={port} dbname=x user=u password=x"),
            6.0,
        ),
    ] {
        let started = Instant::now();
        let error = attach(&mut su, alias, &dsn, "").unwrap_err();
        let took = started.elapsed().as_secs_f64();
        assert!(
            took < limit,
            "{alias} took {took:.1} s: {}",
            describe(&error)
        );
        assert_eq!(
            sqlstate(&error).get(..2),
            Some("08"),
            "{}",
            describe(&error)
        );
    }
    // The session is fine afterwards.
    assert_eq!(count(&mut su, "SELECT 7").unwrap(), 7);
}

/// A SQLite file written through DuckDB by the superuser.
fn sqlite_file(su: &mut Client, name: &str, rows: i64) -> String {
    let path = format!("/tmp/llm_sql_client_tests_{}_{name}", std::process::id());
    let _ = std::fs::remove_file(&path);
    su.batch_execute(&format!(
        "SELECT llm_sql.execute($d$LOAD sqlite; ATTACH '{path}' AS mk (TYPE sqlite);
         CREATE TABLE mk.t AS SELECT range AS id FROM range({rows}); DETACH mk$d$)"
    ))
    .unwrap();
    path
}

#[test]
fn persistent_attachments_come_back_in_new_sessions() {
    let mut su = superuser();
    cleanup(&mut su, &["keep_a", "keep_b", "gone"]);
    let a = sqlite_file(&mut su, "keep_a.sqlite", 11);
    let gone = sqlite_file(&mut su, "gone.sqlite", 5);
    attach(&mut su, "keep_a", &a, "").unwrap();
    attach(&mut su, "gone", &gone, "").unwrap();
    attach(&mut su, "keep_b", &a, ", persist => false").unwrap();
    drop(su);
    std::fs::remove_file(&gone).unwrap();

    let (mut fresh, notices) = superuser_with_notices();
    let before: Vec<(String, bool)> = fresh
        .query(
            "SELECT alias, attached_in_session FROM llm_sql.attachments() ORDER BY alias",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Session-only attachments died with their session; nothing is attached before first use.
    assert_eq!(
        before,
        vec![("gone".to_string(), false), ("keep_a".to_string(), false)]
    );
    assert_eq!(
        count(&mut fresh, "SELECT count(*) FROM keep_a.t").unwrap(),
        11
    );
    let warnings = notices.lock().unwrap().clone();
    assert!(
        warnings
            .iter()
            .any(|n| n.starts_with("WARNING") && n.contains("\"gone\"")),
        "{warnings:?}"
    );
    let attached: Vec<String> = fresh
        .query(
            "SELECT alias FROM llm_sql.attachments() WHERE attached_in_session ORDER BY alias",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attached, vec!["keep_a".to_string()]);
    cleanup(&mut fresh, &["keep_a", "gone"]);
}

#[test]
fn grants_reach_sessions_that_are_already_running() {
    let mut su = superuser();
    cleanup(&mut su, &["shared"]);
    let path = sqlite_file(&mut su, "shared.sqlite", 9);
    create_login_role("attach_grantee", "grantee", "");
    let mut grantee = login("attach_grantee", "grantee");
    // The grantee's DuckDB is already open, without the attachment.
    assert_eq!(count(&mut grantee, "SELECT 1").unwrap(), 1);
    attach(&mut su, "shared", &path, "").unwrap();
    let error = count(&mut grantee, "SELECT count(*) FROM shared.t").unwrap_err();
    assert_eq!(sqlstate(&error), "42501", "{}", describe(&error));
    su.execute(
        "SELECT llm_sql.grant_attachment('shared', 'attach_grantee')",
        &[],
    )
    .unwrap();
    assert_eq!(
        count(&mut grantee, "SELECT count(*) FROM shared.t").unwrap(),
        9
    );
    su.execute(
        "SELECT llm_sql.revoke_attachment('shared', 'attach_grantee')",
        &[],
    )
    .unwrap();
    let error = count(&mut grantee, "SELECT count(*) FROM shared.t").unwrap_err();
    assert_eq!(sqlstate(&error), "42501", "{}", describe(&error));
    cleanup(&mut su, &["shared"]);
}

/// The seed scenario: local `users` (1000, half active), MySQL `orders` (1500, some dated after
/// 2024-01-01), SQLite `cache` (800): the three-way join returns exactly 750 rows.
#[test]
fn seed_scenario_joins_postgres_mysql_and_sqlite_in_one_query() {
    let mut su = superuser();
    cleanup(&mut su, &["seed_shop", "seed_cache"]);
    su.batch_execute(
        "DROP TABLE IF EXISTS users;
         CREATE TABLE users AS SELECT g AS user_id, g <= 500 AS active, 'user ' || g AS name
           FROM generate_series(1, 1000) g;",
    )
    .unwrap();
    attach(
        &mut su,
        "seed_shop",
        &mysql_dsn(MYSQL_PASSWORD),
        ", read_only => false",
    )
    .unwrap();
    su.batch_execute(
        "SELECT llm_sql.execute($d$DROP TABLE IF EXISTS seed_shop.orders;
           CREATE TABLE seed_shop.orders AS
             SELECT o AS order_id, ((o - 1) % 1000) + 1 AS user_id,
                    CASE WHEN o <= 1250 THEN DATE '2024-03-01' ELSE DATE '2023-03-01' END AS date,
                    o * 1.5 AS amount
             FROM range(1, 1501) t(o)$d$)",
    )
    .unwrap();
    let cache = format!(
        "/tmp/llm_sql_client_tests_{}_cache.sqlite",
        std::process::id()
    );
    let _ = std::fs::remove_file(&cache);
    su.batch_execute(&format!(
        "SELECT llm_sql.execute($d$LOAD sqlite; ATTACH '{cache}' AS mk (TYPE sqlite);
         CREATE TABLE mk.cache AS SELECT u AS user_id, 'blob ' || u AS payload FROM range(1, 801) t(u);
         DETACH mk$d$)"
    ))
    .unwrap();
    attach(&mut su, "seed_cache", &cache, "").unwrap();

    let row = su
        .query_one(
            "SELECT n, checksum FROM llm_sql.query($$
               SELECT count(*) AS n, sum(o.order_id) AS checksum
               FROM pg.public.users u
               JOIN seed_shop.orders o USING (user_id)
               JOIN seed_cache.main.cache c USING (user_id)
               WHERE u.active = true AND o.date > DATE '2024-01-01'$$) AS t(n bigint, checksum bigint)",
            &[],
        )
        .unwrap();
    let (n, checksum): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(n, 750);
    // sum(1..500) + sum(1001..1250)
    assert_eq!(checksum, 125_250 + 281_375);
    cleanup(&mut su, &["seed_shop", "seed_cache"]);
}
