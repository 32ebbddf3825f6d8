//! The backend thread's half of a local scan: the next batch of a relation's rows, as DuckDB
//! columns, made by one guarded call into `pg_columns.c` per batch.
//!
//! A scan's rows come from a heap scan when `pg_columns.c` allows it (a table or materialized
//! view, no row-level security for the current role, the executor's privilege check passed),
//! and otherwise from an SPI cursor running `SELECT <columns> FROM <relation>` as the current
//! role, where Postgres applies policies and reads views and foreign or partitioned tables.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, CString};

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

use super::pg_scan::{ColumnSpec, ScanMode, ScanSpec};
use crate::engine::table_function::ColumnType;
use crate::quote;

/// Rows per batch: one DuckDB vector.
pub const BATCH_ROWS: usize = 2048;

/// How `pg_columns.c` converts a column's values (its `LLM_SQL_KIND_*`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool = 1,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Date,
    Timestamp,
    Decimal,
    NumericDouble,
    Uuid,
    Text,
    Bpchar,
    Name,
    Bytea,
    Jsonb,
    /// No value: the heap block a copied row came from (a copy's build only).
    Block,
    /// No binary form: read as `::text` through the executor (a cursor), then as text.
    AsText,
}

impl Kind {
    fn in_c(self) -> i32 {
        match self {
            Kind::AsText => Kind::Text as i32,
            kind => kind as i32,
        }
    }
}

/// One column of a batch as `pg_columns.c` fills it (its `LlmSqlColumn`).
#[repr(C)]
struct CColumn {
    source: i32,
    kind: i32,
    width: i32,
    scale: i32,
    name: *const c_char,
    data: *mut u8,
    nulls: *mut u8,
    offsets: *mut u32,
    bytes: *const u8,
    bytes_len: u64,
    bytes_cap: u64,
}

// `pg_columns.c`. Declared "C": C code does not unwind; its ERRORs longjmp, which
// pg_guard_ffi_boundary catches around every call below.
unsafe extern "C" {
    fn llm_sql_heap_begin(
        relid: Oid,
        attnums: *const i16,
        types: *const Oid,
        typmods: *const i32,
        count: i32,
        range_starts: *const u32,
        range_ends: *const u32,
        nranges: i32,
    ) -> i32;
    fn llm_sql_copy_begin(
        relid: Oid,
        attnums: *const i16,
        types: *const Oid,
        typmods: *const i32,
        count: i32,
    ) -> i32;
    fn llm_sql_copy_fill(
        id: i32,
        columns: *mut CColumn,
        count: i32,
        capacity: i32,
        relation: *const c_char,
    ) -> i32;
    fn llm_sql_copy_size(id: i32, nblocks: *mut u32, nvm: *mut u32);
    fn llm_sql_copy_lsns(id: i32, page_lsns: *mut u64, vm_lsns: *mut u64);
    fn llm_sql_cursor_begin() -> i32;
    fn llm_sql_reader_end(id: i32);
    fn llm_sql_heap_fill(
        id: i32,
        columns: *mut CColumn,
        count: i32,
        capacity: i32,
        relation: *const c_char,
    ) -> i32;
    fn llm_sql_cursor_fill(
        id: i32,
        portal: pg_sys::Portal,
        columns: *mut CColumn,
        count: i32,
        capacity: i32,
        relation: *const c_char,
    ) -> i32;
}

/// Runs `call` (a call into `pg_columns.c`) as pgrx runs Postgres functions: an ERROR raised
/// inside becomes a Rust panic here, which the caller's `PgTryBuilder` catches.
fn guarded<T>(call: impl FnOnce() -> T) -> T {
    // SAFETY: on the backend thread; `call` is a single C call with nothing to drop.
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(call) }
}

/// One column of a batch, ready to be copied into a DuckDB vector.
pub enum BatchColumn {
    /// Values in DuckDB's layout (`ty.width()` bytes each); a non-zero null flag is NULL.
    Fixed {
        ty: ColumnType,
        data: Vec<u8>,
        nulls: Vec<u8>,
    },
    /// Row r is `bytes[offsets[r]..offsets[r + 1]]`.
    Strings {
        ty: ColumnType,
        offsets: Vec<u32>,
        bytes: Vec<u8>,
        nulls: Vec<u8>,
    },
    /// DuckDB asked for row ids: numbers from `first`.
    RowIds { first: i64 },
}

pub struct Batch {
    pub len: usize,
    pub columns: Vec<BatchColumn>,
}

