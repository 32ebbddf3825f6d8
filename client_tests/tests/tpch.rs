//! TPC-H at scale factor 0.1, the correctness half of `benches/tpch`: for all 22 queries,
//! DuckDB over the Postgres tables (through `pg`) and DuckDB over Parquet files return the rows
//! Postgres returns (numbers within a relative 1e-9: DuckDB's avg of DECIMAL is a double).
//! Through `pg`, in every state of the tables' columnar copies: none yet (built as the queries
//! go), warm, after changes in the reading transaction itself, after other sessions commit
//! changes, after VACUUM marks the changed pages all-visible again, and read by a new session
//! from copies stored in the data directory.

use llm_sql_client_tests::tpch::{self, Source};
use llm_sql_client_tests::{count, superuser};
use postgres::Client;

/// Every query's mismatches between Postgres and DuckDB over `source`, in `client`'s session
/// as it stands (its transaction, its snapshot).
fn mismatches(
    client: &mut Client,
    queries: &[(i32, String)],
    source: Source,
    state: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (n, sql) in queries {
        let compared = tpch::postgres_rows(client, sql).and_then(|want| {
            tpch::duckdb_sql(client, sql, source)
                .and_then(|duckdb_sql| tpch::duckdb_rows(client, &duckdb_sql))
                .and_then(|got| tpch::same_rows(&want, &got))
        });
        if let Err(problem) = compared {
            failures.push(format!("Q{n}, DuckDB over {source:?}, {state}: {problem}"));
        }
    }
    failures
}

fn connect() -> Client {
    let mut client = llm_sql_client_tests::superuser_config()
        .dbname("llm_sql_tpch")
        .connect(postgres::NoTls)
        .unwrap();
    // Room for copies of every table (about 150 MB of heap at this scale).
    client
        .batch_execute("SET llm_sql.local_copy_memory = '1GB'")
        .unwrap();
    client
}

/// Tables whose copy the last statement read entirely from the copy (nothing live).
fn read_from_copies(client: &mut Client) -> i64 {
    let listed =
        llm_sql_client_tests::texts(client, "SELECT c::text FROM llm_sql.local_copies() c");
    eprintln!("{listed:#?}");
    count(
        client,
        "SELECT count(*) FROM llm_sql.local_copies() WHERE last_live_blocks = 0 AND copied_blocks > 0",
    )
}

