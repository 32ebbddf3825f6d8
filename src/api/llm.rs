//! SQL functions of the LLM client: generate, chat, embed, models, llm_health.
//!
//! NULL in, NULL out. An empty prompt is an error; an empty or whitespace-only text has no
//! embedding (NULL), and is never sent to the server.

use pgrx::datum::{JsonB, TimestampWithTimeZone};
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use serde_json::Value;

use super::inline_embed;
use crate::embeddings::{self, vector};
use crate::error::{Error, OrReport, Result};
use crate::llm;

fn options_object(options: Option<JsonB>) -> Result<Option<Value>> {
    match options.map(|o| o.0) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(Value::Object(o))),
        Some(_) => Err(Error::invalid_parameter("options must be a JSON object")
            .with_hint(r#"For example: '{"temperature": 0}'::jsonb"#)),
    }
}

#[pg_extern(volatile, parallel_unsafe, name = "generate")]
fn generate(
    prompt: Option<&str>,
    model: default!(Option<&str>, "NULL"),
    system: default!(Option<&str>, "NULL"),
    options: default!(Option<JsonB>, "NULL"),
) -> Option<String> {
    let prompt = prompt?;
    (|| {
        if prompt.trim().is_empty() {
            return Err(Error::invalid_parameter("the prompt is empty"));
        }
        let model = llm::chat_model(model)?;
        llm::generate(prompt, &model, system, options_object(options)?.as_ref())
    })()
    .map(Some)
    .or_report()
}

#[pg_extern(volatile, parallel_unsafe, name = "chat")]
fn chat(
    messages: Option<JsonB>,
    model: default!(Option<&str>, "NULL"),
    options: default!(Option<JsonB>, "NULL"),
) -> Option<JsonB> {
    let messages = messages?;
    (|| {
        let model = llm::chat_model(model)?;
        llm::chat(&messages.0, &model, options_object(options)?.as_ref())
    })()
    .map(|reply| Some(JsonB(reply)))
    .or_report()
}

// (pgrx reads the SQL columns from this signature, so the type is spelled out.)
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, name = "models")]
fn models() -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(size, Option<i64>),
        name!(modified_at, Option<TimestampWithTimeZone>),
    ),
> {
    let models = llm::models().or_report();
    TableIterator::new(models.into_iter().map(|m| {
        // Ollama sends a timestamp, OpenAI-compatible servers seconds since the epoch.
        let modified = m
            .modified_at
            .as_deref()
            .and_then(|t| t.parse::<TimestampWithTimeZone>().ok())
            .or_else(|| m.created.map(|s| pgrx::datum::to_timestamp(s as f64)));
        (m.name, m.size, modified)
    }))
}

/// `llm_sql.set_llm_api_key(key)`: superusers and llm_sql's owner only.
#[pg_extern(volatile, parallel_unsafe, name = "set_llm_api_key")]
fn set_llm_api_key(key: Option<&str>) {
    llm::key::set(key).or_report()
}

#[pg_extern(volatile, parallel_unsafe)]
fn llm_health() -> JsonB {
    use crate::embeddings::builtin;
    JsonB(llm::health(|model| {
        builtin::is_builtin(model).then(builtin::installed)
    }))
}

/// Argument `index` as text, None when NULL.
unsafe fn text_arg(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> Option<String> {
    // SAFETY: the caller declares argument `index` as text.
    unsafe { pgrx::fcinfo::pg_getarg::<String>(fcinfo, index) }
}

/// `llm_sql.embed(input text, model text DEFAULT NULL) RETURNS vector`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_embed(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    // SAFETY: declared in SQL as (text, text) returning vector.
    let (input, model) = unsafe { (text_arg(fcinfo, 0), text_arg(fcinfo, 1)) };
    let embedded = (|| {
        let Some(input) = input.filter(|i| embeddings::has_text(i)) else {
            return Ok(None);
        };
        // SAFETY: this call's fcinfo.
        unsafe { inline_embed::refuse_bound_array(fcinfo, &input)? };
        let model = llm::embedding_model(model.as_deref())?;
        inline_embed::remembered(&input, &model, || {
            Ok(embeddings::embed(&[input.as_str()], &model, 1)?
                .into_iter()
                .next())
        })
    })();
    match embedded.or_report() {
        Some(values) => vector::datum(&values),
        None => {
            // SAFETY: a NULL result of this call.
            unsafe { (*fcinfo).isnull = true };
            Datum::from(0)
        }
    }
}

finfo_v1!(pg_finfo_llm_sql_embed);

/// `llm_sql.embed(inputs text[], model text DEFAULT NULL) RETURNS vector[]`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_embed_array(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    // SAFETY: declared in SQL as (text[], text) returning vector[].
    let (inputs, model, array_type) = unsafe {
        (
            pgrx::fcinfo::pg_getarg::<Vec<Option<String>>>(fcinfo, 0),
            text_arg(fcinfo, 1),
            pg_sys::get_fn_expr_rettype((*fcinfo).flinfo),
        )
    };
    let Some(inputs) = inputs else {
        // SAFETY: a NULL result of this call.
        unsafe { (*fcinfo).isnull = true };
        return Datum::from(0);
    };
    let vectors = (|| {
        let wanted = inputs.iter().flatten().any(|t| embeddings::has_text(t));
        let model = if wanted {
            llm::embedding_model(model.as_deref())?
        } else {
            String::new()
        };
        let texts: Vec<&str> = inputs
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|t| embeddings::has_text(t))
            .collect();
        let mut vectors =
            embeddings::embed(&texts, &model, embeddings::batch_size(None)?)?.into_iter();
        Ok::<_, Error>(
            inputs
                .iter()
                .map(|t| match t {
                    Some(t) if embeddings::has_text(t) => vectors.next(),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        )
    })()
    .or_report();
    // SAFETY: the element type of the declared result type vector[].
    let vector_type = unsafe { pg_sys::get_element_type(array_type) };
    let refs: Vec<Option<&[f32]>> = vectors.iter().map(|v| v.as_deref()).collect();
    vector::array_datum(&refs, vector_type)
}

finfo_v1!(pg_finfo_llm_sql_embed_array);

pgrx::extension_sql!(
    r#"
CREATE FUNCTION llm_sql.embed(input text, model text DEFAULT NULL) RETURNS vector
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'llm_sql_embed';
COMMENT ON FUNCTION llm_sql.embed(text, text) IS
    'The embedding of a text as a pgvector vector (NULL for NULL or whitespace-only text)';
CREATE FUNCTION llm_sql.embed(inputs text[], model text DEFAULT NULL) RETURNS vector[]
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_embed_array';
COMMENT ON FUNCTION llm_sql.embed(text[], text) IS
    'Embeddings of many texts in order, one request per llm_sql.embedding_batch_size texts';
COMMENT ON FUNCTION llm_sql.models() IS 'The models the LLM server offers';
COMMENT ON FUNCTION llm_sql.set_llm_api_key(text) IS
    'Sets the LLM server''s API key (NULL removes it); superusers and llm_sql''s owner only';
"#,
    name = "llm_functions",
    requires = ["schema_usage", models, set_llm_api_key],
);
