//! HTTP to the LLM server: one connection pool per backend, timeouts, retries with backoff,
//! and cancellation.
//!
//! A request runs on a short-lived thread (started with signals blocked, so Postgres's handlers
//! stay on the backend thread) while the backend thread waits for it and watches for a cancel,
//! `statement_timeout` or terminate request. When one arrives, the backend shuts the agent down,
//! which makes the request fail at once, and lets Postgres raise its own error. The request
//! thread never calls Postgres.

use std::cell::RefCell;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pgrx::PgSqlErrorCode;
use ureq::Agent;

use crate::engine::interrupt::{cancel_requested, with_signals_blocked};
use crate::error::{Error, Result};

/// How often the backend looks at the interrupt flags while a request runs.
const POLL: Duration = Duration::from_millis(10);
/// Largest response accepted (a batch of 4096 embeddings of 4096 floats is ~300 MB of JSON).
const MAX_BODY: u64 = 512 << 20;

thread_local! {
    /// The backend's agent: its pool keeps connections to the server open between calls.
    static AGENT: RefCell<Option<(Agent, Duration)>> = const { RefCell::new(None) };
}

/// One request to the LLM server.
pub struct Request<'a> {
    pub url: String,
    /// JSON body: POST; none: GET.
    pub body: Option<Vec<u8>>,
    pub api_key: Option<&'a str>,
    pub timeout: Duration,
    pub max_retries: u32,
}

/// What went wrong with one attempt.
enum Failure {
    /// Could not connect, or the connection broke: worth retrying.
    Connect(String),
    Timeout,
    /// The server answered with an error status.
    Status(u16, String),
    Other(String),
}

/// Sends the request, retrying connection errors and 5xx answers; returns the response body of
/// a 2xx answer.
pub fn send(request: &Request) -> Result<Vec<u8>> {
    let mut attempt = 0;
    loop {
        let failure = match attempt_once(request)? {
            Ok(body) => return Ok(body),
            Err(failure) => failure,
        };
        let retryable = matches!(failure, Failure::Connect(_) | Failure::Status(500..=599, _));
        if !retryable || attempt >= request.max_retries {
            return Err(describe(failure, &request.url, request.timeout, attempt));
        }
        attempt += 1;
        // 250 ms, 500 ms, 1 s, ... capped at 8 s.
        backoff(Duration::from_millis(250 << (attempt - 1).min(5)));
    }
}

fn agent(timeout: Duration) -> Agent {
    AGENT.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Some((agent, t)) if *t == timeout => agent.clone(),
            _ => {
                let config = Agent::config_builder()
                    .timeout_global(Some(timeout))
                    .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
                    .http_status_as_error(false)
                    .max_idle_connections_per_host(4)
                    .build();
                let agent: Agent = config.into();
                *slot = Some((agent.clone(), timeout));
                agent
            }
        }
    })
}

/// One attempt. The outer error is a cancel (already raised by Postgres); the inner one a
/// failure of the request.
fn attempt_once(request: &Request) -> Result<std::result::Result<Vec<u8>, Failure>> {
    let agent = agent(request.timeout);
    let (tx, rx) = mpsc::channel();
    let worker_agent = agent.clone();
    let url = request.url.clone();
    let body = request.body.clone();
    let auth = request.api_key.map(|key| format!("Bearer {key}"));
    let spawned = with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("llm_sql http".into())
            .spawn(move || {
                let _ = tx.send(perform(&worker_agent, &url, body, auth));
            })
    });
    let handle = spawned.map_err(|e| Error::internal(format!("could not start a thread: {e}")))?;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(outcome) => {
                let _ = handle.join();
                return Ok(outcome);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(Err(Failure::Other("the request thread stopped".into())));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if cancel_requested() {
            // Closes the request's connection; the thread ends on its own (a connect in
            // progress is bounded by the connect timeout), so it is not joined.
            AGENT.with(|slot| slot.borrow_mut().take());
            agent.shutdown();
            pgrx::check_for_interrupts!();
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
                "the LLM request was canceled",
            ));
        }
    }
}

/// The request itself, on the request thread: no Postgres calls here.
fn perform(
    agent: &Agent,
    url: &str,
    body: Option<Vec<u8>>,
    auth: Option<String>,
) -> std::result::Result<Vec<u8>, Failure> {
    let sent = match body {
        Some(body) => {
            let mut post = agent.post(url).header("Content-Type", "application/json");
            if let Some(auth) = &auth {
                post = post.header("Authorization", auth);
            }
            post.send(&body[..])
        }
        None => {
            let mut get = agent.get(url);
            if let Some(auth) = &auth {
                get = get.header("Authorization", auth);
            }
            get.call()
        }
    };
    let mut response = sent.map_err(classify)?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(classify)?;
    if (200..300).contains(&status) {
        Ok(bytes)
    } else {
        Err(Failure::Status(
            status,
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }
}

fn classify(error: ureq::Error) -> Failure {
    match error {
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Failure::Timeout,
        ureq::Error::Io(e) => Failure::Connect(e.to_string()),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            Failure::Connect(error.to_string())
        }
        ureq::Error::Protocol(_) => Failure::Connect(error.to_string()),
        other => Failure::Other(other.to_string()),
    }
}

/// The error a failed request becomes: which URL, what happened, what to check.
fn describe(failure: Failure, url: &str, timeout: Duration, retries: u32) -> Error {
    let url = redact_url(url);
    let tried = if retries > 0 {
        format!(" (after {retries} retries)")
    } else {
        String::new()
    };
    match failure {
        Failure::Connect(reason) => Error::new(
            PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
            format!("could not reach the LLM server at {url}{tried}: {reason}"),
        )
        .with_hint("Check that the server is running and that llm_sql.llm_url points to it."),
        Failure::Timeout => Error::new(
            PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
            format!(
                "the LLM server at {url} did not answer within {} ms{tried}",
                timeout.as_millis()
            ),
        )
        .with_hint("Raise llm_sql.request_timeout, or check the server's load."),
        Failure::Status(status, body) => {
            let reason = server_error_text(&body);
            let error = Error::new(
                PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
                format!("the LLM server at {url} answered HTTP {status}{tried}: {reason}"),
            );
            if status == 404 && reason.contains("model") {
                Error {
                    code: PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                    ..error
                }
                .with_hint("Pull the model on the server (ollama pull <model>), or name one that llm_sql.models() lists.")
            } else if status == 401 || status == 403 {
                error.with_hint("Check llm_sql.llm_api_key.")
            } else {
                error
            }
        }
        Failure::Other(reason) => Error::new(
            PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
            format!("the request to the LLM server at {url} failed: {reason}"),
        ),
    }
}

/// The server's own error message (`{"error": …}` from Ollama, `{"error": {"message": …}}` from
/// OpenAI-compatible servers), or the start of the body.
fn server_error_text(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        error
            .as_str()
            .or_else(|| error.get("message").and_then(|m| m.as_str()))
            .map(str::to_string)
    });
    let text = message.unwrap_or_else(|| body.trim().to_string());
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if text.is_empty() {
        "(empty answer)".into()
    } else {
        text[..end].to_string()
    }
}

/// The URL without user:password.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Waits between retries; a cancel request ends the wait (and the statement) at once.
fn backoff(wait: Duration) {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        pgrx::check_for_interrupts!();
        std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
    }
}