impl Batch {
    pub fn empty() -> Batch {
        Batch {
            len: 0,
            columns: Vec::new(),
        }
    }
}

/// A projected column of a scan: where its values are in a row, and its spec.
struct Projected {
    source: i32,
    name: CString,
    kind: Kind,
    transport: ColumnType,
}

/// One running scan on the backend side.
struct Producer {
    token: u64,
    reader: i32,
    /// The reader builds a copy (`llm_sql_copy_fill`).
    building: bool,
    /// The cursor's name, when rows come through the executor.
    cursor: Option<CString>,
    relation: CString,
    /// Per projected column of DuckDB's scan: `None` for DuckDB's row id.
    columns: Vec<Option<Projected>>,
    rows_so_far: i64,
    /// The next batch, made while DuckDB worked on the previous one.
    ahead: Option<Batch>,
    /// The last batch was empty: a heap scan must not be asked again (it would start over).
    exhausted: bool,
}

thread_local! {
    /// Running scans by scan id; ended when their statement ends.
    static PRODUCERS: RefCell<HashMap<u64, Producer>> = RefCell::new(HashMap::new());
}

/// The next batch of scan `scan` (DuckDB's scan of `spec` reading `projection`: indexes into
/// `spec.columns`, `None` for the row id). Raises Postgres errors (the caller catches them).
pub fn next_batch(scan: u64, token: u64, spec: &ScanSpec, projection: &[Option<usize>]) -> Batch {
    let started = PRODUCERS.with(|p| p.borrow().contains_key(&scan));
    if !started {
        let producer = start(token, spec, projection);
        PRODUCERS.with(|p| p.borrow_mut().insert(scan, producer));
    }
    PRODUCERS.with(|p| {
        let mut producers = p.borrow_mut();
        let producer = producers.get_mut(&scan).expect("the scan was just started");
        producer.ahead.take().unwrap_or_else(|| fill(producer))
    })
}

/// Makes the batch after the one just handed to DuckDB, so that the backend converts rows while
/// DuckDB computes. (A value DuckDB cannot hold is thus an error up to two batches before
/// DuckDB would have read it, as with any read-ahead.)
pub fn make_ahead(scan: u64) {
    PRODUCERS.with(|p| {
        let mut producers = p.borrow_mut();
        if let Some(producer) = producers.get_mut(&scan) {
            if producer.ahead.is_none() && !producer.exhausted {
                producer.ahead = Some(fill(producer));
            }
        }
    })
}

fn start(token: u64, spec: &ScanSpec, projection: &[Option<usize>]) -> Producer {
    // (A build's last column, past the spec's, is the block number.)
    let specs: Vec<Option<Option<&ColumnSpec>>> = projection
        .iter()
        .map(|p| p.map(|i| spec.columns.get(i)))
        .collect();
    let read: Vec<&ColumnSpec> = specs.iter().flatten().flatten().copied().collect();
    let relation = CString::new(spec.relation.clone()).unwrap_or_default();
    let heap = if read.iter().any(|c| c.kind == Kind::AsText) {
        0
    } else {
        begin_heap(spec, &read)
    };
    let through_cursor = heap == 0;
    if through_cursor && spec.mode != ScanMode::Whole {
        // Reading every row here would repeat the rows the copy stands for.
        pgrx::error!(
            "llm_sql: {} can no longer be read block by block; run the statement again",
            spec.relation
        );
    }
    let mut position = 0;
    let columns = specs
        .iter()
        .map(|c| {
            c.map(|c| match c {
                None => Projected {
                    source: -1,
                    name: CString::from(c"blk"),
                    kind: Kind::Block,
                    transport: ColumnType::BigInt,
                },
                Some(c) => Projected {
                    source: if through_cursor {
                        position += 1;
                        position - 1
                    } else {
                        i32::from(c.attnum) - 1
                    },
                    name: CString::new(c.name.clone()).unwrap_or_default(),
                    kind: c.kind,
                    transport: c.transport,
                },
            })
        })
        .collect();
    if !through_cursor {
        return Producer {
            token,
            reader: heap,
            building: spec.mode == ScanMode::Build,
            cursor: None,
            relation,
            columns,
            rows_so_far: 0,
            ahead: None,
            exhausted: false,
        };
    }
    let list: Vec<String> = read
        .iter()
        .map(|c| match c.kind {
            Kind::AsText => format!("{}::text", quote::ident(&c.name)),
            _ => quote::ident(&c.name),
        })
        .collect();
    let query = CString::new(format!("SELECT {} FROM {}", list.join(", "), spec.relation))
        .unwrap_or_default();
    let name =
        CString::new(format!("llm_sql_pg_scan_{token}_{}", next_cursor())).unwrap_or_default();
    Spi::connect(|_| {
        // SAFETY: SPI is connected; a read-only cursor of our own name, with the statement's
        // snapshot, as the current role.
        unsafe {
            let plan = pg_sys::SPI_prepare(query.as_ptr(), 0, std::ptr::null_mut());
            if plan.is_null() {
                pgrx::error!("could not plan the scan of {}", spec.relation);
            }
            let portal = pg_sys::SPI_cursor_open(
                name.as_ptr(),
                plan,
                std::ptr::null_mut(),
                std::ptr::null(),
                true,
            );
            if portal.is_null() {
                pgrx::error!("could not open the scan of {}", spec.relation);
            }
        }
    });
    // SAFETY: no arguments.
    let reader = guarded(|| unsafe { llm_sql_cursor_begin() });
    Producer {
        token,
        reader,
        building: false,
        cursor: Some(name),
        relation,
        columns,
        rows_so_far: 0,
        ahead: None,
        exhausted: false,
    }
}

