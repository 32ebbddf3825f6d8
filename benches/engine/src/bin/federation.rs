//! Federation benchmark: scanning a local table through catalog `pg` against Postgres alone, and
//! the seed three-way join (Postgres ⋈ MySQL ⋈ SQLite) at 10× its test size through llm_sql
//! against the same join in DuckDB alone (same libduckdb, same extensions, same thread count),
//! measured in one run.
//! Usage: federation <port> <mysql port> <extension dir> <output.md>

use std::fmt::Write as _;
use std::time::Duration;

use llm_sql_engine_bench::{connect, median, ms, timed};

const SCAN_ROWS: i64 = 1_000_000;
const RUNS: usize = 5;
const SQLITE_PATH: &str = "/tmp/llm_sql_bench_cache.sqlite";
const MYSQL_PASSWORD: &str = "my;p@ss'w";

fn join_sql(users: &str, orders: &str, cache: &str) -> String {
    format!(
        "SELECT count(*) AS n, sum(o.order_id) AS checksum FROM {users} u \
         JOIN {orders} o USING (user_id) JOIN {cache} c USING (user_id) \
         WHERE u.active AND o.date > DATE '2024-01-01'"
    )
}

fn mysql_dsn(port: u16) -> String {
    format!("mysql://shop:{}@127.0.0.1:{port}/shop", "my%3Bp%40ss%27w")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let mysql_port: u16 = args[2].parse().unwrap();
    let extension_dir = &args[3];
    let output = &args[4];
    let _ = MYSQL_PASSWORD;

    let mut pg = connect(port);
    pg.batch_execute(&format!(
        "DROP TABLE IF EXISTS scan_1m, users;
         CREATE TABLE scan_1m AS SELECT g AS i, g * 0.5 AS x FROM generate_series(1, {SCAN_ROWS}) g;
         CREATE TABLE users AS SELECT g AS user_id, g <= 5000 AS active, 'user ' || g AS name
           FROM generate_series(1, 10000) g;
         ANALYZE scan_1m; ANALYZE users;
         SET llm_sql.duckdb_threads = 2; SELECT llm_sql.duckdb_reset();"
    ))
    .unwrap();

    // 1. Scanning 1M local rows.
    let pg_count = median(
        (0..RUNS)
            .map(|_| {
                timed(|| {
                    pg.query_one("SELECT count(*), sum(i) FROM scan_1m", &[])
                        .unwrap()
                })
                .0
            })
            .collect(),
    );
    let duck_sql = "SELECT n, s FROM llm_sql.query('SELECT count(*) AS n, sum(i) AS s FROM pg.public.scan_1m') AS t(n bigint, s numeric)";
    pg.query_one(duck_sql, &[]).unwrap();
    let pg_catalog = median(
        (0..RUNS)
            .map(|_| {
                let (t, row) = timed(|| pg.query_one(duck_sql, &[]).unwrap());
                assert_eq!(row.get::<_, i64>(0), SCAN_ROWS);
                t
            })
            .collect(),
    );

    // 2. The seed join at 10×: 10 000 users, 15 000 MySQL orders, 8 000 SQLite cache rows.
    let _ = std::fs::remove_file(SQLITE_PATH);
    pg.batch_execute(&format!(
        "SELECT llm_sql.detach('bench_shop', if_exists => true);
         SELECT llm_sql.detach('bench_cache', if_exists => true);
         SELECT llm_sql.attach('bench_shop', '{}', read_only => false);
         SELECT llm_sql.execute($d$DROP TABLE IF EXISTS bench_shop.orders;
           CREATE TABLE bench_shop.orders AS SELECT o AS order_id, ((o - 1) % 10000) + 1 AS user_id,
             CASE WHEN o <= 12500 THEN DATE '2024-03-01' ELSE DATE '2023-03-01' END AS date
           FROM range(1, 15001) t(o);
           LOAD sqlite; ATTACH '{SQLITE_PATH}' AS mk (TYPE sqlite);
           CREATE TABLE mk.cache AS SELECT u AS user_id, 'blob ' || u AS payload FROM range(1, 8001) t(u);
           DETACH mk$d$);
         SELECT llm_sql.attach('bench_cache', '{SQLITE_PATH}');",
        mysql_dsn(mysql_port)
    ))
    .unwrap();
    let via_llm_sql = format!(
        "SELECT n, checksum FROM llm_sql.query($q${}$q$) AS t(n bigint, checksum bigint)",
        join_sql(
            "pg.public.users",
            "bench_shop.orders",
            "bench_cache.main.cache"
        )
    );
    let expected = pg.query_one(&via_llm_sql, &[]).unwrap().get::<_, i64>(0);
    assert_eq!(expected, 7500, "the seed join at 10x");
    let llm_join = median(
        (0..RUNS)
            .map(|_| timed(|| pg.query_one(&via_llm_sql, &[]).unwrap()).0)
            .collect(),
    );

    // DuckDB alone, same sources: Postgres through DuckDB's postgres extension.
    let config = duckdb::Config::default()
        .with("extension_directory", extension_dir)
        .unwrap()
        .with("autoinstall_known_extensions", "false")
        .unwrap()
        .threads(2)
        .unwrap();
    let duck = duckdb::Connection::open_in_memory_with_flags(config).unwrap();
    duck.execute_batch(&format!(
        "LOAD postgres; LOAD mysql; LOAD sqlite;
         ATTACH 'host=/tmp port={port} dbname=llm_sql_bench user=postgres' AS local_pg (TYPE postgres, READ_ONLY);
         CREATE SECRET (TYPE mysql, PASSWORD 'my;p@ss''w');
         ATTACH 'host=127.0.0.1 port={mysql_port} user=shop database=shop' AS shop (TYPE mysql, READ_ONLY);
         ATTACH '{SQLITE_PATH}' AS cache (TYPE sqlite, READ_ONLY);"
    ))
    .unwrap();
    let alone_sql = join_sql("local_pg.public.users", "shop.orders", "cache.main.cache");
    let count: i64 = duck.query_row(&alone_sql, [], |r| r.get(0)).unwrap();
    assert_eq!(count, 7500);
    let duck_join = median(
        (0..RUNS)
            .map(|_| {
                timed(|| {
                    duck.query_row(&alone_sql, [], |r| r.get::<_, i64>(0))
                        .unwrap()
                })
                .0
            })
            .collect(),
    );
    let duck_scan = median(
        (0..RUNS)
            .map(|_| {
                timed(|| {
                    duck.query_row("SELECT count(*) FROM local_pg.public.scan_1m", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .unwrap()
                })
                .0
            })
            .collect(),
    );

    let rate = |d: Duration| format!("{:.0}", SCAN_ROWS as f64 / d.as_secs_f64());
    let ratio = |a: Duration, b: Duration| format!("{:.2}", a.as_secs_f64() / b.as_secs_f64());
    let mut md = String::new();
    let _ = writeln!(md, "# Federation benchmark\n");
    let _ = writeln!(
        md,
        "Written by `benches/federation/run` (median of {RUNS} runs each, one run of the program). \
         Machine: {} cores, {}. PostgreSQL 18.6, DuckDB 1.5.5 (same libduckdb.so and extensions for \
         llm_sql and DuckDB alone), MariaDB from Debian, `llm_sql.duckdb_threads = 2` and DuckDB alone with 2 threads.\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
            .unwrap_or_default()
    );
    let _ = writeln!(md, "## Scanning a 1-million-row local table\n");
    let _ = writeln!(md, "| how | time | rows/s |\n|---|---|---|");
    for (how, time) in [
        (
            "Postgres alone: `SELECT count(*), sum(i) FROM scan_1m`",
            pg_count,
        ),
        (
            "llm_sql: `count(*), sum(i)` over `pg.public.scan_1m` in DuckDB",
            pg_catalog,
        ),
        (
            "DuckDB alone, postgres extension over a socket: `count(*)`",
            duck_scan,
        ),
    ] {
        let _ = writeln!(md, "| {how} | {} | {} |", ms(time), rate(time));
    }
    md.push('\n');
    let _ = writeln!(
        md,
        "Ratio llm_sql / Postgres alone: **{}×** the time.\n",
        ratio(pg_catalog, pg_count)
    );
    let _ = writeln!(md, "## Seed three-way join at 10× (10 000 users ⋈ 15 000 MySQL orders ⋈ 8 000 SQLite rows → 7 500 rows)\n");
    let _ = writeln!(md, "| how | time |\n|---|---|");
    let _ = writeln!(
        md,
        "| llm_sql.query (users through `pg`) | {} |",
        ms(llm_join)
    );
    let _ = writeln!(
        md,
        "| DuckDB alone (users through its postgres extension) | {} |\n",
        ms(duck_join)
    );
    let _ = writeln!(
        md,
        "Ratio llm_sql / DuckDB alone: **{}×** the time.",
        ratio(llm_join, duck_join)
    );
    let _ = writeln!(
        md,
        "\n## Reading the figures\n\n\
         The local scan goes through SPI on the backend thread, as the calling role (privileges, \
         row-level security, the transaction's own writes). Per row it pays tuple deforming and a \
         datum copy into a batch of 2048 rows, and per batch a hand-off between the backend thread \
         and DuckDB's thread; Postgres alone only deforms the one column it sums, in a tight loop. \
         DuckDB alone reads the table over a socket with the binary COPY protocol and parallel \
         connections, without privileges of the calling role or row-level security applied by \
         llm_sql. What would narrow the gap: copying fixed-width columns straight from the tuple \
         into DuckDB's vectors (no per-value conversion), larger hand-off batches, and pushing \
         DuckDB's filters into the SPI query (the C API does not expose them yet). The join is \
         dominated by the MySQL and SQLite reads, which are the same code in both runs."
    );
    std::fs::write(output, md).unwrap();
    print!("{}", std::fs::read_to_string(output).unwrap());
}
