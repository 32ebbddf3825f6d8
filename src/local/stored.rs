//! Stored copies: a table's copy kept in a DuckDB file under the data directory, where every
//! session of the database finds it, so that the first statement of a new session reads the
//! table at columnar speed instead of copying it first.
//!
//! `llm_sql.warm` writes one (`$PGDATA/llm_sql/copies/<database oid>/<table oid>.duckdb`): the
//! rows in table `rows`, and in table `meta` what makes them checkable later, exactly as an
//! in-memory copy is checked (`copy.rs`): the LSN of every copied page and of every
//! visibility-map page, the relation's file number and the column signature. Page LSNs only
//! compare within one history of WAL, so the file also records the cluster's system identifier
//! and timeline: a copy from another cluster (a restored or upgraded data directory) or from
//! before a point-in-time recovery is never used.
//!
//! A file is written under a temporary name by an instance of its own (no user SQL runs in it)
//! and renamed into place when complete; once in place it is never written again, only
//! replaced, so sessions attach it read-only, side by side. Files of dropped tables are
//! removed by the next `llm_sql.warm` in the database. The background worker stores a copy
//! again once enough of its table has changed (`crate::worker`).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pgrx::pg_sys::{self, Oid};

use crate::engine::ffi::Connection;
use crate::error::{Error, Result};
use crate::quote::duck_literal;

use super::copy::Lsns;

/// The layout of a stored copy's file (its tables, the columns' signature): a file of another
/// layout is not used. Raised whenever that layout changes, not with every release.
const FORMAT: &str = "2";

/// What a stored copy's `meta` says.
pub struct Meta {
    pub relfilenumber: u32,
    pub signature: String,
    pub rows: u64,
    pub lsns: Lsns,
}

/// The directory of this database's stored copies.
pub fn directory() -> PathBuf {
    // SAFETY: DataDir is set before any backend runs SQL; MyDatabaseId once connected.
    let (data_dir, database) = unsafe {
        (
            std::ffi::CStr::from_ptr(pg_sys::DataDir)
                .to_string_lossy()
                .into_owned(),
            u32::from(pg_sys::MyDatabaseId),
        )
    };
    Path::new(&data_dir)
        .join("llm_sql")
        .join("copies")
        .join(database.to_string())
}

pub fn path(relid: Oid) -> PathBuf {
    directory().join(format!("{}.duckdb", u32::from(relid)))
}

/// The inode of `relid`'s stored copy (0: none): a new copy of a table is a new file.
pub fn inode(relid: Oid) -> u64 {
    std::fs::metadata(path(relid)).map_or(0, |m| m.ino())
}

/// The DuckDB catalog a stored copy is attached as.
pub fn catalog(relid: Oid) -> String {
    format!("{}_t{}", super::copy::CATALOG, u32::from(relid))
}

/// The tables this database has stored copies of.
pub fn relids() -> Vec<Oid> {
    let Ok(entries) = std::fs::read_dir(directory()) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".duckdb")?.parse::<u32>().ok()
        })
        .map(Oid::from)
        .collect()
}

/// The cluster's system identifier and WAL timeline, within which page LSNs compare; `None`
/// during recovery (no copy is used then).
fn history() -> Option<(u64, u32)> {
    // SAFETY: plain reads of shared state on the backend thread; the timeline is only asked
    // for outside recovery, where it is valid.
    unsafe {
        if pg_sys::RecoveryInProgress() {
            return None;
        }
        Some((
            pg_sys::GetSystemIdentifier(),
            pg_sys::GetWALInsertionTimeLine(),
        ))
    }
}

