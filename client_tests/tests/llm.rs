//! LLM calls across sessions, against the project's Ollama-compatible test server:
//! cancel and statement_timeout during a request, embed_column's committed batches, progress
//! and resume after a failure or a cancel, and the background worker writing as the role that
//! set up auto-embedding.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use llm_sql_client_tests::*;

fn use_server(client: &mut Client, options: &str) {
    client
        .batch_execute(&format!(
            "SET llm_sql.llm_url = '{}'; SET llm_sql.embedding_model = 'nomic-embed-text'",
            llm_url(options)
        ))
        .unwrap();
}

/// A superuser session whose NOTICE messages are collected.
fn session_with_notices() -> (Client, Arc<Mutex<Vec<String>>>) {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let client = superuser_config()
        .notice_callback(move |notice| sink.lock().unwrap().push(notice.message().to_string()))
        .connect(postgres::NoTls)
        .unwrap();
    (client, notices)
}

#[test]
fn cancel_and_statement_timeout_abort_a_request_within_a_second() {
    let mut worker = superuser();
    use_server(&mut worker, "key=cancel,delay=20000");
    let mut worker = cancel_while_running(worker, "SELECT llm_sql.embed('slow')", Duration::ZERO);
    // The backend is usable, and its next request works.
    use_server(&mut worker, "key=after-cancel,dim=4");
    assert_eq!(
        count(&mut worker, "SELECT vector_dims(llm_sql.embed('x'))::int8"),
        4
    );

    use_server(&mut worker, "key=timeout,delay=20000");
    times_out(&mut worker, "SELECT llm_sql.generate('slow')", 700);
}

/// Runs `sql` in `worker`, cancels it from another session once it runs (and `settle` later),
/// and checks that it ended with 57014 within a second.
fn cancel_while_running(worker: Client, sql: &'static str, settle: Duration) -> Client {
    let (error, took, worker) = cancel_running(worker, sql, sql, settle);
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    worker
}

fn make_table(client: &mut Client, name: &str, rows: i64) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name};
             CREATE TABLE {name} (id int PRIMARY KEY, body text, embedding vector(8));
             INSERT INTO {name} SELECT g, CASE WHEN g % 100 = 0 THEN '  ' ELSE 'text number ' || g END
               FROM generate_series(1, {rows}) g;"
        ))
        .unwrap();
}

/// Rows whose embedding is missing or not the embedding of their text.
fn wrong_rows(client: &mut Client, name: &str) -> i64 {
    count(
        client,
        &format!(
            "SELECT count(*) FROM {name}
              WHERE (body ~ '[^[:space:]]') IS DISTINCT FROM (embedding IS NOT NULL)
                 OR embedding <> llm_sql.embed(body)"
        ),
    )
}

#[test]
fn embed_column_survives_a_failing_server_and_resumes() {
    let (mut client, notices) = session_with_notices();
    make_table(&mut client, "backfill_fail", 3000);
    client.batch_execute("SET llm_sql.max_retries = 0").unwrap();
    // The server fails after 20 requests: 20 batches are committed, then the call errors.
    use_server(&mut client, "key=backfill-fail,dim=8,fault=500,after=20");
    let error = client
        .batch_execute("CALL llm_sql.embed_column('backfill_fail', 'body', 'embedding', 16)")
        .unwrap_err();
    assert!(
        describe(&error).contains("HTTP 500"),
        "{}",
        describe(&error)
    );
    let hint = error
        .as_db_error()
        .and_then(|e| e.hint())
        .unwrap_or_default();
    assert!(
        hint.contains("320 rows embedded by this call are committed")
            && hint.contains("CALL llm_sql.embed_column again"),
        "{hint}"
    );
    let embedded = count(
        &mut client,
        "SELECT count(*) FROM backfill_fail WHERE embedding IS NOT NULL",
    );
    assert_eq!(embedded, 20 * 16);
    assert!(
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.starts_with("embed_column: 160 of 2970 rows")),
        "{:?}",
        notices.lock().unwrap()
    );
    let row = client
        .query_one(
            "SELECT state, rows_done, last_error FROM llm_sql.embedding_progress
              WHERE table_name = 'backfill_fail'::regclass",
            &[],
        )
        .unwrap();
    let (state, done, last_error): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((state.as_str(), done), ("failed", 320));
    assert!(last_error.contains("HTTP 500"), "{last_error}");
    // Run again against a healthy server: every row ends with exactly its own embedding.
    use_server(&mut client, "key=backfill-ok,dim=8");
    client
        .batch_execute("CALL llm_sql.embed_column('backfill_fail', 'body', 'embedding', 16)")
        .unwrap();
    // The resumed call continues the counts: 320 before, the 2650 remaining rows now, nothing
    // twice.
    let row = client
        .query_one(
            "SELECT rows_done, rows_total, percent_done::text FROM llm_sql.embedding_progress
              WHERE table_name = 'backfill_fail'::regclass",
            &[],
        )
        .unwrap();
    let (done, total, percent): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((done, total, percent.as_str()), (2970, 2970, "100.0"));
    let sent = llm_requests("backfill-ok");
    // Full batches in tid order: each remaining row is read and sent once.
    assert_eq!(sent, 2650_u64.div_ceil(16), "{sent} requests");
    assert_eq!(wrong_rows(&mut client, "backfill_fail"), 0);
    let state: String = client
        .query_one(
            "SELECT state FROM llm_sql.embedding_progress WHERE table_name = 'backfill_fail'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(state, "done");
}

