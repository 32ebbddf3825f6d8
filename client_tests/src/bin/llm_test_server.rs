//! An Ollama- and OpenAI-compatible HTTP server for llm_sql's tests: real HTTP and JSON on
//! 127.0.0.1, no model.
//!
//!   llm_test_server [--port 25440] [--dim 768]
//!
//! Endpoints: /api/tags, /api/generate, /api/chat, /api/embed, /api/embeddings,
//! /v1/models, /v1/chat/completions, /v1/embeddings.
//!
//! Embeddings are a hashed bag of words, L2-normalised: texts that share words are nearer
//! than texts that share none, and the same text always gets the same vector.
//!
//! Each test picks its behaviour with a path prefix in llm_sql.llm_url, a comma-separated
//! list of options before the API path, e.g. `http://127.0.0.1:25440/key=t1,fault=500,times=2`:
//!   key=K          names the test: scripted replies and request statistics are per key
//!   dim=N          embedding dimension (default --dim)
//!   delay=MS       wait before answering
//!   fault=F        500 | malformed | nan | inf | wrongdim | wrongcount | drop | unauthorized
//!   times=N        the fault hits only the first N requests of the key
//!   after=N        the fault hits only the requests after the first N of the key
//! Chat and generate answer "echo: <last user message>" unless replies were scripted with
//! `POST /_script/K` (a JSON array of strings, used in order, the last one repeating).
//! `GET /_stats/K` returns {"requests", "connections", "authorization", "last_body", "busy_ms"}.
//! Unknown models: names starting with "missing" get Ollama's 404 "model not found".

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

#[derive(Default)]
struct KeyState {
    requests: u64,
    faults_served: u64,
    connections: HashSet<u64>,
    replies: Vec<String>,
    replies_used: usize,
    authorization: Option<String>,
    last_body: Option<Value>,
    /// Time spent answering (parsing, embedding, writing JSON), delays excluded.
    busy: Duration,
}

struct Server {
    dim: usize,
    keys: Mutex<HashMap<String, KeyState>>,
}

#[derive(Default)]
struct Options {
    key: String,
    dim: Option<usize>,
    delay_ms: u64,
    fault: Option<String>,
    times: Option<u64>,
    after: u64,
}

const ENDPOINTS: [&str; 8] = [
    "/api/tags",
    "/api/generate",
    "/api/chat",
    "/api/embeddings",
    "/api/embed",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/embeddings",
];

/// Splits `/opts/api/embed` into the options and the endpoint.
fn route(path: &str) -> Option<(Options, &'static str)> {
    let endpoint = ENDPOINTS.iter().find(|e| path.ends_with(**e))?;
    let prefix = path[..path.len() - endpoint.len()].trim_matches('/');
    let mut options = Options::default();
    for part in prefix.split(['/', ',']).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        match name {
            "key" => options.key = value.to_string(),
            "dim" => options.dim = value.parse().ok(),
            "delay" => options.delay_ms = value.parse().unwrap_or(0),
            "fault" => options.fault = Some(value.to_string()),
            "times" => options.times = value.parse().ok(),
            "after" => options.after = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    Some((options, endpoint))
}

/// Hashed bag of words, normalised.
fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim.max(1)];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in word.to_lowercase().bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % dim.max(1) as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn json_reply(value: Value) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, value.to_string())
}

/// Embeddings as JSON text; `fault` may spoil one value.
fn vectors_json(vectors: &[Vec<f32>], fault: Option<&str>) -> String {
    let mut rows: Vec<String> = vectors
        .iter()
        .map(|v| serde_json::to_string(v).expect("floats serialize"))
        .collect();
    if let Some(first) = rows.first_mut() {
        match fault {
            Some("nan") => *first = first.replacen('[', "[NaN,", 1),
            Some("inf") => *first = first.replacen('[', "[1e39,", 1),
            _ => {}
        }
    }
    format!("[{}]", rows.join(","))
}

