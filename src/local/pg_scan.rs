//! `llm_sql_pg_scan(token)`: a DuckDB table function whose rows come from a Postgres relation.
//!
//! Two sides, two threads:
//! * DuckDB's side ([`PgScan`], a [`TableFunction`]) runs on whatever thread DuckDB picks. It
//!   never calls Postgres: it sends a [`Request`] to the backend thread and waits for a [`Batch`].
//! * The backend side ([`serve_while`]) runs a blocking DuckDB call on a helper thread and, until
//!   it returns, serves requests, watches for cancel requests, and catches every Postgres error:
//!   the error goes back to DuckDB as a failed scan and is raised again, unchanged, once DuckDB
//!   has returned.
//!
//! A batch is made by one call into `pg_columns.c` (one pgrx guard per batch, not per value),
//! which converts the rows into DuckDB's own layout. Its rows come from a heap scan with the
//! statement's snapshot after the executor's privilege check, or, when row-level security
//! applies or the relation is not a table (views, foreign and partitioned tables), from an SPI
//! cursor as the current role, where Postgres's rewriter and executor apply every rule.
//!
//! No panic crosses the C boundary: the table-function wrapper (`crate::engine::table_function`)
//! catches unwinding and reports an error.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::{Oid, PgTryBuilder};

use super::producer::{self, Batch, BatchColumn, Kind};
use crate::engine::ffi::{Connection, InterruptTarget};
use crate::engine::table_function::{self, Binding, ColumnType, Output, TableFunction};
use crate::error::Result;
use crate::threads::{cancel_requested, with_signals_blocked};

/// One column of a `pg.<schema>.<table>` view.
#[derive(Clone)]
pub struct ColumnSpec {
    pub name: String,
    pub attnum: i16,
    pub type_oid: Oid,
    pub typmod: i32,
    /// How `pg_columns.c` converts its values.
    pub kind: Kind,
    /// The type the values cross into DuckDB in.
    pub transport: ColumnType,
    /// DuckDB expression over `$c` that the `pg` view shows.
    pub view_expr: String,
}

/// Which rows a scan reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanMode {
    /// Every row the statement's snapshot sees (a heap scan, or a cursor).
    Whole,
    /// The rows the snapshot sees in blocks `start..end` of each range (ascending): the pages of
    /// a copied table that its copy may not stand for. A heap scan only.
    Blocks(Vec<(u32, u32)>),
    /// A copy's build: the rows of the all-visible pages, each column named `c<attnum>`, and
    /// the block each row came from as a last column, `blk`.
    Build,
}

/// The name of a copied column in the copy's table.
pub fn copy_column(attnum: i16) -> String {
    format!("c{attnum}")
}

/// The copy's column holding each row's heap block.
pub const BLOCK_COLUMN: &str = "blk";

/// What one `pg.<schema>.<table>` reference of a statement reads.
pub struct ScanSpec {
    pub relid: Oid,
    pub mode: ScanMode,
    /// The relation, quoted for Postgres.
    pub relation: String,
    pub columns: Vec<ColumnSpec>,
    /// `pg_class.reltuples` when the relation has been analyzed or vacuumed.
    estimated_rows: Option<u64>,
    /// Set when the statement ends: DuckDB threads still waiting give up.
    released: AtomicBool,
}

impl ScanSpec {
    pub fn new(
        relid: Oid,
        relation: String,
        columns: Vec<ColumnSpec>,
        estimated_rows: Option<u64>,
    ) -> ScanSpec {
        ScanSpec {
            relid,
            mode: ScanMode::Whole,
            relation,
            columns,
            estimated_rows,
            released: AtomicBool::new(false),
        }
    }

    /// The same relation and columns, read in another mode, of which DuckDB should expect
    /// `share` of the rows.
    pub fn part(&self, mode: ScanMode, share: f64) -> ScanSpec {
        let mut spec = self.with_mode(mode);
        spec.estimated_rows = self
            .estimated_rows
            .map(|rows| (rows as f64 * share.clamp(0.0, 1.0)).ceil() as u64);
        spec
    }

    /// The same relation and columns, read in another mode.
    pub fn with_mode(&self, mode: ScanMode) -> ScanSpec {
        let mut spec = ScanSpec::new(
            self.relid,
            self.relation.clone(),
            self.columns.clone(),
            self.estimated_rows,
        );
        spec.mode = mode;
        spec
    }

    /// The columns DuckDB sees: a build's are named after their attnums and end with the block.
    fn duckdb_columns(&self) -> Vec<(String, ColumnType)> {
        if self.mode != ScanMode::Build {
            return self
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.transport))
                .collect();
        }
        let mut columns: Vec<(String, ColumnType)> = self
            .columns
            .iter()
            .map(|c| (copy_column(c.attnum), c.transport))
            .collect();
        columns.push((BLOCK_COLUMN.to_string(), ColumnType::BigInt));
        columns
    }
}

