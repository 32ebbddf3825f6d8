//! Columnar copies of local tables, kept in the role's DuckDB as native tables.
//!
//! A copy holds the rows of a table's all-visible pages, each with the block it came from, in
//! `llm_sql_copies.main.t<oid>`. A statement reading `pg.<schema>.<table>` uses it for every
//! page that `pg_copy.c` finds unchanged since it was copied, and reads the other pages live
//! with the statement's snapshot: the view is `SELECT … FROM <copy> [WHERE blk NOT IN <stale
//! pages>] UNION ALL SELECT … FROM llm_sql_pg_scan(<token for the other pages>)`. The answer is
//! therefore exactly what Postgres would return, for any snapshot: the transaction's own
//! writes, other sessions' commits and VACUUM all show in which pages are read live
//! (`pg_copy.c` says why).
//!
//! A copy is only for roles with SELECT on the whole table and no row-level security, for
//! logged tables and materialized views (`pg_copy.c`), and only while the relation keeps its
//! file (TRUNCATE, VACUUM FULL, CLUSTER and rewriting ALTERs give it a new one) and its
//! columns. It is built on the first statement that reads the table, or by `llm_sql.warm`;
//! copies are dropped, least recently used first, to stay within `llm_sql.local_copy_memory`
//! (counted as the heap size of the copied pages), and at the start of every statement when
//! the role may no longer use them.
//!
//! A copy can also be stored on disk for every session of the database (`stored.rs`): an
//! instance attaches the stored copies when it opens and uses them as it uses its own, checked
//! page by page in the same way; they are not counted in `llm_sql.local_copy_memory` (DuckDB
//! reads them through its buffer cache).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::pg_sys::{self, Oid};
use pgrx::PgSqlErrorCode;

use super::pg_scan::{self, copy_column, ScanMode, ScanSpec, BLOCK_COLUMN};
use super::producer::Kind;
use super::stored;
use crate::engine::ffi::Connection;
use crate::engine::table_function::ColumnType;
use crate::error::{Error, Result};
use crate::settings;

/// The DuckDB catalog of the copies, llm_sql's own.
pub const CATALOG: &str = "llm_sql_copies";

/// A copy is rebuilt rather than used when its stale blocks make more than this many ranges,
/// or when they, or the blocks a new build would add (all-visible now but not copied, or added
/// since), are more than this share of the table.
const MAX_STALE_RANGES: usize = 64;
const MAX_STALE_SHARE: f64 = 0.2;

/// The background worker stores a copy again once a new build would add more than this share
/// of the table (pages all-visible now that the copy cannot stand for): before sessions would
/// start copying the table themselves.
pub const REFRESH_SHARE: f64 = 0.1;

/// The block size of a stored copy's DuckDB file (see `Copies::store`).
const STORED_BLOCK_SIZE: u32 = 65536;

// `pg_copy.c`. Declared "C": its ERRORs longjmp, caught by pg_guard_ffi_boundary around each call.
unsafe extern "C" {
    fn llm_sql_copy_status(relid: Oid, relfilenumber: *mut u32) -> i32;
    fn llm_sql_copy_still_allowed(relid: Oid, relfilenumber: u32) -> i32;
    fn llm_sql_copy_check(
        relid: Oid,
        page_lsns: *const u64,
        nblocks: u32,
        vm_lsns: *const u64,
        nvm: u32,
        usable: *mut u8,
        current: *mut u32,
        appended_visible: *mut u32,
    ) -> i32;
}

fn guarded<T>(call: impl FnOnce() -> T) -> T {
    // SAFETY: on the backend thread; `call` is a single C call with nothing to drop.
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(call) }
}

/// One table's copy.
struct Copy {
    /// The DuckDB table holding its rows.
    table: String,
    /// Attached from the data directory (`stored.rs`) rather than built in this instance.
    stored: bool,
    /// The stored file's inode (a file put in its place since is a newer copy).
    inode: u64,
    relfilenumber: u32,
    /// The copied columns' [`signature`].
    signature: String,
    /// What its pages are checked against; `None` for a stored copy until a statement reads
    /// its table (then read from the file: most of what attaching it would read).
    lsns: Option<Lsns>,
    /// The table's blocks when it was copied, and how many of them were copied.
    blocks: u64,
    copied_blocks: u64,
    rows: u64,
    last_used: u64,
    uses: u64,
    /// At the last statement that used it: blocks read from the copy, and read live.
    last_copied: u64,
    last_live: u64,
}

