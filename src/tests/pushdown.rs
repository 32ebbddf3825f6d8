//! Whole queries over attachments in DuckDB (`crate::pushdown`), as `llm_sql.ask` runs them:
//! what goes to DuckDB returns exactly the rows Postgres returns through the foreign tables;
//! what DuckDB would compute differently, or Postgres must check itself, stays in Postgres.

#[pgrx::pg_schema]
mod tests {
    use std::time::Duration;

    use crate::nl2sql::{guard, run, run_read_only, RanIn};
    use crate::tests::outcome;
    use pgrx::prelude::*;

    const LIMIT: Duration = Duration::from_secs(10);

    /// A DuckDB file attached as `sales` and imported into the Postgres schema `sales`, plus a
    /// local table.
    fn sales() {
        let path = format!("/tmp/llm_sql_pushdown_{}.duckdb", std::process::id());
        let _ = std::fs::remove_file(&path);
        Spi::run(&format!(
            "SELECT llm_sql.execute($d$ATTACH '{path}' AS mk;
               CREATE TABLE mk.customers (id INTEGER, name VARCHAR, city VARCHAR);
               INSERT INTO mk.customers VALUES (1, 'Ann', 'Paris'), (2, 'Bob', 'Berlin'),
                   (3, 'Cy', NULL), (4, 'Dee', 'Paris'), (5, 'Ed', 'Oslo'),
                   (6, 'Émile', 'Zürich'), (7, 'zoe', 'Oslo');
               CREATE TABLE mk.orders (id INTEGER, customer_id INTEGER, amount DECIMAL(10,2),
                   quantity INTEGER, weight DOUBLE, placed DATE, paid BOOLEAN);
               INSERT INTO mk.orders VALUES
                   (1, 1, 10.50, 3, 0.5, DATE '2026-01-05', true),
                   (2, 1, 15.25, 1, 1.25, DATE '2026-02-01', false),
                   (3, 2, 40.00, 7, 2.0, DATE '2026-02-03', true),
                   (4, 4, NULL, 2, NULL, DATE '2025-12-30', NULL),
                   (5, 9, 5.75, 4, 0.25, DATE '2026-03-15', true),
                   (6, 2, 22.00, 5, 4.0, NULL, false);
               CREATE TABLE mk.numbers AS SELECT range AS n FROM range(200000);
             DETACH mk$d$);
             SELECT llm_sql.attach('sales', '{path}', persist => false);
             SELECT llm_sql.import_schema('sales');
             CREATE TABLE notes (order_id int, note text);
             INSERT INTO notes VALUES (1, 'gift'), (3, 'fragile');"
        ))
        .unwrap();
    }

    #[pg_test]
    fn queries_over_attachments_run_in_duckdb_with_the_rows_postgres_gives() {
        sales();
        let queries = [
            "SELECT id, name FROM sales.customers WHERE city = 'Paris' OR city IS NULL ORDER BY id",
            "SELECT c.id, count(*) AS orders, sum(o.amount) AS total
               FROM sales.customers c JOIN sales.orders o ON o.customer_id = c.id
              GROUP BY c.id HAVING count(*) > 1 ORDER BY total DESC",
            "SELECT c.id, coalesce(sum(o.quantity), 0) AS quantity
               FROM sales.customers c LEFT JOIN sales.orders o ON o.customer_id = c.id
              GROUP BY c.id ORDER BY c.id",
            "SELECT id, amount * quantity AS line, amount + 1.5 AS plus, -amount AS minus,
                    quantity * 2 - 1 AS odd
               FROM sales.orders ORDER BY id LIMIT 3 OFFSET 1",
            "SELECT id, CASE WHEN amount >= 20 THEN 'big' WHEN amount IS NULL THEN 'unknown'
                             ELSE 'small' END AS size
               FROM sales.orders WHERE customer_id IN (1, 2, 4) AND id NOT IN (6) ORDER BY id",
            "SELECT id FROM sales.customers WHERE name LIKE 'A%' OR name ILIKE '%E%' ORDER BY id",
            "SELECT extract(year FROM placed) AS y, extract(month FROM placed) AS m,
                    date_part('dow', placed) AS dow, count(*) AS n
               FROM sales.orders WHERE placed >= DATE '2026-01-01'
              GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            "SELECT count(DISTINCT customer_id) AS buyers, count(*) FILTER (WHERE amount > 10) AS big,
                    min(placed) AS first, max(placed) AS last, avg(weight) AS weight,
                    bool_and(paid) AS all_paid, bool_or(paid) AS any_paid, max(amount) AS top
               FROM sales.orders",
            "SELECT t.customer_id, t.total
               FROM (SELECT customer_id, sum(amount) AS total FROM sales.orders GROUP BY customer_id) t
              WHERE t.total > 20 ORDER BY t.customer_id",
            "SELECT coalesce(c.id, o.customer_id) AS who, o.id AS order_id
               FROM sales.customers c FULL JOIN sales.orders o ON o.customer_id = c.id
              ORDER BY who, order_id",
            "SELECT id, o.amount FROM sales.orders o JOIN sales.customers c USING (id) ORDER BY id",
            "SELECT DISTINCT customer_id::bigint AS who, quantity::float8 AS q
               FROM sales.orders WHERE quantity > 1 ORDER BY who, q",
            "SELECT c.id, o.id FROM sales.customers c, sales.orders o
              WHERE o.customer_id = c.id AND o.placed < DATE '2026-02-02' ORDER BY o.id",
            "SELECT name || '@' || coalesce(city, '?') AS label, placed::timestamp AS at
               FROM sales.customers JOIN sales.orders ON orders.customer_id = customers.id
              ORDER BY orders.id DESC NULLS FIRST",
            "SELECT count(*) AS n FROM sales.orders WHERE NOT paid",
            // This database's collation (C.UTF-8) orders text by code point, as DuckDB does.
            "SELECT name, city FROM sales.customers WHERE name > 'B' ORDER BY city DESC, name",
            "SELECT min(name) AS first, max(city) AS last FROM sales.customers",
        ];
        for sql in queries {
            let query = guard::check(sql).unwrap_or_else(|e| panic!("{sql}: {}", e.message));
            let duckdb = query
                .duckdb
                .as_ref()
                .unwrap_or_else(|| panic!("not translated: {sql}"))
                .sql(1001);
            let answer =
                run(&query, 1000, LIMIT).unwrap_or_else(|e| panic!("{duckdb}: {}", e.message));
            assert_eq!(answer.ran_in, RanIn::DuckDb, "{sql}");
            let postgres = run_read_only(&query.sql, 1000, LIMIT).unwrap();
            assert!(!postgres.rows.is_empty(), "{sql}");
            assert_eq!(answer.rows, postgres.rows, "{sql}\nDuckDB: {duckdb}");
        }
        // The row cap holds in DuckDB too, and is reported the same way.
        let query = guard::check("SELECT id FROM sales.orders ORDER BY id").unwrap();
        let capped = run(&query, 2, LIMIT).unwrap();
        assert_eq!(
            (capped.ran_in, capped.rows.len(), capped.truncated),
            (RanIn::DuckDb, 2, true)
        );
        let query = guard::check("SELECT id FROM sales.orders ORDER BY id LIMIT 2").unwrap();
        let exact = run(&query, 2, LIMIT).unwrap();
        assert_eq!((exact.rows.len(), exact.truncated), (2, false));
    }

    #[pg_test]
    fn what_duckdb_would_compute_differently_stays_in_postgres() {
        sales();
        Spi::run(
            "CREATE VIEW paris AS SELECT * FROM sales.customers WHERE city = 'Paris';
             CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';",
        )
        .unwrap();
        for sql in [
            // Integer division truncates in Postgres; division by zero is an error there.
            "SELECT quantity / 2 AS half FROM sales.orders",
            "SELECT amount / 3 FROM sales.orders",
            "SELECT quantity % 2 FROM sales.orders",
            // avg of integers is numeric in Postgres, double in DuckDB.
            "SELECT avg(quantity) FROM sales.orders",
            "WITH t AS (SELECT * FROM sales.orders) SELECT count(*) FROM t",
            "SELECT id, row_number() OVER (ORDER BY id) FROM sales.orders",
            "SELECT id FROM sales.customers c WHERE EXISTS (SELECT 1 FROM sales.orders o WHERE o.customer_id = c.id)",
            "SELECT id FROM sales.orders UNION SELECT id FROM sales.customers",
            // A local table: Postgres joins it with the foreign table.
            "SELECT o.id, n.note FROM sales.orders o JOIN notes n ON n.order_id = o.id",
            "SELECT * FROM paris",
            "SELECT date_trunc('month', placed) FROM sales.orders",
            "SELECT upper(name) FROM sales.customers",
            "SELECT twice(quantity) FROM sales.orders",
            // Backslash is LIKE's escape in Postgres, an ordinary character in DuckDB.
            r"SELECT id FROM sales.customers WHERE name LIKE 'A\_%'",
            // Comparing with timestamptz depends on the session time zone.
            "SELECT id FROM sales.orders WHERE placed < now()",
            "SELECT id FROM sales.orders ORDER BY id FETCH FIRST 2 ROWS WITH TIES",
            // A linguistic collation orders text differently from DuckDB.
            r#"SELECT name FROM sales.customers ORDER BY name COLLATE "unicode""#,
            r#"SELECT id FROM sales.customers WHERE name < 'b' COLLATE "unicode""#,
            r#"SELECT max(name COLLATE "unicode") FROM sales.customers"#,
        ] {
            let query = guard::check(sql).unwrap_or_else(|e| panic!("{sql}: {}", e.message));
            assert!(
                query.duckdb.is_none(),
                "{sql} became {}",
                query.duckdb.map(|d| d.sql(10)).unwrap_or_default()
            );
        }
        // And Postgres's answer is the answer.
        let query =
            guard::check("SELECT quantity / 2 AS half FROM sales.orders WHERE id = 3").unwrap();
        let answer = run(&query, 10, LIMIT).unwrap();
        assert_eq!(answer.ran_in, RanIn::Postgres);
        assert_eq!(answer.rows, vec![serde_json::json!({"half": 3})]);
    }

    #[pg_test]
    fn duckdb_reads_only_what_the_caller_may_read() {
        sales();
        Spi::run(
            "CREATE ROLE pushdown_reader;
             GRANT USAGE ON SCHEMA sales TO pushdown_reader;
             GRANT SELECT (id, name) ON sales.customers TO pushdown_reader;
             SELECT llm_sql.grant_attachment('sales', 'pushdown_reader');
             SET ROLE pushdown_reader;",
        )
        .unwrap();
        let query = guard::check("SELECT id, name FROM sales.customers ORDER BY id").unwrap();
        assert!(query.duckdb.is_some());
        let answer = run(&query, 10, LIMIT).unwrap();
        assert_eq!((answer.ran_in, answer.rows.len()), (RanIn::DuckDb, 7));
        // A column without the privilege: not translated, and Postgres refuses it.
        for sql in [
            "SELECT id, city FROM sales.customers",
            "SELECT count(*) FROM sales.customers WHERE city = 'Paris'",
            "SELECT count(*) FROM sales.orders",
            "SELECT t.n FROM (SELECT count(*) AS n FROM sales.orders) t",
        ] {
            let query = guard::check(sql).unwrap();
            assert!(query.duckdb.is_none(), "{sql}");
            let error = run(&query, 10, LIMIT)
                .err()
                .unwrap_or_else(|| panic!("{sql} ran"));
            assert_eq!(
                error.code,
                pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "{sql}"
            );
        }
        Spi::run("RESET ROLE").unwrap();
        // Row-level security cannot be enabled on a foreign table, so it cannot be bypassed.
        assert!(
            outcome("ALTER TABLE sales.customers ENABLE ROW LEVEL SECURITY").starts_with("42809")
        );
    }

    #[pg_test]
    fn the_time_limit_stops_a_query_in_duckdb() {
        sales();
        let query = guard::check(
            "SELECT count(*) AS n FROM sales.numbers a, sales.numbers b WHERE a.n + b.n = -1",
        )
        .unwrap();
        assert!(query.duckdb.is_some());
        let started = std::time::Instant::now();
        let error = run(&query, 10, Duration::from_millis(300)).err().unwrap();
        assert_eq!(error.code, pgrx::PgSqlErrorCode::ERRCODE_QUERY_CANCELED);
        assert!(
            error.message.contains("llm_sql.ask_timeout"),
            "{}",
            error.message
        );
        // Postgres would have needed far longer for 4·10¹⁰ pairs than this.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
