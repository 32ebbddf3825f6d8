//! Embeddings into pgvector columns: the column checks shared by backfill (`embed_column`),
//! auto-embedding (triggers + queue + worker) and the searches.
//!
//! Empty input: NULL and text made only of whitespace have no embedding. `embed` returns NULL
//! for them without asking the server; backfill and the queue leave (or set) the target NULL.

pub mod backfill;
pub mod builtin;
pub mod queue;
pub mod search;
pub mod vector;

use pgrx::pg_sys::Oid;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{Error, Result};
use crate::quote::{ident, pg_ident};

/// SQL condition (on a text expression `{}`) for text worth embedding.
pub const HAS_TEXT: &str = "~ '[^[:space:]]'";

/// True when `text` has something to embed.
pub fn has_text(text: &str) -> bool {
    !text.trim().is_empty()
}

/// The model a column's embeddings came from: the one auto_embed, else the last embed_column,
/// recorded for it.
pub fn recorded_model(table: Oid, target: &str) -> Result<Option<String>> {
    crate::run_as::as_extension_owner(|| {
        Ok(Spi::get_one_with_args::<String>(
            "SELECT (SELECT model FROM (
                 SELECT model, 1 AS pick FROM llm_sql.auto_embeddings
                  WHERE tbl = $1 AND target_column = $2
                 UNION ALL
                 SELECT model, 2 FROM llm_sql.embedding_jobs
                  WHERE tbl = $1 AND target_column = $2) m
              ORDER BY pick LIMIT 1)",
            &[table.into(), target.into()],
        )?)
    })
}

/// The model to fill a column with: `requested`, else the recorded one, else the setting.
/// One column holds one model's vectors: another model than the recorded one is refused while
/// the column holds embeddings (`call` shows how to ask again after clearing it).
pub fn model_for(columns: &Columns, requested: Option<&str>, call: &str) -> Result<String> {
    let recorded = recorded_model(columns.table, &columns.target_name)?;
    let model = crate::llm::embedding_model(requested.or(recorded.as_deref()))?;
    let Some(recorded) = recorded.filter(|r| *r != model) else {
        return Ok(model);
    };
    let filled = Spi::get_one::<bool>(&format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NOT NULL)",
        columns.qualified, columns.target
    ))?;
    if filled != Some(true) {
        return Ok(model);
    }
    Err(Error::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!(
            "column {}.{} holds embeddings of model \"{recorded}\"; \"{model}\" would mix two models' vectors in it",
            columns.qualified,
            pg_ident(&columns.target_name)
        ),
    )
    .with_detail("Searches embed the question with one model per column; vectors of another model are not comparable.")
    .with_hint(format!(
        "Leave the model out to keep \"{recorded}\". To re-embed the column with \"{model}\", clear it first \
         (UPDATE {tbl} SET {col} = NULL), then {call} again; or embed into a new column.",
        tbl = columns.qualified,
        col = columns.target,
    )))
}

/// Embeddings of `texts`, in order, from `model`: the built-in model, or the LLM server's
/// (`batch_size` texts per request).
pub fn embed(texts: &[&str], model: &str, batch_size: usize) -> Result<crate::llm::Embeddings> {
    match builtin::is_builtin(model) {
        _ if texts.is_empty() => Ok(Vec::new()),
        true => builtin::embed(texts),
        false => crate::llm::embed(texts, model, batch_size),
    }
}

/// One embedding per text; None for texts with nothing to embed.
pub type Embedded = Vec<Option<Vec<f32>>>;

/// A table's source column and its pgvector target column, checked.
pub struct Columns {
    pub table: Oid,
    /// `schema.table`, quoted.
    pub qualified: String,
    /// The target column's name, for messages.
    pub target_name: String,
    /// Quoted identifiers.
    pub source: String,
    pub target: String,
    pub target_attnum: i16,
    /// pgvector's `vector`: the type of the values llm_sql builds.
    pub vector_type: Oid,
    /// The target column's type, qualified (`public.vector` or `public.halfvec`): values are
    /// cast to it when written or compared.
    pub target_type: String,
    /// The column's declared dimension; None for plain `vector`.
    pub dimension: Option<usize>,
}

