//! Columnar copies of local tables (`src/local/copy.rs`): DuckDB reading `pg.<schema>.<table>`
//! returns exactly what Postgres returns in the same session, whatever happened to the table
//! since its copy was made, and the copy is never a way around privileges or policies.

use std::sync::Mutex;
use std::time::Duration;

use llm_sql_client_tests::*;
use postgres::Client;

/// One test at a time: an open REPEATABLE READ snapshot in one would keep VACUUM from marking
/// the pages of another's tables all-visible, and those would never be copied.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The columns of `copies_t` as llm_sql.query's column definition list must name them.
const COLUMNS: &str =
    "id int, n numeric(20,4), t text, d date, ts timestamptz, u uuid, b bytea, f float8";

/// Whether DuckDB (through `pg`) and Postgres give the same rows of `table`, compared as
/// Postgres's text of the sorted rows.
fn same_rows(client: &mut Client, table: &str, columns: &str) -> (bool, String) {
    let row: postgres::Row = client
        .query_one(
            &format!(
                "WITH via_duckdb AS (SELECT * FROM llm_sql.query('SELECT * FROM pg.public.{table}') AS q({columns})),
                      via_postgres AS (SELECT * FROM {table})
                 SELECT (SELECT coalesce(array_agg(r ORDER BY r)::text, '') FROM via_duckdb r)
                      = (SELECT coalesce(array_agg(r ORDER BY r)::text, '') FROM via_postgres r),
                        (SELECT count(*) FROM via_postgres)::text || ' rows; duckdb ' ||
                        (SELECT count(*) FROM via_duckdb)::text || ' rows'"
            ),
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

fn assert_same(client: &mut Client, table: &str, columns: &str, state: &str) {
    let (same, detail) = same_rows(client, table, columns);
    assert!(
        same,
        "{state}: DuckDB's rows differ from Postgres's ({detail})"
    );
}

/// `(copied_blocks, last_copied_blocks, last_live_blocks)` of `table`'s copy in this session.
fn copy_state(client: &mut Client, table: &str) -> Option<(i64, i64, i64)> {
    client
        .query_opt(
            "SELECT copied_blocks, last_copied_blocks, last_live_blocks FROM llm_sql.local_copies()
              WHERE tbl = $1::text::regclass",
            &[&table],
        )
        .unwrap()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
}

fn create_table(client: &mut Client, rows: i32) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS copies_t;
             CREATE TABLE copies_t (id int, n numeric(20,4), t text, d date, ts timestamptz,
                                    u uuid, b bytea, f float8);
             ALTER TABLE copies_t ALTER COLUMN t SET STORAGE EXTERNAL;
             INSERT INTO copies_t
             SELECT i,
                    CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 12345.6789) % 9999999999999999 END,
                    CASE WHEN i % 500 = 0 THEN repeat(md5(i::text), 300)   -- TOASTed, out of line
                         WHEN i % 7 = 0 THEN NULL ELSE 'row ' || i END,
                    CASE WHEN i = 1 THEN 'infinity'::date WHEN i = 2 THEN '-infinity'::date
                         ELSE date '2000-02-29' + i END,
                    CASE WHEN i % 11 = 0 THEN NULL ELSE timestamptz '1999-12-31 23:59:59.999999+00' + i * interval '1 minute' END,
                    md5(i::text)::uuid,
                    CASE WHEN i % 3 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END,
                    CASE WHEN i = 3 THEN 'NaN'::float8 WHEN i = 4 THEN '-0'::float8 ELSE i / 7.0 END
               FROM generate_series(1, {rows}) i;"
        ))
        .unwrap();
    vacuum_all_visible(client, "copies_t");
}

/// VACUUM, which cannot share a query string with other statements.
fn vacuum(client: &mut Client, what: &str) {
    client.batch_execute(&format!("VACUUM {what}")).unwrap();
}