/// Starts the heap read of `read` for `spec`'s mode: its reader, or 0 when the executor must
/// read instead.
fn begin_heap(spec: &ScanSpec, read: &[&ColumnSpec]) -> i32 {
    let attnums: Vec<i16> = read.iter().map(|c| c.attnum).collect();
    let types: Vec<Oid> = read.iter().map(|c| c.type_oid).collect();
    let typmods: Vec<i32> = read.iter().map(|c| c.typmod).collect();
    let count = read.len() as i32;
    let (starts, ends): (Vec<u32>, Vec<u32>) = match &spec.mode {
        ScanMode::Blocks(ranges) => ranges.iter().copied().unzip(),
        _ => (Vec::new(), Vec::new()),
    };
    let nranges = match spec.mode {
        ScanMode::Blocks(_) => starts.len() as i32,
        _ => -1,
    };
    match spec.mode {
        // SAFETY: arrays of `count` elements each.
        ScanMode::Build => guarded(|| unsafe {
            llm_sql_copy_begin(
                spec.relid,
                attnums.as_ptr(),
                types.as_ptr(),
                typmods.as_ptr(),
                count,
            )
        }),
        // SAFETY: arrays of `count` elements each, and of `nranges` for the ranges.
        _ => guarded(|| unsafe {
            llm_sql_heap_begin(
                spec.relid,
                attnums.as_ptr(),
                types.as_ptr(),
                typmods.as_ptr(),
                count,
                starts.as_ptr(),
                ends.as_ptr(),
                nranges,
            )
        }),
    }
}

/// What a finished build recorded: each block's LSN when copied (0: not copied) and each
/// visibility-map page's LSN before its blocks were read. `None` if `token` built nothing.
pub fn take_build(token: u64) -> Option<(Vec<u64>, Vec<u64>)> {
    let reader = PRODUCERS.with(|p| {
        p.borrow()
            .values()
            .find(|producer| producer.token == token && producer.building)
            .map(|producer| producer.reader)
    })?;
    let (mut nblocks, mut nvm) = (0u32, 0u32);
    // SAFETY: our reader; out-parameters.
    guarded(|| unsafe { llm_sql_copy_size(reader, &mut nblocks, &mut nvm) });
    let mut page_lsns = vec![0u64; nblocks as usize];
    let mut vm_lsns = vec![0u64; nvm as usize];
    // SAFETY: arrays of the sizes llm_sql_copy_size gave.
    guarded(|| unsafe { llm_sql_copy_lsns(reader, page_lsns.as_mut_ptr(), vm_lsns.as_mut_ptr()) });
    Some((page_lsns, vm_lsns))
}

fn next_cursor() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Buffers of one column for one batch, owned here while C writes into them.
struct Buffers {
    data: Vec<u8>,
    nulls: Vec<u8>,
    offsets: Vec<u32>,
}

