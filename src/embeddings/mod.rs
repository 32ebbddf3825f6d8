//! Embeddings into pgvector columns: the column checks shared by backfill (`embed_column`),
//! auto-embedding (triggers + queue + worker) and the searches.
//!
//! Empty input: NULL and text made only of whitespace have no embedding. `embed` returns NULL
//! for them without asking the server; backfill and the queue leave (or set) the target NULL.

pub mod backfill;
pub mod queue;
pub mod search;
pub mod vector;

use pgrx::pg_sys::Oid;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{Error, Result};
use crate::quote::ident;

/// SQL condition (on a text expression `{}`) for text worth embedding.
pub const HAS_TEXT: &str = "~ '[^[:space:]]'";

/// True when `text` has something to embed.
pub fn has_text(text: &str) -> bool {
    !text.trim().is_empty()
}

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
    pub vector_type: Oid,
    /// The column's declared dimension; None for plain `vector`.
    pub dimension: Option<usize>,
}

impl Columns {
    /// Looks up the columns; `source` None when only the target matters (search).
    pub fn resolve(table: Oid, source: Option<&str>, target: &str) -> Result<Columns> {
        let found = Spi::connect(|client| {
            let rows = client.select(
                "SELECT format('%I.%I', n.nspname, c.relname),
                        (SELECT a.attnum FROM pg_catalog.pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0
                            AND NOT a.attisdropped),
                        ta.atttypid, ta.atttypmod,
                        EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                  JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                                 WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                                   AND d.objid = ta.atttypid AND d.deptype = 'e'
                                   AND e.extname = 'vector')
                          AND (SELECT typname FROM pg_catalog.pg_type WHERE oid = ta.atttypid) = 'vector',
                        pg_catalog.format_type(ta.atttypid, ta.atttypmod), c.relkind
                   FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   LEFT JOIN pg_catalog.pg_attribute ta
                          ON ta.attrelid = c.oid AND ta.attname = $3 AND ta.attnum > 0
                         AND NOT ta.attisdropped
                  WHERE c.oid = $1",
                Some(1),
                &[table.into(), source.unwrap_or("").into(), target.into()],
            )?;
            let mut result = None;
            for row in rows {
                result = Some((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<i16>(2)?,
                    row.get::<Oid>(3)?,
                    row.get::<i32>(4)?,
                    row.get::<bool>(5)?.unwrap_or(false),
                    row.get::<String>(6)?,
                    row.get::<i8>(7)?,
                ));
            }
            Ok::<_, pgrx::spi::Error>(result)
        })?;
        let Some((qualified, source_attnum, vector_type, typmod, is_vector, type_name, kind)) =
            found
        else {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", table.to_u32()),
            ));
        };
        if !matches!(kind.map(|k| k as u8), Some(b'r') | Some(b'p')) {
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
            if source_attnum.is_none() {
                return Err(missing(source));
            }
        }
        let Some(vector_type) = vector_type else {
            return Err(missing(target));
        };
        if !is_vector {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!(
                    "column \"{target}\" of {qualified} is {}, not a pgvector vector",
                    type_name.unwrap_or_default()
                ),
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
            qualified,
            vector_type,
            dimension: typmod.filter(|m| *m > 0).map(|m| m as usize),
        })
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
                "Use a model with {want} dimensions, or change the column: ALTER TABLE {} ALTER COLUMN {} TYPE vector({got});",
                self.qualified, self.target
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
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let wanted: Vec<&str> = texts
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|t| has_text(t))
            .collect();
        let mut vectors = crate::llm::embed(&wanted, model, batch_size)?.into_iter();
        if let Some(first) = vectors.as_slice().first() {
            self.check_dimension(model, first.len())?;
        }
        Ok(texts
            .iter()
            .map(|t| match t {
                Some(t) if has_text(t) => vectors.next(),
                _ => None,
            })
            .collect())
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
