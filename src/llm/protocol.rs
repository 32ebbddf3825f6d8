//! The JSON shapes of the Ollama and OpenAI-compatible APIs, and the checks on what comes back.

use pgrx::PgSqlErrorCode;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// pgvector's largest dimension.
const MAX_DIMENSIONS: usize = 16_000;

pub struct Model {
    pub name: String,
    pub size: Option<i64>,
    /// RFC 3339 text (Ollama) or Unix seconds (OpenAI).
    pub modified_at: Option<String>,
    pub created: Option<i64>,
}

fn bad_answer(what: impl std::fmt::Display) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        format!("the LLM server sent an answer llm_sql cannot use: {what}"),
    )
    .with_hint("Check that llm_sql.llm_api matches the server (ollama or openai) and that the model does what is asked of it.")
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| bad_answer(format!("malformed JSON ({e})")))
}

#[derive(Deserialize)]
struct OllamaGenerate {
    response: String,
}

pub fn ollama_generate(body: &[u8]) -> Result<String> {
    Ok(parse::<OllamaGenerate>(body)?.response)
}

#[derive(Deserialize)]
struct Message {
    role: Option<String>,
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Value>,
}

impl Message {
    fn into_json(self) -> Value {
        let mut reply = serde_json::json!({
            "role": self.role.unwrap_or_else(|| "assistant".into()),
            "content": self.content.unwrap_or_default(),
        });
        if let Some(calls) = self.tool_calls.filter(|c| !c.is_null()) {
            reply["tool_calls"] = calls;
        }
        reply
    }
}

/// Tokens a call cost, when the server says (OpenAI's `usage` object).
#[derive(Clone, Copy, Default, Debug, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The assistant's message (`{"role": …, "content": …}`) and what it cost.
pub struct ChatAnswer {
    pub reply: Value,
    pub usage: Usage,
}

#[derive(Deserialize)]
struct OllamaChat {
    message: Message,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    eval_count: u64,
}

pub fn ollama_chat(body: &[u8]) -> Result<ChatAnswer> {
    let answer = parse::<OllamaChat>(body)?;
    Ok(ChatAnswer {
        reply: answer.message.into_json(),
        usage: Usage {
            prompt_tokens: answer.prompt_eval_count,
            completion_tokens: answer.eval_count,
        },
    })
}

#[derive(Deserialize)]
struct OpenAiChat {
    choices: Vec<OpenAiChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct OpenAiChoice {
    message: Message,
}

pub fn openai_chat(body: &[u8]) -> Result<ChatAnswer> {
    let answer = parse::<OpenAiChat>(body)?;
    let usage = answer.usage.unwrap_or_default();
    let choice = answer
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| bad_answer("no choices"))?;
    Ok(ChatAnswer {
        reply: choice.message.into_json(),
        usage,
    })
}

#[derive(Deserialize)]
struct OllamaEmbed {
    embeddings: Vec<Vec<f32>>,
}

pub fn ollama_embed(body: &[u8]) -> Result<Vec<Vec<f32>>> {
    Ok(parse::<OllamaEmbed>(body)?.embeddings)
}

#[derive(Deserialize)]
struct OpenAiEmbed {
    data: Vec<OpenAiEmbedding>,
}

#[derive(Deserialize)]
struct OpenAiEmbedding {
    embedding: Vec<f32>,
    index: Option<usize>,
}

pub fn openai_embed(body: &[u8]) -> Result<Vec<Vec<f32>>> {
    let mut data = parse::<OpenAiEmbed>(body)?.data;
    // The index says which input each vector belongs to; servers may list them out of order.
    if data.iter().all(|d| d.index.is_some()) {
        data.sort_by_key(|d| d.index);
        if data.iter().enumerate().any(|(i, d)| d.index != Some(i)) {
            return Err(bad_answer("embedding indexes are not 0..n"));
        }
    }
    Ok(data.into_iter().map(|d| d.embedding).collect())
}

/// One vector per input, all of one dimension, every value finite.
pub fn check_embeddings(vectors: &[Vec<f32>], inputs: usize) -> Result<()> {
    if vectors.len() != inputs {
        return Err(bad_answer(format!(
            "{} embeddings for {inputs} inputs",
            vectors.len()
        )));
    }
    let dimension = vectors.first().map_or(0, Vec::len);
    if inputs > 0 && (dimension == 0 || dimension > MAX_DIMENSIONS) {
        return Err(bad_answer(format!(
            "embeddings of {dimension} dimensions (pgvector takes 1 to {MAX_DIMENSIONS})"
        )));
    }
    for vector in vectors {
        check_same_dimension(dimension, vector.len())?;
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(bad_answer("an embedding contains NaN or infinite values"));
        }
    }
    Ok(())
}

/// Embeddings of one call must all have one dimension.
pub fn check_same_dimension(dimension: usize, other: usize) -> Result<()> {
    if other == dimension {
        Ok(())
    } else {
        Err(bad_answer(format!(
            "embeddings of different dimensions ({dimension} and {other})"
        )))
    }
}

#[derive(Deserialize)]
struct OllamaTags {
    models: Vec<OllamaModel>,
}

#[derive(Deserialize)]
struct OllamaModel {
    name: String,
    size: Option<i64>,
    modified_at: Option<String>,
}

pub fn ollama_models(body: &[u8]) -> Result<Vec<Model>> {
    Ok(parse::<OllamaTags>(body)?
        .models
        .into_iter()
        .map(|m| Model {
            name: m.name,
            size: m.size,
            modified_at: m.modified_at,
            created: None,
        })
        .collect())
}

#[derive(Deserialize)]
struct OpenAiModels {
    data: Vec<OpenAiModel>,
}

#[derive(Deserialize)]
struct OpenAiModel {
    id: String,
    created: Option<i64>,
}

pub fn openai_models(body: &[u8]) -> Result<Vec<Model>> {
    Ok(parse::<OpenAiModels>(body)?
        .data
        .into_iter()
        .map(|m| Model {
            name: m.id,
            size: None,
            modified_at: None,
            created: m.created,
        })
        .collect())
}

/// `messages` must be a non-empty array of objects with a string role and content.
pub fn check_messages(messages: &Value) -> Result<()> {
    let wrong = || {
        Error::invalid_parameter(
            "messages must be a JSON array of {\"role\": …, \"content\": …} objects",
        )
        .with_hint(r#"For example: '[{"role": "user", "content": "Hello"}]'::jsonb"#)
    };
    let list = messages
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(wrong)?;
    for message in list {
        let role = message.get("role").and_then(Value::as_str);
        let content = message.get("content");
        if role.is_none() || !matches!(content, Some(Value::String(_))) {
            return Err(wrong());
        }
    }
    Ok(())
}
