//! `llm_sql_pg_scan(token)`: a DuckDB table function whose rows come from a Postgres relation.
//!
//! Two sides, two threads:
//! * DuckDB's side ([`PgScan`], a [`TableFunction`]) runs on whatever thread DuckDB picks. It
//!   never calls Postgres: it sends a [`Request`] to the backend thread and waits for a [`Batch`].
//! * The backend side ([`serve_while`]) runs a blocking DuckDB call on a helper thread and, until
//!   it returns, serves requests with SPI (a cursor per scan, as the current role), watches for
//!   cancel requests, and catches every Postgres error: the error goes back to DuckDB as a
//!   failed scan and is raised again, unchanged, once DuckDB has returned.
//!
//! No panic crosses the C boundary: the table-function wrapper (`crate::engine::table_function`)
//! catches unwinding and reports an error.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgTryBuilder;
use pgrx::prelude::*;

use crate::engine::ffi::{Connection, InterruptTarget};
use crate::engine::table_function::{self, ColumnType, Output, TableFunction};
use crate::error::{Error, Result};
use crate::threads::{cancel_requested, with_signals_blocked};

/// Rows per batch: one DuckDB vector.
const BATCH_ROWS: usize = 2048;

pub struct ColumnSpec {
    pub name: String,
    /// Postgres expression fetched for this column.
    pub fetch: String,
    /// The type the values cross into DuckDB in.
    pub transport: ColumnType,
    /// DuckDB expression over `$c` that the `pg` view shows.
    pub view_expr: String,
    /// For numeric columns DuckDB reads as DECIMAL(38, scale) although Postgres allows more:
    /// every value is checked to fit exactly (its numeric text) before DuckDB casts it.
    pub exact_scale: Option<u8>,
}

/// What one `pg.<schema>.<table>` reference of a statement reads.
pub struct ScanSpec {
    /// The relation, quoted for Postgres.
    relation: String,
    pub columns: Vec<ColumnSpec>,
    /// Set when the statement ends: DuckDB threads still waiting give up.
    released: AtomicBool,
}

impl ScanSpec {
    pub fn new(relation: String, columns: Vec<ColumnSpec>) -> ScanSpec {
        ScanSpec {
            relation,
            columns,
            released: AtomicBool::new(false),
        }
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
    close_cursors(tokens);
}

/// One running scan (DuckDB's init data): the spec, the projected columns, its cursor.
struct ScanState {
    token: u64,
    spec: Arc<ScanSpec>,
    /// Projected column indexes into `spec.columns`; `None` for DuckDB's row id.
    projection: Vec<Option<usize>>,
    id: u64,
    finished: AtomicBool,
}

/// A column of a batch, ready to be copied into a DuckDB vector.
enum Values {
    Bool(Vec<Option<bool>>),
    I16(Vec<Option<i16>>),
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F32(Vec<Option<f32>>),
    F64(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    /// DuckDB asked for the row id: row numbers.
    RowId,
}

struct Batch {
    len: usize,
    columns: Vec<Values>,
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
    /// Open cursors by token, closed when the statement ends.
    static CURSORS: std::cell::RefCell<HashMap<u64, Vec<String>>> = std::cell::RefCell::new(HashMap::new());
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