#[test]
fn embed_column_canceled_midway_keeps_its_batches_and_shows_progress() {
    let mut client = superuser();
    make_table(&mut client, "backfill_cancel", 2000);
    use_server(&mut client, "key=backfill-slow,dim=8,delay=40");
    let pid = backend_pid(&mut client);
    let handle = thread::spawn(move || {
        let result = client
            .batch_execute("CALL llm_sql.embed_column('backfill_cancel', 'body', 'embedding', 10)");
        (result, client)
    });
    let mut observer = superuser();
    // Progress is visible from another session while it runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let row = observer
            .query_opt(
                "SELECT state, rows_done FROM llm_sql.embedding_progress WHERE table_name = 'backfill_cancel'::regclass",
                &[],
            )
            .unwrap();
        if let Some(row) = row {
            let (state, done): (String, i64) = (row.get(0), row.get(1));
            if state == "running" && done > 0 {
                seen.push(done);
            }
        }
        if seen.len() >= 2 && seen.last() > seen.first() {
            break;
        }
        assert!(Instant::now() < deadline, "no progress seen: {seen:?}");
        thread::sleep(Duration::from_millis(100));
    }
    observer
        .execute("SELECT pg_cancel_backend($1)", &[&pid])
        .unwrap();
    let (result, mut client) = handle.join().unwrap();
    let error = result.unwrap_err();
    assert_eq!(sqlstate(&error), "57014");
    let hint = error
        .as_db_error()
        .and_then(|e| e.hint())
        .unwrap_or_default();
    assert!(hint.contains("CALL llm_sql.embed_column again"), "{hint}");
    let (state, done, left): (String, i64, bool) = {
        let row = client
            .query_one(
                "SELECT state, rows_done, time_left IS NOT NULL FROM llm_sql.embedding_progress
                  WHERE table_name = 'backfill_cancel'::regclass",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert!(
        state == "interrupted" && done >= *seen.last().unwrap() && left,
        "{state} {done} {left}"
    );
    let kept = count(
        &mut client,
        "SELECT count(*) FROM backfill_cancel WHERE embedding IS NOT NULL",
    );
    assert!(
        kept >= *seen.last().unwrap() && kept < 1980,
        "kept {kept}, seen {seen:?}"
    );
    use_server(&mut client, "key=backfill-resume,dim=8");
    client
        .batch_execute("CALL llm_sql.embed_column('backfill_cancel', 'body', 'embedding', 64)")
        .unwrap();
    assert_eq!(wrong_rows(&mut client, "backfill_cancel"), 0);
    // Progress went on from where the cancel left it, to every row with text.
    let (done, total): (i64, i64) = {
        let row = client
            .query_one(
                "SELECT rows_done, rows_total FROM llm_sql.embedding_progress
                  WHERE table_name = 'backfill_cancel'::regclass",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((done, total), (1980, 1980));
}

#[test]
fn embed_column_checks_its_arguments() {
    let mut client = superuser();
    make_table(&mut client, "backfill_args", 10);
    use_server(&mut client, "key=backfill-args,dim=16");
    let error = client
        .batch_execute("CALL llm_sql.embed_column('backfill_args', 'body', 'embedding')")
        .unwrap_err();
    assert_eq!(sqlstate(&error), "22000", "{}", describe(&error));
    assert!(describe(&error).contains("returns 16-dimensional embeddings, but column public.backfill_args.embedding is vector(8)"), "{}", describe(&error));
    for (call, state) in [
        (
            "CALL llm_sql.embed_column('backfill_args', 'nope', 'embedding')",
            "42703",
        ),
        (
            "CALL llm_sql.embed_column('backfill_args', 'body', 'body')",
            "42804",
        ),
        (
            "CALL llm_sql.embed_column('backfill_args', 'body', 'embedding', 0)",
            "22023",
        ),
        (
            "CALL llm_sql.embed_column(NULL, 'body', 'embedding')",
            "22004",
        ),
        (
            "CALL llm_sql.embed_column('no_such_table', 'body', 'embedding')",
            "42P01",
        ),
    ] {
        let error = client.batch_execute(call).unwrap_err();
        assert_eq!(sqlstate(&error), state, "{call}: {}", describe(&error));
    }
    // Rows are untouched by the failed calls.
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM backfill_args WHERE embedding IS NOT NULL"
        ),
        0
    );
}

