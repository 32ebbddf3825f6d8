//! Per-row cost of DuckDB reading a Postgres table through `pg.` (see benches/scan/run), for 1, 4
//! and 16 columns of the usual types, against Postgres's own scan of the same table computing
//! the same aggregates, serial and with parallel workers. Each pair must return the same
//! numbers; a mismatch fails the run.
//!
//! Usage: scan <port> <rows> <runs> <output.md>

use std::time::Duration;

use llm_sql_engine_bench::{connect, median, timed};

/// The table: 16 columns of the types analytics reads, some NULLs, a text column long enough
/// to need its own allocation.
const COLUMNS: [(&str, &str, &str); 16] = [
    ("c01", "int8", "g"),
    ("c02", "numeric(12,2)", "(g % 100000) / 100.0"),
    ("c03", "date", "DATE '1992-01-01' + (g % 2500)::int"),
    (
        "c04",
        "text",
        "CASE WHEN g % 17 = 0 THEN NULL ELSE 'item ' || (g % 1000) END",
    ),
    ("c05", "int4", "(g % 1000)::int4"),
    ("c06", "float8", "g * 0.5"),
    ("c07", "bool", "g % 3 = 0"),
    ("c08", "int2", "(g % 100)::int2"),
    (
        "c09",
        "timestamp",
        "TIMESTAMP '2000-01-01' + g * INTERVAL '1 second'",
    ),
    ("c10", "numeric(15,2)", "g * 1.25"),
    ("c11", "varchar(25)", "left(md5(g::text), 25)"),
    (
        "c12",
        "int8",
        "CASE WHEN g % 5 = 0 THEN NULL ELSE g * 7 END",
    ),
    ("c13", "date", "DATE '1995-06-01' - (g % 900)::int"),
    ("c14", "float4", "(g % 1000) / 8.0"),
    ("c15", "text", "repeat('x', (g % 40)::int)"),
    ("c16", "int4", "(g % 7)::int4"),
];

fn aggregates(columns: usize) -> String {
    let counts: Vec<String> = COLUMNS[1..columns]
        .iter()
        .map(|(name, _, _)| format!("count({name})"))
        .collect();
    let mut list = vec!["count(*)".to_string(), "sum(c01)".to_string()];
    list.extend(counts);
    // One text value, the same in both systems: counts and an integer sum print alike.
    format!("concat_ws(',', {})", list.join(", "))
}

fn nanos_per_row(d: Duration, rows: i64) -> f64 {
    d.as_secs_f64() * 1e9 / rows as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let rows: i64 = args[2].parse().unwrap();
    let runs: usize = args[3].parse().unwrap();
    let output = &args[4];

    let mut pg = connect(port);
    let definitions: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, _)| format!("{name} {ty}"))
        .collect();
    let values: Vec<&str> = COLUMNS.iter().map(|(_, _, value)| *value).collect();
    eprintln!("loading {rows} rows");
    pg.batch_execute(&format!(
        "DROP TABLE IF EXISTS scan_rows;
         CREATE TABLE scan_rows ({});
         INSERT INTO scan_rows SELECT {} FROM generate_series(1, {rows}) g;",
        definitions.join(", "),
        values.join(", ")
    ))
    .unwrap();
    pg.batch_execute("VACUUM (ANALYZE) scan_rows").unwrap();
    let pages: i64 = pg
        .query_one(
            "SELECT pg_relation_size('scan_rows') / current_setting('block_size')::int8",
            &[],
        )
        .unwrap()
        .get(0);

    // A warm-up run, then `runs` timed runs; the median counts.
    let time = |f: &mut dyn FnMut() -> String| -> (Duration, String) {
        let answer = f();
        (
            median((0..runs).map(|_| timed(&mut *f).0).collect()),
            answer,
        )
    };

    let mut table = String::new();
    let mut mismatches = Vec::new();
    for columns in [1, 4, 16] {
        let sql = format!("SELECT {} FROM scan_rows", aggregates(columns));
        let mut postgres = |parallel: bool| {
            let workers = if parallel { 2 } else { 0 };
            pg.batch_execute(&format!("SET max_parallel_workers_per_gather = {workers}"))
                .unwrap();
            time(&mut || pg.query_one(sql.as_str(), &[]).unwrap().get::<_, String>(0))
        };
        let (serial, want) = postgres(false);
        let (parallel, _) = postgres(true);
        let duck_sql = format!(
            "SELECT v FROM llm_sql.query($q${}$q$) AS t(v text)",
            sql.replace("FROM scan_rows", "AS v FROM pg.public.scan_rows")
        );
        // The live scan (no copies), then the table's columnar copy (built by the warm-up run).
        let mut through_pg = |copy_memory: &str| {
            pg.batch_execute(&format!("SET llm_sql.local_copy_memory = '{copy_memory}'"))
                .unwrap();
            time(&mut || {
                pg.query_one(duck_sql.as_str(), &[])
                    .unwrap()
                    .get::<_, String>(0)
            })
        };
        let (live, got_live) = through_pg("0");
        let (copy, got_copy) = through_pg("4GB");
        for (way, got) in [("live scan", got_live), ("copy", got_copy)] {
            if got != want {
                mismatches.push(format!(
                    "{columns} columns, {way}: Postgres {want}, llm_sql {got}"
                ));
            }
        }
        eprintln!(
            "{columns} columns: Postgres {serial:?} serial, {parallel:?} parallel; llm_sql live {live:?}, copy {copy:?}"
        );
        table.push_str(&format!(
            "| {columns} | {:.0} ns | {:.0} ns | {:.0} ns | {:.1} ns | {:.2} | {:.1} |\n",
            nanos_per_row(serial, rows),
            nanos_per_row(parallel, rows),
            nanos_per_row(live, rows),
            nanos_per_row(copy, rows),
            serial.as_secs_f64() / live.as_secs_f64(),
            serial.as_secs_f64() / copy.as_secs_f64(),
        ));
    }

    let types: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, _)| format!("{name} {ty}"))
        .collect();
    let mut md = format!(
        "# Scanning a Postgres table through `pg.`: cost per row\n\n\
         Written by `benches/scan/run`. {rows} rows, {pages} pages of 8 kB, after `VACUUM (ANALYZE)`, \
         in shared_buffers; median of {runs} runs after a warm-up run. Time per row is the whole \
         query's time divided by the rows: scan, conversion and the aggregate.\n\n\
         - Table `scan_rows` ({}).\n\
         - Query for k columns: `count(*)`, `sum(c01)` and `count(cN)` of columns 2..k, as one text \
         value. Postgres runs it on the table; llm_sql runs the same text in DuckDB over \
         `pg.public.scan_rows` through `llm_sql.query`.\n\
         - Postgres serial: `max_parallel_workers_per_gather = 0`; parallel: 2 workers.\n\
         - llm_sql live: `llm_sql.local_copy_memory = 0`, every row read by the live heap scan; \
         copy: the table's columnar copy in the session's DuckDB (built by the warm-up run), \
         validated against the visibility map for every query.\n\n\
         | columns | Postgres serial | Postgres parallel | llm_sql live | llm_sql copy | serial / live | serial / copy |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n{table}\n",
        types.join(", ")
    );
    if mismatches.is_empty() {
        md.push_str("Equality: llm_sql returned Postgres's numbers for every query.\n");
    } else {
        md.push_str("**Equality FAILED:**\n\n");
        for m in &mismatches {
            md.push_str(&format!("- {m}\n"));
        }
    }
    std::fs::write(output, &md).unwrap();
    print!("{md}");
    if !mismatches.is_empty() {
        std::process::exit(1);
    }
}
