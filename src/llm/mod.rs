//! The LLM client: completions, chat, embeddings and the model list, from an Ollama server or
//! an OpenAI-compatible one (`llm_sql.llm_api`). Everything a server sends back is checked
//! before it reaches SQL: malformed JSON, a wrong number of embeddings, NaN or infinite values
//! and ragged dimensions are errors.

pub mod http;
pub mod key;
mod protocol;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::settings::{self, LlmApi};
pub use protocol::{ChatAnswer, Model, Usage};

thread_local! {
    /// The last LLM error this backend saw, for llm_health().
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Embedding vectors, one per input.
pub type Embeddings = Vec<Vec<f32>>;

/// The server settings of the current call.
pub struct Server {
    pub base: String,
    pub api: LlmApi,
    key: Option<String>,
    timeout: Duration,
    retries: u32,
}

impl Server {
    pub fn current() -> Result<Server> {
        let base = settings::string(&settings::LLM_URL).ok_or_else(|| {
            Error::invalid_parameter("llm_sql.llm_url is empty")
                .with_hint("A superuser sets it, e.g. ALTER SYSTEM SET llm_sql.llm_url = 'http://127.0.0.1:11434'.")
        })?;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::invalid_parameter(format!(
                "llm_sql.llm_url must start with http:// or https://, not \"{}\"",
                http::redact_url(&base)
            )));
        }
        Ok(Server {
            base: base.trim_end_matches('/').to_string(),
            api: settings::LLM_API.get(),
            key: key::get()?,
            timeout: settings::request_timeout(),
            retries: settings::MAX_RETRIES.get().max(0) as u32,
        })
    }

    /// `path` of the Ollama API, or `/v1/…` of the OpenAI one.
    fn url(&self, path: &str) -> String {
        match self.api {
            LlmApi::Ollama => format!("{}{path}", self.base),
            LlmApi::OpenAi if self.base.ends_with("/v1") => format!("{}{path}", self.base),
            LlmApi::OpenAi => format!("{}/v1{path}", self.base),
        }
    }

    /// Starts a request to `path` whose answer `read` turns into a T on the request thread.
    fn start<T: Send + 'static>(
        &self,
        path: &str,
        body: Option<&Value>,
        read: http::Reader<T>,
    ) -> Result<Pending<T>> {
        let request = http::Request {
            url: self.url(path),
            body: body.map(|b| b.to_string().into_bytes()),
            api_key: self.key.clone(),
            timeout: self.timeout,
            max_retries: self.retries,
        };
        Ok(Pending(remember_error(http::start(request, read))?))
    }

    fn call(&self, path: &str, body: Option<&Value>) -> Result<Vec<u8>> {
        self.start(path, body, Arc::new(Ok))?.wait()
    }
}

/// An LLM request in flight.
pub struct Pending<T: Send + 'static>(http::InFlight<T>);

impl<T: Send + 'static> Pending<T> {
    pub fn wait(self) -> Result<T> {
        remember_error(self.0.wait())
    }
}

/// Keeps the error of a failed call for llm_health().
fn remember_error<T>(outcome: Result<T>) -> Result<T> {
    if let Err(e) = &outcome {
        LAST_ERROR.with(|l| *l.borrow_mut() = Some(e.message.clone()));
    }
    outcome
}

/// The model to use: the call's, else the setting.
pub fn model_or(
    model: Option<&str>,
    setting: &pgrx::GucSetting<Option<std::ffi::CString>>,
    name: &str,
) -> Result<String> {
    match model.map(str::trim).filter(|m| !m.is_empty()) {
        Some(model) => Ok(model.to_string()),
        None => settings::string(setting).ok_or_else(|| {
            Error::invalid_parameter(format!("no model given and llm_sql.{name} is empty"))
                .with_hint(format!("Pass a model, or SET llm_sql.{name} = '<model>'."))
        }),
    }
}

pub fn chat_model(model: Option<&str>) -> Result<String> {
    model_or(model, &settings::CHAT_MODEL, "chat_model")
}

pub fn embedding_model(model: Option<&str>) -> Result<String> {
    model_or(model, &settings::EMBEDDING_MODEL, "embedding_model")
}