/// VACUUM (ANALYZE) until every page of `table` is all-visible: a transaction running
/// elsewhere in the cluster at that moment (the embedding worker's, a finishing test's) holds
/// back what VACUUM may mark, and only all-visible pages are copied.
fn vacuum_all_visible(client: &mut Client, table: &str) {
    for _ in 0..100 {
        vacuum(client, &format!("(ANALYZE) {table}"));
        let done = format!(
            "SELECT count(*) FROM pg_class WHERE oid = '{table}'::regclass AND relallvisible >= relpages"
        );
        if count(client, &done) == 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{table} did not become all-visible");
}

fn session() -> Client {
    session_with_copy_memory("256MB")
}

fn session_with_copy_memory(limit: &str) -> Client {
    let mut client = superuser();
    client
        .batch_execute(&format!("SET llm_sql.local_copy_memory = '{limit}'"))
        .unwrap();
    client
}

#[test]
fn copies_stay_exact_through_writes_ddl_and_vacuum() {
    let _serial = serial();
    let mut reader = session();
    create_table(&mut reader, 20_000);
    assert_same(
        &mut reader,
        "copies_t",
        COLUMNS,
        "first read (builds the copy)",
    );
    assert_same(&mut reader, "copies_t", COLUMNS, "warm copy");
    let (copied, from_copy, live) = copy_state(&mut reader, "copies_t").expect("a copy");
    assert!(copied > 10, "{copied}");
    assert_eq!(
        (from_copy, live),
        (copied, 0),
        "every page came from the copy"
    );

    // DuckDB's EXPLAIN shows what is read: the copy alone while nothing changed, the copy and a
    // live scan of the changed pages after.
    let explain = |client: &mut Client| {
        texts(
            client,
            "SELECT v FROM llm_sql.query('EXPLAIN SELECT count(*) FROM pg.public.copies_t') AS q(k text, v text)",
        )
        .join("\n")
    };
    let plan = explain(&mut reader);
    assert!(
        plan.contains("llm_sql_copies") && !plan.contains("LLM_SQL_PG_SCAN"),
        "{plan}"
    );

    // The reading transaction's own writes.
    reader
        .batch_execute(
            "BEGIN;
             UPDATE copies_t SET n = n + 1, t = 'changed' WHERE id = 5000;
             DELETE FROM copies_t WHERE id BETWEEN 100 AND 120;
             INSERT INTO copies_t (id, t) VALUES (-1, 'inserted');",
        )
        .unwrap();
    assert_same(&mut reader, "copies_t", COLUMNS, "own uncommitted writes");
    let plan = explain(&mut reader);
    assert!(
        plan.contains("llm_sql_copies") && plan.contains("LLM_SQL_PG_SCAN"),
        "{plan}"
    );
    let (_, _, live) = copy_state(&mut reader, "copies_t").unwrap();
    assert!(live > 0, "changed pages are read live");
    reader.batch_execute("COMMIT").unwrap();

    // Another session's committed writes, then VACUUM marking the pages all-visible again.
    let mut writer = session();
    writer
        .batch_execute("UPDATE copies_t SET d = d + 1 WHERE id % 1000 = 1; DELETE FROM copies_t WHERE id = 19999")
        .unwrap();
    assert_same(&mut reader, "copies_t", COLUMNS, "another session's commit");
    vacuum(&mut writer, "copies_t");
    assert_same(&mut reader, "copies_t", COLUMNS, "after VACUUM");

    // DDL: a new column with a default (stored as a missing value), a dropped column, a wider
    // type without a rewrite, TRUNCATE, VACUUM FULL.
    writer
        .batch_execute("ALTER TABLE copies_t ADD COLUMN extra int DEFAULT 7")
        .unwrap();
    vacuum(&mut writer, "copies_t");
    let with_extra = format!("{COLUMNS}, extra int");
    assert_same(&mut reader, "copies_t", &with_extra, "after ADD COLUMN");
    writer
        .batch_execute("ALTER TABLE copies_t DROP COLUMN f")
        .unwrap();
    let without_f = with_extra.replace(", f float8", "");
    assert_same(&mut reader, "copies_t", &without_f, "after DROP COLUMN");
    writer
        .batch_execute("ALTER TABLE copies_t ALTER COLUMN n TYPE numeric(30,4)")
        .unwrap();
    let wider = without_f.replace("numeric(20,4)", "numeric(30,4)");
    assert_same(&mut reader, "copies_t", &wider, "after ALTER TYPE");
    writer.batch_execute("VACUUM FULL copies_t").unwrap();
    assert_same(&mut reader, "copies_t", &wider, "after VACUUM FULL");
    writer
        .batch_execute(
            "TRUNCATE copies_t; INSERT INTO copies_t (id, t) VALUES (1, 'after truncate')",
        )
        .unwrap();
    assert_same(&mut reader, "copies_t", &wider, "after TRUNCATE");
    assert_eq!(
        count(
            &mut reader,
            "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM pg.public.copies_t') AS q(n bigint)"
        ),
        1
    );
}

#[test]
fn an_old_snapshot_keeps_its_rows_while_others_change_and_vacuum() {
    let _serial = serial();
    let mut setup = session();
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS copies_rr;
             CREATE TABLE copies_rr AS SELECT i AS id, i * 2 AS v FROM generate_series(1, 50000) i;",
        )
        .unwrap();
    vacuum_all_visible(&mut setup, "copies_rr");
    let sum = "SELECT s FROM llm_sql.query('SELECT sum(v)::BIGINT AS s, count(*) AS c FROM pg.public.copies_rr') AS q(s bigint, c bigint)";
    let mut old = session();
    old.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .unwrap();
    let before = count(&mut old, sum);
    assert_eq!(before, 50000 * 50001);
    setup
        .batch_execute(
            "UPDATE copies_rr SET v = 0 WHERE id % 100 = 0;
             DELETE FROM copies_rr WHERE id < 1000;
             INSERT INTO copies_rr VALUES (0, 1000000);",
        )
        .unwrap();
    vacuum(&mut setup, "copies_rr");
    assert_eq!(
        count(&mut old, sum),
        before,
        "the old snapshot sees its rows"
    );
    assert_same(&mut old, "copies_rr", "id int, v int", "old snapshot");
    // A session that copies the table now, while the old snapshot still holds back VACUUM.
    let mut fresh = session();
    assert_same(&mut fresh, "copies_rr", "id int, v int", "new session");
    assert_ne!(count(&mut fresh, sum), before);
    old.batch_execute("COMMIT").unwrap();
    vacuum(&mut setup, "copies_rr");
    assert_same(
        &mut old,
        "copies_rr",
        "id int, v int",
        "after the old snapshot ended",
    );
    assert_eq!(count(&mut old, sum), count(&mut fresh, sum));
}

