//! The built-in embedding model inside one backend: equal to the reference implementation
//! (sentence-transformers) on the fixture, right on a retrieval task, the default model, used
//! by the searches and auto_embed with no server, its threads, and its errors. Cancel, and
//! embed_column (which commits), are tested client-side in client_tests/tests/builtin.rs.

#[pgrx::pg_schema]
mod tests {
    use std::time::{Duration, Instant};

    use crate::embeddings::builtin;
    use crate::tests::outcome;
    use pgrx::prelude::*;
    use serde_json::Value;

    /// Reference embeddings made by benches/builtin/make_fixture.py.
    const FIXTURE: &str = include_str!("fixtures/builtin_embeddings.json");

    fn fixture() -> Vec<(String, Vec<f32>)> {
        let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
        fixture["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let vector = s["embedding"].as_array().unwrap();
                let vector = vector.iter().map(|x| x.as_f64().unwrap() as f32).collect();
                (s["text"].as_str().unwrap().to_string(), vector)
            })
            .collect()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    }

    /// Nothing listens there: a call that needed the LLM server would fail.
    fn no_server() {
        Spi::run("SET llm_sql.llm_url = 'http://127.0.0.1:1'").unwrap();
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap_or(-1)
    }

    #[pg_test]
    fn builtin_matches_the_reference_embeddings() {
        let fixture = fixture();
        assert!(fixture.len() >= 50);
        let texts: Vec<&str> = fixture.iter().map(|(t, _)| t.as_str()).collect();
        let embedded = builtin::embed(&texts).unwrap();
        assert_eq!(embedded.len(), fixture.len());
        for ((text, reference), got) in fixture.iter().zip(&embedded) {
            assert_eq!(got.len(), builtin::bert::DIMENSIONS);
            let similarity = cosine(reference, got);
            assert!(similarity >= 0.9999, "{similarity} for {text:?}");
        }
        // One at a time (no packing with other texts) gives the same embeddings.
        for (text, reference) in fixture.iter().step_by(7) {
            let alone = builtin::embed(&[text.as_str()]).unwrap();
            assert!(cosine(reference, &alone[0]) >= 0.9999, "{text:?}");
        }
    }

    #[pg_test]
    fn sql_embed_uses_the_builtin_model_by_default_without_a_server() {
        no_server();
        Spi::run("RESET llm_sql.embedding_model").unwrap();
        let fixture = fixture();
        let (text, reference) = &fixture[7];
        let vector = Spi::get_one_with_args::<Vec<f32>>(
            "SELECT llm_sql.embed($1)::real[]",
            &[text.as_str().into()],
        )
        .unwrap()
        .unwrap();
        assert!(cosine(reference, &vector) >= 0.9999);
        // The array form, with NULL and empty elements kept in place.
        let texts: Vec<Option<String>> = vec![
            Some(fixture[5].0.clone()),
            None,
            Some("   ".into()),
            Some(fixture[40].0.clone()),
        ];
        let dims = Spi::get_one_with_args::<String>(
            "SELECT string_agg(coalesce(vector_dims(v)::text, 'null'), ',' ORDER BY n)
               FROM unnest(llm_sql.embed($1::text[], 'BuiltIn')) WITH ORDINALITY AS e(v, n)",
            &[texts.into()],
        )
        .unwrap();
        assert_eq!(dims.as_deref(), Some("384,null,null,384"));
        let same = Spi::get_one_with_args::<bool>(
            "SELECT (llm_sql.embed(ARRAY[$1]))[1] <=> llm_sql.embed($1, 'builtin') < 1e-6",
            &[fixture[40].0.as_str().into()],
        )
        .unwrap();
        assert_eq!(same, Some(true));
        // Text with nothing to embed has no embedding (the model is not asked).
        assert_eq!(
            count("SELECT count(*) FROM (VALUES (llm_sql.embed('')), (llm_sql.embed(' '))) v(e) WHERE e IS NULL"),
            2
        );
        // A column of another dimension: the error names the model and both sizes.
        Spi::run("CREATE TABLE wide (body text, embedding vector(768))").unwrap();
        Spi::run("INSERT INTO wide VALUES ('x')").unwrap();
        let wrong = outcome("SELECT * FROM llm_sql.semantic_search('wide', 'x')");
        assert!(
            wrong.starts_with("22000") && wrong.contains("\"builtin\" returns 384"),
            "{wrong}"
        );
    }

    #[pg_test]
    fn builtin_long_text_is_truncated_to_the_window() {
        // 300 tokens of one text: only the first 256 (with [CLS] and [SEP]) count.
        let words: Vec<String> = (0..600).map(|i| format!("w{}", i % 50)).collect();
        let long = words.join(" ");
        let head = words[..400].join(" ");
        let other = words[25..].join(" ");
        let embedded = builtin::embed(&[&long, &head, &other]).unwrap();
        assert!(cosine(&embedded[0], &embedded[1]) > 0.999_999);
        assert!(cosine(&embedded[0], &embedded[2]) < 0.999);
        // Ten megabytes of text: tokenized from its head, with the same result.
        let huge = "the quick brown fox ".repeat(500_000);
        let vector = Spi::get_one_with_args::<Vec<f32>>(
            "SELECT llm_sql.embed($1, 'builtin')::real[]",
            &[huge.as_str().into()],
        )
        .unwrap()
        .unwrap();
        let short = builtin::embed(&[&huge[..4000]]).unwrap();
        assert!(cosine(&vector, &short[0]) > 0.999_999);
    }

    /// A help-desk corpus and one question per document, phrased without its words.
    const CORPUS: [(&str, &str); 10] = [
        ("To change your password, open Settings, choose Security and follow the reset link we e-mail you.",
         "I forgot my login credentials"),
        ("Parcels within the EU are delivered in three to five working days; tracking numbers arrive by e-mail.",
         "how long until my package shows up?"),
        ("Refunds go back to the original payment method within seven days of receiving the returned item.",
         "can I get my money back"),
        ("The photo upload fails on Android when the picture is larger than 20 MB; update the app to fix it.",
         "the app crashes when I send a big image"),
        ("Our office is open Monday to Friday from 9:00 to 17:00 and closed on public holidays.",
         "what are your opening hours"),
        ("A premium subscription costs 12 euros a month or 120 euros a year, billed in advance.",
         "how much is the paid plan"),
        ("You can delete your account permanently from the Privacy page; your data is erased after 30 days.",
         "remove all my personal information"),
        ("Two-factor authentication adds a one-time code from an authenticator app to every sign-in.",
         "extra security code when logging in"),
        ("Gift cards never expire and can be combined with discount codes at checkout.",
         "do vouchers have an expiry date"),
        ("Dogs are welcome in our stores as long as they are kept on a leash.",
         "may I bring my puppy into the shop"),
    ];

    #[pg_test]
    fn builtin_retrieval_ranks_the_right_document_first() {
        no_server();
        Spi::run("SET llm_sql.embedding_model = 'builtin'").unwrap();
        Spi::run("CREATE TABLE kb (id int PRIMARY KEY, body text, embedding vector(384))").unwrap();
        for (i, (document, _)) in CORPUS.iter().enumerate() {
            Spi::run_with_args(
                "INSERT INTO kb (id, body) VALUES ($1, $2)",
                &[(i as i32 + 1).into(), (*document).into()],
            )
            .unwrap();
        }
        Spi::run("UPDATE kb SET embedding = llm_sql.embed(body)").unwrap();
        for (i, (_, question)) in CORPUS.iter().enumerate() {
            let top = Spi::get_one_with_args::<String>(
                "SELECT data->>'id' FROM llm_sql.semantic_search('kb', $1, 1)",
                &[(*question).into()],
            )
            .unwrap();
            assert_eq!(top, Some((i + 1).to_string()), "{question}");
        }
    }

    #[pg_test]
    fn auto_embed_with_the_builtin_model_needs_no_server() {
        no_server();
        Spi::run(
            "SET llm_sql.embedding_model = 'nomic-embed-text';
             CREATE TABLE notes (id int PRIMARY KEY, body text, embedding vector(384));
             INSERT INTO notes (id, body) VALUES (1, 'the cat sat on the mat'), (2, '');",
        )
        .unwrap();
        // The model given here is recorded: the setting (a server model) does not matter.
        let set_up = outcome("SELECT llm_sql.auto_embed('notes', 'body', 'embedding', 'builtin')");
        assert_eq!(set_up, "ok");
        Spi::run("INSERT INTO notes (id, body) VALUES (3, 'quarterly revenue grew')").unwrap();
        Spi::run("UPDATE notes SET body = 'dogs chase cats' WHERE id = 1").unwrap();
        Spi::run("CALL llm_sql.process_embedding_queue()").unwrap();
        assert_eq!(count("SELECT count(*) FROM llm_sql.embedding_queue"), 0);
        let right = count(
            "SELECT count(*) FROM notes
              WHERE id IN (1, 3) AND embedding <=> llm_sql.embed(body, 'builtin') < 1e-6",
        );
        assert_eq!(right, 2);
        assert_eq!(
            count("SELECT count(*) FROM notes WHERE id = 2 AND embedding IS NULL"),
            1
        );
    }

    /// This backend's threads whose name starts with `prefix`.
    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    }

    /// Waits (up to 5 s) for the count of inference threads to become `want`.
    fn inference_threads_become(want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let have = threads_named("llm_sql embed");
            if have == want || Instant::now() > deadline {
                return have;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[pg_test]
    fn builtin_threads_bounds_the_inference_threads() {
        Spi::run("SET llm_sql.builtin_threads = 3").unwrap();
        builtin::embed(&["one", "two", "three", "four"]).unwrap();
        assert_eq!(inference_threads_become(3), 3);
        Spi::run("SET llm_sql.builtin_threads = 1").unwrap();
        let one = builtin::embed(&["one"]).unwrap();
        assert_eq!(inference_threads_become(1), 1);
        Spi::run("SET llm_sql.builtin_threads = 2").unwrap();
        let two = builtin::embed(&["one"]).unwrap();
        assert_eq!(inference_threads_become(2), 2);
        // The thread count does not change the result.
        assert!(cosine(&one[0], &two[0]) > 0.999_999);
        let denied = outcome("SET llm_sql.builtin_threads = 0");
        assert!(denied.starts_with("22023"), "{denied}");
    }

    #[pg_test]
    fn builtin_model_files_missing_or_damaged_are_clear_errors() {
        let missing = builtin::load(std::path::Path::new("/nonexistent/model"))
            .err()
            .unwrap();
        assert_eq!(missing.code, pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_FILE);
        assert!(
            missing
                .message
                .contains("/nonexistent/model/model.safetensors"),
            "{}",
            missing.message
        );
        assert!(missing.hint.unwrap().contains("scripts/setup"));

        let damaged = std::env::temp_dir().join(format!("llm_sql_damaged_{}", std::process::id()));
        std::fs::create_dir_all(&damaged).unwrap();
        std::fs::write(damaged.join("model.safetensors"), b"not a weights file").unwrap();
        std::fs::copy(
            builtin::directory().join("tokenizer.json"),
            damaged.join("tokenizer.json"),
        )
        .unwrap();
        let error = builtin::load(&damaged).err().unwrap();
        assert!(
            error.message.contains("is not a valid weights file"),
            "{}",
            error.message
        );
        // Valid safetensors, but not this model: the tensor is named.
        let header = br#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&[0u8; 16]);
        std::fs::write(damaged.join("model.safetensors"), file).unwrap();
        let error = builtin::load(&damaged).err().unwrap();
        assert!(
            error.message.contains("embeddings.word_embeddings.weight"),
            "{}",
            error.message
        );
        std::fs::remove_dir_all(&damaged).unwrap();
    }
}
