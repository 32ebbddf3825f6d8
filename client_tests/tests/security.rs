//! What an ordinary login role cannot gain through llm_sql, attacked as such a role would:
//! objects planted on its own search_path for the SQL llm_sql runs as its owner, attachments of
//! servers that let the database server's own identity in, internal functions, the API key.

use std::time::{Duration, Instant};

use llm_sql_client_tests::*;

const PASSWORD: &str = "attacker-pw";

fn test_port() -> u16 {
    env_port("LLM_SQL_TEST_PORT")
}

/// Creates in schema `evil` (owned by `role`) an operator for every comparison of the common
/// types, `+` and `-` for bigint, and the aggregates count(*) and array_agg(bigint), each of
/// which records who ran it in evil.log before doing what pg_catalog's would.
fn plant_operators(client: &mut Client) {
    client
        .batch_execute(
            r#"
            CREATE TABLE evil.log (who name, what text);
            GRANT INSERT, SELECT ON evil.log TO PUBLIC;
            CREATE FUNCTION evil.note(what text) RETURNS void LANGUAGE plpgsql AS $n$
            BEGIN
              BEGIN INSERT INTO evil.log VALUES (current_user, what);
              EXCEPTION WHEN OTHERS THEN NULL; END;
            END $n$;
            DO $do$
            DECLARE t text; o text; f text;
            BEGIN
              FOREACH t IN ARRAY ARRAY['int2', 'int4', 'int8', 'text', 'name', 'oid', 'bool',
                                       'jsonb', 'timestamptz', 'tid'] LOOP
                FOREACH o IN ARRAY ARRAY['=', '<>', '<', '<=', '>', '>='] LOOP
                  f := 'op_' || md5(o || t);
                  EXECUTE format($f$CREATE FUNCTION evil.%I(a %s, b %s) RETURNS bool
                    LANGUAGE plpgsql AS $b$ BEGIN PERFORM evil.note(%L);
                    RETURN a OPERATOR(pg_catalog.%s) b; END $b$$f$, f, t, t, o || ' ' || t, o);
                  EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.%I)',
                                 o, t, t, f);
                END LOOP;
              END LOOP;
              FOREACH o IN ARRAY ARRAY['+', '-'] LOOP
                f := 'op_' || md5(o || 'int8');
                EXECUTE format($f$CREATE FUNCTION evil.%I(a int8, b int8) RETURNS int8
                  LANGUAGE plpgsql AS $b$ BEGIN PERFORM evil.note(%L);
                  RETURN a OPERATOR(pg_catalog.%s) b; END $b$$f$, f, o || ' int8', o);
                EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = int8, RIGHTARG = int8, FUNCTION = evil.%I)',
                               o, f);
              END LOOP;
            END $do$;
            CREATE FUNCTION evil.count_step(n int8) RETURNS int8 LANGUAGE plpgsql AS
              $f$ BEGIN PERFORM evil.note('count'); RETURN n OPERATOR(pg_catalog.+) 1; END $f$;
            CREATE AGGREGATE evil.count(*) (SFUNC = evil.count_step, STYPE = int8, INITCOND = '0');
            CREATE FUNCTION evil.agg_step(a int8[], x int8) RETURNS int8[] LANGUAGE plpgsql AS
              $f$ BEGIN PERFORM evil.note('array_agg'); RETURN a OPERATOR(pg_catalog.||) x; END $f$;
            CREATE AGGREGATE evil.array_agg(int8) (SFUNC = evil.agg_step, STYPE = int8[]);
            CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql STABLE AS
              $f$ BEGIN PERFORM evil.note('now'); RETURN pg_catalog.now(); END $f$;
            "#,
        )
        .unwrap();
}

