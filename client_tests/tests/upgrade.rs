//! `ALTER EXTENSION llm_sql UPDATE` from each earlier release (0.1.0, 0.2.0, 0.3.0 and 0.4.0, whose install
//! scripts client_tests/run installs from client_tests/fixtures) gives the same objects as a fresh
//! install, and keeps the data that was there.

use llm_sql_client_tests::*;

/// Every object of the extension in `database`, with what defines it, one sorted line each.
fn described(database: &str) -> Vec<String> {
    let mut client = superuser_config()
        .dbname(database)
        .connect(postgres::NoTls)
        .unwrap();
    client
        .query(
            r#"
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'llm_sql' AND d.deptype = 'e'
       -- (the #[pg_test] functions of a test build, which scripts/test installs, are not ours)
       AND pg_describe_object(d.classid, d.objid, 0) !~ '^(function tests[.]|schema tests$)')
SELECT line FROM (
    SELECT pg_describe_object(m.classid, m.objid, 0) || ' | '
           || coalesce(obj_description(m.objid, m.classid::regclass::name), '') AS line
      FROM members m
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' | ' || pg_get_functiondef(p.oid) || ' | '
           || coalesce(p.proacl::text, '')
      FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' | ' || c.relkind::text || ' | ' || coalesce(c.relacl::text, '')
           || ' | ' || c.relrowsecurity || ' | '
           || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                          || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''),
                                          ', ' ORDER BY a.attnum)
                          FROM pg_attribute a
                          LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
           || ' | ' || coalesce(pg_get_viewdef(c.oid), '')
      FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'llm_sql'::regnamespace
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
     WHERE c.relnamespace = 'llm_sql'::regnamespace
    UNION ALL
    SELECT 'policy ' || polname || ' ' || polrelid::regclass || ' ' || pg_get_expr(polqual, polrelid)
      FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
     WHERE c.relnamespace = 'llm_sql'::regnamespace
    UNION ALL
    SELECT 'dumped ' || (SELECT string_agg(t::regclass::text, ', ' ORDER BY t::regclass::text) FROM unnest(extconfig) t)
      FROM pg_extension WHERE extname = 'llm_sql'
    UNION ALL
    SELECT 'extension schema ' || extnamespace::regnamespace || ' ' || extversion
      FROM pg_extension WHERE extname = 'llm_sql'
    UNION ALL
    SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtfoid::regprocedure
      FROM pg_event_trigger
    UNION ALL
    SELECT 'server ' || srvname || ' ' || coalesce(srvacl::text, '') FROM pg_foreign_server
) AS everything ORDER BY line
"#,
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn fresh_database(su: &mut Client, name: &str) -> Client {
    // (One statement per call: DROP and CREATE DATABASE refuse to share a transaction.)
    su.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    su.batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    superuser_config()
        .dbname(name)
        .connect(postgres::NoTls)
        .unwrap()
}

#[test]
fn updating_from_each_earlier_release_gives_a_fresh_install_and_keeps_the_data() {
    let mut su = superuser();
    let mut new = fresh_database(&mut su, "llm_sql_fresh");
    new.batch_execute("CREATE EXTENSION llm_sql CASCADE")
        .unwrap();
    let current: String = new
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'llm_sql'",
            &[],
        )
        .unwrap()
        .get(0);
    drop(new);
    for old_version in ["0.1.0", "0.2.0", "0.3.0", "0.4.0"] {
        update_from(&mut su, old_version, &current);
    }
    su.batch_execute("DROP DATABASE llm_sql_fresh").unwrap();
}

