//! TPC-H through llm_sql, shared by the SF0.1 equality test (`client_tests/tests/tpch.rs`) and the
//! benchmark (`benches/engine/src/bin/tpch.rs`), which both depend on this crate.
//!
//! Data comes from DuckDB's own `tpch` extension (`CALL dbgen`) in the backend's DuckDB, is
//! written as Parquet files and loaded into Postgres tables with primary keys and foreign-key
//! indexes. The 22 queries are DuckDB's (`tpch_queries()`, standard SQL that Postgres runs
//! unchanged). The same query then runs three ways through one Postgres session: Postgres
//! alone, DuckDB over the Postgres tables (the names qualified as `pg.public.*`), DuckDB over
//! the Parquet files (through temporary views named like the tables).

use postgres::Client;
use serde_json::Value;

pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

/// Primary keys and foreign-key indexes, the usual TPC-H setup for Postgres.
const KEYS: &str = "
ALTER TABLE region ADD PRIMARY KEY (r_regionkey);
ALTER TABLE nation ADD PRIMARY KEY (n_nationkey);
ALTER TABLE supplier ADD PRIMARY KEY (s_suppkey);
ALTER TABLE customer ADD PRIMARY KEY (c_custkey);
ALTER TABLE part ADD PRIMARY KEY (p_partkey);
ALTER TABLE partsupp ADD PRIMARY KEY (ps_partkey, ps_suppkey);
ALTER TABLE orders ADD PRIMARY KEY (o_orderkey);
ALTER TABLE lineitem ADD PRIMARY KEY (l_orderkey, l_linenumber);
CREATE INDEX ON nation (n_regionkey);
CREATE INDEX ON supplier (s_nationkey);
CREATE INDEX ON customer (c_nationkey);
CREATE INDEX ON partsupp (ps_suppkey);
CREATE INDEX ON orders (o_custkey);
CREATE INDEX ON lineitem (l_partkey, l_suppkey);
CREATE INDEX ON lineitem (l_suppkey);
";

/// Where DuckDB reads the tables from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The Postgres tables, through llm_sql's `pg` catalog.
    Postgres,
    /// The Parquet files.
    Parquet,
}

/// `<prefix><table>.parquet`: the files of one data set.
pub fn parquet_file(prefix: &str, table: &str) -> String {
    format!("{prefix}{table}.parquet")
}

fn duckdb(client: &mut Client, sql: &str) -> Result<(), String> {
    client
        .execute("SELECT llm_sql.execute($1)", &[&sql])
        .map(|_| ())
        .map_err(|e| format!("{sql}: {}", describe(&e)))
}

/// "SQLSTATE: message" of a failed statement (postgres::Error's Display hides the message).
pub fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}

/// The Postgres type of a DuckDB column type from dbgen.
fn postgres_type(duckdb_type: &str) -> String {
    match duckdb_type {
        "INTEGER" => "integer".into(),
        "BIGINT" => "bigint".into(),
        "DATE" => "date".into(),
        "VARCHAR" => "text".into(),
        decimal if decimal.starts_with("DECIMAL") => decimal.replace("DECIMAL", "numeric"),
        other => panic!("unexpected TPC-H column type {other}"),
    }
}