#[test]
fn sql_run_as_llm_sqls_owner_never_resolves_names_in_the_callers_schemas() {
    let mut su = superuser();
    su.batch_execute(
        "DROP SCHEMA IF EXISTS evil CASCADE; DROP TABLE IF EXISTS public.planted;
         SELECT llm_sql.detach('planted_sqlite', if_exists => true);",
    )
    .unwrap();
    create_login_role("planter", PASSWORD, "");
    let key = format!("planter{}", std::process::id());
    ureq::post(llm_url(&format!("_script/{key}")))
        .send_json(serde_json::json!([
            serde_json::json!({"sql": "SELECT count(*) AS n FROM public.planted", "confidence": 0.9})
                .to_string()
        ]))
        .unwrap();
    su.batch_execute(&format!(
        "CREATE SCHEMA evil AUTHORIZATION planter;
         CREATE TABLE public.planted (id int8 PRIMARY KEY, body text, embedding vector(8));
         ALTER TABLE public.planted OWNER TO planter;
         ALTER ROLE planter SET llm_sql.llm_url = '{}';
         ALTER ROLE planter SET llm_sql.embedding_model = 'nomic-embed-text';",
        llm_url(&format!("key={key},dim=8"))
    ))
    .unwrap();
    // An attachment granted to the role: its DuckDB reads the registry as llm_sql's owner.
    let path = format!("/tmp/llm_sql_planted_{}.sqlite", std::process::id());
    let _ = std::fs::remove_file(&path);
    su.batch_execute(&format!(
        "SELECT llm_sql.execute($d$LOAD sqlite; ATTACH '{path}' AS mk (TYPE sqlite);
         CREATE TABLE mk.t AS SELECT 1 AS id; DETACH mk$d$);
         SELECT llm_sql.attach('planted_sqlite', '{path}');
         SELECT llm_sql.grant_attachment('planted_sqlite', 'planter');"
    ))
    .unwrap();

    let mut planter = login("planter", PASSWORD);
    plant_operators(&mut planter);
    planter
        .batch_execute("SET search_path = evil, pg_catalog, public")
        .unwrap();
    // Everything that reads or writes llm_sql's own tables as their owner.
    for sql in [
        "SELECT count(*) FROM llm_sql.attachments()",
        "SELECT * FROM llm_sql.query_json('SELECT count(*) AS n FROM planted_sqlite.t')",
        "INSERT INTO public.planted (id, body) VALUES (1, 'one'), (2, 'two')",
        "CALL llm_sql.embed_column('public.planted', 'body', 'embedding')",
        "SELECT llm_sql.auto_embed('public.planted', 'body', 'embedding')",
        "INSERT INTO public.planted (id, body) VALUES (3, 'three')",
        "UPDATE public.planted SET body = 'uno' WHERE id = 1",
        "CALL llm_sql.process_embedding_queue()",
        "SELECT count(*) FROM llm_sql.semantic_search('public.planted', 'one', 2)",
        "SELECT count(*) FROM llm_sql.embedding_progress",
        "SELECT llm_sql.ask_full('How many rows are planted?')",
        "SELECT llm_sql.clear_cache()",
        "SELECT llm_sql.generate('hello')",
        "SELECT llm_sql.llm_health()",
        "SELECT count(*) FROM llm_sql.embedding_status",
        "SELECT count(*) FROM llm_sql.query_json('SELECT $1 AS a', 1)",
        "SELECT count(*) FROM llm_sql.semantic_search('public.planted', 'one', 2, filter => '{\"id\": [1, 2]}')",
        "SELECT llm_sql.disable_auto_embed('public.planted', 'embedding')",
        // The event trigger that forgets dropped tables runs as the role that drops them.
        "CREATE TABLE evil.planted_drop (id int8 PRIMARY KEY, body text, embedding vector(8));
         SELECT llm_sql.auto_embed('evil.planted_drop', 'body', 'embedding');
         ALTER TABLE evil.planted_drop DROP COLUMN embedding; DROP TABLE evil.planted_drop",
    ] {
        if let Err(e) = planter.batch_execute(sql) {
            panic!("{sql}: {}", describe(&e));
        }
    }
    // A superuser whose search_path leads into the role's schema drops an auto-embedded table:
    // the event trigger's own SQL resolves nothing there.
    su.batch_execute(
        "CREATE TABLE public.su_dropped (id int8 PRIMARY KEY, body text, embedding vector(8));
         SELECT llm_sql.auto_embed('public.su_dropped', 'body', 'embedding');
         SET search_path = evil, pg_catalog, public; DROP TABLE public.su_dropped;
         RESET search_path;",
    )
    .unwrap();
    // The operators did run, for the role's own statements ...
    let mine = count(
        &mut planter,
        "SELECT count(*) FROM evil.log WHERE who = 'planter'",
    );
    assert!(mine > 0, "the planted operators never ran at all");
    // ... and never with the owner's rights.
    let stolen = texts(
        &mut planter,
        "SELECT who || ': ' || what FROM evil.log WHERE who <> 'planter' LIMIT 5",
    );
    assert!(stolen.is_empty(), "ran as another role: {stolen:?}");
    let rolsuper: bool = su
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'planter'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!rolsuper);
    drop(planter);
    su.batch_execute(
        "SELECT llm_sql.detach('planted_sqlite');
         DROP TABLE public.planted; DROP SCHEMA evil CASCADE;
         ALTER ROLE planter RESET ALL;",
    )
    .unwrap();
}