#[test]
fn copies_are_only_for_roles_that_may_read_the_whole_table_without_policies() {
    let _serial = serial();
    let mut su = superuser();
    su.batch_execute(
        "DROP TABLE IF EXISTS copies_secret;
         CREATE TABLE copies_secret AS SELECT i AS id, 'owner ' || (i % 3) AS owner, i AS payload
           FROM generate_series(1, 3000) i;",
    )
    .unwrap();
    vacuum_all_visible(&mut su, "copies_secret");
    create_login_role("copies_full", "pw", "");
    create_login_role("copies_policy", "pw", "");
    create_login_role("copies_columns", "pw", "");
    su.batch_execute(
        "GRANT SELECT ON copies_secret TO copies_full, copies_policy;
         GRANT SELECT (id, owner) ON copies_secret TO copies_columns;
         GRANT USAGE ON SCHEMA llm_sql TO copies_full, copies_policy, copies_columns;",
    )
    .unwrap();
    let read =
        "SELECT count(*) FROM llm_sql.query('SELECT id FROM pg.public.copies_secret') AS q(id int)";
    let copies = "SELECT count(*) FROM llm_sql.local_copies()";

    // Full SELECT, no policy: the copy is built, and is used.
    let mut full = login("copies_full", "pw");
    assert_eq!(count(&mut full, read), 3000);
    assert_eq!(count(&mut full, copies), 1);
    // Its copy is not a way in: not by name, and not after the table changes hands.
    let oid: i64 = count(&mut su, "SELECT 'copies_secret'::regclass::oid::bigint");
    let direct = full
        .query_one(
            &format!("SELECT count(*) FROM llm_sql.query('SELECT * FROM llm_sql_copies.main.t{oid}') AS q(n bigint)"),
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&direct), "42501", "{}", describe(&direct));
    su.batch_execute(
        "ALTER TABLE copies_secret ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON copies_secret USING (owner = 'owner 1');",
    )
    .unwrap();
    assert_eq!(count(&mut full, read), 1000, "the policy applies at once");
    assert_eq!(count(&mut full, copies), 0, "the copy was dropped");
    su.batch_execute("REVOKE SELECT ON copies_secret FROM copies_full")
        .unwrap();
    let denied = full.query_one(read, &[]).unwrap_err();
    assert_eq!(sqlstate(&denied), "42501", "{}", describe(&denied));

    // A role to whom the policy applies never gets a copy.
    let mut policy = login("copies_policy", "pw");
    assert_eq!(count(&mut policy, read), 1000);
    assert_eq!(count(&mut policy, copies), 0);
    // Nor does a role with SELECT on some columns only.
    su.batch_execute("ALTER TABLE copies_secret DISABLE ROW LEVEL SECURITY")
        .unwrap();
    let mut columns = login("copies_columns", "pw");
    assert_eq!(count(&mut columns, read), 3000);
    assert_eq!(count(&mut columns, copies), 0);
    let payload = columns
        .query_one(
            "SELECT count(*) FROM llm_sql.query('SELECT payload FROM pg.public.copies_secret') AS q(p int)",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&payload), "42501", "{}", describe(&payload));
    let warm = columns
        .query_one("SELECT llm_sql.warm('copies_secret')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&warm), "0A000", "{}", describe(&warm));
}

