//! The schema a model is shown: the tables, views, materialized views and foreign tables
//! (imported attachments among them) that the caller may read, with the columns it may read,
//! their types, keys, foreign keys to relations it may also read, and comments.
//!
//! Relations come from the schemas on search_path, or `llm_sql.ask_schemas`, or the call's
//! `schemas` option. When their description exceeds `llm_sql.ask_context_budget` characters,
//! the relations most relevant to the question are kept: by cosine similarity of embeddings
//! (`llm_sql.embedding_model`) when the embedding model answers, else by shared words.
//!
//! Comments are written as JSON strings inside SQL comments: data about the schema, never text
//! the model could mistake for instructions (a newline in a comment cannot start a line of its
//! own).

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::prelude::*;

use crate::error::Result;
use crate::quote::pg_ident as ident;
use crate::settings;

/// The description given to the model, and a fingerprint of everything the caller can see
/// (changes with any DDL or privilege change that matters).
pub struct Context {
    pub text: String,
    pub fingerprint: String,
    /// Time spent waiting for the embedding model (ranking relations).
    pub model_time: std::time::Duration,
    /// Every relation the caller may read (shown to the model or not): for correction hints.
    pub relations: Vec<Relation>,
    /// Which of `relations` the model is shown.
    pub shown: Vec<usize>,
}

/// A relation the caller may read, with the columns it may read.
pub struct Relation {
    /// As the caller would write it: bare when search_path finds it, else schema-qualified;
    /// quoted where needed.
    pub name: String,
    /// `r`, `p`, `v`, `m` or `f` (pg_class.relkind).
    pub kind: String,
    /// Name and type of each column.
    pub columns: Vec<(String, String)>,
    description: String,
    words: Vec<String>,
}