#[test]
fn public_may_execute_no_internal_function_and_no_object_uses_the_search_path() {
    let mut su = superuser();
    let open = texts(
        &mut su,
        "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'llm_sql'::regnamespace
                AND (p.proname LIKE '\\_%' OR p.prorettype IN ('internal'::regtype, 'fdw_handler'::regtype,
                                                              'trigger'::regtype)
                     OR p.proname = 'fdw_validator')
                AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                             WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')",
    );
    assert!(
        open.is_empty(),
        "internal functions PUBLIC may call: {open:?}"
    );
    // SQL and PL/pgSQL routines would resolve their names through the caller's search_path.
    let unpinned = texts(
        &mut su,
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
              WHERE p.pronamespace = 'llm_sql'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
                AND NOT coalesce(p.proconfig::text LIKE '%search_path=pg_catalog%', false)",
    );
    assert!(unpinned.is_empty(), "{unpinned:?}");
    // No role may rewrite another's embedding jobs or queue: those tables are closed to them.
    create_login_role("job_snoop", PASSWORD, "");
    let mut snoop = login("job_snoop", PASSWORD);
    for sql in [
        "UPDATE llm_sql.embedding_jobs SET last_error = 'x'",
        "DELETE FROM llm_sql.embedding_queue",
        "INSERT INTO llm_sql.auto_embeddings VALUES ('pg_class', 'relname', 'relname', 'm', 10, '{}')",
        "SELECT * FROM llm_sql.attachment_registry",
        "SELECT * FROM llm_sql.llm_api_key",
    ] {
        let error = snoop.batch_execute(sql).unwrap_err();
        assert_eq!(sqlstate(&error), "42501", "{sql}: {}", describe(&error));
    }
}

#[test]
fn a_role_cannot_stop_another_roles_auto_embedding() {
    let mut su = superuser();
    create_login_role("embed_owner", PASSWORD, "");
    create_login_role("embed_other", PASSWORD, "");
    su.batch_execute(
        "DROP TABLE IF EXISTS public.owned_docs;
         CREATE TABLE public.owned_docs (id int PRIMARY KEY, body text, embedding vector(8));
         ALTER TABLE public.owned_docs OWNER TO embed_owner;
         GRANT SELECT ON public.owned_docs TO embed_other;
         ALTER ROLE embed_owner SET llm_sql.embedding_model = 'nomic-embed-text';",
    )
    .unwrap();
    let mut owner = login("embed_owner", PASSWORD);
    // (One statement per call: embed_column commits, which a multi-statement string forbids.)
    for sql in [
        "INSERT INTO public.owned_docs (id, body) VALUES (1, 'a'), (2, 'b')",
        "CALL llm_sql.embed_column('public.owned_docs', 'body', 'embedding')",
        "SELECT llm_sql.auto_embed('public.owned_docs', 'body', 'embedding')",
    ] {
        owner.batch_execute(sql).unwrap();
    }
    // A role that may only read the table can neither stop nor re-record the column's
    // embedding (which would switch the model its searches use).
    let mut other = login("embed_other", PASSWORD);
    for sql in [
        "SELECT llm_sql.disable_auto_embed('public.owned_docs', 'embedding')",
        "CALL llm_sql.embed_column('public.owned_docs', 'body', 'embedding', model => 'builtin')",
        "SELECT llm_sql.auto_embed('public.owned_docs', 'body', 'embedding', 'builtin')",
    ] {
        let error = other.batch_execute(sql).unwrap_err();
        assert_eq!(sqlstate(&error), "42501", "{sql}: {}", describe(&error));
    }
    assert_eq!(
        count(
            &mut su,
            "SELECT count(*) FROM llm_sql.embedding_jobs
              WHERE tbl = 'public.owned_docs'::regclass AND model = 'nomic-embed-text'
                AND rows_done = 2 AND finished_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &mut su,
            "SELECT count(*) FROM llm_sql.auto_embeddings WHERE tbl = 'public.owned_docs'::regclass"
        ),
        1
    );
    owner
        .batch_execute("SELECT llm_sql.disable_auto_embed('public.owned_docs', 'embedding')")
        .unwrap();
    su.batch_execute("DROP TABLE public.owned_docs").unwrap();
}

/// `llm_sql.attach` as `client`; the error's SQLSTATE and text.
fn attach_error(client: &mut Client, alias: &str, dsn: &str) -> (String, String) {
    let error = client
        .query_one("SELECT llm_sql.attach($1, $2)::text", &[&alias, &dsn])
        .expect_err(dsn);
    (sqlstate(&error), describe(&error))
}