#[test]
fn a_build_stops_on_cancel_and_on_a_killed_backend() {
    let _serial = serial();
    let mut su = session();
    su.batch_execute(
        "DROP TABLE IF EXISTS copies_big;
         CREATE TABLE copies_big AS SELECT i AS id, md5(i::text) AS h, i * 0.5 AS x
           FROM generate_series(1, 3000000) i;",
    )
    .unwrap();
    vacuum_all_visible(&mut su, "copies_big");
    // A statement timeout ends the build; the session goes on, and reads the table exactly.
    times_out(&mut su, "SELECT llm_sql.warm('copies_big')", 300);
    su.batch_execute("SET statement_timeout = 0").unwrap();
    assert_eq!(
        copy_state(&mut su, "copies_big"),
        None,
        "no half-built copy is kept"
    );
    assert_eq!(
        count(&mut su, "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM pg.public.copies_big') AS q(n bigint)"),
        3_000_000
    );

    // A backend killed in the middle of a build takes nothing with it.
    let mut victim = session();
    let pid = backend_pid(&mut victim);
    let handle =
        std::thread::spawn(move || victim.simple_query("SELECT llm_sql.warm('copies_big')"));
    let mut observer = superuser();
    wait_until_running(&mut observer, pid, "llm_sql.warm");
    observer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    assert!(handle.join().unwrap().is_err());
    std::thread::sleep(Duration::from_millis(200));
    let mut after = session();
    assert_eq!(
        count(&mut after, "SELECT llm_sql.warm('copies_big')"),
        3_000_000
    );
    assert_eq!(
        count(&mut after, "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM pg.public.copies_big WHERE id % 2 = 0') AS q(n bigint)"),
        1_500_000
    );
}