impl Relation {
    /// A relation with these columns (for tests of what is made of the catalog).
    #[cfg(test)]
    pub fn with_columns(name: &str, columns: &[&str]) -> Relation {
        Relation {
            name: name.to_string(),
            kind: "r".to_string(),
            columns: columns
                .iter()
                .map(|c| (c.to_string(), "text".to_string()))
                .collect(),
            description: String::new(),
            words: Vec::new(),
        }
    }
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
    let started = std::time::Instant::now();
    let (shown, embedded) = within_budget(question, &relations, budget);
    Ok(Context {
        text: shown
            .iter()
            .map(|i| relations[*i].description.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        fingerprint,
        model_time: if embedded {
            started.elapsed()
        } else {
            Default::default()
        },
        relations,
        shown,
    })
}

/// Which relations to describe: all when they fit (the same prompt for every question, which
/// the model server can reuse from its cache), else the most relevant to the question, as many
/// as fit, in schema/name order; and whether the embedding model was asked.
fn within_budget(question: &str, relations: &[Relation], budget: usize) -> (Vec<usize>, bool) {
    let total: usize = relations.iter().map(|r| r.description.len()).sum();
    if total <= budget {
        return ((0..relations.len()).collect(), false);
    }
    let scores = embedding_scores(question, relations).unwrap_or_else(|| {
        let asked = words(question);
        relations
            .iter()
            .map(|r| r.words.iter().filter(|w| asked.contains(w)).count() as f64)
            .collect()
    });
    let mut ranked: Vec<(f64, usize)> = scores.into_iter().zip(0..).collect();
    // Stable: equally relevant relations keep their schema/name order.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut used = 0;
    let mut chosen = Vec::new();
    for (_, i) in ranked {
        let size = relations[i].description.len();
        if !chosen.is_empty() && used + size > budget {
            continue;
        }
        used += size;
        chosen.push(i);
    }
    chosen.sort();
    (chosen, true)
}

thread_local! {
    /// Embeddings of relation descriptions, by model and text: a schema is embedded once per
    /// backend, and again only where it changed.
    static EMBEDDED: RefCell<HashMap<(String, String), Vec<f32>>> = RefCell::new(HashMap::new());
}

/// Most relation embeddings kept per backend.
const MAX_EMBEDDED: usize = 5_000;

/// Cosine similarity of the question to each relation, when the embedding model answers;
/// None otherwise (the caller ranks by shared words instead).
fn embedding_scores(question: &str, relations: &[Relation]) -> Option<Vec<f64>> {
    let model = settings::string(&settings::EMBEDDING_MODEL)?;
    let missing: Vec<&str> = EMBEDDED.with(|cache| {
        let cache = cache.borrow();
        relations
            .iter()
            .map(|r| r.description.as_str())
            .filter(|d| !cache.contains_key(&(model.clone(), d.to_string())))
            .collect()
    });
    let mut texts = vec![question];
    texts.extend(&missing);
    let batch = settings::EMBEDDING_BATCH_SIZE.get().max(1) as usize;
    let mut vectors = crate::embeddings::embed(&texts, &model, batch)
        .ok()?
        .into_iter();
    let asked = vectors.next()?;
    EMBEDDED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() + missing.len() > MAX_EMBEDDED {
            cache.clear();
        }
        for (text, vector) in missing.iter().zip(vectors) {
            cache.insert((model.clone(), text.to_string()), vector);
        }
        relations
            .iter()
            .map(|r| {
                cache
                    .get(&(model.clone(), r.description.clone()))
                    .map(|v| cosine(&asked, v))
            })
            .collect()
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 || a.len() != b.len() {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Words that say nothing about which table a question is about.
pub const STOP_WORDS: &[&str] = &[
    "all", "and", "any", "are", "but", "did", "does", "each", "for", "from", "had", "has", "have",
    "how", "into", "many", "much", "not", "our", "per", "than", "that", "the", "their", "them",
    "then", "there", "they", "this", "was", "were", "what", "when", "which", "who", "with", "you",
    "your",
];

/// Lower-case words of three letters or more, with a plural "s" dropped, without stop words.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !STOP_WORDS.contains(&w.to_lowercase().as_str()))
        .map(|w| {
            let w = w.to_lowercase();
            match w.strip_suffix('s') {
                Some(stem) if stem.chars().count() >= 3 && !stem.ends_with('s') => stem.to_string(),
                _ => w,
            }
        })
        .collect()
}

/// A column the caller may read: relation, number, name, type, NOT NULL, comment.
type Column = (u32, i16, String, String, bool, Option<String>);
/// A key: relation, type (p, u, f), columns, referenced relation (name, oid), its columns.
type Key = (u32, String, Vec<i16>, Option<String>, u32, Vec<i16>);

/// Three flat catalog queries (relations, columns, keys) rather than one with a subquery per
/// relation: at 200 relations that is the difference between a few and 30 milliseconds.
fn visible_relations(schemas: Option<&[String]>) -> Result<Vec<Relation>> {
    let schemas: Option<Vec<String>> = schemas.map(<[String]>::to_vec);
    let (relations, columns, keys) = Spi::connect(|client| {
        let mut relations = Vec::new();
        for row in client.select(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, d.description,
                    pg_catalog.pg_table_is_visible(c.oid)
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_catalog.pg_description d
                      ON d.objoid = c.oid AND d.objsubid = 0
                     AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND n.nspname = ANY (coalesce($1, pg_catalog.current_schemas(false)::text[]))
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'llm_sql')
                AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT')
              ORDER BY 2, 3",
            None,
            &[schemas.into()],
        )? {
            relations.push((
                row.get::<pg_sys::Oid>(1)?.map_or(0, |o| o.to_u32()),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?.unwrap_or_default(),
                row.get::<String>(5)?,
                row.get::<bool>(6)?.unwrap_or(false),
            ));
        }
        let oids: Vec<pg_sys::Oid> = relations.iter().map(|r| pg_sys::Oid::from(r.0)).collect();
        let mut columns: Vec<Column> = Vec::new();
        for row in client.select(
            "SELECT a.attrelid, a.attnum, a.attname::text,
                    pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, d.description
               FROM pg_catalog.pg_attribute a
               LEFT JOIN pg_catalog.pg_description d
                      ON d.objoid = a.attrelid AND d.objsubid = a.attnum
                     AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
              WHERE a.attrelid = ANY ($1) AND a.attnum > 0 AND NOT a.attisdropped
                AND pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT')
              ORDER BY a.attrelid, a.attnum",
            None,
            &[oids.clone().into()],
        )? {
            columns.push((
                row.get::<pg_sys::Oid>(1)?.map_or(0, |o| o.to_u32()),
                row.get::<i16>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?.unwrap_or_default(),
                row.get::<bool>(5)?.unwrap_or(false),
                row.get::<String>(6)?,
            ));
        }
        let mut keys: Vec<Key> = Vec::new();
        for row in client.select(
            "SELECT k.conrelid, k.contype::text, k.conkey,
                    CASE WHEN k.contype = 'f' THEN k.confrelid::pg_catalog.regclass::text END,
                    k.confrelid, coalesce(k.confkey, '{}')
               FROM pg_catalog.pg_constraint k
              WHERE k.conrelid = ANY ($1) AND k.contype IN ('p', 'u', 'f')
                AND (k.contype <> 'f' OR pg_catalog.has_any_column_privilege(k.confrelid, 'SELECT'))
              ORDER BY k.conrelid, k.contype DESC, k.conname",
            None,
            &[oids.into()],
        )? {
            keys.push((
                row.get::<pg_sys::Oid>(1)?.map_or(0, |o| o.to_u32()),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<Vec<i16>>(3)?.unwrap_or_default(),
                row.get::<String>(4)?,
                row.get::<pg_sys::Oid>(5)?.map_or(0, |o| o.to_u32()),
                row.get::<Vec<i16>>(6)?.unwrap_or_default(),
            ));
        }
        Ok::<_, pgrx::spi::Error>((relations, columns, keys))
    })?;
    let names: HashMap<(u32, i16), &str> =
        columns.iter().map(|c| ((c.0, c.1), c.2.as_str())).collect();
    let mut columns_of: HashMap<u32, Vec<&Column>> = HashMap::new();
    for column in &columns {
        columns_of.entry(column.0).or_default().push(column);
    }
    let mut keys_of: HashMap<u32, Keys> = HashMap::new();
    for key in &keys {
        if let Some(text) = key_text(key, &names) {
            let of = keys_of.entry(key.0).or_default();
            match key.2.as_slice() {
                [column] => of.inline.entry(*column).or_default().push(text),
                _ => of.lines.push(text),
            }
        }
    }
    Ok(relations
        .into_iter()
        .map(|(oid, schema, name, kind, comment, visible)| {
            let columns = columns_of.remove(&oid).unwrap_or_default();
            let keys = keys_of.remove(&oid).unwrap_or_default();
            // A relation that search_path finds goes by its bare name, as the caller writes it
            // (and as foreign keys to it are written): fewer tokens for the model to read and
            // write.
            let name = match visible {
                true => ident(&name),
                false => format!("{}.{}", ident(&schema), ident(&name)),
            };
            describe(&name, &kind, comment, &columns, &keys)
        })
        .collect())
}

/// A relation's keys: those of one column, written on its line; the others as lines of their own.
#[derive(Default)]
struct Keys {
    inline: HashMap<i16, Vec<String>>,
    lines: Vec<String>,
}

/// `PRIMARY KEY (a, b)`, `UNIQUE (a, b)`, `FOREIGN KEY (a, b) REFERENCES t(c, d)`, and for a
/// key of one column what its line says: `PRIMARY KEY`, `UNIQUE`, `REFERENCES t(c)`. None
/// when a column of the key is hidden from the caller.
fn key_text(key: &Key, names: &HashMap<(u32, i16), &str>) -> Option<String> {
    let (relation, kind, columns, referenced, referenced_oid, referenced_columns) = key;
    let list = |relation: u32, numbers: &[i16]| -> Option<String> {
        let names: Option<Vec<String>> = numbers
            .iter()
            .map(|n| names.get(&(relation, *n)).map(|name| ident(name)))
            .collect();
        names.map(|n| n.join(", "))
    };
    let own = list(*relation, columns)?;
    let (primary, unique, foreign) = match columns.len() {
        1 => (String::new(), String::new(), String::new()),
        _ => (
            format!(" ({own})"),
            format!(" ({own})"),
            format!("FOREIGN KEY ({own}) "),
        ),
    };
    Some(match kind.as_str() {
        "p" => format!("PRIMARY KEY{primary}"),
        "u" => format!("UNIQUE{unique}"),
        _ => {
            let target = referenced.clone().unwrap_or_default();
            match list(*referenced_oid, referenced_columns) {
                Some(to) => format!("{foreign}REFERENCES {target}({to})"),
                None => format!("{foreign}REFERENCES {target}"),
            }
        }
    })
}

/// One relation as SQL DDL the model knows how to read.
fn describe(
    qualified: &str,
    kind: &str,
    comment: Option<String>,
    columns: &[&Column],
    keys: &Keys,
) -> Relation {
    let what = match kind {
        "v" => "VIEW",
        "m" => "MATERIALIZED VIEW",
        "f" => "FOREIGN TABLE",
        _ => "TABLE",
    };
    let mut text = String::new();
    let mut words = words(qualified);
    if let Some(comment) = comment {
        text.push_str(&format!(
            "-- comment on {qualified}: {}\n",
            quoted(&comment)
        ));
        words.extend(self::words(&comment));
    }
    text.push_str(&format!("CREATE {what} {qualified} (\n"));
    let mut lines = Vec::new();
    for (_, number, column, type_name, not_null, comment) in columns {
        let mut line = format!("  {} {}", ident(column), short_type(type_name));
        let inline = keys
            .inline
            .get(number)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if *not_null && !inline.iter().any(|k| k == "PRIMARY KEY") {
            line.push_str(" NOT NULL");
        }
        for key in inline {
            line.push_str(&format!(" {key}"));
        }
        if let Some(comment) = comment {
            line.push_str(&format!(" /* {} */", quoted(comment).replace("*/", "*\\/")));
            words.extend(self::words(comment));
        }
        words.extend(self::words(column));
        lines.push(line);
    }
    lines.extend(keys.lines.iter().map(|key| format!("  {key}")));
    text.push_str(&lines.join(",\n"));
    text.push_str("\n);\n");
    Relation {
        name: qualified.to_string(),
        kind: kind.to_string(),
        columns: columns.iter().map(|c| (c.2.clone(), c.3.clone())).collect(),
        description: text,
        words,
    }
}

/// The short spelling of a type that Postgres also accepts: fewer tokens for the model.
fn short_type(type_name: &str) -> String {
    const SHORT: [(&str, &str); 5] = [
        ("character varying", "varchar"),
        ("timestamp with time zone", "timestamptz"),
        ("timestamp without time zone", "timestamp"),
        ("time without time zone", "time"),
        ("character(", "char("),
    ];
    SHORT
        .iter()
        .find(|(long, _)| type_name.starts_with(long))
        .map_or_else(
            || type_name.to_string(),
            |(long, short)| format!("{short}{}", &type_name[long.len()..]),
        )
}

/// Text as a JSON string: one line, quotes escaped.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}