#[test]
fn a_non_superusers_server_attachment_must_log_in_with_a_checked_password() {
    let mut su = superuser();
    su.batch_execute(
        "DROP ROLE IF EXISTS llm_attachers; CREATE ROLE llm_attachers;
         ALTER DATABASE llm_sql_test SET llm_sql.attach_role = 'llm_attachers';",
    )
    .unwrap();
    create_login_role("attacher", PASSWORD, "IN ROLE llm_attachers");
    let mut attacher = login("attacher", PASSWORD);
    let port = test_port();
    // This cluster itself, as superuser, over the Unix socket (peer authentication, which the
    // database server's OS user passes) and in every spelling.
    for dsn in [
        format!("host=/tmp port={port} dbname=llm_sql_test user=postgres"),
        format!("host=/tmp port={port} dbname=llm_sql_test user=postgres password=guess"),
        format!("host=/tmp port={port} dbname=llm_sql_test user=postgres password=guess require_auth=none"),
        format!("postgresql://postgres:guess@/llm_sql_test?host=/tmp&port={port}"),
        format!("postgresql://attacher:guess@127.0.0.1:{port}/llm_sql_test?host=/tmp&user=postgres"),
        format!("dbname=llm_sql_test user=postgres password=guess port={port}"),
    ] {
        let (code, text) = attach_error(&mut attacher, "loop", &dsn);
        assert!(
            code == "42501" || text.contains("authentication"),
            "{dsn}: {text}"
        );
    }
    let listed = count(
        &mut su,
        "SELECT count(*) FROM llm_sql.attachment_registry WHERE alias = 'loop'",
    );
    assert_eq!(listed, 0);
    // A real server, with the user and password it checks: fine.
    let remote = env_port("LLM_SQL_REMOTE_PG_PORT");
    attacher
        .query_one(
            "SELECT llm_sql.attach('their_crm', $1, persist => false)::text",
            &[&format!(
                "host=127.0.0.1 port={remote} dbname=crm user=remote_reader password='r3m0te\\'pa;ss'"
            )],
        )
        .unwrap();
    // With the postgres extension now loaded in the role's DuckDB, its functions that reach
    // any server, or send SQL text to the attachment, are still out of reach, in every form.
    let superuser_dsn = format!("host=/tmp port={port} dbname=llm_sql_test user=postgres");
    for duck in [
        format!("CREATE TABLE a AS SELECT rolname, rolpassword FROM postgres_scan /* /* */ */ ('{superuser_dsn}', 'pg_catalog', 'pg_authid')"),
        format!("CREATE VIEW v AS SELECT * FROM postgres_scan('{superuser_dsn}', 'pg_catalog', 'pg_authid')"),
        "SELECT * FROM postgres_query('their_crm', 'SELECT 1')".to_string(),
        "CALL postgres_execute('their_crm', 'CREATE TABLE planted ()')".to_string(),
        format!("CREATE MACRO m() AS TABLE SELECT * FROM postgres_scan('{superuser_dsn}', 'pg_catalog', 'pg_authid'); SELECT * FROM m()"),
        format!("SELECT * FROM system.main.postgres_scan_pushdown('{superuser_dsn}', 'pg_catalog', 'pg_authid')"),
    ] {
        let error = attacher
            .query_one("SELECT llm_sql.execute($1)", &[&duck])
            .unwrap_err();
        assert_eq!(sqlstate(&error), "42501", "{duck}: {}", describe(&error));
    }
    // MySQL: the Unix socket is where MariaDB's unix_socket accounts log the OS user in.
    let socket = std::env::var("LLM_SQL_MYSQL_SOCKET").unwrap();
    let mysql = env_port("LLM_SQL_MYSQL_PORT");
    for dsn in [
        format!("host=localhost user=postgres password=x database=shop socket={socket}"),
        format!("user=postgres password=x database=shop socket={socket}"),
        "mysql://postgres:x@localhost/shop".to_string(),
        format!("mysql://postgres:x@127.0.0.1:{mysql}/shop?socket={socket}"),
        format!("host=127.0.0.1 port={mysql} user=shop database=shop"),
    ] {
        let (code, text) = attach_error(&mut attacher, "their_shop", &dsn);
        assert_eq!(code, "42501", "{dsn}: {text}");
    }
    attacher
        .query_one(
            "SELECT llm_sql.attach('their_shop', $1, persist => false)::text",
            &[&format!(
                "host=127.0.0.1 port={mysql} user=shop password='my;p@ss\\'w' database=shop"
            )],
        )
        .unwrap();
    // A superuser may attach what the server lets in (this is how the tests seed data).
    su.query_one(
        "SELECT llm_sql.attach('su_loop', $1, persist => false)::text",
        &[&format!(
            "host=/tmp port={port} dbname=llm_sql_test user=postgres"
        )],
    )
    .unwrap();
    let rolsuper: bool = su
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'attacher'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!rolsuper);
    su.batch_execute("ALTER DATABASE llm_sql_test RESET llm_sql.attach_role")
        .unwrap();
}