fn fill(producer: &mut Producer) -> Batch {
    if producer.exhausted {
        return Batch::empty();
    }
    let projected: Vec<&Projected> = producer.columns.iter().flatten().collect();
    let mut buffers: Vec<Buffers> = projected
        .iter()
        .map(|c| Buffers {
            data: vec![0; c.transport.width().unwrap_or(0) * BATCH_ROWS],
            nulls: vec![0; BATCH_ROWS],
            offsets: if c.transport.width().is_none() {
                vec![0; BATCH_ROWS + 1]
            } else {
                Vec::new()
            },
        })
        .collect();
    let mut c_columns: Vec<CColumn> = projected
        .iter()
        .zip(buffers.iter_mut())
        .map(|(c, b)| {
            let (width, scale) = match c.transport {
                ColumnType::Decimal { width, scale } => (i32::from(width), i32::from(scale)),
                _ => (0, 0),
            };
            CColumn {
                source: c.source,
                kind: c.kind.in_c(),
                width,
                scale,
                name: c.name.as_ptr(),
                data: b.data.as_mut_ptr(),
                nulls: b.nulls.as_mut_ptr(),
                offsets: b.offsets.as_mut_ptr(),
                bytes: std::ptr::null(),
                bytes_len: 0,
                bytes_cap: 0,
            }
        })
        .collect();
    let (reader, count, relation) = (
        producer.reader,
        c_columns.len() as i32,
        producer.relation.as_ptr(),
    );
    let columns = c_columns.as_mut_ptr();
    let rows = match &producer.cursor {
        // SAFETY: `columns` points at `count` columns whose buffers hold BATCH_ROWS rows.
        None if producer.building => guarded(|| unsafe {
            llm_sql_copy_fill(reader, columns, count, BATCH_ROWS as i32, relation)
        }),
        // SAFETY: as above.
        None => guarded(|| unsafe {
            llm_sql_heap_fill(reader, columns, count, BATCH_ROWS as i32, relation)
        }),
        Some(name) => Spi::connect(|_| {
            // SAFETY: looks our own cursor up by name while SPI is connected.
            let portal = unsafe { pg_sys::SPI_cursor_find(name.as_ptr()) };
            if portal.is_null() {
                pgrx::error!("the cursor of a local table scan has gone");
            }
            // SAFETY: as above, with an open cursor.
            guarded(|| unsafe {
                llm_sql_cursor_fill(reader, portal, columns, count, BATCH_ROWS as i32, relation)
            })
        }),
    };
    let rows = rows.max(0) as usize;
    producer.exhausted = rows == 0;
    let first = producer.rows_so_far;
    producer.rows_so_far += rows as i64;
    let mut filled = projected.iter().zip(buffers).zip(&c_columns);
    let columns = producer
        .columns
        .iter()
        .map(|column| match column {
            None => BatchColumn::RowIds { first },
            Some(_) => {
                let ((c, mut b), c_column) = filled.next().expect("one buffer per column");
                match c.transport.width() {
                    Some(width) => {
                        b.data.truncate(rows * width);
                        b.nulls.truncate(rows);
                        BatchColumn::Fixed {
                            ty: c.transport,
                            data: b.data,
                            nulls: b.nulls,
                        }
                    }
                    None => {
                        let bytes = if c_column.bytes.is_null() {
                            Vec::new()
                        } else {
                            // SAFETY: C wrote `bytes_len` bytes there, alive until the next
                            // batch of this reader.
                            unsafe {
                                std::slice::from_raw_parts(
                                    c_column.bytes,
                                    c_column.bytes_len as usize,
                                )
                            }
                            .to_vec()
                        };
                        b.offsets.truncate(rows + 1);
                        b.nulls.truncate(rows);
                        BatchColumn::Strings {
                            ty: c.transport,
                            offsets: b.offsets,
                            bytes,
                            nulls: b.nulls,
                        }
                    }
                }
            }
        })
        .collect();
    Batch { len: rows, columns }
}

/// Ends the scans of a finished statement (backend thread). While unwinding from an error, only
/// forgets them: the transaction's abort releases their buffers, locks and cursors.
pub fn end(tokens: &[u64]) {
    let ended: Vec<Producer> = PRODUCERS.with(|p| {
        let mut producers = p.borrow_mut();
        let scans: Vec<u64> = producers
            .iter()
            .filter(|(_, producer)| tokens.contains(&producer.token))
            .map(|(scan, _)| *scan)
            .collect();
        scans
            .iter()
            .filter_map(|scan| producers.remove(scan))
            .collect()
    });
    if std::thread::panicking() {
        return;
    }
    for producer in ended {
        // SAFETY: ends our reader; a no-op when its transaction already released it.
        guarded(|| unsafe { llm_sql_reader_end(producer.reader) });
        if let Some(name) = producer.cursor {
            // SAFETY: looks the portal up by name and closes it if it still exists.
            unsafe {
                let portal = pg_sys::SPI_cursor_find(name.as_ptr());
                if !portal.is_null() {
                    pg_sys::SPI_cursor_close(portal);
                }
            }
        }
    }
}
