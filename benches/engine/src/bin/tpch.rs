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

    let mut llm_sql_times = Vec::new();
    let mut mismatches = Vec::new();
    tpch::use_parquet(&mut pg, prefix).unwrap();
    for source in [Source::Postgres, Source::Parquet] {
        eprintln!("llm_sql, DuckDB over {source:?}");
        let mut times = Vec::new();
        for ((n, sql), want) in queries.iter().zip(&expected) {
            let sql = &tpch::duckdb_sql(&mut pg, sql, source).unwrap();
            let checked =
                tpch::duckdb_rows(&mut pg, sql).and_then(|got| tpch::same_rows(want, &got));
            if let Err(problem) = checked {
                mismatches.push(format!("Q{n}, DuckDB over {source:?}: {problem}"));
            }
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
         through `pg.public.*`; (c) the same, DuckDB reading the Parquet files; (d) DuckDB alone \
         (a Rust program linking the same libduckdb.so) on the Parquet files.\n\
         - Equality: (b) and (c) return the rows of (a), in order, numbers within a relative {} \
         (DuckDB's avg of DECIMAL is a double, Postgres's a numeric).\n\n\
         | query | (a) Postgres | (b) llm_sql over pg | (c) llm_sql over Parquet | (d) DuckDB alone | a/b | c/d |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        millis(load_time) / 1000.0,
        tpch::TOLERANCE,
    );
    for (i, (n, _)) in queries.iter().enumerate() {
        let (a, b, c, d) = (
            postgres_times[i],
            over_pg[i],
            over_parquet[i],
            alone_times[i],
        );
        md.push_str(&format!(
            "| Q{n} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} | {:.2} |\n",
            millis(a),
            millis(b),
            millis(c),
            millis(d),
            a.as_secs_f64() / b.as_secs_f64(),
            c.as_secs_f64() / d.as_secs_f64()
        ));
    }
    md.push_str(&format!(
        "\nGeometric means: **(a)/(b) = {speedup:.2}×** (target at SF1: at least 4); \
         **(c)/(d) = {overhead:.2}×** (target at SF1: at most 1.15).\n\n"
    ));
    if mismatches.is_empty() {
        md.push_str("Equality: all 22 queries return the same rows in (a), (b) and (c).\n");
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
