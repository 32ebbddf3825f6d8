//! HTTP to the LLM server: one connection pool per backend, timeouts, retries with backoff,
//! and cancellation.
//!
//! A request runs on a short-lived thread (started with signals blocked, so Postgres's handlers
//! stay on the backend thread) while the backend thread waits for it and watches for a cancel,
//! `statement_timeout` or terminate request. When one arrives, the backend shuts the agent down,
//! which makes the request fail at once, and lets Postgres raise its own error. The request
//! thread never calls Postgres.

use std::cell::RefCell;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use pgrx::PgSqlErrorCode;
use ureq::Agent;

use crate::error::{Error, Result};
use crate::threads::{cancel_requested, with_signals_blocked};

/// How often the backend looks at the interrupt flags while a request runs.
const POLL: Duration = Duration::from_millis(10);
/// Largest response accepted (a batch of 4096 embeddings of 4096 floats is ~300 MB of JSON).
const MAX_BODY: u64 = 512 << 20;

thread_local! {
    /// The backend's agent: its pool keeps connections to the server open between calls.
    static AGENT: RefCell<Option<(Agent, Duration)>> = const { RefCell::new(None) };
}

/// One request to the LLM server.
#[derive(Clone)]
pub struct Request {
    pub url: String,
    /// JSON body: POST; none: GET.
    pub body: Option<Vec<u8>>,
    pub api_key: Option<String>,
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
    /// The server answered, but the answer is unusable (malformed, wrong shape).
    Answer(Error),
    Other(String),
}

/// Turns a 2xx response body into what the caller wants. Runs on the request thread, so it
/// must not call Postgres; parsing thousands of floats there overlaps with the backend's work.
pub type Reader<T> = Arc<dyn Fn(Vec<u8>) -> Result<T> + Send + Sync>;

type Outcome<T> = std::result::Result<T, Failure>;

/// A request running on its own thread. `wait` for its answer; dropping it abandons the
/// request (the thread finishes on its own and its answer is discarded).
pub struct InFlight<T: Send + 'static> {
    request: Request,
    read: Reader<T>,
    agent: Agent,
    answer: mpsc::Receiver<Outcome<T>>,
    attempt: u32,
}

/// Starts the request on its own thread and returns at once.
pub fn start<T: Send + 'static>(request: Request, read: Reader<T>) -> Result<InFlight<T>> {
    let agent = agent(request.timeout);
    let answer = spawn(&agent, &request, &read)?;
    Ok(InFlight {
        request,
        read,
        agent,
        answer,
        attempt: 0,
    })
}

impl<T: Send + 'static> InFlight<T> {
    /// Waits for the answer, retrying connection errors and 5xx answers with backoff.
    pub fn wait(mut self) -> Result<T> {
        loop {
            let failure = match self.wait_once()? {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let retryable = matches!(failure, Failure::Connect(_) | Failure::Status(500..=599, _));
            if !retryable || self.attempt >= self.request.max_retries {
                let request = &self.request;
                return Err(describe(
                    failure,
                    &request.url,
                    request.timeout,
                    self.attempt,
                ));
            }
            self.attempt += 1;
            // 250 ms, 500 ms, 1 s, ... capped at 8 s.
            backoff(Duration::from_millis(250 << (self.attempt - 1).min(5)));
            self.agent = agent(self.request.timeout);
            self.answer = spawn(&self.agent, &self.request, &self.read)?;
        }
    }

    /// Waits for the current attempt. The outer error is a cancel (raised by Postgres); the
    /// inner one a failure of the request.
    fn wait_once(&self) -> Result<Outcome<T>> {
        loop {
            match self.answer.recv_timeout(POLL) {
                Ok(outcome) => return Ok(outcome),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok(Err(Failure::Other("the request thread stopped".into())));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if cancel_requested() {
                // Closes the request's connection; the thread ends on its own (a connect in
                // progress is bounded by the connect timeout).
                AGENT.with(|slot| slot.borrow_mut().take());
                self.agent.clone().shutdown();
                pgrx::check_for_interrupts!();
                return Err(Error::new(
                    PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
                    "the LLM request was canceled",
                ));
            }
        }
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

/// One attempt on a new thread (started with signals blocked); its outcome arrives on the
/// returned channel.
fn spawn<T: Send + 'static>(
    agent: &Agent,
    request: &Request,
    read: &Reader<T>,
) -> Result<mpsc::Receiver<Outcome<T>>> {
    let (tx, rx) = mpsc::channel();
    let agent = agent.clone();
    let request = request.clone();
    let read = Arc::clone(read);
    let spawned = with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("llm_sql http".into())
            .spawn(move || {
                let outcome =
                    perform(&agent, &request).and_then(|body| read(body).map_err(Failure::Answer));
                let _ = tx.send(outcome);
            })
    });
    spawned.map_err(|e| Error::internal(format!("could not start a thread: {e}")))?;
    Ok(rx)
}

/// The request itself, on the request thread: no Postgres calls here.
fn perform(agent: &Agent, request: &Request) -> Outcome<Vec<u8>> {
    let url = &request.url;
    let auth = request.api_key.as_ref().map(|key| format!("Bearer {key}"));
    let sent = match &request.body {
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
                error.with_hint(
                    "Check the API key: SELECT llm_sql.set_llm_api_key(...) (superuser).",
                )
            } else {
                error
            }
        }
        Failure::Answer(error) => error,
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