/// The LSNs a copy's pages are checked against.
pub struct Lsns {
    /// Per block: its LSN when copied, 0 when it was not copied.
    pub page: Vec<u64>,
    /// Per visibility-map page: its LSN before the build read any of its blocks.
    pub vm: Vec<u64>,
}

impl Lsns {
    pub fn copied_blocks(&self) -> u64 {
        self.page.iter().filter(|lsn| **lsn != 0).count() as u64
    }
}

impl Copy {
    fn new(table: String, relfilenumber: u32, signature: String, rows: u64, lsns: Lsns) -> Copy {
        Copy {
            table,
            stored: false,
            inode: 0,
            relfilenumber,
            signature,
            blocks: lsns.page.len() as u64,
            copied_blocks: lsns.copied_blocks(),
            lsns: Some(lsns),
            rows,
            last_used: 0,
            uses: 0,
            last_copied: 0,
            last_live: 0,
        }
    }

    /// Its size as shown: the heap size of its pages.
    fn bytes(&self) -> u64 {
        self.copied_blocks * pg_sys::BLCKSZ as u64
    }

    /// What it counts for in `llm_sql.local_copy_memory` (stored copies are on disk).
    fn memory(&self) -> u64 {
        if self.stored {
            0
        } else {
            self.bytes()
        }
    }
}

/// The copies of one DuckDB instance, by relation.
#[derive(Default)]
pub struct Copies {
    by_relation: RefCell<HashMap<Oid, Copy>>,
    clock: Cell<u64>,
    /// The instance may still open files (not restricted): stored copies written after it
    /// opened can be attached on first use.
    may_open_files: Cell<bool>,
}

/// A copy as `llm_sql.local_copies()` shows it.
pub struct CopyInfo {
    pub relid: Oid,
    pub blocks: i64,
    pub copied_blocks: i64,
    pub rows: i64,
    pub bytes: i64,
    pub uses: i64,
    pub last_copied_blocks: i64,
    pub last_live_blocks: i64,
    /// Stored in the data directory for every session, not built in this one.
    pub stored: bool,
}

/// How a statement reads a copied table: the copy, less `stale` blocks, and the blocks
/// `live` (ranges `start..end`) through the live scan.
pub struct CopyRead {
    pub table: String,
    pub stale: Vec<(u32, u32)>,
    pub live: Vec<(u32, u32)>,
    /// The share of the table's blocks read live (for DuckDB's row estimates).
    pub live_share: f64,
}

impl CopyRead {
    /// The SELECT over the copy, its columns named as the view's.
    pub fn select(&self, spec: &ScanSpec) -> String {
        let columns: Vec<String> = spec
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} AS {}",
                    copy_column(c.attnum),
                    crate::quote::ident(&c.name)
                )
            })
            .collect();
        let filter = if self.stale.is_empty() {
            String::new()
        } else {
            let ranges: Vec<String> = self
                .stale
                .iter()
                .map(|(start, end)| format!("{BLOCK_COLUMN} BETWEEN {start} AND {}", end - 1))
                .collect();
            format!(" WHERE NOT ({})", ranges.join(" OR "))
        };
        format!(
            "SELECT {} FROM {}{filter}",
            if columns.is_empty() {
                "*".to_string()
            } else {
                columns.join(", ")
            },
            self.table
        )
    }
}

fn table_name(relid: Oid) -> String {
    format!("{CATALOG}.main.t{}", u32::from(relid))
}

/// What a copy's columns must still be: their attnums and types, and the DuckDB types they
/// were stored in (`llm_sql.numeric_as_double` changes those).
fn signature(spec: &ScanSpec) -> String {
    let columns: Vec<(i16, Oid, i32, ColumnType)> = spec
        .columns
        .iter()
        .map(|c| (c.attnum, c.type_oid, c.typmod, c.transport))
        .collect();
    format!("{columns:?}")
}

/// The relation's file number if the current role may read it from a copy (locking it until
/// the transaction ends).
fn status(relid: Oid) -> Option<u32> {
    let mut relfilenumber = 0u32;
    // SAFETY: an out-parameter.
    let allowed = guarded(|| unsafe { llm_sql_copy_status(relid, &mut relfilenumber) });
    (allowed == 1).then_some(relfilenumber)
}

