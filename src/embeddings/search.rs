//! `semantic_search` and `hybrid_search`: nearest rows by cosine distance, and vector ranks
//! fused with full-text ranks (reciprocal rank fusion). The queries run as the caller, so
//! privileges and row-level security apply, and use an HNSW/IVFFlat cosine index when the
//! column has one. The query text is embedded with the model the column was filled with
//! (auto_embed or the last embed_column), else `llm_sql.embedding_model`.

use pgrx::datum::{DatumWithOid, JsonB};
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

use serde_json::Value;

use super::{vector, Columns};
use crate::error::{Error, Result};
use crate::quote::{ident, pg_literal};

/// The constant of reciprocal rank fusion: score = Σ 1 / (RRF_K + rank).
const RRF_K: f64 = 60.0;

/// What a search returns and which rows it considers, besides the nearest ones.
#[derive(Default)]
pub struct Shape<'a> {
    /// `{"column": value, …}`: only rows where every column equals its value (a JSON array:
    /// any of its values; null: IS NULL), applied before the k nearest are chosen.
    pub filter: Option<&'a Value>,
    /// The columns `data` holds; all but the embedding when None.
    pub columns: Option<&'a [String]>,
}

pub fn semantic(
    table: Oid,
    query: &str,
    k: i32,
    column: &str,
    shape: &Shape<'_>,
) -> Result<Vec<(JsonB, f64)>> {
    let (columns, operator, query_vector) = prepare(table, query, k, column)?;
    let mut args = vec![query_vector, (k as i64).into(), column.into()];
    let filter = filter_sql(&columns, shape.filter, &mut args)?;
    rows(
        &format!(
            "SELECT {data}, (t.{col} {operator} $1::{vtype})::float8
               FROM {tbl} t WHERE t.{col} IS NOT NULL{filter}
              ORDER BY t.{col} {operator} $1::{vtype} LIMIT $2",
            data = data_sql(&columns, shape.columns)?,
            col = columns.target,
            vtype = columns.target_type,
            tbl = columns.qualified,
        ),
        args,
    )
}

pub fn hybrid(
    table: Oid,
    query: &str,
    text_column: &str,
    k: i32,
    column: &str,
    shape: &Shape<'_>,
) -> Result<Vec<(JsonB, f64)>> {
    let (columns, operator, query_vector) = prepare(table, query, k, column)?;
    let text = Columns::resolve(table, Some(text_column), column)?.source;
    // Each list contributes its top candidates; a row found by both ranks highest.
    let candidates = (k as i64 * 5).max(50);
    let mut args = vec![
        query_vector,
        (k as i64).into(),
        column.into(),
        candidates.into(),
        query.into(),
    ];
    let filter = filter_sql(&columns, shape.filter, &mut args)?;
    rows(
        &format!(
            "WITH by_vector AS (
                 SELECT t.ctid AS id, row_number() OVER (ORDER BY t.{col} {operator} $1::{vtype}) AS rank
                   FROM {tbl} t WHERE t.{col} IS NOT NULL{filter}
                  ORDER BY t.{col} {operator} $1::{vtype} LIMIT $4),
             by_text AS (
                 SELECT t.ctid AS id,
                        row_number() OVER (ORDER BY pg_catalog.ts_rank_cd(pg_catalog.to_tsvector(t.{text}::text), q) DESC) AS rank
                   FROM {tbl} t, pg_catalog.websearch_to_tsquery($5) AS q
                  WHERE pg_catalog.to_tsvector(t.{text}::text) @@ q{filter}
                  ORDER BY pg_catalog.ts_rank_cd(pg_catalog.to_tsvector(t.{text}::text), q) DESC LIMIT $4),
             fused AS (
                 SELECT id, sum(1.0 / ({RRF_K} + rank))::float8 AS score
                   FROM (SELECT * FROM by_vector UNION ALL SELECT * FROM by_text) AS ranked
                  GROUP BY id ORDER BY score DESC LIMIT $2)
             SELECT {data}, f.score
               FROM fused f JOIN {tbl} t ON t.ctid = f.id
              ORDER BY f.score DESC",
            data = data_sql(&columns, shape.columns)?,
            col = columns.target,
            vtype = columns.target_type,
            tbl = columns.qualified,
        ),
        args,
    )
}