#[test]
fn tpch_sf01_gives_the_same_rows_in_postgres_and_both_duckdb_sources() {
    // A database of its own: the TPC-H table names would clash with other tests'.
    let mut admin = superuser();
    admin
        .batch_execute("DROP DATABASE IF EXISTS llm_sql_tpch")
        .unwrap();
    admin.batch_execute("CREATE DATABASE llm_sql_tpch").unwrap();
    let mut client = connect();
    client
        .batch_execute("CREATE EXTENSION llm_sql CASCADE")
        .unwrap();
    let prefix = format!("/tmp/llm_sql_tpch_test_{}_", std::process::id());
    tpch::generate_and_load(&mut client, 0.1, &prefix).unwrap();
    let queries = tpch::queries(&mut client).unwrap();
    assert_eq!(queries.len(), 22);
    // Most queries return rows at this scale; a comparison of empty results proves little.
    let nonempty = queries
        .iter()
        .filter(|(_, sql)| !tpch::postgres_rows(&mut client, sql).unwrap().is_empty())
        .count();
    assert!(nonempty >= 20);

    let mut failures = Vec::new();
    // A new session: its DuckDB copies each table as the first query reading it runs.
    let mut reader = connect();
    failures.extend(mismatches(
        &mut reader,
        &queries,
        Source::Postgres,
        "copies built as it goes",
    ));
    failures.extend(mismatches(
        &mut reader,
        &queries,
        Source::Postgres,
        "copies warm",
    ));
    assert_eq!(
        read_from_copies(&mut reader),
        8,
        "the last statement reading each table read it from its copy alone"
    );

    // Parquet files of the same data, before the tables change.
    tpch::use_parquet(&mut client, &prefix).unwrap();
    failures.extend(mismatches(
        &mut client,
        &queries,
        Source::Parquet,
        "Parquet",
    ));

    // Changes in the reading transaction itself: its own writes are seen.
    reader
        .batch_execute(
            "BEGIN;
             UPDATE lineitem SET l_quantity = l_quantity + 1, l_shipmode = 'TRUCK' WHERE l_orderkey % 50 = 0;
             DELETE FROM lineitem WHERE l_orderkey % 77 = 1;
             INSERT INTO lineitem SELECT l_orderkey, l_partkey, l_suppkey, l_linenumber + 10, l_quantity,
                    l_extendedprice, l_discount, l_tax, 'N', 'O', l_shipdate, l_commitdate,
                    l_receiptdate, l_shipinstruct, l_shipmode, 'added' FROM lineitem WHERE l_orderkey % 91 = 2;
             UPDATE orders SET o_orderpriority = '1-URGENT' WHERE o_orderkey % 40 = 3;
             UPDATE customer SET c_acctbal = c_acctbal - 100 WHERE c_custkey % 9 = 0;",
        )
        .unwrap();
    failures.extend(mismatches(
        &mut reader,
        &queries,
        Source::Postgres,
        "own uncommitted writes",
    ));
    reader.batch_execute("ROLLBACK").unwrap();
    failures.extend(mismatches(
        &mut reader,
        &queries,
        Source::Postgres,
        "after ROLLBACK",
    ));

    // Another session commits changes.
    let mut writer = connect();
    writer
        .batch_execute(
            "UPDATE lineitem SET l_discount = 0.10 WHERE l_orderkey % 30 = 0;
             DELETE FROM lineitem WHERE l_orderkey % 61 = 5;
             UPDATE part SET p_size = p_size + 1 WHERE p_partkey % 7 = 0;
             UPDATE supplier SET s_acctbal = -s_acctbal WHERE s_suppkey % 5 = 0;",
        )
        .unwrap();
    failures.extend(mismatches(
        &mut reader,
        &queries,
        Source::Postgres,
        "after another session's commit",
    ));
    for table in ["lineitem", "part", "supplier"] {
        writer.batch_execute(&format!("VACUUM {table}")).unwrap();
    }
    failures.extend(mismatches(
        &mut reader,
        &queries,
        Source::Postgres,
        "after VACUUM",
    ));

    // Stored copies (llm_sql.warm by a role that may maintain the tables): a new session
    // that copies nothing itself reads every table from them, and still sees later commits.
    for table in tpch::TABLES {
        // (The rolled-back writes above left pages that are not all-visible.)
        writer.batch_execute(&format!("VACUUM {table}")).unwrap();
        writer
            .query_one(&format!("SELECT llm_sql.warm('{table}')"), &[])
            .unwrap();
    }
    let mut stored = connect();
    stored
        .batch_execute("SET llm_sql.local_copy_memory = 0")
        .unwrap();
    failures.extend(mismatches(
        &mut stored,
        &queries,
        Source::Postgres,
        "stored copies, new session",
    ));
    assert_eq!(
        read_from_copies(&mut stored),
        8,
        "a new session read each table from its stored copy alone"
    );
    writer
        .batch_execute(
            "UPDATE orders SET o_totalprice = o_totalprice + 1 WHERE o_orderkey % 13 = 0;
             DELETE FROM partsupp WHERE ps_partkey % 97 = 3;
             UPDATE lineitem SET l_returnflag = 'R' WHERE l_orderkey % 17 = 0;",
        )
        .unwrap();
    failures.extend(mismatches(
        &mut stored,
        &queries,
        Source::Postgres,
        "stored copies after another session's commit",
    ));

    drop((client, reader, writer, stored));
    for table in tpch::TABLES {
        let _ = std::fs::remove_file(tpch::parquet_file(&prefix, table));
    }
    admin
        .batch_execute("DROP DATABASE llm_sql_tpch WITH (FORCE)")
        .unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}