/// Whether the current role may still use a copy of `relid` made from file `relfilenumber`
/// (0: from any file), without locking the table.
fn still_allowed(relid: Oid, relfilenumber: u32) -> bool {
    // SAFETY: plain arguments.
    guarded(|| unsafe { llm_sql_copy_still_allowed(relid, relfilenumber) }) == 1
}

fn limit_bytes() -> u64 {
    settings::LOCAL_COPY_MEMORY_MB.get().max(0) as u64 * 1024 * 1024
}

/// Runs a DuckDB statement that reads local tables (a build) while this thread serves them.
fn run_serving(conn: &Connection, sql: &str) -> Result<()> {
    let outcome = pg_scan::serve_while(conn.interrupt_target(), || conn.run(sql));
    outcome.map_err(|error| {
        pgrx::check_for_interrupts!();
        Error::from(error)
    })
}

impl Copies {
    fn tick(&self) -> u64 {
        self.clock.set(self.clock.get() + 1);
        self.clock.get()
    }

    /// Attaches this database's stored copies of the tables the current role may read from a
    /// copy when the instance opens, if it may not open files later (`may_open_files`); one
    /// that may attaches each on first use instead (`read`). Attaching costs about a
    /// millisecond each.
    pub fn attach_stored(&self, conn: &Connection, may_open_files: bool) {
        self.may_open_files.set(may_open_files);
        if may_open_files {
            return;
        }
        for relid in stored::relids() {
            if still_allowed(relid, 0) {
                self.attach_one(conn, relid);
            }
        }
    }

    /// Attaches the stored copy of `relid` if there is a usable one; never an error (the
    /// table is then read live or copied in memory as without it).
    fn attach_one(&self, conn: &Connection, relid: Oid) -> bool {
        let catalog = stored::catalog(relid);
        let path = stored::path(relid);
        // (Read first: a file put in place after this is then attached again later.)
        let inode = stored::inode(relid);
        if inode == 0 {
            return false;
        }
        let attached = (|| -> Result<Option<stored::Header>> {
            conn.run(&format!(
                "ATTACH {} AS {catalog} (READ_ONLY)",
                crate::quote::duck_literal(&path.to_string_lossy())
            ))?;
            stored::read_header(conn, &catalog)
        })();
        let header = match attached {
            Ok(Some(header)) => header,
            other => {
                if let Err(error) = other {
                    pgrx::debug1!(
                        "llm_sql: stored copy {} not used: {}",
                        path.display(),
                        error.message
                    );
                }
                let _ = conn.run(&format!("DETACH DATABASE IF EXISTS {catalog}"));
                return false;
            }
        };
        let last_used = self.tick();
        self.by_relation.borrow_mut().insert(
            relid,
            Copy {
                table: format!("{catalog}.main.rows"),
                stored: true,
                inode,
                relfilenumber: header.relfilenumber,
                signature: header.signature,
                lsns: None,
                blocks: header.blocks,
                copied_blocks: header.copied_blocks,
                rows: header.rows,
                last_used,
                uses: 0,
                last_copied: 0,
                last_live: 0,
            },
        );
        true
    }

    /// Reads the LSNs of `relid`'s stored copy if they were not yet; false when there is no
    /// copy (it is dropped if its LSNs cannot be read).
    fn read_lsns(&self, conn: &Connection, relid: Oid) -> Result<bool> {
        match self.by_relation.borrow().get(&relid) {
            None => return Ok(false),
            Some(copy) if copy.lsns.is_some() => return Ok(true),
            Some(_) => {}
        }
        match stored::read_lsns(conn, &stored::catalog(relid)) {
            Ok(Some(lsns)) => {
                if let Some(copy) = self.by_relation.borrow_mut().get_mut(&relid) {
                    copy.lsns = Some(lsns);
                }
                Ok(true)
            }
            other => {
                if let Err(error) = other {
                    pgrx::debug1!(
                        "llm_sql: stored copy of table {} not used: {}",
                        u32::from(relid),
                        error.message
                    );
                }
                self.drop_copy(conn, relid)?;
                Ok(false)
            }
        }
    }

    fn drop_copy(&self, conn: &Connection, relid: Oid) -> Result<()> {
        if let Some(copy) = self.by_relation.borrow_mut().remove(&relid) {
            if copy.stored {
                conn.run(&format!(
                    "DETACH DATABASE IF EXISTS {}",
                    stored::catalog(relid)
                ))?;
            } else {
                conn.run(&format!("DROP TABLE IF EXISTS {}", copy.table))?;
            }
        }
        Ok(())
    }

