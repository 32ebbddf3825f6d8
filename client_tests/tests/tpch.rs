//! TPC-H at scale factor 0.1, the correctness half of `benches/tpch`: for all 22 queries,
//! DuckDB over the Postgres tables (through `pg`) and DuckDB over Parquet files return the rows
//! Postgres returns (numbers within a relative 1e-9: DuckDB's avg of DECIMAL is a double).

use llm_sql_client_tests::superuser;
use llm_sql_client_tests::tpch::{self, Source};

#[test]
fn tpch_sf01_gives_the_same_rows_in_postgres_and_both_duckdb_sources() {
    // A database of its own: the TPC-H table names would clash with other tests'.
    let mut admin = superuser();
    admin
        .batch_execute("DROP DATABASE IF EXISTS llm_sql_tpch")
        .unwrap();
    admin.batch_execute("CREATE DATABASE llm_sql_tpch").unwrap();
    let mut client = llm_sql_client_tests::superuser_config()
        .dbname("llm_sql_tpch")
        .connect(postgres::NoTls)
        .unwrap();
    client
        .batch_execute("CREATE EXTENSION llm_sql CASCADE")
        .unwrap();
    let prefix = format!("/tmp/llm_sql_tpch_test_{}_", std::process::id());
    tpch::generate_and_load(&mut client, 0.1, &prefix).unwrap();
    let queries = tpch::queries(&mut client).unwrap();
    assert_eq!(queries.len(), 22);
    let expected: Vec<_> = queries
        .iter()
        .map(|(n, sql)| {
            tpch::postgres_rows(&mut client, sql).unwrap_or_else(|e| panic!("Q{n}: {e}"))
        })
        .collect();
    // Most queries return rows at this scale; a comparison of empty results proves little.
    assert!(expected.iter().filter(|rows| !rows.is_empty()).count() >= 20);
    let mut failures = Vec::new();
    tpch::use_parquet(&mut client, &prefix).unwrap();
    for source in [Source::Postgres, Source::Parquet] {
        for ((n, sql), want) in queries.iter().zip(&expected) {
            let compared = tpch::duckdb_sql(&mut client, sql, source)
                .and_then(|duckdb_sql| tpch::duckdb_rows(&mut client, &duckdb_sql))
                .and_then(|got| tpch::same_rows(want, &got));
            if let Err(problem) = compared {
                failures.push(format!("Q{n}, DuckDB over {source:?}: {problem}"));
            }
        }
    }
    drop(client);
    for table in tpch::TABLES {
        let _ = std::fs::remove_file(tpch::parquet_file(&prefix, table));
    }
    admin
        .batch_execute("DROP DATABASE llm_sql_tpch WITH (FORCE)")
        .unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}