impl Columns {
    /// An error unless the current role may read `source` and write the target: checked
    /// before llm_sql records anything about the column as its owner (`function` names the
    /// caller in the message).
    pub fn check_writable(&self, source: &str, function: &str) -> Result<()> {
        let allowed = Spi::get_one_with_args::<bool>(
            "SELECT pg_catalog.has_column_privilege($1, $2, 'UPDATE')
                AND pg_catalog.has_column_privilege($1, $3, 'SELECT')",
            &[
                self.table.into(),
                self.target_name.as_str().into(),
                source.into(),
            ],
        )?;
        if allowed == Some(true) {
            return Ok(());
        }
        Err(Error::permission_denied(format!(
            "{function} needs SELECT on {qualified}.{src} and UPDATE on {qualified}.{tgt}",
            qualified = self.qualified,
            src = self.source,
            tgt = self.target,
        )))
    }

    /// Looks up the columns; `source` None when only the target matters (search). Reads the
    /// system caches, not SPI: backfill resolves its columns again for every batch.
    pub fn resolve(table: Oid, source: Option<&str>, target: &str) -> Result<Columns> {
        let Some((qualified, kind)) = relation(table) else {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", table.to_u32()),
            ));
        };
        if !matches!(kind, b'r' | b'p') {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!("{qualified} is not a table"),
            ));
        }
        let missing = |column: &str| {
            Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                format!("column \"{column}\" of {qualified} does not exist"),
            )
        };
        if let Some(source) = source {
            if column_type(table, source)?.is_none() {
                return Err(missing(source));
            }
        }
        let Some((target_attnum, target_type, typmod)) = column_type(table, target)? else {
            return Err(missing(target));
        };
        let vector_type = pgvector_type(c"vector");
        if vector_type.is_none()
            || ![vector_type, pgvector_type(c"halfvec")].contains(&Some(target_type))
        {
            // SAFETY: formats an existing type.
            let type_name = unsafe { text(pg_sys::format_type_with_typemod(target_type, typmod)) };
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("column \"{target}\" of {qualified} is {type_name}, not a pgvector vector or halfvec"),
            )
            .with_hint(format!(
                "ALTER TABLE {qualified} ADD COLUMN {} vector(<dimensions>);",
                ident(target)
            )));
        }
        Ok(Columns {
            table,
            target_name: target.to_string(),
            source: ident(source.unwrap_or_default()),
            target: ident(target),
            target_attnum,
            qualified,
            vector_type: vector_type.unwrap_or(Oid::INVALID),
            // SAFETY: formats an existing type, schema-qualified.
            target_type: unsafe { text(pg_sys::format_type_be_qualified(target_type)) },
            dimension: (typmod > 0).then_some(typmod as usize),
        })
    }

    /// The type of another column of the table (qualified, without typmod), or an error that
    /// names it.
    pub fn require_column(&self, name: &str) -> Result<String> {
        match column_type(self.table, name)? {
            // SAFETY: formats an existing type.
            Some((_, type_oid, _)) => {
                Ok(unsafe { text(pg_sys::format_type_be_qualified(type_oid)) })
            }
            None => Err(Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                format!("column \"{name}\" of {} does not exist", self.qualified),
            )),
        }
    }

    /// The error for a model whose embeddings do not fit the column.
    pub fn check_dimension(&self, model: &str, got: usize) -> Result<()> {
        match self.dimension {
            Some(want) if want != got => Err(Error::new(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!(
                    "model \"{model}\" returns {got}-dimensional embeddings, but column {}.{} is vector({want})",
                    self.qualified, self.target_name
                ),
            )
            .with_hint(format!(
                "Use a model with {want} dimensions, or embed into a new column of this model's size: \
                 ALTER TABLE {} ADD COLUMN <name> vector({got});",
                self.qualified
            ))),
            _ => Ok(()),
        }
    }

    /// Embeddings for `texts` (None for empty ones), checked against the column.
    pub fn embed(
        &self,
        texts: &[Option<String>],
        model: &str,
        batch_size: usize,
    ) -> Result<Embedded> {
        let vectors = embed(&with_text(texts), model, batch_size)?;
        self.place(texts, vectors, model)
    }

    /// Puts the embeddings of the texts that have text back in the order of `texts`, after
    /// checking their dimension against the column.
    fn place(
        &self,
        texts: &[Option<String>],
        vectors: crate::llm::Embeddings,
        model: &str,
    ) -> Result<Embedded> {
        if let Some(first) = vectors.first() {
            self.check_dimension(model, first.len())?;
        }
        let mut vectors = vectors.into_iter();
        Ok(texts
            .iter()
            .map(|t| match t {
                Some(t) if has_text(t) => vectors.next(),
                _ => None,
            })
            .collect())
    }
}