    /// Drops the copies the current role may no longer use, or whose relation has a new file
    /// (at the start of every statement, before DuckDB sees it; without locking the tables).
    pub fn sweep(&self, conn: &Connection) -> Result<()> {
        let stale: Vec<Oid> = self
            .by_relation
            .borrow()
            .iter()
            .filter(|(relid, copy)| !still_allowed(**relid, copy.relfilenumber))
            .map(|(relid, _)| *relid)
            .collect();
        for relid in stale {
            self.drop_copy(conn, relid)?;
        }
        // Within llm_sql.local_copy_memory, should it have been lowered (0: none).
        self.make_room(conn, 0, Oid::INVALID)?;
        Ok(())
    }

    /// Makes room for `bytes` more within the limit, dropping least recently used copies;
    /// false when the limit is smaller than `bytes` itself.
    fn make_room(&self, conn: &Connection, bytes: u64, keep: Oid) -> Result<bool> {
        let limit = limit_bytes();
        if bytes > limit {
            return Ok(false);
        }
        loop {
            let (used, oldest) = {
                let copies = self.by_relation.borrow();
                let used: u64 = copies.values().map(Copy::memory).sum();
                let oldest = copies
                    .iter()
                    .filter(|(relid, copy)| **relid != keep && !copy.stored)
                    .min_by_key(|(_, copy)| copy.last_used)
                    .map(|(relid, _)| *relid);
                (used, oldest)
            };
            if used + bytes <= limit {
                return Ok(true);
            }
            match oldest {
                Some(relid) => self.drop_copy(conn, relid)?,
                None => return Ok(false),
            }
        }
    }

    /// Builds the copy of `spec`'s relation in this instance (replacing any), if it fits.
    fn build(&self, conn: &Connection, spec: &ScanSpec, relfilenumber: u32) -> Result<bool> {
        self.drop_copy(conn, spec.relid)?;
        let heap_bytes = relation_bytes(spec.relid);
        if !self.make_room(conn, heap_bytes, spec.relid)? {
            return Ok(false);
        }
        let table = table_name(spec.relid);
        let Some(built) = build_into(conn, &table, spec)? else {
            conn.run(&format!("DROP TABLE IF EXISTS {table}"))?;
            return Ok(false);
        };
        let copy = Copy {
            last_used: self.tick(),
            ..Copy::new(
                table,
                relfilenumber,
                signature(spec),
                built.rows,
                built.lsns,
            )
        };
        self.by_relation.borrow_mut().insert(spec.relid, copy);
        Ok(true)
    }

    /// How the statement about to run reads `spec`'s relation from its copy, building or
    /// rebuilding the copy when `may_build`; `None`: read it all live.
    pub fn read(
        &self,
        conn: &Connection,
        spec: &ScanSpec,
        may_build: bool,
    ) -> Result<Option<CopyRead>> {
        if spec.columns.is_empty() || spec.columns.iter().any(|c| c.kind == Kind::AsText) {
            return Ok(None);
        }
        let Some(relfilenumber) = status(spec.relid) else {
            if may_build {
                self.drop_copy(conn, spec.relid)?;
            }
            return Ok(None);
        };
        if may_build && self.may_open_files.get() {
            self.attach_if_newer(conn, spec.relid)?;
        }
        let current = {
            let copies = self.by_relation.borrow();
            copies.get(&spec.relid).map(|copy| {
                copy.relfilenumber == relfilenumber && copy.signature == signature(spec)
            })
        };
        if may_build && current == Some(true) {
            self.read_lsns(conn, spec.relid)?;
        }
        let may_build = may_build && limit_bytes() > 0;
        match current {
            Some(true) => {}
            _ if !may_build => return Ok(None),
            _ => {
                if !self.build_or_skip(conn, spec, relfilenumber)? {
                    return Ok(None);
                }
            }
        }
        let plan = self.check(spec.relid);
        if plan.is_none() && may_build {
            // Too much has changed since the copy was made: copy again.
            if self.build_or_skip(conn, spec, relfilenumber)? {
                return Ok(self.check(spec.relid));
            }
            return Ok(None);
        }
        Ok(plan)
    }