/// Specs by token, for the bind callback (which may run on a DuckDB thread).
fn specs() -> &'static Mutex<HashMap<u64, Arc<ScanSpec>>> {
    static SPECS: OnceLock<Mutex<HashMap<u64, Arc<ScanSpec>>>> = OnceLock::new();
    SPECS.get_or_init(|| Mutex::new(HashMap::new()))
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

pub fn add(spec: ScanSpec) -> u64 {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut map) = specs().lock() {
        map.insert(token, Arc::new(spec));
    }
    token
}

/// Ends the scans of a finished statement (backend thread): waiting DuckDB threads give up,
/// and their Postgres cursors are closed.
pub fn release(tokens: &[u64]) {
    let Ok(mut map) = specs().lock() else { return };
    for token in tokens {
        if let Some(spec) = map.remove(token) {
            spec.released.store(true, Ordering::SeqCst);
        }
    }
    drop(map);
    producer::end(tokens);
}

/// One running scan (DuckDB's init data): the spec and the projected columns.
struct ScanState {
    token: u64,
    spec: Arc<ScanSpec>,
    /// Projected column indexes into `spec.columns`; `None` for DuckDB's row id.
    projection: Vec<Option<usize>>,
    id: u64,
    finished: AtomicBool,
}

struct Request {
    state: Arc<ScanState>,
    reply: SyncSender<std::result::Result<Batch, String>>,
}

enum Message {
    Scan(Request),
    /// The helper thread of call `n` has finished.
    Done(u64),
}

/// The request channel: DuckDB threads hold senders, the backend thread the receiver. (First
/// called on the backend thread, when an instance registers the scan function.)
fn requests() -> &'static Mutex<Sender<Message>> {
    static REQUESTS: OnceLock<Mutex<Sender<Message>>> = OnceLock::new();
    REQUESTS.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        RECEIVER.with(|r| *r.borrow_mut() = Some(rx));
        Mutex::new(tx)
    })
}

thread_local! {
    static RECEIVER: std::cell::RefCell<Option<Receiver<Message>>> = const { std::cell::RefCell::new(None) };
}

static NEXT_SCAN: AtomicU64 = AtomicU64::new(1);
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

// ---------------------------------------------------------------------------------------------
// DuckDB's side.

/// Registers `llm_sql_pg_scan(BIGINT)` on a new DuckDB instance.
pub fn register(conn: &Connection) -> Result<()> {
    requests();
    table_function::register::<PgScan>(conn)?;
    Ok(())
}

/// `llm_sql_pg_scan(token)`, the table function.
struct PgScan;

impl TableFunction for PgScan {
    const NAME: &'static CStr = c"llm_sql_pg_scan";
    const BIGINT_ARGUMENTS: usize = 1;
    type Bound = (u64, Arc<ScanSpec>);
    type Scan = Arc<ScanState>;

    fn bind(arguments: &[i64]) -> std::result::Result<Binding<Self::Bound>, String> {
        let token = arguments[0] as u64;
        let spec = specs()
            .lock()
            .ok()
            .and_then(|map| map.get(&token).cloned())
            .ok_or_else(|| {
                "this llm_sql_pg_scan has expired: read local tables as pg.<schema>.<table> in the statement itself".to_string()
            })?;
        Ok(Binding {
            columns: spec.duckdb_columns(),
            estimated_rows: spec.estimated_rows,
            data: (token, spec),
        })
    }

    fn init(
        (token, spec): &Self::Bound,
        projection: Vec<Option<usize>>,
    ) -> std::result::Result<Self::Scan, String> {
        Ok(Arc::new(ScanState {
            token: *token,
            spec: Arc::clone(spec),
            projection,
            id: NEXT_SCAN.fetch_add(1, Ordering::Relaxed),
            finished: AtomicBool::new(false),
        }))
    }

    fn scan(state: &Self::Scan, out: &mut Output) -> std::result::Result<(), String> {
        if state.finished.load(Ordering::SeqCst) {
            return out.set_len(0);
        }
        let batch = fetch_from_backend(state)?;
        if batch.len == 0 {
            state.finished.store(true, Ordering::SeqCst);
        }
        write_batch(&batch, out)
    }
}

