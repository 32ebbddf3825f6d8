//! Every llm_sql setting (GUC), with its default and documentation, in one place.
//!
//! DuckDB resource settings are per backend: think "× max_connections". The defaults let 100
//! connections run DuckDB at once on a modest server (100 × 128 MB of DuckDB buffers, 2 threads
//! each only while a query runs, ≤ 1 GB of spill files each). They are read when a backend's
//! DuckDB is created; `llm_sql.duckdb_reset()` applies changed values. Only superusers may change
//! them (a DBA can give an analytics role more with ALTER ROLE … SET).

use std::ffi::{CStr, CString};

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

pub static DUCKDB_MEMORY_LIMIT: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"128MB"));
pub static DUCKDB_THREADS: GucSetting<i32> = GucSetting::<i32>::new(2);
pub static DUCKDB_TEMP_DIRECTORY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c""));
pub static DUCKDB_MAX_TEMP_DIRECTORY_SIZE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"1GB"));
pub static DUCKDB_EXTENSION_DIRECTORY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c""));
pub static NUMERIC_AS_DOUBLE: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static LOCAL_COPY_MEMORY_MB: GucSetting<i32> = GucSetting::<i32>::new(128);
pub static ATTACH_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static ATTACH_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// Which HTTP API the LLM server speaks.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum LlmApi {
    #[name = c"ollama"]
    Ollama,
    #[name = c"openai"]
    OpenAi,
}

pub static LLM_URL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"http://127.0.0.1:11434"));
pub static LLM_API: GucSetting<LlmApi> = GucSetting::<LlmApi>::new(LlmApi::Ollama);
/// Only ever empty: see `llm::key`.
pub static LLM_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static CHAT_MODEL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"qwen2.5-coder:7b"));
pub static EMBEDDING_MODEL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"builtin"));
pub static BUILTIN_THREADS: GucSetting<i32> = GucSetting::<i32>::new(2);
pub static REQUEST_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(120_000);
pub static MAX_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(2);
pub static EMBEDDING_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64);
pub static WORKER_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c""));
pub static WORKER_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(5_000);
pub static ASK_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(30_000);
pub static MAX_ROWS: GucSetting<i32> = GucSetting::<i32>::new(1_000);
pub static ASK_MAX_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(3);
pub static ASK_MIN_CONFIDENCE: GucSetting<f64> = GucSetting::<f64>::new(0.7);
pub static ASK_SCHEMAS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static ASK_TRUSTED_ROLES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c""));
pub static ASK_CONTEXT_BUDGET: GucSetting<i32> = GucSetting::<i32>::new(24_000);
pub static ASK_CACHE_TTL_S: GucSetting<i32> = GucSetting::<i32>::new(86_400);
pub static ASK_MAX_TOKENS: GucSetting<i32> = GucSetting::<i32>::new(400);
pub static ASK_TIME_BUDGET_MS: GucSetting<i32> = GucSetting::<i32>::new(300_000);
pub static ASK_ANSWER_FORMAT: GucSetting<AnswerFormat> =
    GucSetting::<AnswerFormat>::new(AnswerFormat::Sql);

/// How llm_sql.ask asks the model to answer.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AnswerFormat {
    /// The query alone, bare: the fewest tokens to generate (a fence costs four more).
    #[name = c"sql"]
    Sql,
    /// A JSON object with the query, an explanation and a confidence (the server's JSON mode).
    #[name = c"json"]
    Json,
}