#[test]
fn copies_stay_within_local_copy_memory() {
    let _serial = serial();
    let mut su = superuser();
    for table in ["copies_small_a", "copies_small_b", "copies_large"] {
        let rows = if table == "copies_large" {
            200_000
        } else {
            20_000
        };
        su.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, {rows}) i;"
        ))
        .unwrap();
        vacuum_all_visible(&mut su, table);
    }
    // Room for one small table (about 1.4 MB of heap each), not two, nor the large one.
    su.batch_execute("SET llm_sql.local_copy_memory = '2MB'")
        .unwrap();
    let copied = |client: &mut Client| {
        texts(
            client,
            "SELECT tbl::text FROM llm_sql.local_copies()
              WHERE tbl::text LIKE 'copies_small%' OR tbl::text = 'copies_large' ORDER BY 1",
        )
    };
    assert_same(
        &mut su,
        "copies_small_a",
        "id int, h text",
        "first small table",
    );
    assert_eq!(copied(&mut su), ["copies_small_a"]);
    assert_eq!(
        texts(
            &mut su,
            "SELECT stored::text FROM llm_sql.local_copies() WHERE tbl = 'copies_small_a'::regclass"
        ),
        ["false"],
        "a copy the session built is its own"
    );
    assert_same(
        &mut su,
        "copies_small_b",
        "id int, h text",
        "second small table",
    );
    assert_eq!(
        copied(&mut su),
        ["copies_small_b"],
        "the least recently used copy went"
    );
    assert_same(
        &mut su,
        "copies_large",
        "id int, h text",
        "a table larger than the limit",
    );
    assert_eq!(
        copied(&mut su),
        ["copies_small_b"],
        "no copy of a table beyond the limit"
    );
    // A role that may read the table but not maintain it warms a copy for its session only,
    // within the limit.
    create_login_role("copies_warmer", "pw", "");
    su.batch_execute(
        "GRANT SELECT ON copies_large TO copies_warmer;
         GRANT USAGE ON SCHEMA llm_sql TO copies_warmer;
         ALTER ROLE copies_warmer SET llm_sql.local_copy_memory = '2MB';",
    )
    .unwrap();
    let mut warmer = login("copies_warmer", "pw");
    let too_large = warmer
        .query_one("SELECT llm_sql.warm('copies_large')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&too_large), "54000", "{}", describe(&too_large));
    su.batch_execute("SET llm_sql.local_copy_memory = 0")
        .unwrap();
    assert_same(
        &mut su,
        "copies_small_b",
        "id int, h text",
        "copies turned off",
    );
    let plan = texts(
        &mut su,
        "SELECT v FROM llm_sql.query('EXPLAIN SELECT count(*) FROM pg.public.copies_small_b') AS q(k text, v text)",
    )
    .join("\n");
    assert!(!plan.contains("llm_sql_copies"), "{plan}");
    assert!(
        copied(&mut su).is_empty(),
        "copies are dropped once the limit is 0"
    );
}

#[test]
fn serializable_transactions_reading_copies_still_conflict() {
    let _serial = serial();
    let mut setup = session();
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS copies_ser_t, copies_ser_u;
             CREATE TABLE copies_ser_t AS SELECT i AS id FROM generate_series(1, 10000) i;
             CREATE TABLE copies_ser_u (id int);",
        )
        .unwrap();
    vacuum_all_visible(&mut setup, "copies_ser_t");
    // Write skew: a reads t (from its copy) and writes u; b reads u and writes t.
    let mut a = session();
    let mut b = session();
    a.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .unwrap();
    b.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .unwrap();
    assert_eq!(
        count(
            &mut a,
            "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM pg.public.copies_ser_t') AS q(n bigint)"
        ),
        10000
    );
    assert_eq!(
        copy_state(&mut a, "copies_ser_t").map(|(_, _, live)| live),
        Some(0),
        "read from the copy"
    );
    assert_eq!(count(&mut b, "SELECT count(*) FROM copies_ser_u"), 0);
    a.batch_execute("INSERT INTO copies_ser_u VALUES (1)")
        .unwrap();
    b.batch_execute("INSERT INTO copies_ser_t VALUES (0)")
        .unwrap();
    let first = a.batch_execute("COMMIT");
    let second = b.batch_execute("COMMIT");
    let failed: Vec<String> = [first, second]
        .iter()
        .filter_map(|r| r.as_ref().err().map(sqlstate))
        .collect();
    assert_eq!(failed, ["40001"], "one of the two must fail to serialize");
}

