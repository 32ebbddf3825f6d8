-- llm_sql demo: run by scripts/setup against the dev cluster (scripts/pg psql -f sql/demo.sql).
\set ON_ERROR_STOP on
\pset footer off
\echo '--- DuckDB inside this PostgreSQL backend'
SELECT version AS duckdb_version
FROM llm_sql.query('SELECT version() AS version') AS t(version text);

\echo '--- DuckDB SQL with typed results: a million rows aggregated by DuckDB'
SELECT *
FROM llm_sql.query($$
    SELECT i % 5 AS bucket, count(*) AS n, round(avg(i), 1) AS mean, list(i ORDER BY i)[1:3] AS first_three
    FROM range(1000000) t(i) GROUP BY ALL ORDER BY bucket
$$) AS t(bucket bigint, n bigint, mean double precision, first_three bigint[]);

\echo '--- Any DuckDB row as jsonb, nested types included'
SELECT * FROM llm_sql.query_json($$
    SELECT 'llm_sql' AS name, [1, 2, 3] AS list, {'a': 1, 'b': [true, false]} AS struct,
           MAP {'k': 42} AS map, TIMESTAMP '2026-01-01 12:00' AS at
$$);

\echo '--- Parquet: write with DuckDB, read it back, join with a Postgres table'
SELECT llm_sql.execute($$
    COPY (SELECT i AS customer_id, 'customer ' || i AS name, (i * 37) % 100 AS score
          FROM range(1, 101) t(i)) TO '/tmp/llm_sql_demo_customers.parquet' (FORMAT parquet)
$$) AS rows_written;
DROP TABLE IF EXISTS demo_orders;
CREATE TABLE demo_orders AS
    SELECT g AS order_id, (g % 100) + 1 AS customer_id, (g % 7) * 10.5 AS amount
    FROM generate_series(1, 1000) g;
SELECT c.name, count(*) AS orders, sum(o.amount) AS total
FROM demo_orders o
JOIN llm_sql.query($$SELECT * FROM '/tmp/llm_sql_demo_customers.parquet' WHERE score > 90$$)
     AS c(customer_id bigint, name text, score bigint) USING (customer_id)
GROUP BY c.name ORDER BY total DESC, c.name LIMIT 5;

\echo '--- Parameters: values bound to $1, $2, never written into the SQL'
SELECT * FROM llm_sql.query(
    'SELECT customer_id, name, score FROM ''/tmp/llm_sql_demo_customers.parquet''
      WHERE score > $1 ORDER BY score DESC, customer_id LIMIT $2', 95, 3)
    AS t(customer_id bigint, name text, score bigint);

\echo '--- The local table through catalog pg: numeric stays exact (DECIMAL in DuckDB)'
SELECT duckdb_total, duckdb_total = (SELECT sum(amount) FROM demo_orders) AS same_as_postgres
FROM llm_sql.query('SELECT sum(amount) AS total FROM pg.public.demo_orders') AS t(duckdb_total numeric);

\echo '--- A Postgres view over a DuckDB query: no column list needed by its readers'
SELECT llm_sql.create_view('demo_scores', $$
    SELECT score, count(*) AS customers FROM '/tmp/llm_sql_demo_customers.parquet' GROUP BY score
$$, or_replace => true) AS created_view;
SELECT * FROM demo_scores ORDER BY customers DESC, score LIMIT 3;

\echo '--- DuckDB FLOAT[n] arrays become pgvector vectors'
SELECT v AS vector, v <-> '[1,1,1]' AS distance_to_ones
FROM llm_sql.query('SELECT [i, i + 1, i + 2]::FLOAT[3] AS v FROM range(3) t(i)') AS t(v vector(3));

\echo '--- Semantic search with the built-in embedding model: no model server involved'
SET llm_sql.llm_url = 'http://127.0.0.1:1';  -- nothing listens there
SET llm_sql.embedding_model = 'builtin';      -- all-MiniLM-L6-v2 inside this backend (the default)
DROP TABLE IF EXISTS demo_docs;
CREATE TABLE demo_docs (id int PRIMARY KEY, body text, embedding vector(384));
INSERT INTO demo_docs (id, body) VALUES
    (1, 'How to reset a forgotten account password'),
    (2, 'Shipping takes three to five business days within Europe'),
    (3, 'Our headquarters moved to a new office in Lisbon'),
    (4, 'Refunds are paid back to the original card within a week'),
    (5, 'The mobile app crashes when uploading large photos');
CALL llm_sql.embed_column('demo_docs', 'body', 'embedding');
SELECT data->>'body' AS best_match, round(distance::numeric, 3) AS distance
FROM llm_sql.semantic_search('demo_docs', 'I want my money back', k => 2);
SELECT data->>'body' AS best_match, round(distance::numeric, 3) AS distance
FROM llm_sql.semantic_search('demo_docs', 'when will my parcel arrive?', k => 1);
\echo '--- pgvector''s own idiom: embed inline, the HNSW index is used and the question embedded once'
CREATE INDEX ON demo_docs USING hnsw (embedding vector_cosine_ops);
SELECT body AS best_match FROM demo_docs
ORDER BY embedding <=> llm_sql.embed('the app keeps crashing') LIMIT 1;
\echo '--- A filter applied before the nearest rows are chosen, and chosen columns'
SELECT data FROM llm_sql.semantic_search('demo_docs', 'I want my money back', k => 1,
                                         filter => '{"id": [1, 2, 3]}', columns => ARRAY['id', 'body']);
\echo '--- Each embedded column: its model and what is left to do'
SELECT table_name, target_column, model, rows_pending, backfill_state, backfill_rows_done
FROM llm_sql.embedding_status;
RESET llm_sql.llm_url;
RESET llm_sql.embedding_model;

DROP TABLE demo_docs;
DROP VIEW demo_scores;
DROP TABLE demo_orders;