fn hex(lsns: &[u64]) -> String {
    lsns.iter().map(|lsn| format!("{lsn:016x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u64>> {
    if !text.len().is_multiple_of(16) {
        return None;
    }
    (0..text.len())
        .step_by(16)
        .map(|at| u64::from_str_radix(text.get(at..at + 16)?, 16).ok())
        .collect()
}

/// Writes `meta` into the copy being stored as `catalog`.
pub fn write_meta(conn: &Connection, catalog: &str, meta: &Meta) -> Result<()> {
    let (system, timeline) = history().ok_or_else(|| {
        Error::internal("a copy cannot be stored while the server is in recovery")
    })?;
    conn.run(&format!(
        "CREATE TABLE {catalog}.main.meta AS SELECT {} AS version, '{system}' AS system_id, \
         '{timeline}' AS timeline, '{}' AS relfilenumber, {} AS signature, '{}' AS rows, \
         '{}' AS blocks, '{}' AS copied_blocks, '{}' AS page_lsns, '{}' AS vm_lsns",
        duck_literal(FORMAT),
        meta.relfilenumber,
        duck_literal(&meta.signature),
        meta.rows,
        meta.lsns.page.len(),
        meta.lsns.copied_blocks(),
        hex(&meta.lsns.page),
        hex(&meta.lsns.vm),
    ))?;
    Ok(())
}

/// What a stored copy's `meta` says of it but its LSNs: enough to attach it. (The LSNs are
/// most of `meta`, and a new session attaches every stored copy its role may use, so they are
/// read when a statement first reads the table: [`read_lsns`].)
pub struct Header {
    pub relfilenumber: u32,
    pub signature: String,
    pub rows: u64,
    pub blocks: u64,
    pub copied_blocks: u64,
}

/// Reads the header of a stored copy attached as `catalog`; `None` when it has another layout,
/// or was written in another cluster or WAL history than this one.
pub fn read_header(conn: &Connection, catalog: &str) -> Result<Option<Header>> {
    let line = first_string(
        conn,
        &format!(
            "SELECT concat_ws('|', version, system_id, timeline, relfilenumber, rows, blocks, \
             copied_blocks, signature) FROM {catalog}.main.meta"
        ),
    )?;
    let fields: Vec<&str> = line.splitn(8, '|').collect();
    let [version, system, timeline, relfilenumber, rows, blocks, copied_blocks, signature] =
        fields[..]
    else {
        return Ok(None);
    };
    let here = history().map(|(system, timeline)| (system.to_string(), timeline.to_string()));
    if version != FORMAT || here != Some((system.to_string(), timeline.to_string())) {
        return Ok(None);
    }
    let header = (|| {
        Some(Header {
            relfilenumber: relfilenumber.parse().ok()?,
            signature: signature.to_string(),
            rows: rows.parse().ok()?,
            blocks: blocks.parse().ok()?,
            copied_blocks: copied_blocks.parse().ok()?,
        })
    })();
    Ok(header)
}

/// Reads the page and visibility-map LSNs of a stored copy attached as `catalog` (whose
/// header [`read_header`] accepted); `None` when they do not parse.
pub fn read_lsns(conn: &Connection, catalog: &str) -> Result<Option<Lsns>> {
    let line = first_string(
        conn,
        &format!("SELECT concat_ws('|', page_lsns, vm_lsns) FROM {catalog}.main.meta"),
    )?;
    Ok(line.split_once('|').and_then(|(page, vm)| {
        Some(Lsns {
            page: unhex(page)?,
            vm: unhex(vm)?,
        })
    }))
}

fn first_string(conn: &Connection, sql: &str) -> Result<String> {
    Ok(conn
        .query_strings(sql)?
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_default())
}

/// A file being written, removed unless [`Pending::finish`] renames it into place.
pub struct Pending {
    temporary: PathBuf,
    target: PathBuf,
}

impl Pending {
    pub fn new(relid: Oid) -> Result<Pending> {
        let directory = directory();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&directory)
            .map_err(|e| io_error(&directory, e))?;
        // SAFETY: MyProcPid is set for the backend's life.
        let pid = unsafe { pg_sys::MyProcPid };
        let pending = Pending {
            temporary: directory.join(format!("{}.{pid}.tmp", u32::from(relid))),
            target: path(relid),
        };
        pending.remove();
        Ok(pending)
    }

    pub fn temporary(&self) -> &Path {
        &self.temporary
    }

    /// Puts the complete file in place (atomically: readers see the old file or the new one).
    pub fn finish(self) -> Result<()> {
        std::fs::rename(&self.temporary, &self.target).map_err(|e| io_error(&self.target, e))
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.temporary);
        let _ = std::fs::remove_file(self.temporary.with_extension("tmp.wal"));
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.remove();
    }
}

fn io_error(path: &Path, error: std::io::Error) -> Error {
    Error::new(
        pgrx::PgSqlErrorCode::ERRCODE_IO_ERROR,
        format!(
            "could not write the stored copy {}: {error}",
            path.display()
        ),
    )
}

/// Removes the stored copies of tables and databases that no longer exist, and files left by
/// builds that did not finish (a backend killed while writing) an hour or more ago.
pub fn prune() -> Result<()> {
    let databases = directory().parent().map(Path::to_path_buf);
    for entry in databases
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
    {
        let Ok(entry) = entry else { continue };
        let database = entry.file_name().to_string_lossy().parse::<u32>().ok();
        if let Some(database) = database {
            if !exists("pg_database", Oid::from(database))? {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let Ok(entries) = std::fs::read_dir(directory()) else {
        return Ok(());
    };
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for entry in entries.filter_map(|entry| entry.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name.ends_with(".tmp") || name.ends_with(".tmp.wal") {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < hour_ago)
        } else if let Some(relid) = name
            .strip_suffix(".duckdb")
            .and_then(|oid| oid.parse::<u32>().ok())
        {
            !exists("pg_class", Oid::from(relid))?
        } else {
            false
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Whether catalog `catalog` (`pg_class` or `pg_database`) has a row of oid `oid`.
fn exists(catalog: &str, oid: Oid) -> Result<bool> {
    pgrx::Spi::get_one_with_args::<bool>(
        &format!("SELECT EXISTS (SELECT FROM pg_catalog.{catalog} WHERE oid = $1)"),
        &[oid.into()],
    )
    .map(|found| found.unwrap_or(false))
    .map_err(|e| Error::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsns_survive_hex() {
        let lsns = vec![0, 1, u64::MAX, 0x0123_4567_89ab_cdef];
        assert_eq!(super::unhex(&super::hex(&lsns)), Some(lsns));
        assert_eq!(super::unhex("123"), None);
        assert_eq!(super::unhex("zzzzzzzzzzzzzzzz"), None);
    }
}
