//! The schema a model is shown: the tables, views, materialized views and foreign tables
//! (imported attachments among them) that the caller may read, with the columns it may read,
//! their types, keys, foreign keys to relations it may also read, and comments.
//!
//! Relations come from the schemas on search_path, or `llm_sql.ask_schemas`, or the call's
//! `schemas` option. When their description exceeds `llm_sql.ask_context_budget` characters,
//! the relations sharing most words with the question are kept. Comments are written as JSON
//! strings inside SQL comments: data about the schema, never text the model could mistake for
//! instructions (a newline in a comment cannot start a line of its own).

use pgrx::datum::JsonB;
use pgrx::prelude::*;
use serde_json::Value;

use crate::error::Result;
use crate::quote::pg_ident as ident;

/// The description given to the model, and a fingerprint of everything the caller can see
/// (changes with any DDL or privilege change that matters).
pub struct Context {
    pub text: String,
    pub fingerprint: String,
}

struct Relation {
    name: String,
    description: String,
    words: Vec<String>,
}

/// The context for `question`, over `schemas` (None: search_path).
pub fn build(question: &str, schemas: Option<&[String]>, budget: usize) -> Result<Context> {
    let relations = visible_relations(schemas)?;
    let everything: String = relations.iter().map(|r| r.description.as_str()).collect();
    let fingerprint = Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.md5($1)",
        &[everything.as_str().into()],
    )?
    .unwrap_or_default();
    let chosen = within_budget(question, relations, budget);
    Ok(Context {
        text: chosen.join("\n"),
        fingerprint,
    })
}

/// The relations' descriptions, the most relevant to the question first, as many as fit.
fn within_budget(question: &str, relations: Vec<Relation>, budget: usize) -> Vec<String> {
    let total: usize = relations.iter().map(|r| r.description.len()).sum();
    if total <= budget {
        return relations.into_iter().map(|r| r.description).collect();
    }
    let asked = words(question);
    let mut scored: Vec<(usize, Relation)> = relations
        .into_iter()
        .map(|r| (r.words.iter().filter(|w| asked.contains(w)).count(), r))
        .collect();
    // Stable: equally relevant relations keep their schema/name order.
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut used = 0;
    let mut chosen = Vec::new();
    for (_, relation) in scored {
        if !chosen.is_empty() && used + relation.description.len() > budget {
            continue;
        }
        used += relation.description.len();
        chosen.push((relation.name, relation.description));
    }
    chosen.sort();
    chosen.into_iter().map(|(_, d)| d).collect()
}

/// Lower-case words of three letters or more, with a plural "s" dropped.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(|w| {
            let w = w.to_lowercase();
            match w.strip_suffix('s') {
                Some(stem) if stem.chars().count() >= 3 && !stem.ends_with('s') => stem.to_string(),
                _ => w,
            }
        })
        .collect()
}

fn visible_relations(schemas: Option<&[String]>) -> Result<Vec<Relation>> {
    let schemas: Option<Vec<String>> = schemas.map(<[String]>::to_vec);
    let rows = Spi::connect(|client| {
        let mut rows = Vec::new();
        for row in client.select(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text,
                    pg_catalog.obj_description(c.oid, 'pg_class'),
                    (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attname,
                                pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                pg_catalog.col_description(c.oid, a.attnum)) ORDER BY a.attnum)
                       FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')),
                    (SELECT pg_catalog.jsonb_agg(pg_catalog.pg_get_constraintdef(k.oid)
                                                 ORDER BY k.contype DESC, k.conname)
                       FROM pg_catalog.pg_constraint k
                      WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'f')
                        AND (k.contype <> 'f'
                             OR pg_catalog.has_any_column_privilege(k.confrelid, 'SELECT')))
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND n.nspname = ANY (coalesce($1, pg_catalog.current_schemas(false)::text[]))
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'llm_sql')
                AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT')
              ORDER BY 1, 2",
            None,
            &[schemas.into()],
        )? {
            rows.push((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?,
                row.get::<JsonB>(5)?.map_or(Value::Null, |j| j.0),
                row.get::<JsonB>(6)?.map_or(Value::Null, |j| j.0),
            ));
        }
        Ok::<_, pgrx::spi::Error>(rows)
    })?;
    Ok(rows
        .into_iter()
        .map(|(schema, name, kind, comment, columns, keys)| {
            describe(&schema, &name, &kind, comment, &columns, &keys)
        })
        .collect())
}

/// One relation as SQL DDL the model knows how to read.
fn describe(
    schema: &str,
    name: &str,
    kind: &str,
    comment: Option<String>,
    columns: &Value,
    keys: &Value,
) -> Relation {
    let qualified = format!("{}.{}", ident(schema), ident(name));
    let what = match kind {
        "v" => "VIEW",
        "m" => "MATERIALIZED VIEW",
        "f" => "FOREIGN TABLE",
        _ => "TABLE",
    };
    let mut text = String::new();
    let mut words = words(name);
    if let Some(comment) = comment {
        text.push_str(&format!(
            "-- comment on {qualified}: {}\n",
            quoted(&comment)
        ));
        words.extend(self::words(&comment));
    }
    text.push_str(&format!("CREATE {what} {qualified} (\n"));
    let mut lines = Vec::new();
    for column in columns.as_array().into_iter().flatten() {
        let field = |i: usize| column.get(i).and_then(Value::as_str).unwrap_or_default();
        let mut line = format!("  {} {}", ident(field(0)), field(1));
        if column.get(2).and_then(Value::as_bool) == Some(true) {
            line.push_str(" NOT NULL");
        }
        if let Some(comment) = column.get(3).and_then(Value::as_str) {
            line.push_str(&format!(" /* {} */", quoted(comment).replace("*/", "*\\/")));
            words.extend(self::words(comment));
        }
        words.extend(self::words(field(0)));
        lines.push(line);
    }
    for key in keys
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        lines.push(format!("  {key}"));
    }
    text.push_str(&lines.join(",\n"));
    text.push_str("\n);\n");
    Relation {
        name: qualified,
        description: text,
        words,
    }
}

/// Text as a JSON string: one line, quotes escaped.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}
