//! TPC-H four ways (see benches/tpch/run): (a) PostgreSQL alone, (b) llm_sql with DuckDB
//! reading the Postgres tables through `pg`, (c) llm_sql with DuckDB reading Parquet files,
//! (d) DuckDB alone (the same libduckdb.so, the same thread count) on the same Parquet files.
//! (b) and (c) must return the rows (a) returns; a mismatch is reported and fails the run.
//!
//! Usage: tpch <port> <scale factor> <runs> <data prefix> <output.md>

use std::time::Duration;

use llm_sql_engine_bench::{connect, median, timed};
use llm_sql_tpch::{self as tpch, Source};

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn geomean(ratios: &[f64]) -> f64 {
    (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let sf: f64 = args[2].parse().unwrap();
    let runs: usize = args[3].parse().unwrap();
    let prefix = &args[4];
    let output = &args[5];

    let mut pg = connect(port);
    let threads: String = pg
        .query_one("SELECT current_setting('llm_sql.duckdb_threads')", &[])
        .unwrap()
        .get(0);
    let memory: String = pg
        .query_one("SELECT current_setting('llm_sql.duckdb_memory_limit')", &[])
        .unwrap()
        .get(0);
    eprintln!("generating and loading SF{sf}");
    let (load_time, loaded) = timed(|| tpch::generate_and_load(&mut pg, sf, prefix));
    loaded.unwrap();
    let queries = tpch::queries(&mut pg).unwrap();
    assert_eq!(queries.len(), 22);

    // A warm-up run, then `runs` timed runs; the median counts.
    let time = |f: &mut dyn FnMut()| {
        f();
        median((0..runs).map(|_| timed(&mut *f).0).collect())
    };

    eprintln!("(a) PostgreSQL alone");
    let mut expected = Vec::new();
    let mut postgres_times = Vec::new();
    for (n, sql) in &queries {
        expected.push(tpch::postgres_rows(&mut pg, sql).unwrap_or_else(|e| panic!("Q{n}: {e}")));
        postgres_times.push(time(&mut || {
            pg.query(sql.as_str(), &[]).unwrap();
        }));
        eprintln!(
            "  Q{n}: {:.0} ms",
            millis(postgres_times[postgres_times.len() - 1])
        );
    }

    let mut mismatches = Vec::new();
    let mut check = |n: i32,
                     way: &str,
                     want: &[serde_json::Value],
                     got: Result<Vec<serde_json::Value>, String>| {
        if let Err(problem) = got.and_then(|got| tpch::same_rows(want, &got)) {
            mismatches.push(format!("Q{n}, {way}: {problem}"));
        }
    };
    // (b first use): each query first in a new session, with no copy of any table yet: its
    // time includes copying the tables it reads.
    eprintln!("llm_sql over pg, first use");
    let first_times = in_new_sessions(
        port,
        &mut pg,
        &queries,
        &expected,
        "first use",
        1,
        &mut check,
    );
    // (b) live: no copies, every row read from the heap by the live scan.
    eprintln!("llm_sql over pg, live scan only");
    let mut live_times = Vec::new();
    {
        let mut live = connect(port);
        live.batch_execute("SET llm_sql.local_copy_memory = 0")
            .unwrap();
        for ((n, sql), want) in queries.iter().zip(&expected) {
            let sql = tpch::duckdb_sql(&mut live, sql, Source::Postgres).unwrap();
            check(*n, "live scan", want, tpch::duckdb_rows(&mut live, &sql));
            live_times.push(time(&mut || {
                tpch::duckdb_rows(&mut live, &sql).unwrap();
            }));
            eprintln!("  Q{n}: {:.0} ms", millis(live_times[live_times.len() - 1]));
        }
    }

    // Storing the copies ahead of time (llm_sql.warm, as a role that may maintain the tables):
    // time per GB of heap, and their size on disk.
    eprintln!("llm_sql.warm of every table");
    let (build_seconds, heap_bytes, stored_bytes) = {
        let mut warm = connect(port);
        let mut seconds = 0.0;
        let mut heap = 0i64;
        for table in tpch::TABLES {
            let (took, _) = timed(|| {
                warm.query_one(&format!("SELECT llm_sql.warm('{table}')"), &[])
                    .unwrap()
            });
            seconds += took.as_secs_f64();
            heap += warm
                .query_one(&format!("SELECT pg_relation_size('{table}')"), &[])
                .unwrap()
                .get::<_, i64>(0);
        }
        let stored: i64 = warm
            .query_one(
                "SELECT sum((pg_stat_file(d || f)).size)::bigint FROM
                   (SELECT 'llm_sql/copies/' || oid || '/' AS d FROM pg_database
                     WHERE datname = current_database()) s, pg_ls_dir(d) f",
                &[],
            )
            .unwrap()
            .get(0);
        (seconds, heap, stored)
    };
    // (b cold): each query first in a new session, reading the stored copies.
    eprintln!("llm_sql over pg, cold sessions with stored copies");
    let cold_times = in_new_sessions(port, &mut pg, &queries, &expected, "cold", runs, &mut check);
    // The memory a backend holds once it has run every query over the stored copies.
    let (duckdb_bytes, rss_before, rss_after) = {
        let mut session = connect(port);
        let rss_before = backend_rss(&mut session);
        for (_, sql) in &queries {
            let sql = tpch::duckdb_sql(&mut session, sql, Source::Postgres).unwrap();
            tpch::duckdb_rows(&mut session, &sql).unwrap();
        }
        (
            duckdb_memory_of(&mut session),
            rss_before,
            backend_rss(&mut session),
        )
    };
    let mut llm_sql_times = Vec::new();
    tpch::use_parquet(&mut pg, prefix).unwrap();
    for source in [Source::Postgres, Source::Parquet] {
        eprintln!("llm_sql, DuckDB over {source:?}");
        let mut times = Vec::new();
        for ((n, sql), want) in queries.iter().zip(&expected) {
            let sql = &tpch::duckdb_sql(&mut pg, sql, source).unwrap();
            check(
                *n,
                &format!("DuckDB over {source:?}"),
                want,
                tpch::duckdb_rows(&mut pg, sql),
            );
            times.push(time(&mut || {
                tpch::duckdb_rows(&mut pg, sql).unwrap();
            }));
            eprintln!("  Q{n}: {:.0} ms", millis(times[times.len() - 1]));
        }
        llm_sql_times.push(times);
    }

    eprintln!("(d) DuckDB alone");
    let config = duckdb::Config::default()
        .with("autoinstall_known_extensions", "false")
        .unwrap()
        .threads(threads.parse().unwrap())
        .unwrap();
    let duck = duckdb::Connection::open_in_memory_with_flags(config).unwrap();
    for table in tpch::TABLES {
        duck.execute_batch(&format!(
            "CREATE VIEW {table} AS SELECT * FROM read_parquet('{}')",
            tpch::parquet_file(prefix, table)
        ))
        .unwrap();
    }
    let mut alone_times = Vec::new();
    for (n, sql) in &queries {
        alone_times.push(time(&mut || {
            let mut statement = duck.prepare(sql).unwrap();
            let mut rows = statement.query([]).unwrap();
            while rows.next().unwrap().is_some() {}
        }));
        eprintln!(
            "  Q{n}: {:.0} ms",
            millis(alone_times[alone_times.len() - 1])
        );
    }

    let (over_pg, over_parquet) = (&llm_sql_times[0], &llm_sql_times[1]);
    let ratio = |num: &[Duration], den: &[Duration]| {
        let ratios: Vec<f64> = num
            .iter()
            .zip(den)
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
            .collect();
        geomean(&ratios)
    };
    let speedup = ratio(&postgres_times, over_pg);
    let cold_speedup = ratio(&postgres_times, &cold_times);
    let first_speedup = ratio(&postgres_times, &first_times);
    let live_speedup = ratio(&postgres_times, &live_times);
    let slowest = postgres_times
        .iter()
        .zip(over_pg)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .fold(f64::INFINITY, f64::min);
    let memory_copies: String = pg
        .query_one("SELECT current_setting('llm_sql.local_copy_memory')", &[])
        .unwrap()
        .get(0);
    let overhead = ratio(over_parquet, &alone_times);
    let mut setting = |name: &str| -> String {
        pg.query_one(&format!("SELECT current_setting('{name}')"), &[])
            .unwrap()
            .get(0)
    };
    let settings = [
        "shared_buffers",
        "work_mem",
        "max_parallel_workers_per_gather",
        "jit",
    ]
    .map(|name| format!("`{name}` = {}", setting(name)))
    .join(", ");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    let mut md = format!(
        "# TPC-H: llm_sql against PostgreSQL and DuckDB alone\n\n\
         Written by `benches/tpch/run {sf}`. Scale factor **{sf}**; median of {runs} runs after one \
         warm-up run, per query and way; times include fetching the result rows into the client.\n\n\
         - Machine: {cpu}, {cores} cores. PostgreSQL 18.6 with {settings}; DuckDB 1.5.5, \
         `llm_sql.duckdb_threads` = {threads}, `llm_sql.duckdb_memory_limit` = {memory} and DuckDB alone \
         with {threads} threads, the same libduckdb.so.\n\
         - Data: DuckDB's `tpch` extension (`CALL dbgen(sf = {sf})`), written as Parquet files and loaded \
         into Postgres tables with primary keys, foreign-key indexes and `VACUUM (ANALYZE)` \
         ({:.0} s for generation and loading). Queries: DuckDB's `tpch_queries()`, the same text everywhere.\n\
         - (a) PostgreSQL alone; (b) `llm_sql.query_json` with DuckDB reading the Postgres tables \
         through `pg.public.*`, with the tables' columnar copies warm (stored by `llm_sql.warm`, \
         `llm_sql.local_copy_memory` = {memory_copies}); (b cold) the same, each query run as the \
         first statement of a new session, which attaches the stored copies (the median of {runs} \
         new sessions); (b first) each \
         query run once as the first statement of a new session before any copy was stored, so \
         its time includes copying the tables it reads into the session; (b live) no copies \
         (`llm_sql.local_copy_memory` = 0, before any was stored), every row read by the live \
         heap scan; (c) `llm_sql.query_json` with DuckDB reading the Parquet files; (d) DuckDB \
         alone (a Rust program linking the same libduckdb.so) on the Parquet files.\n\
         - Equality: (b), (b cold), (b first), (b live) and (c) return the rows of (a), in order, \
         numbers within a relative {} (DuckDB's avg of DECIMAL is a double, Postgres's a numeric).\n\n\
         | query | (a) Postgres | (b) llm_sql over pg | (b cold) | (b first) | (b live) | (c) llm_sql over Parquet | (d) DuckDB alone | a/b | a/(b cold) | a/(b first) | a/(b live) | c/d |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        millis(load_time) / 1000.0,
        tpch::TOLERANCE,
    );
    for (i, (n, _)) in queries.iter().enumerate() {
        let (a, b, cold, first, live, c, d) = (
            postgres_times[i],
            over_pg[i],
            cold_times[i],
            first_times[i],
            live_times[i],
            over_parquet[i],
            alone_times[i],
        );
        let r = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64();
        md.push_str(&format!(
            "| Q{n} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            millis(a),
            millis(b),
            millis(cold),
            millis(first),
            millis(live),
            millis(c),
            millis(d),
            r(a, b),
            r(a, cold),
            r(a, first),
            r(a, live),
            r(c, d)
        ));
    }
    md.push_str(&format!(
        "\nGeometric means: **(a)/(b) = {speedup:.2}×** with warm copies (target at SF1: at least 4; \
         slowest query {slowest:.2}×, target at least 0.5); **(a)/(b cold) = {cold_speedup:.2}×** \
         (target at least 1.2); (a)/(b first) = {first_speedup:.2}×; (a)/(b live) = {live_speedup:.2}×; \
         **(c)/(d) = {overhead:.2}×** (target at SF1: at most 1.15).\n\n"
    ));
    let gb = heap_bytes as f64 / 1e9;
    md.push_str(&format!(
        "Copies: `llm_sql.warm` of all 8 tables ({gb:.2} GB of heap) took {build_seconds:.1} s \
         ({:.1} s per GB of heap) and stored {:.0} MB of DuckDB files. A new session that ran \
         all 22 queries over them then held {:.0} MB in DuckDB (`duckdb_memory()`, its buffer \
         cache), and its backend's resident memory grew from {:.0} MB to {:.0} MB.\n\n",
        build_seconds / gb.max(1e-9),
        stored_bytes as f64 / 1e6,
        duckdb_bytes as f64 / 1e6,
        rss_before as f64 / 1e6,
        rss_after as f64 / 1e6,
    ));
    if mismatches.is_empty() {
        md.push_str(
            "Equality: all 22 queries return the same rows in (a), (b), (b cold), (b first), (b live) and (c).\n",
        );
    } else {
        md.push_str("**Equality FAILED:**\n\n");
        for m in &mismatches {
            md.push_str(&format!("- {m}\n"));
        }
    }
    // The analysis of the targets (benches/tpch/analysis.md) goes below the figures.
    if let Ok(analysis) = std::fs::read_to_string("benches/tpch/analysis.md") {
        md.push('\n');
        md.push_str(&analysis);
    }
    std::fs::write(output, &md).unwrap();
    print!("{md}");
    if !mismatches.is_empty() {
        std::process::exit(1);
    }
}

/// A result row, as `tpch::postgres_rows` and `tpch::duckdb_rows` give it.
type Row = serde_json::Value;

/// Records a mismatch between a query's expected rows and what a way returned.
type Check<'a> = dyn FnMut(i32, &str, &[Row], Result<Vec<Row>, String>) + 'a;

/// Times each query as the first statement of a new session, checking its rows.
fn in_new_sessions(
    port: u16,
    pg: &mut postgres::Client,
    queries: &[(i32, String)],
    expected: &[Vec<Row>],
    way: &str,
    runs: usize,
    check: &mut Check,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for ((n, sql), want) in queries.iter().zip(expected) {
        let sql = tpch::duckdb_sql(pg, sql, Source::Postgres).unwrap();
        let took = median(
            (0..runs)
                .map(|_| {
                    let (took, got) = first_in_new_session(port, &sql);
                    check(*n, way, want, got);
                    took
                })
                .collect(),
        );
        times.push(took);
        eprintln!("  Q{n}: {:.0} ms", millis(took));
    }
    times
}

/// `sql` timed as the first statement of a new session, and its rows.
fn first_in_new_session(port: u16, sql: &str) -> (Duration, Result<Vec<Row>, String>) {
    let mut fresh = connect(port);
    let pid: i32 = fresh
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let (took, got) = timed(|| tpch::duckdb_rows(&mut fresh, sql));
    // The next session starts once this backend process (and its DuckDB, closed at exit) has
    // gone, so that the two do not share the cores.
    drop(fresh);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    (took, got)
}

/// Bytes DuckDB's buffer manager holds in this session's instance.
fn duckdb_memory_of(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT b FROM llm_sql.query('SELECT sum(memory_usage_bytes)::BIGINT AS b FROM duckdb_memory()') AS q(b bigint)",
            &[],
        )
        .unwrap()
        .get::<_, Option<i64>>(0)
        .unwrap_or(0)
}

/// The resident memory of the session's backend process, from /proc.
fn backend_rss(client: &mut postgres::Client) -> i64 {
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}