/// Registers the settings; called from `_PG_init`.
pub fn init() {
    GucRegistry::define_string_guc(
        c"llm_sql.attach_role",
        c"Members of this role may attach remote servers (postgres, mysql); empty: superusers only.",
        c"Attaching files needs pg_read_server_files (and pg_write_server_files for read-write) instead.",
        &ATTACH_ROLE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.attach_timeout",
        c"How long llm_sql.attach (and re-attaching in a new session) waits for a server to answer.",
        c"PostgreSQL sources get it as libpq connect_timeout (whole seconds, at least 2).",
        &ATTACH_TIMEOUT_MS,
        100,
        600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_memory_limit",
        c"Memory limit of each backend's DuckDB (e.g. 128MB, 4GB).",
        c"DuckDB spills to llm_sql.duckdb_temp_directory beyond it. Applied when the backend's DuckDB is created.",
        &DUCKDB_MEMORY_LIMIT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.duckdb_threads",
        c"Worker threads of each backend's DuckDB.",
        c"Threads only run while a DuckDB query runs. Applied when the backend's DuckDB is created.",
        &DUCKDB_THREADS,
        1,
        256,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_temp_directory",
        c"Directory for DuckDB spill files; empty means base/pgsql_tmp of the data directory.",
        c"Each backend uses its own subdirectory, removed when its DuckDB closes and by a server restart.",
        &DUCKDB_TEMP_DIRECTORY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_max_temp_directory_size",
        c"Most disk space each backend's DuckDB may use for spill files (e.g. 1GB).",
        c"",
        &DUCKDB_MAX_TEMP_DIRECTORY_SIZE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.duckdb_extension_directory",
        c"Directory DuckDB loads its extensions from; empty means $libdir/llm_sql/duckdb_extensions.",
        c"DuckDB never downloads extensions: they are installed there with llm_sql.",
        &DUCKDB_EXTENSION_DIRECTORY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"llm_sql.numeric_as_double",
        c"Lets numeric columns that DuckDB's DECIMAL(38) cannot hold travel as DOUBLE (inexact).",
        c"Off: unconstrained numeric columns of catalog pg are DECIMAL(38,9) in DuckDB, and a value that does not fit exactly is an error.",
        &NUMERIC_AS_DOUBLE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.local_copy_memory",
        c"Most heap each backend keeps as columnar copies of local tables in its DuckDB (0: none).",
        c"Counted as the heap size of the copied pages; least recently used copies are dropped first. Per backend and role.",
        &LOCAL_COPY_MEMORY_MB,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    llm_settings();
    // SAFETY: called from _PG_init on the backend thread; reserves the prefix so that typos in
    // llm_sql.* names are errors instead of silent placeholders.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"llm_sql".as_ptr()) };
}

/// The LLM server settings. The server's address, API and key are superuser-only: otherwise any
/// role could make the database server send requests (with the key) to any host.
fn llm_settings() {
    GucRegistry::define_string_guc(
        c"llm_sql.llm_url",
        c"Base URL of the LLM server (Ollama, or OpenAI-compatible with llm_sql.llm_api = openai).",
        c"For openai, /v1/... is appended unless the URL already ends in /v1.",
        &LLM_URL,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"llm_sql.llm_api",
        c"HTTP API of the LLM server: ollama or openai (vLLM, llama.cpp, LM Studio, OpenAI).",
        c"",
        &LLM_API,
        GucContext::Suset,
        GucFlags::default(),
    );
    // No longer a setting (see llm::key); kept only to refuse values with a pointer there.
    // SAFETY: refuse_api_key only reads its argument and sets the check message.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"llm_sql.llm_api_key",
            c"Not used: the LLM API key is set with SELECT llm_sql.set_llm_api_key(...).",
            c"Settings can be read by other roles; any value here is refused.",
            &LLM_API_KEY,
            GucContext::Suset,
            GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
            Some(refuse_api_key),
            None,
            None,
        )
    };
    GucRegistry::define_string_guc(
        c"llm_sql.chat_model",
        c"Model for generate, chat and ask when the call names none.",
        c"",
        &CHAT_MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.embedding_model",
        c"Model for embed, embed_column, auto_embed and the searches when the call names none.",
        c"builtin (the default) is all-MiniLM-L6-v2 inside the backend, 384 dimensions, no server; any other name is a model of the LLM server.",
        &EMBEDDING_MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.builtin_threads",
        c"Threads each backend uses to compute embeddings with the built-in model.",
        c"They exist from a backend's first built-in embedding on and only work while one is computed.",
        &BUILTIN_THREADS,
        1,
        64,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.request_timeout",
        c"Longest wait for one HTTP request to the LLM server, retries not included.",
        c"",
        &REQUEST_TIMEOUT_MS,
        100,
        3_600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"llm_sql.max_retries",
        c"Retries of an LLM request after a connection error or an HTTP 5xx, with exponential backoff.",
        c"",
        &MAX_RETRIES,
        0,
        10,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.embedding_batch_size",
        c"Texts per embedding request (embed(text[]), embed_column, the embedding queue).",
        c"",
        &EMBEDDING_BATCH_SIZE,
        1,
        4096,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.worker_database",
        c"Database whose embedding queue the background worker drains; empty: no worker.",
        c"The worker runs only when llm_sql is in shared_preload_libraries.",
        &WORKER_DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.worker_naptime",
        c"How long the embedding worker sleeps when the queue has nothing due.",
        c"",
        &WORKER_NAPTIME_MS,
        100,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    define_ask_settings();
}

