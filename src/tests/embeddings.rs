//! Embeddings into pgvector columns inside one backend: the searches, auto_embed's triggers and
//! queue, the drain, and the checks. (embed_column commits, so it is tested client-side.)

#[pgrx::pg_schema]
mod tests {
    use crate::tests::llm::tests::use_server;
    use crate::tests::outcome;
    use pgrx::prelude::*;

    fn docs(key: &str) {
        use_server(&format!("key={key},dim=32"));
        Spi::run(
            "CREATE TABLE docs (id int PRIMARY KEY, owner text, body text, embedding vector(32));
             INSERT INTO docs VALUES
               (1, 'ann', 'the cat sat on the mat', NULL),
               (2, 'ann', 'dogs chase cats in the garden', NULL),
               (3, 'bob', 'quarterly revenue grew by ten percent', NULL),
               (4, 'bob', 'the database index speeds up queries', NULL),
               (5, 'bob', '', NULL);
             UPDATE docs SET embedding = llm_sql.embed(body);",
        )
        .unwrap();
    }

    /// Drains the queue in the test's transaction (no commits inside a transaction block).
    fn drain() {
        Spi::run("CALL llm_sql.process_embedding_queue()").unwrap();
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap_or(-1)
    }

    #[pg_test]
    fn semantic_search_finds_nearest_rows_without_the_vector() {
        docs("semantic");
        let top = Spi::get_one::<String>(
            "SELECT data->>'body' FROM llm_sql.semantic_search('docs', 'a cat on a mat', 1)",
        )
        .unwrap();
        assert_eq!(top.as_deref(), Some("the cat sat on the mat"));
        let rows = count(
            "SELECT count(*) FROM llm_sql.semantic_search('docs', 'revenue', 3)
              WHERE NOT data ? 'embedding' AND data ? 'owner' AND distance >= 0",
        );
        assert_eq!(rows, 3);
        let ordered = Spi::get_one::<bool>(
            "SELECT bool_and(d <= n) FROM (SELECT distance AS d, lead(distance) OVER () AS n
               FROM llm_sql.semantic_search('docs', 'database queries', 4)) s WHERE n IS NOT NULL",
        )
        .unwrap();
        assert_eq!(ordered, Some(true));
        assert!(outcome("SELECT * FROM llm_sql.semantic_search('docs', ' ')").starts_with("22023"));
        assert!(
            outcome("SELECT * FROM llm_sql.semantic_search('docs', 'x', 0)").starts_with("22023")
        );
        let wrong = outcome("SELECT * FROM llm_sql.semantic_search('docs', 'x', 3, 'body')");
        assert!(
            wrong.starts_with("42804") && wrong.contains("not a pgvector vector"),
            "{wrong}"
        );
        let missing = outcome("SELECT * FROM llm_sql.semantic_search('docs', 'x', 3, 'nope')");
        assert!(missing.starts_with("42703"), "{missing}");
    }

    #[pg_test]
    fn hybrid_search_fuses_vector_and_text_ranks() {
        docs("hybrid");
        let rows = Spi::connect(|client| {
            client
                .select(
                    "SELECT (data->>'id')::int, score FROM llm_sql.hybrid_search('docs', 'database index', 'body', 3)",
                    None,
                    &[],
                )
                .unwrap()
                .map(|r| (r.get::<i32>(1).unwrap().unwrap(), r.get::<f64>(2).unwrap().unwrap()))
                .collect::<Vec<_>>()
        });
        // Row 4 is first in both lists: 2 / (60 + 1).
        assert_eq!(rows[0].0, 4);
        assert!((rows[0].1 - 2.0 / 61.0).abs() < 1e-9, "{rows:?}");
        assert!(rows.windows(2).all(|w| w[0].1 >= w[1].1), "{rows:?}");
    }

    #[pg_test]
    fn searches_respect_row_level_security() {
        docs("rls");
        Spi::run(
            "CREATE ROLE llm_reader_ann; GRANT SELECT ON docs TO llm_reader_ann;
             ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own ON docs FOR SELECT TO llm_reader_ann USING (owner = 'ann');
             SET ROLE llm_reader_ann",
        )
        .unwrap();
        let owners = Spi::get_one::<String>(
            "SELECT string_agg(DISTINCT data->>'owner', ',') FROM llm_sql.semantic_search('docs', 'revenue database', 10)",
        )
        .unwrap();
        assert_eq!(owners.as_deref(), Some("ann"));
        let owners = Spi::get_one::<String>(
            "SELECT string_agg(DISTINCT data->>'owner', ',') FROM llm_sql.hybrid_search('docs', 'revenue', 'body', 10)",
        )
        .unwrap();
        assert_eq!(owners.as_deref(), Some("ann"));
        Spi::run("RESET ROLE").unwrap();
    }

    #[pg_test]
    fn dimension_mismatch_names_both() {
        docs("dims");
        use_server("key=dims2,dim=8");
        let error = outcome("SELECT * FROM llm_sql.semantic_search('docs', 'cat', 1)");
        assert!(error.starts_with("22000"), "{error}");
        assert!(
            error.contains("returns 8-dimensional") && error.contains("vector(32)"),
            "{error}"
        );
        let error = outcome("CALL llm_sql.embed_column('docs', 'body', 'embedding')");
        assert!(
            error.starts_with("25001") && error.contains("transaction block"),
            "{error}"
        );
    }

    #[pg_test]
    fn auto_embed_queues_changes_and_the_drain_embeds_the_latest_text() {
        docs("auto");
        Spi::run("UPDATE docs SET embedding = NULL WHERE id = 3").unwrap();
        assert_eq!(
            outcome("SELECT llm_sql.auto_embed('docs', 'body', 'embedding')"),
            "ok"
        );
        // Row 3 had no embedding: queued at once; row 5 has no text.
        assert_eq!(
            count("SELECT count(*) FROM llm_sql.embedding_queue WHERE tbl = 'docs'::regclass"),
            1
        );
        Spi::run("INSERT INTO docs (id, owner, body) VALUES (6, 'ann', 'a new cat')").unwrap();
        Spi::run("UPDATE docs SET body = 'first change' WHERE id = 1").unwrap();
        Spi::run("UPDATE docs SET body = 'second change' WHERE id = 1").unwrap();
        // Unchanged source: not queued.
        Spi::run("UPDATE docs SET owner = 'zed' WHERE id = 2").unwrap();
        Spi::run("UPDATE docs SET body = body WHERE id = 4").unwrap();
        let queued = Spi::get_one::<String>(
            "SELECT string_agg(row_key->>0 || ':' || version, ',' ORDER BY (row_key->>0)::int)
               FROM llm_sql.embedding_queue",
        )
        .unwrap();
        assert_eq!(queued.as_deref(), Some("1:2,3:1,6:1"));
        drain();
        assert_eq!(count("SELECT count(*) FROM llm_sql.embedding_queue"), 0);
        let right = count(
            "SELECT count(*) FROM docs WHERE id IN (1, 3, 6) AND embedding = llm_sql.embed(body)",
        );
        assert_eq!(right, 3);
        // Text removed: the stale embedding goes too.
        Spi::run("UPDATE docs SET body = NULL WHERE id = 6").unwrap();
        drain();
        assert_eq!(
            count("SELECT count(*) FROM docs WHERE id = 6 AND embedding IS NULL"),
            1
        );
        assert_eq!(
            outcome("SELECT llm_sql.disable_auto_embed('docs', 'embedding')"),
            "ok"
        );
        Spi::run("UPDATE docs SET body = 'after disable' WHERE id = 2").unwrap();
        assert_eq!(count("SELECT count(*) FROM llm_sql.embedding_queue"), 0);
        assert_eq!(
            count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'docs'::regclass"),
            0
        );
        let again = outcome("SELECT llm_sql.disable_auto_embed('docs', 'embedding')");
        assert!(again.starts_with("42704"), "{again}");
    }

    #[pg_test]
    fn failures_stay_in_the_queue_with_their_error() {
        docs("failing");
        Spi::run("SELECT llm_sql.auto_embed('docs', 'body', 'embedding')").unwrap();
        Spi::run("SET llm_sql.max_retries = 0").unwrap();
        use_server("key=failing,fault=500,dim=32");
        Spi::run("UPDATE docs SET body = 'changed' WHERE id = 1").unwrap();
        drain();
        let (attempts, later) = Spi::get_two::<i32, bool>(
            "SELECT attempts, next_attempt_at > now() + interval '4 seconds'
               FROM llm_sql.embedding_queue WHERE last_error LIKE '%HTTP 500%'",
        )
        .unwrap();
        assert_eq!((attempts, later), (Some(1), Some(true)));
        // Not due yet: nothing to do; the old embedding is untouched.
        drain();
        assert_eq!(
            count("SELECT attempts::int8 FROM llm_sql.embedding_queue"),
            1
        );
        use_server("key=failing-ok,dim=32");
        assert_eq!(
            count("SELECT count(*) FROM docs WHERE id = 1 AND embedding = llm_sql.embed('the cat sat on the mat')"),
            1
        );
    }

    #[pg_test]
    fn auto_embed_checks_its_arguments_and_privileges() {
        docs("checks");
        Spi::run("CREATE TABLE nokey (body text, embedding vector(32))").unwrap();
        let error = outcome("SELECT llm_sql.auto_embed('nokey', 'body', 'embedding')");
        assert!(
            error.starts_with("55000") && error.contains("primary key"),
            "{error}"
        );
        let error = outcome("SELECT llm_sql.auto_embed('docs', 'nope', 'embedding')");
        assert!(error.starts_with("42703"), "{error}");
        let error = outcome("SELECT llm_sql.auto_embed(NULL, 'body', 'embedding')");
        assert!(error.starts_with("22004"), "{error}");
        Spi::run("CREATE ROLE llm_read_only; GRANT SELECT ON docs TO llm_read_only; SET ROLE llm_read_only")
            .unwrap();
        let error = outcome("SELECT llm_sql.auto_embed('docs', 'body', 'embedding')");
        assert!(
            error.starts_with("42501") && error.contains("UPDATE"),
            "{error}"
        );
        // The queue shows only entries of tables the role may read; its tables are closed.
        assert!(outcome("SELECT * FROM llm_sql.auto_embeddings").starts_with("42501"));
        assert!(outcome("DELETE FROM llm_sql.embedding_queue").starts_with("42501"));
        Spi::run("RESET ROLE").unwrap();
    }

    #[pg_test]
    fn searches_filter_before_choosing_and_return_the_chosen_columns() {
        docs("filtered");
        // Bob's rows only, though Ann's are nearer: the filter applies before the k nearest.
        let owners = Spi::get_one::<String>(
            "SELECT string_agg(data->>'owner', ',') FROM llm_sql.semantic_search('docs', 'a cat on a mat', 2,
                    filter => '{\"owner\": \"bob\"}')",
        )
        .unwrap();
        assert_eq!(owners.as_deref(), Some("bob,bob"));
        let ids = Spi::get_one::<String>(
            "SELECT string_agg(data::text, ',' ORDER BY data->>'id') FROM llm_sql.semantic_search('docs', 'cat', 5,
                    filter => '{\"id\": [1, 3], \"owner\": [\"ann\", \"bob\"]}', columns => ARRAY['id'])",
        )
        .unwrap();
        assert_eq!(ids.as_deref(), Some(r#"{"id": 1},{"id": 3}"#));
        let texts = count(
            "SELECT count(*) FROM llm_sql.hybrid_search('docs', 'cat', 'body', 5,
                    filter => '{\"owner\": \"ann\"}') WHERE data->>'owner' = 'ann'",
        );
        assert_eq!(texts, 2);
        // Values are bound, never SQL; NULL matches IS NULL.
        assert_eq!(
            count("SELECT count(*) FROM llm_sql.semantic_search('docs', 'cat', 5, filter => '{\"owner\": \"x'' OR true --\"}')"),
            0
        );
        Spi::run("UPDATE docs SET owner = NULL WHERE id = 4").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM llm_sql.semantic_search('docs', 'cat', 5, filter => '{\"owner\": null}')"),
            1
        );
        for (call, state) in [
            ("filter => '{\"nope\": 1}'", "42703"),
            ("filter => '[1]'", "22023"),
            ("filter => '{\"owner\": {\"a\": 1}}'", "22023"),
            ("columns => ARRAY['nope']", "42703"),
            ("columns => ARRAY[]::text[]", "22023"),
            ("filter => '{\"id\": \"not a number\"}'", "22P02"),
        ] {
            let error = outcome(&format!(
                "SELECT * FROM llm_sql.semantic_search('docs', 'cat', 5, {call})"
            ));
            assert!(error.starts_with(state), "{call}: {error}");
        }
    }

    #[pg_test]
    fn halfvec_columns_are_filled_and_searched_through_their_index() {
        use_server(&format!("key=half{},dim=16", std::process::id()));
        Spi::run(
            "CREATE TABLE half_docs (id int PRIMARY KEY, body text, embedding halfvec(16));
             INSERT INTO half_docs VALUES (1, 'the cat sat on the mat'), (2, 'stock prices fell');
             CREATE INDEX ON half_docs USING hnsw (embedding halfvec_cosine_ops);
             SELECT llm_sql.auto_embed('half_docs', 'body', 'embedding');",
        )
        .unwrap();
        drain();
        assert_eq!(
            count("SELECT count(*) FROM half_docs WHERE embedding = llm_sql.embed(body)::halfvec"),
            2
        );
        let top = Spi::get_one::<String>(
            "SELECT data->>'body' FROM llm_sql.semantic_search('half_docs', 'a cat on a mat', 1, columns => ARRAY['body'])",
        )
        .unwrap();
        assert_eq!(top.as_deref(), Some("the cat sat on the mat"));
        let error = outcome("SELECT llm_sql.auto_embed('half_docs', 'body', 'body')");
        assert!(
            error.contains("not a pgvector vector or halfvec"),
            "{error}"
        );
    }

    #[pg_test]
    fn one_model_per_column_unless_it_is_cleared_first() {
        docs("onemodel");
        Spi::run("SELECT llm_sql.auto_embed('docs', 'body', 'embedding')").unwrap();
        // Another session setting does not change the column's model.
        Spi::run("SET llm_sql.embedding_model = 'another-model'").unwrap();
        assert_eq!(
            outcome("SELECT llm_sql.auto_embed('docs', 'body', 'embedding')"),
            "ok"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT model FROM llm_sql.embedding_status")
                .unwrap()
                .as_deref(),
            Some("nomic-embed-text")
        );
        let error = outcome(
            "SELECT llm_sql.auto_embed('docs', 'body', 'embedding', model => 'another-model')",
        );
        assert!(
            error.starts_with("55000")
                && error.contains("\"nomic-embed-text\"")
                && error.contains("SET \"embedding\" = NULL")
                && !error.contains("ALTER COLUMN"),
            "{error}"
        );
        Spi::run("UPDATE docs SET embedding = NULL").unwrap();
        assert_eq!(
            outcome(
                "SELECT llm_sql.auto_embed('docs', 'body', 'embedding', model => 'another-model')"
            ),
            "ok"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT model FROM llm_sql.embedding_status")
                .unwrap()
                .as_deref(),
            Some("another-model")
        );
        // A dimension mismatch proposes a new column, never changing the one with data.
        use_server("key=onemodel8,dim=8");
        let error = outcome("SELECT * FROM llm_sql.semantic_search('docs', 'cat', 1)");
        assert!(
            error.contains("ADD COLUMN") && !error.contains("ALTER COLUMN"),
            "{error}"
        );
    }

    #[pg_test]
    fn status_shows_each_column_and_dropping_a_table_ends_its_auto_embedding() {
        docs("status");
        Spi::run(
            "SELECT llm_sql.auto_embed('docs', 'body', 'embedding');
             INSERT INTO docs (id, owner, body) VALUES (7, 'ann', 'new'), (8, 'ann', 'newer');",
        )
        .unwrap();
        let status = Spi::get_one::<String>(
            "SELECT concat_ws(' ', table_name, target_column, source_column, model, auto_embed, rows_pending)
               FROM llm_sql.embedding_status",
        )
        .unwrap();
        assert_eq!(
            status.as_deref(),
            Some("docs embedding body nomic-embed-text t 2")
        );
        // Dropping the target column ends it; so does dropping the table.
        Spi::run("ALTER TABLE docs DROP COLUMN embedding").unwrap();
        assert_eq!(count("SELECT count(*) FROM llm_sql.embedding_status"), 0);
        assert_eq!(count("SELECT count(*) FROM llm_sql.embedding_queue"), 0);
        assert_eq!(
            count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'docs'::regclass"),
            0
        );
        Spi::run("INSERT INTO docs (id, owner, body) VALUES (9, 'ann', 'after')").unwrap();
        docs_again();
        Spi::run("SELECT llm_sql.auto_embed('docs2', 'body', 'embedding'); DROP TABLE docs2")
            .unwrap();
        assert_eq!(count("SELECT count(*) FROM llm_sql.embedding_status"), 0);
        Spi::run("SET ROLE NONE").unwrap();
        assert_eq!(
            count("SELECT (SELECT count(*) FROM llm_sql.auto_embeddings) + (SELECT count(*) FROM llm_sql.embedding_queue)"),
            0
        );
    }

    fn docs_again() {
        Spi::run(
            "CREATE TABLE docs2 (id int PRIMARY KEY, body text, embedding vector(32));
             INSERT INTO docs2 VALUES (1, 'one'), (2, 'two');",
        )
        .unwrap();
    }
}
