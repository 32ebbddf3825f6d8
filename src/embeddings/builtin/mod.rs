//! The built-in embedding model, `model => 'builtin'`: all-MiniLM-L6-v2 computed inside the
//! backend, so embeddings work with no model server at all.
//!
//! The model is loaded once per backend on first use (its weights memory-mapped from
//! `$libdir/llm_sql/all-MiniLM-L6-v2`, shared by all backends through the page cache). Batches
//! run on a per-backend rayon pool of `llm_sql.builtin_threads` threads, started with signals
//! blocked; they never call Postgres. The backend thread waits for a batch and watches for a
//! cancel, `statement_timeout` or terminate request, and on one tells the batch to stop, which
//! it does before the next step of its layer (tens of milliseconds).

pub mod bert;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use pgrx::PgSqlErrorCode;
use rayon::ThreadPool;

use crate::error::{Error, Result};
use crate::llm::Embeddings;
use crate::threads::{cancel_requested, with_signals_blocked};
use bert::Model;

/// The model name that selects the built-in model.
pub const NAME: &str = "builtin";

/// How often the backend looks at the interrupt flags while a batch runs.
const POLL: Duration = Duration::from_millis(10);
/// How long a canceled batch gets to notice before the backend stops waiting for it.
const STOP_GRACE: Duration = Duration::from_secs(2);

thread_local! {
    static MODEL: RefCell<Option<Arc<Model>>> = const { RefCell::new(None) };
    static POOL: RefCell<Option<(usize, Arc<ThreadPool>)>> = const { RefCell::new(None) };
}

pub fn is_builtin(model: &str) -> bool {
    model.trim().eq_ignore_ascii_case(NAME)
}

/// Where the model's files are installed.
pub fn directory() -> PathBuf {
    PathBuf::from(format!(
        "{}/llm_sql/all-MiniLM-L6-v2",
        crate::settings::pkglib_dir()
    ))
}

/// Whether the model's files are installed (not whether they load).
pub fn installed() -> bool {
    let directory = directory();
    directory.join("model.safetensors").is_file() && directory.join("tokenizer.json").is_file()
}

/// The unit-length embeddings of `texts`, in order.
pub fn embed(texts: &[&str]) -> Result<Embeddings> {
    start(texts.iter().map(|t| t.to_string()).collect())?.wait()
}

/// A batch running on the inference threads.
pub struct Job {
    answer: mpsc::Receiver<bert::Outcome>,
    stop: Arc<AtomicBool>,
}

/// Starts embedding `texts` and returns at once; `wait` for the embeddings.
pub fn start(texts: Vec<String>) -> Result<Job> {
    let model = model()?;
    let pool = pool()?;
    let (tx, answer) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    pool.spawn(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let cancelled = || stopped.load(Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| model.embed(&refs, &cancelled)))
            .unwrap_or_else(|panic| Err(panic_message(&panic)));
        let _ = tx.send(outcome);
    });
    Ok(Job { answer, stop })
}

impl Job {
    pub fn wait(self) -> Result<Embeddings> {
        loop {
            match self.answer.recv_timeout(POLL) {
                Ok(Ok(Some(embeddings))) => return Ok(embeddings),
                Ok(Ok(None)) => return Err(canceled()),
                Ok(Err(message)) => {
                    return Err(Error::internal(format!(
                        "the built-in embedding model failed: {message}"
                    )))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::internal(
                        "the built-in embedding model's thread stopped",
                    ))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if cancel_requested() {
                // Waits for the batch to notice (before its next step), so that its threads
                // are idle when the statement ends; then Postgres raises its own error.
                self.stop.store(true, Ordering::Relaxed);
                let _ = self.answer.recv_timeout(STOP_GRACE);
                pgrx::check_for_interrupts!();
                return Err(canceled());
            }
        }
    }
}

impl Drop for Job {
    /// A batch nobody waits for any more (the statement failed elsewhere) stops too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn canceled() -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
        "the embedding was canceled",
    )
}

/// The backend's model, loaded on first use. A failed load is not remembered, so installing
/// the files fixes running sessions too.
fn model() -> Result<Arc<Model>> {
    if let Some(model) = MODEL.with(|m| m.borrow().clone()) {
        return Ok(model);
    }
    let model = Arc::new(load(&directory())?);
    MODEL.with(|m| *m.borrow_mut() = Some(Arc::clone(&model)));
    Ok(model)
}

/// Loads the model's files from `directory` (mapping the weights, reading the tokenizer).
pub fn load(directory: &Path) -> Result<Model> {
    catch_unwind(|| Model::load(directory))
        .unwrap_or_else(|panic| Err(panic_message(&panic)))
        .map_err(|message| {
            Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
                format!("the built-in embedding model cannot be loaded: {message}"),
            )
            .with_hint(format!(
                "scripts/setup installs it into {}. Or use a model of your LLM server: SET llm_sql.embedding_model = '<model>'.",
                directory.display()
            ))
        })
}

/// The backend's inference threads: `llm_sql.builtin_threads` of them, rebuilt when the
/// setting changes (the old pool's threads exit once idle).
fn pool() -> Result<Arc<ThreadPool>> {
    let threads = crate::settings::BUILTIN_THREADS.get().max(1) as usize;
    if let Some((size, pool)) = POOL.with(|p| p.borrow().clone()) {
        if size == threads {
            return Ok(pool);
        }
    }
    let built = with_signals_blocked(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("llm_sql embed {i}"))
            .build()
    })
    .map_err(|e| Error::internal(format!("could not start the embedding threads: {e}")))?;
    let pool = Arc::new(built);
    POOL.with(|p| *p.borrow_mut() = Some((threads, Arc::clone(&pool))));
    Ok(pool)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}