fn update_from(su: &mut Client, old_version: &str, current: &str) {
    let mut old = fresh_database(su, "llm_sql_updated");
    old.batch_execute(&format!(
        "CREATE EXTENSION vector; CREATE EXTENSION llm_sql VERSION '{old_version}';
         SELECT pg_catalog.set_config('llm_sql.embedding_model', 'nomic-embed-text', false);"
    ))
    .unwrap();
    // What an earlier release left behind: a remembered attachment with a grant, an embedding
    // job, an auto-embedded column with its trigger and a queued row. (Written directly: the
    // old functions point at code this library only keeps to say that they are outdated.)
    // (0.3.0 moved the trigger function to llm_sql_internal.)
    let trigger = match old_version {
        "0.1.0" | "0.2.0" => "llm_sql._enqueue_embedding",
        _ => "llm_sql_internal.enqueue_embedding",
    };
    old.batch_execute(&format!(
        "DROP ROLE IF EXISTS upgrade_friend; CREATE ROLE upgrade_friend;
         CREATE TABLE notes (id int PRIMARY KEY, body text, embedding vector(8));
         INSERT INTO llm_sql.attachment_registry (alias, type, dsn, read_only, owner)
             VALUES ('kept', 'sqlite', '/tmp/nowhere.sqlite', true, 10);
         INSERT INTO llm_sql.attachment_grants VALUES ('kept', 'upgrade_friend'::regrole);
         INSERT INTO llm_sql.embedding_jobs (tbl, source_column, target_column, model, rows_total, rows_done)
             VALUES ('notes', 'body', 'embedding', 'nomic-embed-text', 3, 3);
         INSERT INTO llm_sql.auto_embeddings (tbl, source_column, target_column, model, run_as, key_columns)
             VALUES ('notes', 'body', 'embedding', 'nomic-embed-text', 10, '{{id}}');
         CREATE TRIGGER llm_sql_embed_ins_3 AFTER INSERT ON notes FOR EACH ROW
             WHEN (NEW.body IS NOT NULL) EXECUTE FUNCTION {trigger}('embedding', '1');
         INSERT INTO notes (id, body) VALUES (1, 'before the update');",
    ))
    .unwrap();
    // Functions whose C code changed meaning say that the extension needs updating. (0.3.0's
    // functions all still work with this library; 0.4.0's local_copies lacks a column.)
    let retired = match old_version {
        "0.1.0" => Some("SELECT llm_sql.attach_internal('x', '/tmp/x.db', NULL, true, true)"),
        "0.2.0" => Some("SELECT * FROM llm_sql.semantic_search('notes', 'x')"),
        "0.4.0" => Some("SELECT * FROM llm_sql.local_copies()"),
        _ => None,
    };
    if let Some(retired) = retired {
        let outdated = old.batch_execute(retired).unwrap_err();
        let hint = outdated
            .as_db_error()
            .and_then(|e| e.hint())
            .unwrap_or_default();
        assert!(
            hint.contains("ALTER EXTENSION llm_sql UPDATE"),
            "{old_version}: {}",
            describe(&outdated)
        );
    }
    old.batch_execute("ALTER EXTENSION llm_sql UPDATE").unwrap();
    let version: String = old
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'llm_sql'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, current);
    drop(old);
    let (updated, fresh) = (described("llm_sql_updated"), described("llm_sql_fresh"));
    let only_updated: Vec<&String> = updated.iter().filter(|l| !fresh.contains(l)).collect();
    let only_fresh: Vec<&String> = fresh.iter().filter(|l| !updated.contains(l)).collect();
    assert!(
        only_updated.is_empty() && only_fresh.is_empty(),
        "from {old_version}: after the update only: {only_updated:#?}\nfresh install only: {only_fresh:#?}"
    );
    // The data is still there, and the old trigger still queues rows.
    let mut old = superuser_config()
        .dbname("llm_sql_updated")
        .connect(postgres::NoTls)
        .unwrap();
    old.batch_execute("INSERT INTO notes (id, body) VALUES (2, 'after the update')")
        .unwrap();
    for (sql, want) in [
        (
            "SELECT count(*) FROM llm_sql.attachment_grants WHERE alias = 'kept'",
            1,
        ),
        (
            "SELECT count(*) FROM llm_sql.embedding_progress WHERE state = 'interrupted'",
            1,
        ),
        ("SELECT count(*) FROM llm_sql.embedding_queue", 2),
        (
            "SELECT count(*) FROM llm_sql.attachments() WHERE alias = 'kept'",
            1,
        ),
        (
            "SELECT count(*) FROM llm_sql.embedding_status WHERE rows_pending = 2",
            1,
        ),
    ] {
        assert_eq!(count(&mut old, sql), want, "from {old_version}: {sql}");
    }
    // And DROP EXTENSION leaves nothing behind, as after a fresh install.
    old.batch_execute("DROP TABLE notes; DROP EXTENSION llm_sql")
        .unwrap();
    assert_eq!(
        count(
            &mut old,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'llm_sql%'"
        ),
        0,
        "from {old_version}"
    );
    drop(old);
    su.batch_execute("DROP DATABASE llm_sql_updated").unwrap();
}
