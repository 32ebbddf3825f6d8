//! What users meet first, across sessions and databases: procedures as the first call of a
//! session, background work that says when nothing serves it, drains that never embed a row
//! twice, a clean catalog surface that DROP EXTENSION removes whole, the recorded model kept by
//! pg_dump, and a list bound by a driver.

use std::sync::{Arc, Mutex};
use std::thread;

use llm_sql_client_tests::*;

/// A scratch database with llm_sql, and a superuser session in it whose notices are kept.
fn scratch_database(name: &str) -> (Client, Arc<Mutex<Vec<String>>>) {
    let mut su = superuser();
    su.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    su.batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let mut client = superuser_config()
        .dbname(name)
        .notice_callback(move |n| {
            let hint = n.hint().map(|h| format!(" HINT: {h}")).unwrap_or_default();
            sink.lock()
                .unwrap()
                .push(format!("{}: {}{hint}", n.severity(), n.message()))
        })
        .connect(postgres::NoTls)
        .unwrap();
    client
        .batch_execute(&format!(
            "CREATE EXTENSION llm_sql CASCADE;
             SET llm_sql.llm_url = '{}'; SET llm_sql.embedding_model = 'nomic-embed-text';",
            llm_url("key=first-contact,dim=8")
        ))
        .unwrap();
    (client, notices)
}

fn connect_to(database: &str) -> Client {
    superuser_config()
        .dbname(database)
        .connect(postgres::NoTls)
        .unwrap()
}

#[test]
fn procedures_work_as_the_first_call_of_a_session() {
    let mut setup = superuser();
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS first_calls;
             CREATE TABLE first_calls (id int PRIMARY KEY, body text, embedding vector(8));
             INSERT INTO first_calls VALUES (1, 'hello'), (2, 'world');",
        )
        .unwrap();
    // Fresh sessions, llm_sql not loaded yet, the cluster's settings.
    superuser()
        .batch_execute("CALL llm_sql.process_embedding_queue()")
        .unwrap();
    superuser()
        .batch_execute("CALL llm_sql.embed_column('first_calls', 'body', 'embedding')")
        .unwrap();
    assert_eq!(
        count(
            &mut setup,
            "SELECT count(*) FROM first_calls WHERE embedding IS NOT NULL"
        ),
        2
    );
}

#[test]
fn without_a_worker_auto_embed_warns_and_two_drains_never_take_an_entry_twice() {
    // The test cluster's worker serves llm_sql_test only.
    let (mut client, notices) = scratch_database("llm_sql_no_worker");
    client
        .batch_execute(
            "CREATE TABLE queued (id int PRIMARY KEY, body text, embedding vector(8));
             INSERT INTO queued SELECT g, 'text ' || g FROM generate_series(1, 6) g;
             SELECT llm_sql.auto_embed('queued', 'body', 'embedding');",
        )
        .unwrap();
    let warning = notices
        .lock()
        .unwrap()
        .iter()
        .find(|n| n.starts_with("WARNING"))
        .cloned()
        .unwrap_or_default();
    assert!(
        warning.contains("no llm_sql embedding worker serves database \"llm_sql_no_worker\"")
            && warning.contains("shared_preload_libraries")
            && warning.contains("process_embedding_queue"),
        "{:?}",
        notices.lock().unwrap()
    );
    let (pending, running): (i64, bool) = {
        let row = client
            .query_one(
                "SELECT rows_pending, worker_running FROM llm_sql.embedding_status",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((pending, running), (6, false));
    // Two drains at once against a slow server, one entry per batch: each row is embedded by
    // exactly one of them.
    let key = "two-drains";
    let drains: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut c = connect_to("llm_sql_no_worker");
                c.batch_execute(&format!(
                    "SET llm_sql.llm_url = '{}'; SET llm_sql.embedding_batch_size = 1;
                     CALL llm_sql.process_embedding_queue();",
                    llm_url(&format!("key={key},dim=8,delay=150"))
                ))
                .unwrap();
            })
        })
        .collect();
    for drain in drains {
        drain.join().unwrap();
    }
    assert_eq!(llm_requests(key), 6);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM queued WHERE embedding IS NOT NULL"
        ),
        6
    );
    drop(client);
    superuser()
        .batch_execute("DROP DATABASE llm_sql_no_worker WITH (FORCE)")
        .unwrap();
}