/// `schema.table` (quoted where needed) and the relkind of a relation, if it exists.
fn relation(table: Oid) -> Option<(String, u8)> {
    // SAFETY: syscache lookups; each returns NULL / 0 for a missing relation.
    unsafe {
        let name = pg_sys::get_rel_name(table);
        if name.is_null() {
            return None;
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(table));
        if schema.is_null() {
            return None;
        }
        let qualified = format!("{}.{}", pg_ident(&text(schema)), pg_ident(&text(name)));
        Some((qualified, pg_sys::get_rel_relkind(table) as u8))
    }
}

/// Number, type and typmod of a user column (not a system or dropped one), if it exists.
fn column_type(table: Oid, column: &str) -> Result<Option<(i16, Oid, i32)>> {
    let name = std::ffi::CString::new(column)
        .map_err(|_| Error::invalid_parameter("a column name cannot contain a zero byte"))?;
    // SAFETY: syscache lookups; get_attnum returns 0 for a missing or dropped column.
    unsafe {
        let attnum = pg_sys::get_attnum(table, name.as_ptr());
        if attnum <= 0 {
            return Ok(None);
        }
        let (mut typid, mut typmod, mut collation) = (Oid::INVALID, -1, Oid::INVALID);
        pg_sys::get_atttypetypmodcoll(table, attnum, &mut typid, &mut typmod, &mut collation);
        Ok(Some((attnum, typid, typmod)))
    }
}

/// A type of pgvector (`vector`, `halfvec`), found in the schema the `vector` extension is
/// installed in.
fn pgvector_type(name: &std::ffi::CStr) -> Option<Oid> {
    // SAFETY: catalog lookups by name; both return InvalidOid when nothing is found.
    let found = unsafe {
        let extension = pg_sys::get_extension_oid(c"vector".as_ptr(), true);
        if extension == Oid::INVALID {
            return None;
        }
        let schema = pg_sys::get_extension_schema(extension);
        pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::TYPENAMENSP as i32,
            pg_sys::Anum_pg_type_oid as i16,
            pg_sys::Datum::from(name.as_ptr()),
            pg_sys::Datum::from(schema),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    };
    (found != Oid::INVALID).then_some(found)
}

/// A C string from Postgres as Rust text.
///
/// # Safety
/// `ptr` must be a valid NUL-terminated string.
unsafe fn text(ptr: *const std::ffi::c_char) -> String {
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The texts that have something to embed.
fn with_text(texts: &[Option<String>]) -> Vec<&str> {
    texts
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|t| has_text(t))
        .collect()
}

/// The embeddings of a batch of texts, requested and not yet received: one request for the
/// whole batch, so that the caller can write the previous batch meanwhile.
pub struct PendingBatch {
    pub texts: Vec<Option<String>>,
    model: String,
    request: Option<Request>,
}

/// Embeddings being computed, by the built-in model or the LLM server.
enum Request {
    Builtin(builtin::Job),
    Server(crate::llm::Pending<crate::llm::Embeddings>),
}

impl PendingBatch {
    pub fn start(texts: Vec<Option<String>>, model: &str) -> Result<PendingBatch> {
        let wanted = with_text(&texts);
        let request = match (wanted.is_empty(), builtin::is_builtin(model)) {
            (true, _) => None,
            (false, true) => Some(Request::Builtin(builtin::start(
                wanted.iter().map(|t| t.to_string()).collect(),
            )?)),
            (false, false) => Some(Request::Server(crate::llm::start_embed(&wanted, model)?)),
        };
        Ok(PendingBatch {
            texts,
            model: model.to_string(),
            request,
        })
    }

    /// Waits for the embeddings, one per text (None for empty ones), checked against `columns`.
    pub fn wait(self, columns: &Columns) -> Result<(Vec<Option<String>>, Embedded)> {
        let vectors = match self.request {
            Some(Request::Builtin(job)) => job.wait()?,
            Some(Request::Server(request)) => request.wait()?,
            None => Vec::new(),
        };
        let placed = columns.place(&self.texts, vectors, &self.model)?;
        Ok((self.texts, placed))
    }
}

/// The batch size of a call: the argument, else `llm_sql.embedding_batch_size`.
pub fn batch_size(requested: Option<i32>) -> Result<usize> {
    match requested {
        Some(n) if !(1..=4096).contains(&n) => Err(Error::invalid_parameter(format!(
            "batch_size must be between 1 and 4096, not {n}"
        ))),
        Some(n) => Ok(n as usize),
        None => Ok(crate::settings::EMBEDDING_BATCH_SIZE.get().max(1) as usize),
    }
}