    /// Builds the copy for a statement, in a subtransaction: a value of a column the statement
    /// does not read may fail to convert (a numeric DuckDB cannot hold), and then the
    /// statement reads the table live instead, as it would without copies. Cancel still stops it.
    fn build_or_skip(
        &self,
        conn: &Connection,
        spec: &ScanSpec,
        relfilenumber: u32,
    ) -> Result<bool> {
        let built = crate::subxact::run(crate::subxact::OnSuccess::Keep, || {
            self.build(conn, spec, relfilenumber)
        });
        match built {
            Ok(built) => Ok(built),
            Err(error) => {
                pgrx::debug1!("llm_sql: no copy of {}: {}", spec.relation, error.message);
                self.drop_copy(conn, spec.relid)?;
                Ok(false)
            }
        }
    }

    /// `llm_sql_copy_check` of `relid`'s copy (after `status`, under the relation's lock).
    fn examine(&self, relid: Oid) -> Option<Examined> {
        let copies = self.by_relation.borrow();
        let copy = copies.get(&relid)?;
        let lsns = copy.lsns.as_ref()?;
        let nblocks = lsns.page.len();
        let mut usable = vec![0u8; nblocks];
        let mut current = 0u32;
        let mut appended_visible = 0u32;
        // SAFETY: arrays of the lengths given; out-parameters.
        let found = guarded(|| unsafe {
            llm_sql_copy_check(
                relid,
                lsns.page.as_ptr(),
                nblocks as u32,
                lsns.vm.as_ptr(),
                lsns.vm.len() as u32,
                usable.as_mut_ptr(),
                &mut current,
                &mut appended_visible,
            )
        });
        Some(Examined {
            usable,
            found: found.max(0) as u64,
            current,
            appended_visible,
        })
    }

    /// Attaches `relid`'s stored copy if it was stored since this instance looked, or put in
    /// place of the one it attached (only for an instance that may open files); a copy the
    /// instance built itself stays.
    fn attach_if_newer(&self, conn: &Connection, relid: Oid) -> Result<()> {
        let inode = stored::inode(relid);
        let current = self
            .by_relation
            .borrow()
            .get(&relid)
            .map(|copy| !copy.stored || copy.inode == inode);
        if current != Some(true) && inode != 0 {
            self.drop_copy(conn, relid)?;
            self.attach_one(conn, relid);
        }
        Ok(())
    }

    /// The tables whose stored copy a new build would improve by more than `share` of the
    /// table, or that got a new file since (the background worker stores those again).
    pub fn stored_behind(&self, conn: &Connection, share: f64) -> Result<Vec<Oid>> {
        if self.may_open_files.get() {
            for relid in stored::relids() {
                self.attach_if_newer(conn, relid)?;
            }
        }
        let stored: Vec<(Oid, u32)> = self
            .by_relation
            .borrow()
            .iter()
            .filter(|(_, copy)| copy.stored)
            .map(|(relid, copy)| (*relid, copy.relfilenumber))
            .collect();
        let mut behind = Vec::new();
        for (relid, relfilenumber) in stored {
            let Some(now) = status(relid) else { continue };
            if !self.read_lsns(conn, relid)? {
                continue;
            }
            let worth = now != relfilenumber
                || self
                    .examine(relid)
                    .is_some_and(|e| e.gain() as f64 > share * f64::from(e.current.max(1)));
            if worth {
                behind.push(relid);
            }
        }
        Ok(behind)
    }

    /// Which copied blocks the statement may use; `None` when the copy should be rebuilt.
    fn check(&self, relid: Oid) -> Option<CopyRead> {
        let examined = self.examine(relid)?;
        let missed = examined.gain();
        let Examined {
            usable,
            found,
            current,
            ..
        } = examined;
        let mut copies = self.by_relation.borrow_mut();
        let copy = copies.get_mut(&relid)?;
        let page_lsns = &copy.lsns.as_ref()?.page;
        let nblocks = page_lsns.len();
        let stale = ranges(nblocks, |b| page_lsns[b] != 0 && usable[b] != 1);
        let stale_blocks = copy.copied_blocks.saturating_sub(found);
        let share =
            |blocks: u64| blocks as f64 > MAX_STALE_SHARE * (u64::from(current).max(1)) as f64;
        if stale.len() > MAX_STALE_RANGES || share(stale_blocks) || share(missed) {
            return None;
        }
        // Live: the pages the copy may not stand for, and those added since it was made. (A
        // page added after this check holds no row the statement's snapshot, taken before it,
        // can see.)
        let existing = nblocks.min(current as usize);
        let mut live = ranges(existing, |b| usable[b] != 1);
        if current as usize > nblocks {
            match live.last_mut() {
                Some((_, end)) if *end as usize == nblocks => *end = current,
                _ => live.push((nblocks as u32, current)),
            }
        }
        copy.uses += 1;
        copy.last_copied = found;
        copy.last_live = u64::from(current).saturating_sub(found);
        copy.last_used = {
            self.clock.set(self.clock.get() + 1);
            self.clock.get()
        };
        Some(CopyRead {
            table: copy.table.clone(),
            stale,
            live,
            live_share: copy.last_live as f64 / f64::from(current.max(1)),
        })
    }