#[test]
fn every_object_has_a_comment_internals_are_hidden_and_drop_extension_leaves_nothing() {
    let (mut client, _) = scratch_database("llm_sql_surface");
    let uncommented = texts(
        &mut client,
        "SELECT p.oid::regprocedure::text FROM pg_proc p
          WHERE p.pronamespace IN ('llm_sql'::regnamespace, 'llm_sql_internal'::regnamespace)
            AND obj_description(p.oid, 'pg_proc') IS NULL
         UNION ALL
         SELECT c.oid::regclass::text FROM pg_class c
          WHERE c.relnamespace = 'llm_sql'::regnamespace AND c.relkind IN ('r', 'v')
            AND obj_description(c.oid, 'pg_class') IS NULL",
    );
    assert!(uncommented.is_empty(), "without a comment: {uncommented:?}");
    // \df llm_sql.* lists only what users call; the rest is in a schema PUBLIC cannot use.
    let internal = texts(
        &mut client,
        "SELECT p.oid::regprocedure::text FROM pg_proc p
          WHERE p.pronamespace = 'llm_sql'::regnamespace
            AND p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype,
                                 'fdw_handler'::regtype)",
    );
    assert!(internal.is_empty(), "{internal:?}");
    let usable: bool = client
        .query_one(
            "SELECT has_schema_privilege('public', 'llm_sql_internal', 'USAGE')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!usable);
    client
        .batch_execute("DROP EXTENSION llm_sql CASCADE")
        .unwrap();
    let left = texts(
        &mut client,
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'llm_sql%'
         UNION ALL SELECT evtname::text FROM pg_event_trigger
         UNION ALL SELECT fdwname::text FROM pg_foreign_data_wrapper WHERE fdwname LIKE 'llm_sql%'",
    );
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(client);
    superuser()
        .batch_execute("DROP DATABASE llm_sql_surface WITH (FORCE)")
        .unwrap();
}

/// pg_dump/pg_restore with the test cluster's own tools.
fn pg_tool(tool: &str) -> std::process::Command {
    let psql = std::env::var("LLM_SQL_TEST_PSQL").expect("run through client_tests/run");
    let dir = std::path::Path::new(&psql).parent().unwrap().to_path_buf();
    let mut command = std::process::Command::new(dir.join(tool));
    command.args([
        "-h",
        "/tmp",
        "-p",
        &env_port("LLM_SQL_TEST_PORT").to_string(),
        "-U",
        "postgres",
    ]);
    command
}

#[test]
fn the_recorded_model_survives_pg_dump_and_restore() {
    let (mut client, _) = scratch_database("llm_sql_dumped");
    client
        .batch_execute(
            "CREATE TABLE kept (id int PRIMARY KEY, body text, embedding vector(8));
             INSERT INTO kept VALUES (1, 'a cat on a mat'), (2, 'stock prices');",
        )
        .unwrap();
    client
        .batch_execute("CALL llm_sql.embed_column('kept', 'body', 'embedding')")
        .unwrap();
    drop(client);
    let dump = std::env::temp_dir().join("llm_sql_dumped.dump");
    let status = pg_tool("pg_dump")
        .args(["-Fc", "-d", "llm_sql_dumped", "-f"])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success());
    let mut su = superuser();
    su.batch_execute("DROP DATABASE IF EXISTS llm_sql_restored WITH (FORCE)")
        .unwrap();
    su.batch_execute("CREATE DATABASE llm_sql_restored")
        .unwrap();
    let status = pg_tool("pg_restore")
        .args(["-d", "llm_sql_restored", "--exit-on-error"])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success());
    let mut restored = connect_to("llm_sql_restored");
    let model: String = restored
        .query_one(
            "SELECT model FROM llm_sql.embedding_status WHERE table_name = 'kept'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(model, "nomic-embed-text");
    // The restored column searches with its own model, whatever the session's setting.
    restored
        .batch_execute(&format!(
            "SET llm_sql.llm_url = '{}'",
            llm_url("key=restored,dim=8")
        ))
        .unwrap();
    let top: String = restored
        .query_one(
            "SELECT data->>'body' FROM llm_sql.semantic_search('kept', 'a cat', 1)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(top, "a cat on a mat");
    drop(restored);
    for name in ["llm_sql_dumped", "llm_sql_restored"] {
        su.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    }
    let _ = std::fs::remove_file(dump);
}

#[test]
fn a_list_bound_to_embed_by_a_driver_is_refused_not_embedded_as_text() {
    // psql's \bind sends the parameter untyped, as node-postgres and psycopg do for a list.
    let output = psql(&["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(
                b"SELECT vector_dims(llm_sql.embed($1)) \\bind '{\"first\",\"second\"}' \\g\n",
            )?;
            child.wait_with_output()
        })
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("array literal") && stderr.contains("embed($1::text[])"),
        "{stderr}"
    );
}

#[test]
fn errors_carry_no_internal_context_and_no_empty_lines() {
    let mut client = superuser();
    client
        .batch_execute(
            "DROP TABLE IF EXISTS no_context;
             CREATE TABLE no_context (id int PRIMARY KEY, body text, embedding vector(8));",
        )
        .unwrap();
    for call in [
        "CALL llm_sql.embed_column('no_context', 'nope', 'embedding')",
        "SELECT llm_sql.auto_embed('no_context', 'body', 'nope')",
        "SELECT * FROM llm_sql.semantic_search('no_context', 'x', 0)",
        "SELECT * FROM llm_sql.query_json('SELECT $1')",
    ] {
        let error = client.batch_execute(call).unwrap_err();
        let db = error.as_db_error().expect("a database error");
        for part in [db.detail(), db.hint()].into_iter().flatten() {
            assert!(!part.trim().is_empty(), "{call}: an empty line");
        }
        let context = db.where_().unwrap_or_default();
        assert!(
            !context.contains("SQL statement") && !context.contains("PL/pgSQL"),
            "{call}: {context}"
        );
    }
}
