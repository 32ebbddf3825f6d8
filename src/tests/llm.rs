//! The LLM client against the project's Ollama-compatible test server (real HTTP): every SQL
//! function, both APIs, every fault, settings and the API key. Cancel and embed_column (which
//! commits) are tested client-side in client_tests/tests/llm.rs.

#[pgrx::pg_schema]
pub mod tests {
    use crate::tests::outcome;
    use pgrx::prelude::*;
    use serde_json::Value;

    /// The test server's base URL (scripts/test starts it).
    pub fn server() -> String {
        std::env::var("LLM_SQL_TEST_LLM_URL").unwrap_or_else(|_| "http://127.0.0.1:25440".into())
    }

    /// Points llm_sql at the test server with per-test options (`key=…,fault=…`), and makes
    /// one of its models the embedding model (the default is the built-in one).
    pub fn use_server(options: &str) {
        Spi::run(&format!("SET llm_sql.llm_url = '{}/{options}'", server())).unwrap();
        Spi::run("SET llm_sql.embedding_model = 'nomic-embed-text'").unwrap();
    }

    /// Requests the test server saw for `key`.
    pub fn stats(key: &str) -> Value {
        ureq::get(format!("{}/_stats/{key}", server()))
            .call()
            .unwrap()
            .body_mut()
            .read_json::<Value>()
            .unwrap()
    }

    fn unique(name: &str) -> String {
        format!("{name}{}", std::process::id())
    }