    /// What `llm_sql.local_copies()` lists: the copies the current role may use.
    pub fn list(&self) -> Vec<CopyInfo> {
        let mut list: Vec<CopyInfo> = self
            .by_relation
            .borrow()
            .iter()
            .filter(|(relid, copy)| still_allowed(**relid, copy.relfilenumber))
            .map(|(relid, copy)| CopyInfo {
                relid: *relid,
                blocks: copy.blocks as i64,
                copied_blocks: copy.copied_blocks as i64,
                rows: copy.rows as i64,
                bytes: copy.bytes() as i64,
                uses: copy.uses as i64,
                last_copied_blocks: copy.last_copied as i64,
                last_live_blocks: copy.last_live as i64,
                stored: copy.stored,
            })
            .collect();
        list.sort_by_key(|info| u32::from(info.relid));
        list
    }

    /// `llm_sql.warm`: builds (or rebuilds) the copy of `spec`'s relation now, stored for
    /// every session when `store` (with `options` for the DuckDB instance that writes it),
    /// else in this instance only; or says why it cannot.
    pub fn warm(
        &self,
        conn: &Connection,
        spec: &ScanSpec,
        store: Option<&[(&str, String)]>,
    ) -> Result<Warmed> {
        if spec.columns.is_empty() || spec.columns.iter().any(|c| c.kind == Kind::AsText) {
            return Err(cannot_copy(spec, "a copy holds only tables whose columns are all of types DuckDB reads exactly (numbers, text, dates and times, uuid, bytea, json)"));
        }
        let Some(relfilenumber) = status(spec.relid) else {
            return Err(cannot_copy(
                spec,
                "a copy is only kept of a logged table or materialized view that is not a catalog, for a role with SELECT on the whole table to whom row-level security does not apply",
            ));
        };
        if let Some(options) = store {
            let rows = self.store(conn, spec, relfilenumber, options)?;
            let attached = self.may_open_files.get() && self.attach_one(conn, spec.relid);
            return Ok(Warmed::Stored { rows, attached });
        }
        if !self.build(conn, spec, relfilenumber)? {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "{} is larger than llm_sql.local_copy_memory ({} MB)",
                    spec.relation,
                    settings::LOCAL_COPY_MEMORY_MB.get()
                ),
            )
            .with_hint("Ask a superuser to raise llm_sql.local_copy_memory for your role."));
        }
        let rows = self
            .by_relation
            .borrow()
            .get(&spec.relid)
            .map_or(0, |copy| copy.rows);
        Ok(Warmed::InSession { rows })
    }

    /// Writes the copy of `spec`'s relation to its file in the data directory, from a DuckDB
    /// instance of its own (this one may not open files), and drops what this instance had of
    /// the table; the rows stored.
    fn store(
        &self,
        conn: &Connection,
        spec: &ScanSpec,
        relfilenumber: u32,
        options: &[(&str, String)],
    ) -> Result<u64> {
        stored::prune()?;
        let pending = stored::Pending::new(spec.relid)?;
        let db = crate::engine::open_database(options)?;
        let writer = db.connect()?;
        pg_scan::register(&writer)?;
        let catalog = format!("{CATALOG}_build");
        // Blocks of 64 kB rather than DuckDB's 256 kB: a column's segment shares a block with
        // others' less often, so a statement reading a few columns of a table in a new session
        // reads a third fewer bytes from the file (TPC-H SF1 Q19: 53 MB instead of 88 MB; no
        // slower once in DuckDB's buffer cache). Smaller blocks compress worse.
        writer.run(&format!(
            "ATTACH {} AS {catalog} (BLOCK_SIZE {STORED_BLOCK_SIZE})",
            crate::quote::duck_literal(&pending.temporary().to_string_lossy())
        ))?;
        let Some(built) = build_into(&writer, &format!("{catalog}.main.rows"), spec)? else {
            return Err(Error::internal(format!(
                "no pages of {} were copied",
                spec.relation
            )));
        };
        let meta = stored::Meta {
            relfilenumber,
            signature: signature(spec),
            rows: built.rows,
            lsns: built.lsns,
        };
        stored::write_meta(&writer, &catalog, &meta)?;
        writer.run(&format!("DETACH DATABASE {catalog}"))?;
        drop(writer);
        drop(db);
        pending.finish()?;
        self.drop_copy(conn, spec.relid)?;
        Ok(meta.rows)
    }
}