#[test]
fn a_value_a_copy_cannot_hold_leaves_the_table_to_the_live_scan() {
    let _serial = serial();
    let mut su = session();
    su.batch_execute(
        "DROP TABLE IF EXISTS copies_wide;
         CREATE TABLE copies_wide AS SELECT i AS id, i::numeric AS amount FROM generate_series(1, 1000) i;
         INSERT INTO copies_wide VALUES (0, 1e35);",
    )
    .unwrap();
    vacuum_all_visible(&mut su, "copies_wide");
    // The statement does not read `amount`: it runs, live, and no copy is kept.
    assert_eq!(
        count(
            &mut su,
            "SELECT s FROM llm_sql.query('SELECT sum(id)::BIGINT AS s FROM pg.public.copies_wide') AS q(s bigint)"
        ),
        500500
    );
    assert_eq!(copy_state(&mut su, "copies_wide"), None);
    // Reading it, or copying it on purpose, is the conversion's error.
    for sql in [
        "SELECT count(*) FROM llm_sql.query('SELECT amount FROM pg.public.copies_wide') AS q(a numeric)",
        "SELECT llm_sql.warm('copies_wide')",
    ] {
        let error = su.query_one(sql, &[]).unwrap_err();
        assert_eq!(sqlstate(&error), "22003", "{}", describe(&error));
    }
}

#[test]
fn a_copy_follows_numeric_as_double() {
    let _serial = serial();
    let mut su = session();
    su.batch_execute(
        "DROP TABLE IF EXISTS copies_money;
         CREATE TABLE copies_money AS SELECT i AS id, 0.1::numeric AS amount FROM generate_series(1, 30) i;",
    )
    .unwrap();
    vacuum_all_visible(&mut su, "copies_money");
    let total = "SELECT t::text FROM llm_sql.query('SELECT sum(amount) AS t FROM pg.public.copies_money') AS q(t numeric)";
    // A copy made while numeric travels as DOUBLE is not used once it travels exactly again.
    su.batch_execute("SET llm_sql.numeric_as_double = on")
        .unwrap();
    let inexact = texts(&mut su, total);
    su.batch_execute("SET llm_sql.numeric_as_double = off")
        .unwrap();
    assert_eq!(
        texts(&mut su, total),
        ["3.000000000"],
        "inexact was {inexact:?}"
    );
    assert_eq!(
        copy_state(&mut su, "copies_money").map(|(_, _, live)| live),
        Some(0)
    );
}

/// Whether the data directory holds a stored copy of `table`.
fn stored_file(su: &mut Client, table: &str) -> bool {
    count(
        su,
        &format!(
            "SELECT count(*) FROM pg_stat_file('llm_sql/copies/' ||
                    (SELECT oid FROM pg_database WHERE datname = current_database()) || '/' ||
                    '{table}'::regclass::oid || '.duckdb', true) WHERE size > 0"
        ),
    ) == 1
}

/// A session that cannot copy tables itself: whatever it reads from a copy is a stored one.
fn stored_only_session() -> Client {
    session_with_copy_memory("0")
}