    fn bind(
        arguments: &[i64],
    ) -> std::result::Result<(table_function::Columns, Self::Bound), String> {
        let token = arguments[0] as u64;
        let spec = specs()
            .lock()
            .ok()
            .and_then(|map| map.get(&token).cloned())
            .ok_or_else(|| {
                "this llm_sql_pg_scan has expired: read local tables as pg.<schema>.<table> in the statement itself".to_string()
            })?;
        let columns = spec
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.transport))
            .collect();
        Ok((columns, (token, spec)))
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
    for (c, values) in batch.columns.iter().enumerate() {
        match values {
            Values::Bool(v) => out.write(c, v)?,
            Values::I16(v) => out.write(c, v)?,
            Values::I32(v) => out.write(c, v)?,
            Values::I64(v) => out.write(c, v)?,
            Values::F32(v) => out.write(c, v)?,
            Values::F64(v) => out.write(c, v)?,
            Values::Text(v) => out.write_text(c, v)?,
            Values::RowId => {
                let numbers: Vec<Option<i64>> = (0..batch.len as i64).map(Some).collect();
                out.write(c, &numbers)?
            }
        }
    }
    out.set_len(batch.len)
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
                        let _ = request.reply.send(answer);
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

/// Fetches the next batch of a scan through SPI (opening its cursor on first use), catching
/// any Postgres error.
fn serve(state: &Arc<ScanState>) -> std::result::Result<Batch, Box<CaughtError>> {
    if state.spec.released.load(Ordering::SeqCst) {
        return Ok(Batch {
            len: 0,
            columns: Vec::new(),
        });
    }
    PgTryBuilder::new(|| Ok(fetch_batch(state)))
        .catch_others(|error| Err(Box::new(error)))
        .execute()
}

fn cursor_name(state: &ScanState) -> String {
    format!("llm_sql_pg_scan_{}_{}", state.token, state.id)
}

fn fetch_batch(state: &ScanState) -> Batch {
    let name = cursor_name(state);
    let spec = &state.spec;
    Spi::connect(|client| {
        let mut cursor = match client.find_cursor(&name) {
            Ok(cursor) => cursor,
            Err(_) => {
                let list: Vec<&str> = state
                    .projection
                    .iter()
                    .map(|p| p.map_or("NULL::int8", |i| spec.columns[i].fetch.as_str()))
                    .collect();
                let query = format!("SELECT {} FROM {}", list.join(", "), spec.relation);
                // SAFETY: SPI_cursor_open with a name of our own, read-only, current snapshot.
                let portal = unsafe {
                    let c_query = CString::new(query).unwrap_or_default();
                    let c_name = CString::new(name.clone()).unwrap_or_default();
                    let plan = pg_sys::SPI_prepare(c_query.as_ptr(), 0, std::ptr::null_mut());
                    if plan.is_null() {
                        pgrx::error!("could not plan the scan of {}", spec.relation);
                    }
                    pg_sys::SPI_cursor_open(
                        c_name.as_ptr(),
                        plan,
                        std::ptr::null_mut(),
                        std::ptr::null(),
                        true,
                    )
                };
                if portal.is_null() {
                    pgrx::error!("could not open the scan of {}", spec.relation);
                }
                CURSORS.with(|c| {
                    c.borrow_mut()
                        .entry(state.token)
                        .or_default()
                        .push(name.clone())
                });
                client
                    .find_cursor(&name)
                    .expect("the cursor was just opened")
            }
        };
        let table = cursor.fetch(BATCH_ROWS as libc::c_long).expect("SPI fetch");
        let mut columns: Vec<Values> = state
            .projection
            .iter()
            .map(|p| match p.map(|i| spec.columns[i].transport) {
                None => Values::RowId,
                Some(ColumnType::Bool) => Values::Bool(Vec::new()),
                Some(ColumnType::SmallInt) => Values::I16(Vec::new()),
                Some(ColumnType::Integer) => Values::I32(Vec::new()),
                Some(ColumnType::BigInt) => Values::I64(Vec::new()),
                Some(ColumnType::Float) => Values::F32(Vec::new()),
                Some(ColumnType::Double) => Values::F64(Vec::new()),
                Some(ColumnType::Varchar) => Values::Text(Vec::new()),
            })
            .collect();
        let mut len = 0;
        for row in table {
            for (i, values) in columns.iter_mut().enumerate() {
                let ordinal = i + 1;
                match values {
                    Values::Bool(v) => v.push(row.get(ordinal).expect("bool column")),
                    Values::I16(v) => v.push(row.get(ordinal).expect("int2 column")),
                    Values::I32(v) => v.push(row.get(ordinal).expect("int4 column")),
                    Values::I64(v) => v.push(row.get(ordinal).expect("int8 column")),
                    Values::F32(v) => v.push(row.get(ordinal).expect("float4 column")),
                    Values::F64(v) => v.push(row.get(ordinal).expect("float8 column")),
                    Values::Text(v) => {
                        let text: Option<String> = row.get(ordinal).expect("text column");
                        if let (Some(text), Some(column)) = (&text, state.projection[i]) {
                            check_exact(&spec.columns[column], &spec.relation, text);
                        }
                        v.push(text)
                    }
                    Values::RowId => {}
                }
            }
            len += 1;
        }
        cursor.detach_into_name();
        Batch { len, columns }
    })
}

/// Raises 22003 when a numeric value does not fit the column's DECIMAL(38, scale) exactly.
fn check_exact(column: &ColumnSpec, relation: &str, text: &str) {
    let Some(scale) = column.exact_scale else {
        return;
    };
    if fits_decimal(text, scale) {
        return;
    }
    let shown: String = text.chars().take(60).collect();
    Error::new(
        PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        format!(
            "numeric value {shown} of column \"{}\" of {relation} does not fit DuckDB's DECIMAL(38,{scale})",
            column.name
        ),
    )
    .with_detail(format!(
        "DuckDB reads this column as DECIMAL(38,{scale}): at most {} digits before the point and \
         {scale} after, and no NaN or infinity. llm_sql does not round it silently.",
        38 - scale
    ))
    .with_hint(
        "Declare the column's precision and scale (numeric(p,s) with p <= 38), or SET \
         llm_sql.numeric_as_double = on to read it as DOUBLE (inexact).",
    )
    .report()
}

/// True when the numeric text `text` (Postgres's output: digits, one point, a sign, or
/// NaN/Infinity) equals a DECIMAL(38, scale) value.
pub fn fits_decimal(text: &str, scale: u8) -> bool {
    let Some((_, whole, fraction)) = crate::engine::types::decimal_parts(text) else {
        return false;
    };
    fraction.trim_end_matches('0').len() <= usize::from(scale)
        && whole.len() <= 38 - usize::from(scale)
}

/// Closes the cursors of finished scans (backend thread; they may already be gone with an
/// aborted transaction).
fn close_cursors(tokens: &[u64]) {
    if std::thread::panicking() {
        // Unwinding into a Postgres error: the transaction's abort closes them.
        return;
    }
    let names: Vec<String> = CURSORS.with(|c| {
        let mut c = c.borrow_mut();
        tokens
            .iter()
            .filter_map(|t| c.remove(t))
            .flatten()
            .collect()
    });
    for name in names {
        let Ok(c_name) = CString::new(name) else {
            continue;
        };
        // SAFETY: looks the portal up by name and closes it if it still exists.
        unsafe {
            let portal = pg_sys::SPI_cursor_find(c_name.as_ptr());
            if !portal.is_null() {
                pg_sys::SPI_cursor_close(portal);
            }
        }
    }
}