/// Generates scale factor `sf` in the session's DuckDB (a superuser session), writes each table
/// to `<prefix><table>.parquet` (a path the server may write), and loads the Postgres tables
/// of schema public from those files, with keys, indexes and VACUUM ANALYZE (which also sets
/// the visibility map, as a loaded and settled table has it: index-only scans for Postgres).
pub fn generate_and_load(client: &mut Client, sf: f64, prefix: &str) -> Result<(), String> {
    duckdb(client, "LOAD tpch")?;
    for table in TABLES {
        duckdb(client, &format!("DROP TABLE IF EXISTS memory.main.{table}"))?;
    }
    duckdb(client, &format!("CALL dbgen(sf = {sf})"))?;
    for table in TABLES {
        let file = parquet_file(prefix, table);
        duckdb(
            client,
            &format!("COPY memory.main.{table} TO '{file}' (FORMAT parquet)"),
        )?;
        let columns = client
            .query(
                "SELECT value->>'column_name', value->>'column_type'
                   FROM llm_sql.query_json($1) AS value",
                &[&format!("DESCRIBE memory.main.{table}")],
            )
            .map_err(|e| describe(&e))?;
        let definitions: Vec<String> = columns
            .iter()
            .map(|row| {
                let (name, duck): (String, String) = (row.get(0), row.get(1));
                format!("{name} {}", postgres_type(&duck))
            })
            .collect();
        let names: Vec<String> = columns.iter().map(|row| row.get(0)).collect();
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {table} CASCADE; CREATE TABLE {table} ({});",
                definitions.join(", ")
            ))
            .map_err(|e| describe(&e))?;
        // The rows come from the Parquet file through llm_sql.query, typed by the table.
        client
            .execute(
                &format!(
                    "INSERT INTO {table} SELECT * FROM llm_sql.query($1) AS t({})",
                    definitions.join(", ")
                ),
                &[&format!(
                    "SELECT {} FROM read_parquet('{file}')",
                    names.join(", ")
                )],
            )
            .map_err(|e| format!("loading {table}: {}", describe(&e)))?;
        duckdb(client, &format!("DROP TABLE memory.main.{table}"))?;
    }
    client.batch_execute(KEYS).map_err(|e| describe(&e))?;
    client
        .batch_execute(&format!("VACUUM (ANALYZE) {}", TABLES.join(", ")))
        .map_err(|e| describe(&e))?;
    // A transaction open elsewhere in the database at that moment holds back what VACUUM may
    // mark all-visible: VACUUM again until every page is.
    let settled = format!(
        "SELECT count(*) FROM pg_class WHERE relname IN ('{}') AND relallvisible < relpages",
        TABLES.join("', '")
    );
    for _ in 0..100 {
        let unsettled: i64 = client
            .query_one(&settled, &[])
            .map_err(|e| describe(&e))?
            .get(0);
        if unsettled == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        client
            .batch_execute(&format!("VACUUM {}", TABLES.join(", ")))
            .map_err(|e| describe(&e))?;
    }
    Err("the TPC-H tables did not become all-visible".to_string())
}

/// The 22 queries, numbered, without trailing semicolons.
pub fn queries(client: &mut Client) -> Result<Vec<(i32, String)>, String> {
    duckdb(client, "LOAD tpch")?;
    let rows = client
        .query(
            "SELECT (value->>'query_nr')::int, value->>'query'
               FROM llm_sql.query_json('SELECT query_nr, query FROM tpch_queries() ORDER BY 1') AS value",
            &[],
        )
        .map_err(|e| describe(&e))?;
    Ok(rows
        .iter()
        .map(|row| {
            let text: String = row.get(1);
            (row.get(0), text.trim().trim_end_matches(';').to_string())
        })
        .collect())
}

/// Points the session's DuckDB at the Parquet files: temporary views named like the tables.
pub fn use_parquet(client: &mut Client, prefix: &str) -> Result<(), String> {
    for table in TABLES {
        duckdb(
            client,
            &format!(
                "CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM read_parquet('{}')",
                parquet_file(prefix, table)
            ),
        )?;
    }
    Ok(())
}

/// The DuckDB text of a query for `source`. Over the Postgres tables, every table is named
/// `pg.public.<table>` (llm_sql resolves `pg.` names in the statement itself, not in views):
/// DuckDB's own parser finds the table references (`json_serialize_sql`), and its serializer
/// writes the statement back. Over Parquet, `use_parquet`'s views answer the plain names.
pub fn duckdb_sql(client: &mut Client, sql: &str, source: Source) -> Result<String, String> {
    if source == Source::Parquet {
        return Ok(sql.to_string());
    }
    let tree = duckdb_text(
        client,
        &format!(
            "SELECT CAST(json_serialize_sql({}) AS VARCHAR)",
            duckdb_literal(sql)
        ),
    )?;
    let mut tree: Value = serde_json::from_str(&tree).map_err(|e| e.to_string())?;
    qualify_tables(&mut tree);
    duckdb_text(
        client,
        &format!(
            "SELECT json_deserialize_sql(CAST({} AS JSON))",
            duckdb_literal(&tree.to_string())
        ),
    )
}