#[test]
fn a_stored_copy_serves_every_new_session_exactly() {
    let _serial = serial();
    let mut su = session();
    create_table(&mut su, 20_000);
    assert_eq!(count(&mut su, "SELECT llm_sql.warm('copies_t')"), 20_000);
    assert!(stored_file(&mut su, "copies_t"));

    // A new session reads it from the stored copy, without copying anything itself.
    let mut reader = stored_only_session();
    assert_same(&mut reader, "copies_t", COLUMNS, "stored copy, new session");
    let (copied, from_copy, live) = copy_state(&mut reader, "copies_t").expect("stored copy used");
    assert!(
        copied > 0 && from_copy == copied && live == 0,
        "{copied} {from_copy} {live}"
    );
    assert_eq!(
        texts(
            &mut reader,
            "SELECT stored::text FROM llm_sql.local_copies() WHERE tbl = 'copies_t'::regclass"
        ),
        ["true"]
    );

    // Other sessions' commits and the reader's own writes are read live, exactly.
    su.batch_execute(
        "UPDATE copies_t SET t = 'changed' WHERE id % 1000 = 1; DELETE FROM copies_t WHERE id = 5;",
    )
    .unwrap();
    assert_same(
        &mut reader,
        "copies_t",
        COLUMNS,
        "after another session's commit",
    );
    let (_, _, live) = copy_state(&mut reader, "copies_t").unwrap();
    assert!(live > 0, "changed pages are read live");
    reader
        .batch_execute("BEGIN; INSERT INTO copies_t (id, t) VALUES (-1, 'mine'); UPDATE copies_t SET f = 0 WHERE id = 7;")
        .unwrap();
    assert_same(&mut reader, "copies_t", COLUMNS, "own uncommitted writes");
    reader.batch_execute("ROLLBACK").unwrap();
    let mut fresh = stored_only_session();
    assert_same(
        &mut fresh,
        "copies_t",
        COLUMNS,
        "stored copy after changes, new session",
    );

    // Its catalog is llm_sql's own: not an attachment alias, and not readable by name (below).
    let oid: i64 = count(&mut su, "SELECT 'copies_t'::regclass::oid::bigint");
    let alias = fresh
        .query_one(
            "SELECT llm_sql.attach('llm_sql_copies_x', 'sqlite:/nonexistent.db')",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&alias), "42602", "{}", describe(&alias));

    // A role that may read the table but not maintain it stores nothing; one that owns its
    // table stores it, even without the right to open server files.
    create_login_role("copies_store_reader", "pw", "");
    create_login_role("copies_store_owner", "pw", "");
    su.batch_execute(
        "DROP TABLE IF EXISTS copies_owned;
         CREATE TABLE copies_owned AS SELECT i AS id, i * 2 AS twice FROM generate_series(1, 5000) i;
         ALTER TABLE copies_owned OWNER TO copies_store_owner;
         GRANT SELECT ON copies_owned TO copies_store_reader;
         GRANT USAGE ON SCHEMA llm_sql TO copies_store_reader, copies_store_owner;",
    )
    .unwrap();
    vacuum_all_visible(&mut su, "copies_owned");
    let sum = "SELECT s FROM llm_sql.query('SELECT sum(twice)::BIGINT AS s FROM pg.public.copies_owned') AS q(s bigint)";
    let mut reader_role = login("copies_store_reader", "pw");
    let direct = reader_role
        .query_one(
            &format!("SELECT count(*) FROM llm_sql.query('SELECT count(*) FROM llm_sql_copies_t{oid}.main.rows') AS q(n bigint)"),
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&direct), "42501", "{}", describe(&direct));
    assert_eq!(
        count(
            &mut reader_role,
            "SELECT count(*) FROM llm_sql.local_copies()"
        ),
        0,
        "no copy of a table the role may not read is listed"
    );
    assert_eq!(
        count(
            &mut reader_role,
            "SELECT n FROM llm_sql.query('SELECT count(*) AS n FROM duckdb_databases() WHERE database_name LIKE ''llm_sql_copies_t%''') AS q(n bigint)"
        ),
        0,
        "nor attached"
    );
    assert_eq!(
        count(&mut reader_role, "SELECT llm_sql.warm('copies_owned')"),
        5000
    );
    assert!(!stored_file(&mut su, "copies_owned"));
    let mut owner = login("copies_store_owner", "pw");
    assert_eq!(count(&mut owner, sum), 25_005_000);
    assert_eq!(
        count(&mut owner, "SELECT llm_sql.warm('copies_owned')"),
        5000
    );
    assert!(stored_file(&mut su, "copies_owned"));
    // (Its DuckDB, which may not open files, was reopened to attach the stored copy.)
    assert_eq!(count(&mut owner, sum), 25_005_000);
    assert_eq!(
        count(&mut owner, "SELECT count(*) FROM llm_sql.local_copies() WHERE tbl = 'copies_owned'::regclass AND last_copied_blocks > 0"),
        1
    );
    su.batch_execute("UPDATE copies_owned SET twice = 0 WHERE id = 1")
        .unwrap();
    assert_eq!(count(&mut fresh, sum), 25_005_000 - 2);

    // TRUNCATE gives the table a new file: the stored copy is not used again.
    su.batch_execute("TRUNCATE copies_owned; INSERT INTO copies_owned VALUES (1, 7);")
        .unwrap();
    // (The background worker may store a new copy of it meanwhile.)
    let mut after = stored_only_session();
    assert_eq!(count(&mut after, sum), 7);

    // A dropped table's stored copy is removed by the next warm in the database.
    let owned = format!(
        "{}.duckdb",
        count(&mut su, "SELECT 'copies_owned'::regclass::oid::bigint")
    );
    su.batch_execute("DROP TABLE copies_owned").unwrap();
    let path = texts(
        &mut su,
        "SELECT 'llm_sql/copies/' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '/'",
    )
    .remove(0);
    let files = |su: &mut Client| {
        texts(
            su,
            &format!("SELECT f FROM pg_ls_dir('{path}') f ORDER BY f"),
        )
    };
    assert!(files(&mut su).contains(&owned));
    vacuum_all_visible(&mut su, "copies_t");
    assert_eq!(
        count(&mut su, "SELECT llm_sql.warm('copies_t')"),
        20_000 - 1
    );
    let remaining = files(&mut su);
    assert!(!remaining.contains(&owned), "{remaining:?}");
    assert!(
        remaining.contains(&format!("{oid}.duckdb")),
        "{remaining:?}"
    );
}