/// The `data` column: the chosen columns as a JSON object, or the whole row without the
/// embedding (`$3` is the embedding column's name).
fn data_sql(columns: &Columns, chosen: Option<&[String]>) -> Result<String> {
    let Some(chosen) = chosen else {
        return Ok("pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) $3::text".to_string());
    };
    if chosen.is_empty() {
        return Err(Error::invalid_parameter("columns is empty")
            .with_hint("Leave it out (NULL) for every column."));
    }
    let mut pairs = Vec::new();
    for name in chosen {
        columns.require_column(name)?;
        pairs.push(format!("{}, t.{}", pg_literal(name)?, ident(name)));
    }
    Ok(format!(
        "pg_catalog.jsonb_build_object({})",
        pairs.join(", ")
    ))
}

/// ` AND …` conditions for a filter object; its values become parameters after `args`.
/// Columns are checked to exist and quoted; values are never written into the SQL.
fn filter_sql(
    columns: &Columns,
    filter: Option<&Value>,
    args: &mut Vec<DatumWithOid<'static>>,
) -> Result<String> {
    let Some(filter) = filter.filter(|f| !f.is_null()) else {
        return Ok(String::new());
    };
    let Value::Object(conditions) = filter else {
        return Err(
            Error::invalid_parameter("filter must be a JSON object of column: value")
                .with_hint(r#"For example: '{"category": "books", "year": [2023, 2024]}'"#),
        );
    };
    let mut sql = String::new();
    for (name, value) in conditions {
        let column_type = columns.require_column(name)?;
        let column = format!("t.{}", ident(name));
        match value {
            Value::Null => sql.push_str(&format!(" AND {column} IS NULL")),
            Value::Object(_) => {
                return Err(Error::invalid_parameter(format!(
                    "the filter value of \"{name}\" is an object: give a value, an array of values or null"
                )))
            }
            _ => {
                args.push(JsonB(value.clone()).into());
                let n = args.len();
                sql.push_str(&match value {
                    // (Any of the values: each compared as the column's type, like =.)
                    Value::Array(_) => format!(
                        " AND {column} = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(${n}))::{column_type}[])"
                    ),
                    _ => format!(" AND {column} = (${n} OPERATOR(pg_catalog.#>>) '{{}}'::text[])::{column_type}"),
                });
            }
        }
    }
    Ok(sql)
}

/// Checks the arguments and embeds the query: the column, the cosine operator spelled with
/// pgvector's schema, and the query vector as a parameter.
fn prepare(
    table: Oid,
    query: &str,
    k: i32,
    column: &str,
) -> Result<(Columns, String, DatumWithOid<'static>)> {
    if !super::has_text(query) {
        return Err(Error::invalid_parameter("the search query is empty"));
    }
    if !(1..=100_000).contains(&k) {
        return Err(Error::invalid_parameter(format!(
            "k must be between 1 and 100000, not {k}"
        )));
    }
    let columns = Columns::resolve(table, None, column)?;
    let model = crate::llm::embedding_model(super::recorded_model(table, column)?.as_deref())?;
    let embedded = super::embed(&[query], &model, 1)?;
    let query_vector = embedded.into_iter().next().unwrap_or_default();
    columns.check_dimension(&model, query_vector.len())?;
    let schema = Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_type t
           JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1",
        &[columns.vector_type.into()],
    )?
    .unwrap_or_else(|| "public".into());
    // SAFETY: a vector datum passed with the column's own vector type.
    let parameter = unsafe { DatumWithOid::new(vector::datum(&query_vector), columns.vector_type) };
    Ok((columns, format!("OPERATOR({schema}.<=>)"), parameter))
}

fn rows(sql: &str, args: Vec<DatumWithOid>) -> Result<Vec<(JsonB, f64)>> {
    Ok(Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(sql, None, &args)? {
            if let (Some(data), Some(score)) = (row.get::<JsonB>(1)?, row.get::<f64>(2)?) {
                out.push((data, score));
            }
        }
        Ok::<_, pgrx::spi::Error>(out)
    })?)
}