fn inputs(body: &Value) -> Vec<String> {
    match body.get("input").or_else(|| body.get("prompt")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

fn last_user_message(body: &Value) -> String {
    if let Some(prompt) = body.get("prompt").and_then(Value::as_str) {
        return prompt.to_string();
    }
    body.get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

impl Server {
    fn control(
        &self,
        method: &hyper::Method,
        path: &str,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        if let Some(key) = path.strip_prefix("/_script/") {
            if method != hyper::Method::POST {
                return None;
            }
            let replies: Vec<String> = serde_json::from_slice(body).unwrap_or_default();
            let mut keys = self.keys.lock().unwrap();
            let state = keys.entry(key.to_string()).or_default();
            state.replies = replies;
            state.replies_used = 0;
            return Some(json_reply(json!({"ok": true})));
        }
        if let Some(key) = path.strip_prefix("/_stats/") {
            let keys = self.keys.lock().unwrap();
            let stats = keys.get(key).map(|s| {
                json!({
                    "requests": s.requests,
                    "connections": s.connections.len(),
                    "authorization": s.authorization,
                    "last_body": s.last_body,
                    "busy_ms": s.busy.as_secs_f64() * 1000.0,
                })
            });
            return Some(json_reply(
                stats.unwrap_or(json!({"requests": 0, "connections": 0})),
            ));
        }
        None
    }

    /// Answers one request and adds the time it took (delays excluded) to its key's stats.
    async fn handle(
        self: Arc<Self>,
        connection: u64,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let started = std::time::Instant::now();
        let key = route(request.uri().path()).map(|(o, _)| (o.key, o.delay_ms));
        let response = Arc::clone(&self).answer(connection, request).await;
        if let Some((key, delay_ms)) = key {
            let busy = started
                .elapsed()
                .saturating_sub(Duration::from_millis(delay_ms));
            self.keys.lock().unwrap().entry(key).or_default().busy += busy;
        }
        response
    }

    async fn answer(
        self: Arc<Self>,
        connection: u64,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if let Some(response) = self.control(&method, &path, &body) {
            return Ok(response);
        }
        let Some((options, endpoint)) = route(&path) else {
            return Ok(reply(
                StatusCode::NOT_FOUND,
                json!({"error": "not found"}).to_string(),
            ));
        };
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let fault = {
            let mut keys = self.keys.lock().unwrap();
            let state = keys.entry(options.key.clone()).or_default();
            state.requests += 1;
            state.connections.insert(connection);
            state.authorization = authorization;
            state.last_body = Some(parsed.clone());
            match (&options.fault, options.times) {
                (Some(_), _) if state.requests <= options.after => None,
                (Some(_), Some(times)) if state.faults_served >= times => None,
                (Some(fault), _) => {
                    state.faults_served += 1;
                    Some(fault.clone())
                }
                (None, _) => None,
            }
        };
        if options.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(options.delay_ms)).await;
        }
        match fault.as_deref() {
            Some("500") => {
                return Ok(reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "scripted server error"}).to_string(),
                ))
            }
            Some("unauthorized") => {
                return Ok(reply(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": {"message": "invalid api key"}}).to_string(),
                ))
            }
            Some("malformed") => {
                return Ok(reply(StatusCode::OK, "{\"embeddings\": [[0.1, 0.2".into()))
            }
            // An error from the service makes hyper close the connection without an answer.
            Some("drop") => return Err(std::io::Error::other("scripted dropped connection")),
            _ => {}
        }
        let model = parsed.get("model").and_then(Value::as_str).unwrap_or("");
        if model.starts_with("missing") {
            return Ok(reply(
                StatusCode::NOT_FOUND,
                json!({"error": format!("model \"{model}\" not found, try pulling it first")})
                    .to_string(),
            ));
        }
        let dim = options.dim.unwrap_or(self.dim);
        let fault = fault.as_deref();
        Ok(match endpoint {
            "/api/tags" => json_reply(json!({"models": [
                {"name": "test-chat:latest", "model": "test-chat:latest", "size": 4_683_087_332i64,
                 "modified_at": "2026-11-01T10:00:00.123456789+01:00", "digest": "c0ffee"},
                {"name": "nomic-embed-text:latest", "model": "nomic-embed-text:latest", "size": 274_302_450i64,
                 "modified_at": "2026-10-01T08:30:00Z", "digest": "beef"}
            ]})),
            "/v1/models" => json_reply(json!({"object": "list", "data": [
                {"id": "test-chat", "object": "model", "created": 1_790_000_000i64, "owned_by": "test"},
                {"id": "nomic-embed-text", "object": "model", "created": 1_780_000_000i64, "owned_by": "test"}
            ]})),
            "/api/generate" | "/api/chat" | "/v1/chat/completions" => {
                let text = {
                    let mut keys = self.keys.lock().unwrap();
                    let state = keys.entry(options.key.clone()).or_default();
                    if state.replies.is_empty() {
                        format!("echo: {}", last_user_message(&parsed))
                    } else {
                        let i = state.replies_used.min(state.replies.len() - 1);
                        state.replies_used += 1;
                        state.replies[i].clone()
                    }
                };
                match endpoint {
                    "/api/generate" => {
                        json_reply(json!({"model": model, "response": text, "done": true}))
                    }
                    "/api/chat" => json_reply(json!({"model": model,
                        "message": {"role": "assistant", "content": text}, "done": true})),
                    _ => json_reply(json!({"id": "chatcmpl-test", "object": "chat.completion",
                        "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text}}]})),
                }
            }
            _ => {
                let texts = inputs(&parsed);
                let mut vectors: Vec<Vec<f32>> = texts.iter().map(|t| embed(t, dim)).collect();
                match fault {
                    Some("wrongcount") => {
                        vectors.pop();
                    }
                    Some("wrongdim") => {
                        if let Some(v) = vectors.last_mut() {
                            v.push(0.0);
                        }
                    }
                    _ => {}
                }
                let body = match endpoint {
                    "/api/embed" => format!(
                        "{{\"model\":\"{model}\",\"embeddings\":{}}}",
                        vectors_json(&vectors, fault)
                    ),
                    "/api/embeddings" => {
                        let one = vectors_json(&vectors[..vectors.len().min(1)], fault);
                        format!("{{\"embedding\":{}}}", &one[1..one.len() - 1])
                    }
                    _ => {
                        let items: Vec<String> = vectors
                            .iter()
                            .enumerate()
                            .map(|(i, v)| {
                                let one = vectors_json(
                                    std::slice::from_ref(v),
                                    if i == 0 { fault } else { None },
                                );
                                format!(
                                    "{{\"object\":\"embedding\",\"index\":{i},\"embedding\":{}}}",
                                    &one[1..one.len() - 1]
                                )
                            })
                            .collect();
                        format!(
                            "{{\"object\":\"list\",\"model\":\"{model}\",\"data\":[{}]}}",
                            items.join(",")
                        )
                    }
                };
                reply(StatusCode::OK, body)
            }
        })
    }
}

fn argument(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let port: u16 = argument("--port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(25440);
    let dim: usize = argument("--dim")
        .and_then(|d| d.parse().ok())
        .unwrap_or(768);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("llm_test_server listening on 127.0.0.1:{port} (dim {dim})");
    let server = Arc::new(Server {
        dim,
        keys: Mutex::new(HashMap::new()),
    });
    let next_connection = AtomicU64::new(1);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let connection = next_connection.fetch_add(1, Ordering::Relaxed);
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let server = Arc::clone(&server);
                async move { server.handle(connection, request).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