/// When `table`'s stored copy was last written.
fn stored_at(su: &mut Client, table: &str) -> String {
    texts(
        su,
        &format!(
            "SELECT (pg_stat_file('llm_sql/copies/' ||
                     (SELECT oid FROM pg_database WHERE datname = current_database()) || '/' ||
                     '{table}'::regclass::oid || '.duckdb')).modification::text"
        ),
    )
    .remove(0)
}

#[test]
fn the_worker_stores_a_copy_again_once_its_table_changed() {
    let _serial = serial();
    let mut su = session();
    su.batch_execute(
        "DROP TABLE IF EXISTS copies_refresh;
         CREATE TABLE copies_refresh WITH (autovacuum_enabled = off) AS
           SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 30000) i;",
    )
    .unwrap();
    vacuum_all_visible(&mut su, "copies_refresh");
    assert_eq!(
        count(&mut su, "SELECT llm_sql.warm('copies_refresh')"),
        30_000
    );
    let first = stored_at(&mut su, "copies_refresh");
    // A third of the rows change, and VACUUM marks their pages all-visible again: a new copy
    // would now hold far more than the stored one can stand for.
    std::thread::sleep(Duration::from_millis(1100));
    su.batch_execute("UPDATE copies_refresh SET h = 'changed' WHERE id % 3 = 0")
        .unwrap();
    // Until VACUUM, every changed page and every page the new rows went to holds rows too
    // recent for a copy: storing one now would hold nothing, so the worker waits (five of its
    // rounds here; autovacuum is off for the table).
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        stored_at(&mut su, "copies_refresh"),
        first,
        "the worker stored a copy before VACUUM"
    );
    vacuum_all_visible(&mut su, "copies_refresh");
    // The worker may store while VACUUM is half done (once a tenth of the table is new to the
    // copy), and again while more than a tenth is: in the end a new session reads at least
    // nine tenths of the table from a stored copy, and every row exactly on the way.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut reader = stored_only_session();
        assert_same(
            &mut reader,
            "copies_refresh",
            "id int, h text",
            "refreshed copy",
        );
        let (copied, from_copy, live) = copy_state(&mut reader, "copies_refresh").unwrap();
        let stored_again = stored_at(&mut su, "copies_refresh") != first;
        if stored_again && copied > 0 && from_copy == copied && live * 10 <= copied + live {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not store the copy again: {copied} blocks copied, {from_copy} read from \
             it, {live} read live"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
