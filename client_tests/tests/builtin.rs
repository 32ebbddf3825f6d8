//! The built-in embedding model across sessions: cancel and statement_timeout stop a long batch
//! within a second and leave its threads idle; embed_column, semantic_search and the background
//! worker work with it while no model server answers.

use std::thread;
use std::time::Duration;

use llm_sql_client_tests::*;

/// Nothing listens there: a call that needed the LLM server would fail.
const NO_SERVER: &str =
    "SET llm_sql.llm_url = 'http://127.0.0.1:1'; SET llm_sql.embedding_model = 'builtin'";

/// 20 000 texts of ~300 tokens: minutes of work for the built-in model.
const LONG_BATCH: &str = "SELECT count(*) FROM unnest(llm_sql.embed(ARRAY(
    SELECT repeat('lorem ipsum dolor sit amet ', 60) || g FROM generate_series(1, 20000) g)))";

/// CPU time (clock ticks) the backend's inference threads have used.
fn inference_cpu(pid: i32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.contains("(llm_sql embed"))
        .map(|stat| {
            // The fields after the name: state is the 3rd field, utime the 14th, stime the 15th.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        })
        .sum()
}

/// The inference threads use (next to) no CPU over half a second: a batch still running would
/// use ~50 ticks per thread; a tick or two is accounting noise.
fn assert_idle(pid: i32) {
    let before = inference_cpu(pid);
    thread::sleep(Duration::from_millis(500));
    let used = inference_cpu(pid) - before;
    assert!(
        used <= 3,
        "the inference threads are still working: {used} ticks in 500 ms"
    );
}

#[test]
fn builtin_cancel_and_statement_timeout_stop_a_long_batch_within_a_second() {
    let mut worker = superuser();
    worker.batch_execute(NO_SERVER).unwrap();
    // Loaded first, so that the cancel meets the batch.
    assert_eq!(
        count(
            &mut worker,
            "SELECT vector_dims(llm_sql.embed('warm up'))::int8"
        ),
        384
    );
    let pid = backend_pid(&mut worker);

    let (error, took, mut worker) =
        cancel_running(worker, LONG_BATCH, "lorem ipsum", Duration::ZERO);
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    assert!(
        inference_cpu(pid) > 0,
        "the batch never ran on the inference threads"
    );
    assert_idle(pid);

    times_out(&mut worker, LONG_BATCH, 700);
    assert_idle(pid);
    // The backend, its model and its threads still work.
    worker.batch_execute("RESET statement_timeout").unwrap();
    let dims = count(
        &mut worker,
        "SELECT vector_dims(llm_sql.embed('after the cancel'))::int8",
    );
    assert_eq!(dims, 384);
}

#[test]
fn embed_column_search_and_the_worker_use_the_builtin_model_without_a_server() {
    let mut su = superuser();
    su.batch_execute(NO_SERVER).unwrap();
    su.batch_execute(
        "DROP TABLE IF EXISTS faq;
         CREATE TABLE faq (id int PRIMARY KEY, body text, embedding vector(384));
         INSERT INTO faq SELECT g, CASE WHEN g % 50 = 0 THEN ''
             ELSE 'question ' || g || ' about ' || (ARRAY['billing', 'shipping', 'passwords', 'returns'])[g % 4 + 1] END
           FROM generate_series(1, 400) g;",
    )
    .unwrap();
    su.batch_execute("CALL llm_sql.embed_column('faq', 'body', 'embedding', 64)")
        .unwrap();
    // Every row with text has the built-in embedding of its text; the others have none.
    let wrong = count(
        &mut su,
        "SELECT count(*) FROM faq
          WHERE (body <> '') IS DISTINCT FROM (embedding IS NOT NULL)
             OR embedding <=> llm_sql.embed(body, 'builtin') > 1e-6",
    );
    assert_eq!(wrong, 0);
    let row = su
        .query_one(
            "SELECT state, rows_done, model FROM llm_sql.embedding_progress
              WHERE table_name = 'faq'::regclass",
            &[],
        )
        .unwrap();
    let (state, done, model): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (state.as_str(), done, model.as_str()),
        ("done", 392, "builtin")
    );
    let top = count(
        &mut su,
        "SELECT (data->>'id')::int8 FROM llm_sql.semantic_search('faq', 'question 7 about returns', 1)",
    );
    assert_eq!(top, 7);

    // The worker (whose llm_url is the test server, 8 dimensions) embeds with the model
    // auto_embed recorded.
    su.batch_execute(
        "DROP TABLE IF EXISTS faq_live;
         CREATE TABLE faq_live (id int PRIMARY KEY, body text, embedding vector(384));
         SELECT llm_sql.auto_embed('faq_live', 'body', 'embedding');
         INSERT INTO faq_live (id, body) SELECT g, 'live question ' || g FROM generate_series(1, 30) g;",
    )
    .unwrap();
    wait_for_embeddings(&mut su, "faq_live", 30);
    let right = count(
        &mut su,
        "SELECT count(*) FROM faq_live WHERE embedding <=> llm_sql.embed(body, 'builtin') < 1e-6",
    );
    assert_eq!(right, 30);
}