/// The settings of llm_sql.ask; any role may change them for itself.
fn define_ask_settings() {
    GucRegistry::define_int_guc(
        c"llm_sql.ask_timeout",
        c"Time limit of each query that llm_sql.ask runs.",
        c"The caller's own statement_timeout still applies when it comes first.",
        &ASK_TIMEOUT_MS,
        1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"llm_sql.max_rows",
        c"Most rows llm_sql.ask returns; the answer says when it was truncated.",
        c"",
        &MAX_ROWS,
        1,
        10_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.ask_max_attempts",
        c"How often llm_sql.ask lets the model write a query, counting the corrections after an error.",
        c"",
        &ASK_MAX_ATTEMPTS,
        1,
        10,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"llm_sql.ask_min_confidence",
        c"Below this confidence llm_sql.ask asks for clarification instead of answering.",
        c"The model's own confidence, or with candidates the share of candidates that agree.",
        &ASK_MIN_CONFIDENCE,
        0.0,
        1.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.ask_schemas",
        c"Comma-separated schemas whose relations llm_sql.ask shows the model; empty: those on search_path.",
        c"",
        &ASK_SCHEMAS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"llm_sql.ask_trusted_roles",
        c"Roles (comma-separated) whose IMMUTABLE and STABLE functions queries written by llm_sql.ask may call.",
        c"Besides your own functions and superusers' (extensions). Functions of other roles never run in them.",
        &ASK_TRUSTED_ROLES,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.ask_context_budget",
        c"Most characters of schema description in an llm_sql.ask prompt.",
        c"Beyond it, the relations most relevant to the question are kept.",
        &ASK_CONTEXT_BUDGET,
        1_000,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.ask_cache_ttl",
        c"How long llm_sql.ask reuses the SQL it wrote for the same question; 0 turns the cache off.",
        c"Any change to the schema the caller can see also ends reuse.",
        &ASK_CACHE_TTL_S,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"llm_sql.ask_max_tokens",
        c"Most tokens the model may write in each answer to llm_sql.ask.",
        c"Sent as Ollama's num_predict or OpenAI's max_tokens; stops a model that does not stop.",
        &ASK_MAX_TOKENS,
        16,
        100_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"llm_sql.ask_time_budget",
        c"Time llm_sql.ask may spend on one question, model calls and queries together.",
        c"When it runs out, ask_full returns status error with the reason.",
        &ASK_TIME_BUDGET_MS,
        1_000,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_enum_guc(
        c"llm_sql.ask_answer_format",
        c"How llm_sql.ask asks the model to answer: sql (the query alone) or json.",
        c"sql costs the fewest generated tokens; json also asks for an explanation and a confidence.",
        &ASK_ANSWER_FORMAT,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// Check hook of `llm_sql.llm_api_key`: only the empty value passes.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn refuse_api_key(
    new_value: *mut *mut std::ffi::c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pgrx::pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: Postgres passes a valid pointer to the proposed value (NULL for no value); the
    // message is copied into memory Postgres frees.
    unsafe {
        let value = if new_value.is_null() || (*new_value).is_null() {
            None
        } else {
            Some(CStr::from_ptr(*new_value).to_string_lossy().into_owned())
        };
        match refuse_setting(value.as_deref()) {
            Ok(()) => true,
            Err(message) => {
                let message = CString::new(message).unwrap_or_default();
                pgrx::pg_sys::GUC_check_errmsg_string = pgrx::pg_sys::pstrdup(message.as_ptr());
                false
            }
        }
    }
}

/// The check hook of the old setting `llm_sql.llm_api_key`: any value but empty is refused.
fn refuse_setting(value: Option<&str>) -> std::result::Result<(), &'static str> {
    match value.map(str::trim) {
        None | Some("") => Ok(()),
        Some(_) => Err(
            "llm_sql.llm_api_key is no longer a setting (settings can be read by other roles): \
             remove it and run SELECT llm_sql.set_llm_api_key(...) in the database instead",
        ),
    }
}

/// `llm_sql.request_timeout`.
pub fn request_timeout() -> std::time::Duration {
    std::time::Duration::from_millis(REQUEST_TIMEOUT_MS.get().max(1) as u64)
}

/// `llm_sql.attach_timeout`.
pub fn attach_timeout() -> std::time::Duration {
    std::time::Duration::from_millis(ATTACH_TIMEOUT_MS.get().max(1) as u64)
}

/// The value of a string setting, `None` when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `$libdir` of this server, where llm_sql.so and its DuckDB extensions are installed.
pub fn pkglib_dir() -> String {
    // SAFETY: pkglib_path is a NUL-terminated path set at backend start.
    unsafe { CStr::from_ptr(std::ptr::addr_of!(pgrx::pg_sys::pkglib_path).cast()) }
        .to_string_lossy()
        .into_owned()
}