#[test]
fn cancel_stops_waiting_for_a_postgres_server_that_never_answers() {
    let port = silent_server();
    let dsn = format!("host=127.0.0.1 port={port} dbname=x user=u password=x");
    // Attaching it: cancel and statement_timeout end the wait at once (attach_timeout is 10 s).
    let worker = superuser();
    let sql: &'static str = Box::leak(
        format!("SELECT llm_sql.attach('silent', '{dsn}', persist => false)").into_boxed_str(),
    );
    let (error, took, mut worker) =
        cancel_running(worker, sql, "llm_sql.attach", Duration::from_millis(300));
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(took < Duration::from_secs(1), "{took:?}");
    times_out(&mut worker, sql, 500);
    // A remembered attachment whose server hangs: a grantee's new session is not held either.
    let mut su = superuser();
    su.execute(
        "INSERT INTO llm_sql.attachment_registry (alias, type, dsn, read_only, owner)
         VALUES ('silent_kept', 'postgres', $1, true, 10)",
        &[&dsn],
    )
    .unwrap();
    create_login_role("silent_user", PASSWORD, "");
    su.batch_execute("SELECT llm_sql.grant_attachment('silent_kept', 'silent_user')")
        .unwrap();
    let grantee = login("silent_user", PASSWORD);
    let (error, took, _) = cancel_running(
        grantee,
        "SELECT * FROM llm_sql.query_json('SELECT 42 AS n')",
        "SELECT 42",
        Duration::from_millis(300),
    );
    assert_eq!(sqlstate(&error), "57014", "{}", describe(&error));
    assert!(took < Duration::from_secs(1), "{took:?}");
    // With a short attach_timeout the session goes on without it, after a WARNING.
    let mut grantee = login("silent_user", PASSWORD);
    grantee
        .batch_execute("SET llm_sql.attach_timeout = '700ms'")
        .unwrap();
    let started = Instant::now();
    let n = count(
        &mut grantee,
        "SELECT n FROM llm_sql.query('SELECT 42::int8 AS n') AS t(n int8)",
    );
    assert_eq!(n, 42);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    su.batch_execute("SELECT llm_sql.detach('silent_kept')")
        .unwrap();
}

#[test]
fn the_api_key_is_readable_by_no_other_role() {
    let mut su = superuser();
    su.batch_execute("SELECT llm_sql.set_llm_api_key('sk-very-secret-key')")
        .unwrap();
    // As a setting it is refused, so it cannot sit where SHOW shows placeholders.
    let error = su
        .batch_execute("ALTER SYSTEM SET llm_sql.llm_api_key = 'sk-other'")
        .unwrap_err();
    assert!(
        describe(&error).contains("set_llm_api_key"),
        "{}",
        describe(&error)
    );
    let error = su
        .batch_execute("ALTER DATABASE llm_sql_test SET llm_sql.llm_api_key = 'sk-other'")
        .unwrap_err();
    assert!(
        describe(&error).contains("set_llm_api_key"),
        "{}",
        describe(&error)
    );
    create_login_role("key_peeker", PASSWORD, "");
    let mut peeker = login("key_peeker", PASSWORD);
    // (Reading the old setting is refused outright; had it held a value, it would not be this.)
    let shown = peeker
        .query_one("SELECT current_setting('llm_sql.llm_api_key', true)", &[])
        .map(|row| row.get::<_, Option<String>>(0));
    match &shown {
        Ok(value) => assert!(
            value.as_deref().is_none_or(|s| !s.contains("secret")),
            "{value:?}"
        ),
        Err(e) => assert_eq!(sqlstate(e), "42501", "{}", describe(e)),
    }
    let anywhere = count(
        &mut peeker,
        "SELECT count(*) FROM pg_settings WHERE setting LIKE '%very-secret%'",
    ) + count(
        &mut peeker,
        "SELECT count(*) FROM pg_db_role_setting WHERE setconfig::text LIKE '%very-secret%'",
    );
    assert_eq!(anywhere, 0);
    let error = peeker
        .batch_execute("SELECT * FROM llm_sql.llm_api_key")
        .unwrap_err();
    assert_eq!(sqlstate(&error), "42501");
    su.batch_execute("SELECT llm_sql.set_llm_api_key(NULL)")
        .unwrap();
}