/// Asks the backend thread for the next batch and waits for it (giving up when the statement
/// has ended).
fn fetch_from_backend(state: &Arc<ScanState>) -> std::result::Result<Batch, String> {
    let (reply, answer) = mpsc::sync_channel(1);
    let sent = requests()
        .lock()
        .map_err(|_| "llm_sql_pg_scan: request channel poisoned".to_string())?
        .send(Message::Scan(Request {
            state: Arc::clone(state),
            reply,
        }));
    if sent.is_err() {
        return Err("llm_sql_pg_scan: the backend is not serving local scans".into());
    }
    loop {
        match answer.recv_timeout(Duration::from_millis(20)) {
            Ok(batch) => return batch,
            Err(RecvTimeoutError::Timeout) => {
                if state.spec.released.load(Ordering::SeqCst) {
                    return Err("llm_sql_pg_scan: the statement has ended".into());
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err("llm_sql_pg_scan: the scan was abandoned".into())
            }
        }
    }
}

/// Copies a batch into DuckDB's output chunk.
fn write_batch(batch: &Batch, out: &mut Output) -> std::result::Result<(), String> {
    let rows = batch.len;
    for (c, column) in batch.columns.iter().enumerate() {
        match column {
            BatchColumn::Fixed { ty, data, nulls } => out.write_fixed(c, *ty, data, nulls, rows)?,
            BatchColumn::Strings {
                ty,
                offsets,
                bytes,
                nulls,
            } => out.write_strings(c, *ty, offsets, bytes, nulls, rows)?,
            BatchColumn::RowIds { first } => {
                let ids: Vec<u8> = (*first..*first + rows as i64)
                    .flat_map(i64::to_ne_bytes)
                    .collect();
                out.write_fixed(c, ColumnType::BigInt, &ids, &vec![0; rows], rows)?
            }
        }
    }
    out.set_len(rows)
}

// ---------------------------------------------------------------------------------------------
// The backend's side.

/// Makes a value usable on the helper thread (DuckDB handles are raw pointers). Sound because
/// the backend thread does not touch DuckDB until the helper thread has finished.
struct AssertSend<T>(T);
// SAFETY: see above.
unsafe impl<T> Send for AssertSend<T> {}

/// Runs `call` (a blocking DuckDB call) on a helper thread while this, the backend thread,
/// serves local scans and turns Postgres cancel requests into `duckdb_interrupt`. A Postgres
/// error raised while serving is raised again after DuckDB returned.
pub fn serve_while<T>(target: InterruptTarget, call: impl FnOnce() -> T) -> T {
    let done = requests()
        .lock()
        .map(|sender| sender.clone())
        .expect("the local scan channel");
    let call_id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
    let call = AssertSend(call);
    let mut failure: Option<Box<CaughtError>> = None;
    let output = std::thread::scope(|scope| {
        let helper = with_signals_blocked(|| {
            scope.spawn(move || {
                let call = call;
                let output = AssertSend((call.0)());
                let _ = done.send(Message::Done(call_id));
                output
            })
        });
        RECEIVER.with(|receiver| {
            let receiver = receiver.borrow();
            let Some(receiver) = receiver.as_ref() else {
                return;
            };
            let mut interrupted = false;
            loop {
                match receiver.recv_timeout(Duration::from_millis(5)) {
                    Ok(Message::Done(id)) if id == call_id => break,
                    Ok(Message::Done(_)) => {}
                    Ok(Message::Scan(request)) => {
                        let answer = match &failure {
                            Some(_) => Err("the scan failed".to_string()),
                            None => match serve(&request.state) {
                                Ok(batch) => Ok(batch),
                                Err(error) => {
                                    let message = caught_message(&error);
                                    failure = Some(error);
                                    Err(message)
                                }
                            },
                        };
                        let more = matches!(&answer, Ok(batch) if batch.len > 0);
                        let _ = request.reply.send(answer);
                        if more && failure.is_none() {
                            failure = serve_ahead(&request.state).err();
                        }
                    }
                    Err(_) => {
                        if !interrupted && cancel_requested() {
                            target.interrupt();
                            interrupted = true;
                        }
                        if helper.is_finished() {
                            break;
                        }
                    }
                }
            }
        });
        match helper.join() {
            Ok(output) => output.0,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    if let Some(error) = failure {
        (*error).rethrow();
    }
    output
}

fn caught_message(error: &CaughtError) -> String {
    match error {
        CaughtError::PostgresError(report)
        | CaughtError::ErrorReport(report)
        | CaughtError::RustPanic {
            ereport: report, ..
        } => format!("reading the local database failed: {}", report.message()),
    }
}

/// Makes the batch after the one just sent, catching any Postgres error (raised again when
/// DuckDB has returned).
fn serve_ahead(state: &Arc<ScanState>) -> std::result::Result<(), Box<CaughtError>> {
    if state.spec.released.load(Ordering::SeqCst) {
        return Ok(());
    }
    PgTryBuilder::new(|| {
        producer::make_ahead(state.id);
        Ok(())
    })
    .catch_others(|error| Err(Box::new(error)))
    .execute()
}

/// Makes the next batch of a scan, catching any Postgres error.
fn serve(state: &Arc<ScanState>) -> std::result::Result<Batch, Box<CaughtError>> {
    if state.spec.released.load(Ordering::SeqCst) {
        return Ok(Batch::empty());
    }
    PgTryBuilder::new(|| {
        Ok(producer::next_batch(
            state.id,
            state.token,
            &state.spec,
            &state.projection,
        ))
    })
    .catch_others(|error| Err(Box::new(error)))
    .execute()
}