/// One completion of `prompt`.
pub fn generate(
    prompt: &str,
    model: &str,
    system: Option<&str>,
    options: Option<&Value>,
) -> Result<String> {
    let server = Server::current()?;
    match server.api {
        LlmApi::Ollama => {
            let mut body = json!({"model": model, "prompt": prompt, "stream": false});
            if let Some(system) = system {
                body["system"] = json!(system);
            }
            if let Some(options) = options {
                body["options"] = options.clone();
            }
            protocol::ollama_generate(&server.call("/api/generate", Some(&body))?)
        }
        LlmApi::OpenAi => {
            let mut messages = Vec::new();
            if let Some(system) = system {
                messages.push(json!({"role": "system", "content": system}));
            }
            messages.push(json!({"role": "user", "content": prompt}));
            let answer = chat_with(&server, &Value::Array(messages), model, options, false)?;
            Ok(answer.reply["content"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        }
    }
}

/// The assistant's answer to `messages` (`[{"role": …, "content": …}, …]`), as
/// `{"role": "assistant", "content": …}`.
pub fn chat(messages: &Value, model: &str, options: Option<&Value>) -> Result<Value> {
    protocol::check_messages(messages)?;
    Ok(chat_with(&Server::current()?, messages, model, options, false)?.reply)
}

/// How one bounded chat call may answer.
pub struct Limits {
    pub temperature: f64,
    /// Most tokens the answer may have (Ollama's `num_predict`, OpenAI's `max_tokens`).
    pub max_tokens: u32,
    /// Ask the server for a JSON object (Ollama's `format`, OpenAI's `response_format`).
    pub json: bool,
    /// Text that ends the answer where it appears (not included).
    pub stop: &'static [&'static str],
    /// The call's time limit instead of `llm_sql.request_timeout` (the caller's own budget);
    /// the call is not retried, so that it ends in time.
    pub within: Duration,
}

/// A chat call with a cap on the answer's length and on its time: the answer and its cost.
pub fn chat_limited(messages: &Value, model: &str, limits: &Limits) -> Result<ChatAnswer> {
    let mut server = Server::current()?;
    server.timeout = limits.within.max(Duration::from_millis(1));
    server.retries = 0;
    let mut options = match server.api {
        LlmApi::Ollama => {
            json!({"temperature": limits.temperature, "num_predict": limits.max_tokens})
        }
        LlmApi::OpenAi => {
            json!({"temperature": limits.temperature, "max_tokens": limits.max_tokens})
        }
    };
    if !limits.stop.is_empty() {
        options["stop"] = json!(limits.stop);
    }
    chat_with(&server, messages, model, Some(&options), limits.json)
}

fn chat_with(
    server: &Server,
    messages: &Value,
    model: &str,
    options: Option<&Value>,
    json_answer: bool,
) -> Result<ChatAnswer> {
    let mut body = json!({"model": model, "messages": messages, "stream": false});
    match server.api {
        LlmApi::Ollama => {
            if let Some(options) = options {
                body["options"] = options.clone();
            }
            if json_answer {
                body["format"] = json!("json");
            }
            protocol::ollama_chat(&server.call("/api/chat", Some(&body))?)
        }
        LlmApi::OpenAi => {
            // OpenAI-compatible servers take sampling options (temperature, max_tokens, …)
            // at the top level.
            if let Some(Value::Object(options)) = options {
                for (key, value) in options {
                    body[key] = value.clone();
                }
            }
            if json_answer {
                body["response_format"] = json!({"type": "json_object"});
            }
            protocol::openai_chat(&server.call("/chat/completions", Some(&body))?)
        }
    }
}

/// Embeddings of `texts`, in order, one request per `batch_size` texts. Every vector is checked
/// (finite, same dimension); empty input makes no request.
pub fn embed(texts: &[&str], model: &str, batch_size: usize) -> Result<Embeddings> {
    let mut out: Embeddings = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch_size.max(1)) {
        let vectors = start_embed(chunk, model)?.wait()?;
        if let (Some(first), Some(next)) = (out.first(), vectors.first()) {
            protocol::check_same_dimension(first.len(), next.len())?;
        }
        out.extend(vectors);
    }
    Ok(out)
}

/// Starts one request for the embeddings of `texts` (checked: one finite vector per text, all
/// of one dimension); `wait` for them while doing other work.
pub fn start_embed(texts: &[&str], model: &str) -> Result<Pending<Embeddings>> {
    let server = Server::current()?;
    let inputs = texts.len();
    let body = json!({"model": model, "input": texts});
    let ollama = matches!(server.api, LlmApi::Ollama);
    let path = if ollama { "/api/embed" } else { "/embeddings" };
    let read: http::Reader<Embeddings> = Arc::new(move |answer: Vec<u8>| {
        let vectors = match ollama {
            true => protocol::ollama_embed(&answer)?,
            false => protocol::openai_embed(&answer)?,
        };
        protocol::check_embeddings(&vectors, inputs)?;
        Ok(vectors)
    });
    server.start(path, Some(&body), read)
}

/// The models the server offers.
pub fn models() -> Result<Vec<Model>> {
    let server = Server::current()?;
    match server.api {
        LlmApi::Ollama => protocol::ollama_models(&server.call("/api/tags", None)?),
        LlmApi::OpenAi => protocol::openai_models(&server.call("/models", None)?),
    }
}

/// Whether the server answers, how fast, with which models; and the last error seen.
/// `local_model` says whether a model that runs in the backend, not on the server, is installed
/// (None for a model of the server's).
pub fn health(local_model: impl Fn(&str) -> Option<bool>) -> Value {
    let last_error = || LAST_ERROR.with(|l| l.borrow().clone());
    let server = match Server::current() {
        Ok(server) => server,
        Err(e) => {
            return json!({"reachable": false, "error": e.message, "last_error": last_error()})
        }
    };
    let started = Instant::now();
    let listed = models();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut report = json!({
        "url": http::redact_url(&server.base),
        "api": match server.api { LlmApi::Ollama => "ollama", LlmApi::OpenAi => "openai" },
        "latency_ms": (latency_ms * 10.0).round() / 10.0,
    });
    let models = match listed {
        Ok(models) => {
            report["reachable"] = json!(true);
            report["models"] = json!(models.iter().map(|m| m.name.clone()).collect::<Vec<_>>());
            Some(models)
        }
        Err(e) => {
            report["reachable"] = json!(false);
            report["error"] = json!(e.message);
            None
        }
    };
    // Whether each configured model is usable: a local one when its files are installed (also
    // while the server is down), a server's model when the server lists it.
    let wanted = |setting| {
        settings::string(setting).map(|m: String| {
            let present = local_model(&m).or_else(|| {
                models.as_ref().map(|models| {
                    models
                        .iter()
                        .any(|x| x.name == m || x.name == format!("{m}:latest"))
                })
            });
            json!({"name": m, "present": present})
        })
    };
    report["chat_model"] = json!(wanted(&settings::CHAT_MODEL));
    report["embedding_model"] = json!(wanted(&settings::EMBEDDING_MODEL));
    report["last_error"] = json!(last_error());
    report
}