    fn one(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).unwrap()
    }

    #[pg_test]
    fn generate_sends_prompt_system_and_options() {
        let key = unique("gen");
        use_server(&format!("key={key}"));
        let reply = one(
            "SELECT llm_sql.generate('Say hi', 'test-chat', 'Be brief', '{\"temperature\": 0}')",
        );
        assert_eq!(reply.as_deref(), Some("echo: Say hi"));
        let body = &stats(&key)["last_body"];
        assert_eq!(body["model"], "test-chat");
        assert_eq!(body["system"], "Be brief");
        assert_eq!(body["options"]["temperature"], 0);
        assert_eq!(body["stream"], false);
        // The model comes from llm_sql.chat_model when the call names none.
        Spi::run("SET llm_sql.chat_model = 'my-default'").unwrap();
        one("SELECT llm_sql.generate('x')");
        assert_eq!(stats(&key)["last_body"]["model"], "my-default");
        assert_eq!(one("SELECT llm_sql.generate(NULL)"), None);
        assert!(outcome("SELECT llm_sql.generate('  ')").starts_with("22023"));
        assert!(outcome("SELECT llm_sql.generate('x', options => '[1]')").starts_with("22023"));
    }

    #[pg_test]
    fn scripted_replies_and_chat() {
        let key = unique("chat");
        ureq::post(format!("{}/_script/{key}", server()))
            .send_json(serde_json::json!(["first", "second"]))
            .unwrap();
        use_server(&format!("key={key}"));
        let reply = Spi::get_one::<pgrx::JsonB>(
            r#"SELECT llm_sql.chat('[{"role":"system","content":"s"},{"role":"user","content":"q"}]')"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            reply.0,
            serde_json::json!({"role": "assistant", "content": "first"})
        );
        assert_eq!(
            one("SELECT llm_sql.generate('q')").as_deref(),
            Some("second")
        );
        let sent = &stats(&key)["last_body"];
        assert_eq!(sent["prompt"], "q");
        for bad in [
            "'[]'",
            "'{\"role\":\"user\"}'",
            "'[{\"role\":\"user\"}]'",
            "'[{\"content\":\"x\"}]'",
        ] {
            let result = outcome(&format!("SELECT llm_sql.chat({bad})"));
            assert!(result.starts_with("22023"), "{bad}: {result}");
        }
    }

    #[pg_test]
    fn embed_returns_vectors_that_reflect_shared_words() {
        let key = unique("embed");
        use_server(&format!("key={key},dim=64"));
        let dims = Spi::get_one::<i32>("SELECT vector_dims(llm_sql.embed('the cat sat'))").unwrap();
        assert_eq!(dims, Some(64));
        let (near, far) = Spi::get_two::<f64, f64>(
            "SELECT llm_sql.embed('the cat sat on the mat') <=> llm_sql.embed('a cat on a mat'),
                    llm_sql.embed('the cat sat on the mat') <=> llm_sql.embed('quarterly revenue report')",
        )
        .unwrap();
        assert!(near.unwrap() < far.unwrap(), "{near:?} {far:?}");
        let same =
            Spi::get_one::<bool>("SELECT llm_sql.embed('same text') = llm_sql.embed('same text')")
                .unwrap();
        assert_eq!(same, Some(true));
        // NULL and whitespace have no embedding, and cost no request.
        let before = stats(&key)["requests"].as_u64().unwrap();
        let nulls = Spi::get_one::<bool>(
            "SELECT llm_sql.embed(NULL::text) IS NULL AND llm_sql.embed('') IS NULL
                AND llm_sql.embed(E' \\n\\t') IS NULL",
        )
        .unwrap();
        assert_eq!(nulls, Some(true));
        assert_eq!(stats(&key)["requests"].as_u64().unwrap(), before);
    }

    #[pg_test]
    fn embed_array_keeps_order_and_batches_requests() {
        let key = unique("batch");
        use_server(&format!("key={key},dim=8"));
        Spi::run("SET llm_sql.embedding_batch_size = 2").unwrap();
        let matches = Spi::get_one::<bool>(
            "WITH r AS (SELECT llm_sql.embed(ARRAY['one', NULL, 'two', '', 'three', 'four', 'five']) AS v)
             SELECT v[1] = llm_sql.embed('one') AND v[2] IS NULL AND v[3] = llm_sql.embed('two')
                AND v[4] IS NULL AND v[5] = llm_sql.embed('three') AND v[7] = llm_sql.embed('five')
                AND cardinality(v) = 7
               FROM r",
        )
        .unwrap();
        assert_eq!(matches, Some(true));
        // 5 texts in batches of 2: 3 requests, then 4 single embeds for the comparison.
        assert_eq!(stats(&key)["requests"].as_u64(), Some(3 + 4));
        let empty =
            Spi::get_one::<i32>("SELECT cardinality(llm_sql.embed(ARRAY[]::text[]))").unwrap();
        assert_eq!(empty, Some(0));
        assert_eq!(one("SELECT llm_sql.embed(NULL::text[])::text"), None);
    }

    #[pg_test]
    fn connections_are_reused_within_a_backend() {
        let key = unique("reuse");
        use_server(&format!("key={key},dim=4"));
        Spi::run("SELECT llm_sql.embed('text ' || g) FROM generate_series(1, 20) g").unwrap();
        let s = stats(&key);
        assert_eq!(s["requests"].as_u64(), Some(20));
        assert_eq!(s["connections"].as_u64(), Some(1), "{s}");
    }

    #[pg_test]
    fn models_and_health() {
        let health = || {
            Spi::get_one::<pgrx::JsonB>("SELECT llm_sql.llm_health()")
                .unwrap()
                .unwrap()
                .0
        };
        use_server(&format!("key={}", unique("models")));
        let count = Spi::get_one::<i64>(
            "SELECT count(*) FROM llm_sql.models() WHERE name = 'nomic-embed-text:latest'
                AND size = 274302450 AND modified_at = '2026-10-01 08:30:00+00'",
        )
        .unwrap();
        assert_eq!(count, Some(1));
        Spi::run("SET llm_sql.embedding_model = 'nomic-embed-text'").unwrap();
        let report = health();
        assert_eq!(report["reachable"], true, "{report}");
        assert_eq!(report["embedding_model"]["present"], true, "{report}");
        assert!(report["latency_ms"].as_f64().is_some());
        // The built-in model is present when installed, whatever the server has.
        Spi::run("SET llm_sql.embedding_model = 'builtin'").unwrap();
        let report = health();
        assert_eq!(report["embedding_model"]["present"], true, "{report}");
        Spi::run("SET llm_sql.embedding_model = 'not-on-the-server'").unwrap();
        let report = health();
        assert_eq!(report["embedding_model"]["present"], false, "{report}");
        Spi::run("SET llm_sql.llm_url = 'http://127.0.0.1:1'").unwrap();
        let report = health();
        assert_eq!(report["reachable"], false, "{report}");
        assert!(
            report["error"].as_str().unwrap().contains("127.0.0.1:1"),
            "{report}"
        );
        assert!(report["last_error"].as_str().is_some(), "{report}");
    }

    #[pg_test]
    fn openai_api_with_key() {
        let key = unique("openai");
        use_server(&format!("key={key},dim=8"));
        Spi::run("SET llm_sql.llm_api = 'openai'").unwrap();
        Spi::run("SELECT llm_sql.set_llm_api_key('sk-test-very-secret')").unwrap();
        assert_eq!(
            one("SELECT llm_sql.generate('hello', system => 'sys')").as_deref(),
            Some("echo: hello")
        );
        let s = stats(&key);
        assert_eq!(s["authorization"], "Bearer sk-test-very-secret");
        assert_eq!(s["last_body"]["messages"][0]["role"], "system");
        let same = Spi::get_one::<bool>(
            "SELECT (llm_sql.embed(ARRAY['a b', 'c']))[2] = llm_sql.embed('c') AND vector_dims(llm_sql.embed('c')) = 8",
        )
        .unwrap();
        assert_eq!(same, Some(true));
        let models = Spi::get_one::<i64>(
            "SELECT count(*) FROM llm_sql.models() WHERE modified_at IS NOT NULL",
        )
        .unwrap();
        assert_eq!(models, Some(2));
        // The key is never a setting, and other roles cannot read where it is kept.
        assert_eq!(one("SHOW llm_sql.llm_api_key").as_deref(), Some(""));
        let listed = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_settings WHERE setting LIKE '%very-secret%' OR reset_val LIKE '%very-secret%'",
        )
        .unwrap();
        assert_eq!(listed, Some(0));
        let refused = outcome("SET llm_sql.llm_api_key = 'sk-elsewhere'");
        assert!(
            refused.starts_with("22023") && refused.contains("set_llm_api_key"),
            "{refused}"
        );
        Spi::run("CREATE ROLE key_reader").unwrap();
        Spi::run("SET ROLE key_reader").unwrap();
        assert!(outcome("SELECT * FROM llm_sql.llm_api_key").starts_with("42501"));
        assert!(outcome("SELECT llm_sql.set_llm_api_key('mine')").starts_with("42501"));
        // ... and yet its requests carry the key.
        assert_eq!(
            one("SELECT llm_sql.generate('as another role')").as_deref(),
            Some("echo: as another role")
        );
        assert_eq!(stats(&key)["authorization"], "Bearer sk-test-very-secret");
        Spi::run("RESET ROLE").unwrap();
        use_server(&format!("key={key},fault=unauthorized"));
        let error = outcome("SELECT llm_sql.generate('x')");
        assert!(
            error.starts_with("38000") && error.contains("HTTP 401"),
            "{error}"
        );
        assert!(
            error.contains("set_llm_api_key") && !error.contains("very-secret"),
            "{error}"
        );
        // NULL removes the key.
        Spi::run("SELECT llm_sql.set_llm_api_key(NULL)").unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM llm_sql.llm_api_key"),
            Ok(Some(0))
        );
    }

    #[pg_test]
    fn server_faults_are_clear_errors() {
        Spi::run("SET llm_sql.max_retries = 0").unwrap();
        let cases = [
            (
                "fault=500",
                "SELECT llm_sql.embed('x')",
                "38000",
                "HTTP 500",
            ),
            (
                "fault=malformed",
                "SELECT llm_sql.embed('x')",
                "38000",
                "malformed JSON",
            ),
            (
                "fault=nan",
                "SELECT llm_sql.embed('x')",
                "38000",
                "malformed JSON",
            ),
            (
                "fault=inf",
                "SELECT llm_sql.embed('x')",
                "38000",
                "NaN or infinite",
            ),
            (
                "fault=wrongdim",
                "SELECT llm_sql.embed(ARRAY['a', 'b'])",
                "38000",
                "different dimensions",
            ),
            (
                "fault=wrongcount",
                "SELECT llm_sql.embed(ARRAY['a', 'b'])",
                "38000",
                "1 embeddings for 2 inputs",
            ),
            (
                "fault=drop",
                "SELECT llm_sql.embed('x')",
                "08006",
                "could not reach the LLM server",
            ),
            (
                "fault=malformed",
                "SELECT llm_sql.generate('x')",
                "38000",
                "malformed JSON",
            ),
            (
                "",
                "SELECT llm_sql.embed('x', 'missing-model')",
                "42704",
                "not found",
            ),
        ];
        for (options, sql, state, text) in cases {
            use_server(&format!("key={},{options}", unique("fault")));
            let error = outcome(sql);
            assert!(
                error.starts_with(state) && error.contains(text),
                "{options}: {error}"
            );
            assert!(
                error.contains("127.0.0.1") || !state.starts_with("08"),
                "{error}"
            );
        }
        Spi::run("SET llm_sql.llm_url = 'http://127.0.0.1:1'").unwrap();
        let refused = outcome("SELECT llm_sql.embed('x')");
        assert!(
            refused.starts_with("08006") && refused.contains("http://127.0.0.1:1"),
            "{refused}"
        );
        assert!(
            refused.contains("HINT: Check that the server is running"),
            "{refused}"
        );
    }

    #[pg_test]
    fn timeouts_and_retries() {
        use_server(&format!("key={},delay=3000", unique("slow")));
        Spi::run("SET llm_sql.request_timeout = 300").unwrap();
        let started = std::time::Instant::now();
        let error = outcome("SELECT llm_sql.embed('x')");
        assert!(
            error.starts_with("08006") && error.contains("within 300 ms"),
            "{error}"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(2500));
        Spi::run("RESET llm_sql.request_timeout").unwrap();
        // Two 500s, then success: max_retries = 2 gets through, 1 does not.
        let key = unique("retry");
        use_server(&format!("key={key},fault=500,times=2,dim=4"));
        Spi::run("SET llm_sql.max_retries = 1").unwrap();
        let error = outcome("SELECT llm_sql.embed('x')");
        assert!(
            error.contains("HTTP 500") && error.contains("after 1 retries"),
            "{error}"
        );
        let key = unique("retry2");
        use_server(&format!("key={key},fault=500,times=2,dim=4"));
        Spi::run("SET llm_sql.max_retries = 2").unwrap();
        assert_eq!(outcome("SELECT llm_sql.embed('x')"), "ok");
        assert_eq!(stats(&key)["requests"].as_u64(), Some(3));
        // 4xx answers are not retried.
        let key = unique("noretry");
        use_server(&format!("key={key}"));
        outcome("SELECT llm_sql.embed('x', 'missing')");
        assert_eq!(stats(&key)["requests"].as_u64(), Some(1));
    }

    #[pg_test]
    fn only_superusers_choose_the_server() {
        Spi::run("CREATE ROLE llm_plain_user").unwrap();
        Spi::run("SET ROLE llm_plain_user").unwrap();
        for setting in ["llm_url = 'http://evil.example'", "llm_api = 'openai'"] {
            let result = outcome(&format!("SET llm_sql.{setting}"));
            assert!(result.starts_with("42501"), "{setting}: {result}");
        }
        assert_eq!(outcome("SET llm_sql.embedding_model = 'other'"), "ok");
        assert_eq!(outcome("SET llm_sql.request_timeout = '5s'"), "ok");
        Spi::run("RESET ROLE").unwrap();
    }

    /// Where the plan uses `embed` with this call's key: "Index Scan" or "Seq Scan".
    fn top_scan(sql: &str) -> String {
        let plan = Spi::get_one::<pgrx::Json>(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))
            .unwrap()
            .unwrap()
            .0
            .to_string();
        ["Index Scan", "Seq Scan"]
            .into_iter()
            .find(|node| plan.contains(&format!("\"Node Type\":\"{node}\"")))
            .unwrap_or("neither")
            .to_string()
    }

    #[pg_test]
    fn inline_embed_uses_the_index_and_asks_the_server_once() {
        let key = unique("inline");
        use_server(&format!("key={key},dim=8"));
        Spi::run(
            "CREATE TABLE inline_docs (id int, embedding vector(8));
             INSERT INTO inline_docs
                  SELECT i, ARRAY(SELECT random() + i * 0 FROM generate_series(1, 8))::real[]::vector
                    FROM generate_series(1, 3000) i;
             CREATE INDEX ON inline_docs USING hnsw (embedding vector_cosine_ops);
             ANALYZE inline_docs",
        )
        .unwrap();
        let idiom = "SELECT id FROM inline_docs ORDER BY embedding <=> llm_sql.embed('q') LIMIT 5";
        assert_eq!(top_scan(idiom), "Index Scan");
        assert_eq!(stats(&key)["requests"].as_u64(), Some(1));
        // Without the index Postgres evaluates the call once per row; the server is still asked
        // once for the new text, and the rows are the exact nearest ones.
        Spi::run("SET LOCAL enable_indexscan = off").unwrap();
        assert_eq!(top_scan(&idiom.replace("'q'", "'q2'")), "Seq Scan");
        assert_eq!(stats(&key)["requests"].as_u64(), Some(2));
        let exact =
            "SELECT array_agg(id ORDER BY d, id)::text FROM (SELECT id, embedding <=> e AS d
                       FROM inline_docs, (SELECT llm_sql.embed('q') e) q ORDER BY d, id LIMIT 5) n";
        let inline = "SELECT array_agg(id ORDER BY d, id)::text FROM (SELECT id,
                        embedding <=> llm_sql.embed('q') AS d FROM inline_docs ORDER BY d, id LIMIT 5) n";
        assert_eq!(one(exact), one(inline));
        // Another text in the same statement is its own embedding.
        assert_eq!(
            one("SELECT (llm_sql.embed('q') = llm_sql.embed('other'))::text").as_deref(),
            Some("false")
        );
    }

    #[pg_test]
    fn an_array_bound_to_embed_text_is_refused() {
        use_server(&format!("key={},dim=4", unique("bound")));
        // What a driver sends for a list bound to embed($1): its array literal, as text.
        // (Six runs: custom plans first, then the generic plan with a Param.)
        Spi::run("PREPARE bound(text) AS SELECT vector_dims(llm_sql.embed($1))").unwrap();
        for literal in ["{a,b}", "{\"first text\",\"second\"}"].repeat(3) {
            let error = outcome(&format!("EXECUTE bound('{literal}')"));
            assert!(
                error.starts_with("22023") && error.contains("embed($1::text[])"),
                "{literal}: {error}"
            );
        }
        // Text that only looks like braces is embedded, so is a literal written in the query.
        for text in ["{\"json\": 1}", "{not closed", "plain"] {
            assert_eq!(outcome(&format!("EXECUTE bound('{text}')")), "ok", "{text}");
        }
        assert_eq!(
            one("SELECT vector_dims(llm_sql.embed('{a,b}'))::text").as_deref(),
            Some("4")
        );
        // Cast to text[], the same parameter embeds each element.
        Spi::run("PREPARE bound_array(text) AS SELECT array_length(llm_sql.embed($1::text[]), 1)")
            .unwrap();
        assert_eq!(
            Spi::get_one::<i32>("EXECUTE bound_array('{a,b}')").unwrap(),
            Some(2)
        );
    }
}