#[test]
fn worker_embeds_queued_rows_as_the_role_that_set_it_up() {
    create_login_role("embedder", "emb3dd3r", "");
    let mut su = superuser();
    su.batch_execute(
        "DROP TABLE IF EXISTS tickets;
         CREATE TABLE tickets (id int PRIMARY KEY, tenant text, body text, embedding vector(8));
         GRANT SELECT, UPDATE, TRIGGER ON tickets TO embedder;
         ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
         CREATE POLICY tenant_a ON tickets TO embedder USING (tenant = 'a');",
    )
    .unwrap();
    let mut embedder = login("embedder", "emb3dd3r");
    embedder
        .batch_execute("SET llm_sql.embedding_model = 'nomic-embed-text'; SELECT llm_sql.auto_embed('tickets', 'body', 'embedding')")
        .unwrap();
    // Rows of both tenants, written by the superuser: the INSERT does not wait for a model.
    su.batch_execute(
        "INSERT INTO tickets SELECT g, CASE WHEN g <= 50 THEN 'a' ELSE 'b' END, 'ticket about printer ' || g
           FROM generate_series(1, 100) g",
    )
    .unwrap();
    // The worker (llm_sql preloaded, worker_database = llm_sql_test) drains the queue.
    wait_for_embeddings(&mut su, "tickets", 50);
    thread::sleep(Duration::from_millis(1000));
    use_server(&mut su, "key=worker,dim=8");
    let right = count(
        &mut su,
        "SELECT count(*) FROM tickets WHERE tenant = 'a' AND embedding = llm_sql.embed(body)",
    );
    assert_eq!(right, 50);
    // Tenant b's rows are invisible to the embedder: the worker did not write them.
    let others = count(
        &mut su,
        "SELECT count(*) FROM tickets WHERE tenant = 'b' AND embedding IS NOT NULL",
    );
    assert_eq!(others, 0);
    assert_eq!(
        count(
            &mut su,
            "SELECT count(*) FROM llm_sql.embedding_queue WHERE tbl = 'tickets'::regclass"
        ),
        0
    );
    let workers = count(
        &mut su,
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'llm_sql embedding worker'",
    );
    assert_eq!(workers, 1);
    // Manual draining by the embedder works the same way.
    su.batch_execute("UPDATE tickets SET body = 'changed ' || id WHERE id IN (1, 2)")
        .unwrap();
    embedder
        .batch_execute("CALL llm_sql.process_embedding_queue()")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &mut su,
        "SELECT count(*) FROM tickets WHERE id IN (1, 2) AND embedding = llm_sql.embed(body)",
    ) < 2
    {
        assert!(
            Instant::now() < deadline,
            "the changed rows were not re-embedded"
        );
        thread::sleep(Duration::from_millis(100));
    }
    su.batch_execute("SELECT llm_sql.disable_auto_embed('tickets', 'embedding')")
        .unwrap();
}

/// Scripts the test server's chat replies for `key`.
fn script(key: &str, replies: &[String]) {
    ureq::post(llm_url(&format!("_script/{key}")))
        .send_json(serde_json::json!(replies))
        .unwrap();
}

#[test]
fn cancel_and_statement_timeout_stop_the_query_ask_runs() {
    let mut worker = superuser();
    let slow = serde_json::json!({
        "sql": "SELECT count(*) AS n FROM generate_series(1, 2000000000) g",
        "confidence": 1
    })
    .to_string();
    script("ask-slow", &[slow]);
    use_server(&mut worker, "key=ask-slow");
    worker
        .batch_execute("SET llm_sql.ask_timeout = '10min'; SET llm_sql.ask_cache_ttl = 0")
        .unwrap();
    // A cancel ends the call (it is not taken for a failed attempt to correct); the sleep
    // lets the generated query start.
    let ask = "SELECT llm_sql.ask_full('Count to two billion')";
    let mut worker = cancel_while_running(worker, ask, Duration::from_millis(500));
    // The caller's statement_timeout, shorter than ask_timeout, ends the call too.
    times_out(&mut worker, ask, 1500);
    // ask_timeout, shorter than statement_timeout, fails the attempt and goes on: status error.
    worker
        .batch_execute("SET statement_timeout = '20s'; SET llm_sql.ask_timeout = '300ms'; SET llm_sql.ask_max_attempts = 2")
        .unwrap();
    let answer: String = worker
        .query_one("SELECT llm_sql.ask_full('Count to two billion')::text", &[])
        .unwrap()
        .get(0);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["status"], "error", "{answer}");
    let attempts = answer["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("llm_sql.ask_timeout"),
        "{answer}"
    );
}