fn duckdb_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The one text value a DuckDB query returns.
fn duckdb_text(client: &mut Client, query: &str) -> Result<String, String> {
    client
        .query_one("SELECT t FROM llm_sql.query($1) AS q(t text)", &[&query])
        .map(|row| row.get(0))
        .map_err(|e| describe(&e))
}

fn qualify_tables(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let table = map.get("table_name").and_then(Value::as_str).unwrap_or("");
            let unqualified = map.get("catalog_name").and_then(Value::as_str) == Some("")
                && map.get("schema_name").and_then(Value::as_str) == Some("");
            if map.get("type").and_then(Value::as_str) == Some("BASE_TABLE")
                && TABLES.contains(&table)
                && unqualified
            {
                map.insert("catalog_name".into(), "pg".into());
                map.insert("schema_name".into(), "public".into());
            }
            map.values_mut().for_each(qualify_tables);
        }
        Value::Array(items) => items.iter_mut().for_each(qualify_tables),
        _ => {}
    }
}

/// A query's rows from Postgres, each a JSON array of its values in column order.
pub fn postgres_rows(client: &mut Client, sql: &str) -> Result<Vec<Value>, String> {
    let wrapped = format!(
        "SELECT (SELECT json_agg(e.value ORDER BY e.n)
                   FROM json_each(row_to_json(q)) WITH ORDINALITY AS e(key, value, n))::text
           FROM (\n{sql}\n) AS q"
    );
    json_rows(client, &wrapped, None)
}

/// A query's rows from the session's DuckDB (DuckDB text from `duckdb_sql`), each a JSON
/// array of its values in column order (column names differ: `sum` vs `sum(l_quantity)`).
pub fn duckdb_rows(client: &mut Client, sql: &str) -> Result<Vec<Value>, String> {
    let wrapped = format!("SELECT CAST(json_array(*COLUMNS(*)) AS VARCHAR) FROM (\n{sql}\n) AS q");
    json_rows(
        client,
        "SELECT t FROM llm_sql.query($1) AS q(t text)",
        Some(&wrapped),
    )
}

fn json_rows(client: &mut Client, query: &str, sql: Option<&str>) -> Result<Vec<Value>, String> {
    let rows = match sql {
        Some(sql) => client.query(query, &[&sql]),
        None => client.query(query, &[]),
    }
    .map_err(|e| describe(&e))?;
    rows.iter()
        .map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(|e| e.to_string()))
        .collect()
}

/// Relative tolerance for numbers: DuckDB's avg of DECIMAL is a double, Postgres's a numeric.
pub const TOLERANCE: f64 = 1e-9;

/// Whether two results hold the same rows in the same order: equal strings, dates and NULLs,
/// numbers within `TOLERANCE` (relative), column by column. Describes the first difference.
pub fn same_rows(expected: &[Value], got: &[Value]) -> Result<(), String> {
    if expected.len() != got.len() {
        return Err(format!("{} rows, expected {}", got.len(), expected.len()));
    }
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        let (Value::Array(e), Value::Array(g)) = (e, g) else {
            return Err(format!("row {i} is not an array"));
        };
        if e.len() != g.len() {
            return Err(format!(
                "row {i}: {} columns, expected {}",
                g.len(),
                e.len()
            ));
        }
        for (c, (want, have)) in e.iter().zip(g).enumerate() {
            if !same_value(want, have) {
                return Err(format!(
                    "row {i}, column {}: {have}, expected {want}",
                    c + 1
                ));
            }
        }
    }
    Ok(())
}

fn same_value(want: &Value, have: &Value) -> bool {
    match (want.as_f64(), have.as_f64()) {
        (Some(w), Some(h)) => (w - h).abs() <= TOLERANCE * w.abs().max(h.abs()).max(1.0),
        _ => want == have,
    }
}