/// Whether the current database has stored copies (a cheap look at the data directory).
pub fn any_stored() -> bool {
    !stored::relids().is_empty()
}

/// How `llm_sql.warm` kept a copy, and of how many rows.
pub enum Warmed {
    /// In the data directory for every session; `attached`: in this instance too (otherwise
    /// the instance must be reopened to see it).
    Stored {
        rows: u64,
        attached: bool,
    },
    InSession {
        rows: u64,
    },
}

/// What a build wrote.
struct Built {
    rows: u64,
    lsns: Lsns,
}

/// Copies `spec`'s relation into the new DuckDB table `table` (on `conn`'s instance);
/// `None` when no pages were read.
fn build_into(conn: &Connection, table: &str, spec: &ScanSpec) -> Result<Option<Built>> {
    let token = Released(pg_scan::add(spec.with_mode(ScanMode::Build)));
    run_serving(
        conn,
        &format!(
            "CREATE OR REPLACE TABLE {table} AS SELECT * FROM llm_sql_pg_scan({})",
            token.0
        ),
    )?;
    let Some((page_lsns, vm_lsns)) = super::producer::take_build(token.0) else {
        return Ok(None);
    };
    drop(token);
    let rows = conn
        .query_strings(&format!("SELECT count(*)::VARCHAR FROM {table}"))?
        .first()
        .cloned()
        .flatten()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(Some(Built {
        rows,
        lsns: Lsns {
            page: page_lsns,
            vm: vm_lsns,
        },
    }))
}

/// A build's scan token, released when the build ends, also by an error.
struct Released(u64);

impl Drop for Released {
    fn drop(&mut self) {
        pg_scan::release(&[self.0]);
    }
}

fn cannot_copy(spec: &ScanSpec, why: &str) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        format!("llm_sql keeps no copy of {}", spec.relation),
    )
    .with_detail(why)
    .with_hint("DuckDB reads it live instead.")
}

/// The relation's heap size now (what its copy is counted for, at most).
fn relation_bytes(relid: Oid) -> u64 {
    pgrx::Spi::get_one_with_args::<i64>("SELECT pg_catalog.pg_relation_size($1)", &[relid.into()])
        .ok()
        .flatten()
        .unwrap_or(0)
        .max(0) as u64
}

/// What `llm_sql_copy_check` found: per copied block, 1 usable, 2 all-visible but not usable
/// (a new build would copy it), 0 neither; the usable blocks; the relation's blocks now.
struct Examined {
    usable: Vec<u8>,
    found: u64,
    current: u32,
    /// Blocks added since the copy was made that are all-visible now.
    appended_visible: u32,
}

impl Examined {
    /// Blocks a new build would add: all-visible ones the copy cannot stand for, and those
    /// added since it was made that are all-visible (a build skips the others, so rebuilding
    /// for them, right after a big write and before VACUUM, would only waste a build).
    fn gain(&self) -> u64 {
        self.usable.iter().filter(|u| **u == 2).count() as u64 + u64::from(self.appended_visible)
    }
}

/// Maximal runs `start..end` of blocks `0..nblocks` for which `pick` holds.
fn ranges(nblocks: usize, pick: impl Fn(usize) -> bool) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for block in (0..nblocks).filter(|b| pick(*b)) {
        match out.last_mut() {
            Some((_, end)) if *end as usize == block => *end += 1,
            _ => out.push((block as u32, block as u32 + 1)),
        }
    }
    out
}
