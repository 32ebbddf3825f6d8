//! `llm_sql.ask`: question → schema context and values from the data → model → SQL → gate →
//! read-only run.
//!
//! A failed attempt (no SQL, rejected by the gate, an error while planning or running) leads
//! to a redraft, told the error and what the catalog knows about it (`repair`), up to
//! `llm_sql.ask_max_attempts` drafts; a query the model writes again is not run again. Every
//! answer is capped at `llm_sql.ask_max_tokens` and the whole question at
//! `llm_sql.ask_time_budget`. With
//! `candidates = n`, n candidates are written independently and the answer whose result most
//! of them share wins; `confidence` is that share. A model that asks for clarification, or a
//! confidence below `llm_sql.ask_min_confidence`, gives status `clarification_needed`. Every
//! call is written to `llm_sql.ask_log`; working SQL is cached by question, visible schema,
//! model and role (`history`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use pgrx::PgSqlErrorCode;

use super::guard::{Checked, Column};
use super::history::{cache_key, cached_sql, log, read_only_transaction, remember};
use super::{context, extract, guard, prompt, repair, values, RanIn, Rows};
use crate::error::{Error, Result};
use crate::llm;
use crate::settings::{self, AnswerFormat};

/// Longest question accepted.
const MAX_QUESTION: usize = 20_000;
const OPTIONS: [&str; 5] = ["model", "candidates", "explain", "max_rows", "schemas"];

/// The `options` argument of ask, ask_full and generate_sql.
pub struct Options {
    pub model: String,
    pub candidates: usize,
    pub explain: bool,
    pub max_rows: usize,
    pub schemas: Option<Vec<String>>,
}

impl Options {
    pub fn parse(options: Option<&Value>) -> Result<Options> {
        let empty = Map::new();
        let options = match options {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(options)) => options,
            Some(_) => return Err(Error::invalid_parameter("options must be a JSON object")),
        };
        if let Some(unknown) = options.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(
                Error::invalid_parameter(format!("unknown option \"{unknown}\""))
                    .with_hint(format!("The options are: {}.", OPTIONS.join(", "))),
            );
        }
        let number = |key: &str, default: usize, max: usize| match options.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_u64()
                .filter(|n| (1..=max as u64).contains(n))
                .map(|n| n as usize)
                .ok_or_else(|| {
                    Error::invalid_parameter(format!(
                        "option {key} must be an integer from 1 to {max}"
                    ))
                }),
        };
        let schemas = match options.get("schemas") {
            None | Some(Value::Null) => settings::string(&settings::ASK_SCHEMAS)
                .map(|list| list.split(',').map(|s| s.trim().to_string()).collect()),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            Some(_) => {
                return Err(Error::invalid_parameter(
                    "option schemas must be an array of schema names",
                ))
            }
        };
        Ok(Options {
            model: llm::chat_model(options.get("model").and_then(Value::as_str))?,
            candidates: number("candidates", 1, 10)?,
            explain: match options.get("explain") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(Error::invalid_parameter(
                        "option explain must be true or false",
                    ))
                }
            },
            max_rows: number(
                "max_rows",
                settings::MAX_ROWS.get().max(1) as usize,
                10_000_000,
            )?,
            schemas,
        })
    }
}

/// What one candidate came to.
enum Outcome {
    Answered {
        sql: String,
        rows: Rows,
        columns: Vec<Column>,
        explanation: Option<String>,
        confidence: Option<f64>,
    },
    Clarify {
        questions: Vec<String>,
        confidence: Option<f64>,
    },
    Failed,
}

/// The time llm_sql.ask may spend on a question (`llm_sql.ask_time_budget`).
struct Budget {
    deadline: Instant,
    total: Duration,
}

impl Budget {
    fn start(started: Instant) -> Budget {
        let total = Duration::from_millis(settings::ASK_TIME_BUDGET_MS.get().max(1) as u64);
        Budget {
            deadline: started + total,
            total,
        }
    }

    /// The time left, None when none is.
    fn left(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }

    fn ran_out(&self) -> String {
        format!(
            "llm_sql.ask_time_budget ({} ms) ran out before a query answered the question",
            self.total.as_millis()
        )
    }
}

/// What the model calls of one question cost, and why the work stopped early.
#[derive(Default)]
struct Work {
    attempts: Vec<Value>,
    model_calls: u32,
    usage: llm::Usage,
    llm_time: Duration,
    /// Set when no further model call should be made (the budget ran out, the server failed).
    stopped: Option<String>,
}

impl Work {
    fn record(&mut self, answer: &llm::ChatAnswer, asked: Instant) {
        self.model_calls += 1;
        self.usage.prompt_tokens += answer.usage.prompt_tokens;
        self.usage.completion_tokens += answer.usage.completion_tokens;
        self.llm_time += asked.elapsed();
    }
}

/// The JSON answer of `ask_full`. With `execute` false (generate_sql) the SQL is written and
/// checked (parsed and analysed, so unknown relations and columns are corrected) but not run.
/// A model server that fails or is too slow gives status `error` with the reason, not an
/// ERROR; only a cancel (or statement_timeout) interrupts.
pub fn answer(question: &str, options: &Options, execute: bool) -> Result<Value> {
    let started = Instant::now();
    let budget = Budget::start(started);
    let question = check_question(question)?;
    let context_budget = settings::ASK_CONTEXT_BUDGET.get().max(1) as usize;
    let context = context::build(question, options.schemas.as_deref(), context_budget)?;
    let format = settings::ASK_ANSWER_FORMAT.get();
    let mut report = json!({
        "status": null, "error": null,
        "engine": null, "model": options.model, "cached": false, "attempts": [],
        "query_id": null, "columns": [],
        "rows": [], "row_count": 0, "truncated": false, "sql": null, "explanation": null,
        "clarifying_questions": [], "confidence": null,
        "model_calls": 0, "tokens": {"prompt": 0, "completion": 0},
        "llm_ms": millis(context.model_time),
    });
    let key = cache_key(
        question,
        &context.fingerprint,
        &format!(
            "{}\u{1f}{}\u{1f}{:?}",
            options.model, options.candidates, format
        ),
        options.max_rows,
    )?;
    let cached = cached_sql(&key)?
        .and_then(|sql| guard::check(&sql).ok())
        .and_then(|query| {
            run(&query, options, execute, &budget)
                .ok()
                .map(|rows| (query, rows))
        });
    if let Some((query, rows)) = cached {
        report["cached"] = json!(true);
        answered(&mut report, &query.sql, rows, &query.columns, None, None);
    } else {
        let values = values::gather(
            question,
            &context,
            VALUE_LOOKUP.min(budget.total / 4),
            context_budget / LISTING_SHARE,
        );
        let base = prompt::messages(question, &context.text, &values, format, options.explain)?;
        let mut work = Work {
            llm_time: context.model_time,
            ..Work::default()
        };
        let mut outcomes = Vec::new();
        let draft = Draft {
            options,
            execute,
            format,
            context: &context,
            budget: &budget,
        };
        for index in 0..options.candidates {
            if work.stopped.is_some() {
                break;
            }
            // Several candidates need different drafts; one is best written without sampling.
            let temperature = if options.candidates == 1 {
                0.0
            } else {
                0.2 + 0.1 * index as f64
            };
            outcomes.push(draft.candidate(&base, temperature, &mut work)?);
        }
        report["llm_ms"] = json!(millis(work.llm_time));
        report["model_calls"] = json!(work.model_calls);
        report["tokens"] = json!({
            "prompt": work.usage.prompt_tokens,
            "completion": work.usage.completion_tokens,
        });
        decide(&mut report, outcomes, options.candidates);
        if report["status"] == "error" {
            let last = work
                .attempts
                .iter()
                .rev()
                .find_map(|a| a["error"].as_str().map(str::to_string));
            report["error"] = json!(work
                .stopped
                .clone()
                .or(last)
                .unwrap_or_else(|| "no attempt succeeded".to_string()));
        }
        report["attempts"] = json!(work.attempts);
        if report["status"] == "ok" {
            remember(&key, report["sql"].as_str().unwrap_or_default())?;
        }
    }
    if options.explain && report["explanation"].is_null() {
        if let Some(sql) = report["sql"].as_str().map(str::to_string) {
            match explain(&sql, &options.model) {
                Ok(text) => report["explanation"] = json!(text),
                Err(e) if e.code == PgSqlErrorCode::ERRCODE_QUERY_CANCELED => return Err(e),
                Err(e) => report["explanation_error"] = json!(e.message),
            }
        }
    }
    report["duration_ms"] = json!(millis(started.elapsed()));
    // In a read-only transaction (BEGIN READ ONLY, a standby) nothing is written.
    if !read_only_transaction() {
        report["query_id"] = json!(log(question, &report)?);
    }
    Ok(report)
}

/// Most time spent reading values from the data for one question.
const VALUE_LOOKUP: Duration = Duration::from_secs(2);

/// The listed values take at most this fraction of `ask_context_budget` (the schema's share):
/// every token of the prompt slows a small model's writing on a few cores.
const LISTING_SHARE: usize = 8;

fn check_question(question: &str) -> Result<&str> {
    let question = question.trim();
    if question.is_empty() {
        return Err(Error::invalid_parameter("the question is empty"));
    }
    if question.len() > MAX_QUESTION {
        return Err(Error::invalid_parameter(format!(
            "the question is {} characters long; at most {MAX_QUESTION} are accepted",
            question.len()
        )));
    }
    Ok(question)
}

/// Runs a checked query (within `llm_sql.ask_timeout` and the time left); without `execute`,
/// only says which engine would run it.
fn run(query: &Checked, options: &Options, execute: bool, budget: &Budget) -> Result<Rows> {
    if !execute {
        return Ok(Rows {
            rows: Vec::new(),
            truncated: false,
            ran_in: match query.duckdb {
                Some(_) => RanIn::DuckDb,
                None => RanIn::Postgres,
            },
        });
    }
    let limit = Duration::from_millis(settings::ASK_TIMEOUT_MS.get().max(1) as u64);
    let left = budget
        .left()
        .ok_or_else(|| Error::new(PgSqlErrorCode::ERRCODE_QUERY_CANCELED, budget.ran_out()))?;
    super::run(query, options.max_rows, limit.min(left))
}

/// The same query however it is spaced or cased: how a repeated draft is recognised.
fn normalised(sql: &str) -> String {
    sql.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// What every draft of one question shares.
struct Draft<'a> {
    options: &'a Options,
    execute: bool,
    format: AnswerFormat,
    context: &'a context::Context,
    budget: &'a Budget,
}

impl Draft<'_> {
    /// One candidate: drafts until a query passes and runs, the model asks for clarification,
    /// the attempts or the time run out, or the model writes a failing query a second time
    /// after being told (a third draft would not differ either).
    ///
    /// A redraft is asked for with the opening messages again, the question followed by what
    /// went wrong with the earlier drafts, and not as a conversation that shows the model its
    /// failed query: small models copy it (seen with Qwen2.5-Coder 1.5B: the same failing
    /// query in every round).
    fn candidate(&self, base: &[Value], temperature: f64, work: &mut Work) -> Result<Outcome> {
        let mut temperature = temperature;
        let mut messages = base.to_vec();
        let mut notes: Vec<prompt::Failure> = Vec::new();
        // Each failed query (normalised), its place in `attempts` and its error.
        let mut failed: Vec<(String, usize, String)> = Vec::new();
        let mut repeated = false;
        for _ in 0..settings::ASK_MAX_ATTEMPTS.get().max(1) {
            let Some(left) = self.budget.left() else {
                work.stopped = Some(self.budget.ran_out());
                return Ok(Outcome::Failed);
            };
            let limits = llm::Limits {
                temperature,
                max_tokens: settings::ASK_MAX_TOKENS.get().max(1) as u32,
                json: self.format == AnswerFormat::Json,
                // The end of a code block, when the model writes one although asked for the
                // SQL alone: what it writes after the block is not read.
                stop: match self.format {
                    AnswerFormat::Sql => &["\n```\n"],
                    AnswerFormat::Json => &[],
                },
                within: left,
            };
            let asked = Instant::now();
            let answer = match llm::chat_limited(
                &Value::Array(messages.clone()),
                &self.options.model,
                &limits,
            ) {
                Ok(answer) => answer,
                Err(e) if e.code == PgSqlErrorCode::ERRCODE_QUERY_CANCELED => return Err(e),
                Err(e) => {
                    work.llm_time += asked.elapsed();
                    work.stopped = Some(match self.budget.left() {
                        Some(_) => e.message,
                        None => self.budget.ran_out(),
                    });
                    return Ok(Outcome::Failed);
                }
            };
            work.record(&answer, asked);
            let parsed = extract::parse(answer.reply["content"].as_str().unwrap_or_default());
            let Some(sql) = parsed.sql else {
                if !parsed.clarifying_questions.is_empty() {
                    return Ok(Outcome::Clarify {
                        questions: parsed.clarifying_questions,
                        confidence: parsed.confidence,
                    });
                }
                let error = "the answer contains no SQL query".to_string();
                work.attempts.push(json!({"sql": null, "error": error}));
                notes.push(prompt::Failure { error, hint: None });
                messages = prompt::retry(base, &notes, repeated, self.format);
                continue;
            };
            let key = normalised(&sql);
            if let Some((_, number, first)) = failed.iter().find(|f| f.0 == key) {
                let error = format!(
                    "the model wrote attempt {} again, which failed with: {first}",
                    number + 1
                );
                work.attempts.push(json!({"sql": sql, "error": error}));
                if repeated {
                    return Ok(Outcome::Failed);
                }
                // At temperature 0 the same prompt gives the same query: sampling, and being
                // told that it repeated itself, change the next draft.
                repeated = true;
                temperature = temperature.max(0.7);
                messages = prompt::retry(base, &notes, repeated, self.format);
                continue;
            }
            let checked = guard::check(&sql);
            match checked.and_then(|query| {
                let rows = run(&query, self.options, self.execute, self.budget)?;
                Ok((rows, query))
            }) {
                Ok((rows, query)) => {
                    work.attempts.push(json!({"sql": query.sql, "error": null}));
                    return Ok(Outcome::Answered {
                        sql: query.sql,
                        rows,
                        columns: query.columns,
                        explanation: parsed.explanation,
                        confidence: parsed.confidence,
                    });
                }
                Err(error) => {
                    work.attempts
                        .push(json!({"sql": sql, "error": error.message}));
                    if self.budget.left().is_none() {
                        work.stopped = Some(self.budget.ran_out());
                        return Ok(Outcome::Failed);
                    }
                    failed.push((key, work.attempts.len() - 1, error.message.clone()));
                    notes.push(prompt::Failure {
                        hint: repair::hint(&error.message, &self.context.relations),
                        error: error.message,
                    });
                    messages = prompt::retry(base, &notes, repeated, self.format);
                }
            }
        }
        Ok(Outcome::Failed)
    }
}

/// The answer from the candidates' outcomes: the result most of them share, its share as the
/// confidence (with one candidate, the model's own), or a clarification, or an error.
fn decide(report: &mut Value, outcomes: Vec<Outcome>, candidates: usize) {
    let results: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Answered { rows, .. } => Some(canonical(&rows.rows)),
            _ => None,
        })
        .collect();
    let mut groups: HashMap<&str, usize> = HashMap::new();
    for result in results.iter().flatten() {
        *groups.entry(result).or_default() += 1;
    }
    // The first candidate of the largest group wins ties.
    let best = results
        .iter()
        .enumerate()
        .filter_map(|(i, result)| Some((groups[result.as_deref()?], i)))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let clarification = outcomes.iter().find_map(|o| match o {
        Outcome::Clarify {
            questions,
            confidence,
        } => Some((questions.clone(), *confidence)),
        _ => None,
    });
    let Some((votes, index)) = best else {
        match clarification {
            Some((questions, confidence)) => {
                report["status"] = json!("clarification_needed");
                report["clarifying_questions"] = json!(questions);
                report["confidence"] = json!(confidence);
            }
            None => report["status"] = json!("error"),
        }
        return;
    };
    let Some(Outcome::Answered {
        sql,
        rows,
        columns,
        explanation,
        confidence,
    }) = outcomes.into_iter().nth(index)
    else {
        return;
    };
    let confidence = match candidates {
        1 => confidence,
        n => Some(votes as f64 / n as f64),
    };
    let minimum = settings::ASK_MIN_CONFIDENCE.get();
    if confidence.is_some_and(|c| c < minimum) {
        report["status"] = json!("clarification_needed");
        report["sql"] = json!(sql);
        report["engine"] = json!(rows.ran_in.name());
        report["confidence"] = json!(confidence);
        report["explanation"] = json!(explanation);
        report["clarifying_questions"] = json!(clarification.map(|c| c.0).unwrap_or_else(|| vec![
            "The question can be read in more than one way; could you say more precisely what you want to know?".to_string()
        ]));
        return;
    }
    answered(report, &sql, rows, &columns, explanation, confidence);
}

fn answered(
    report: &mut Value,
    sql: &str,
    rows: Rows,
    columns: &[Column],
    explanation: Option<String>,
    confidence: Option<f64>,
) {
    report["status"] = json!("ok");
    report["columns"] = Value::Array(
        columns
            .iter()
            .map(|c| json!({"name": c.name, "type": c.type_name}))
            .collect(),
    );
    report["engine"] = json!(rows.ran_in.name());
    report["sql"] = json!(sql);
    report["row_count"] = json!(rows.rows.len());
    report["truncated"] = json!(rows.truncated);
    report["rows"] = Value::Array(rows.rows);
    report["explanation"] = json!(explanation);
    report["confidence"] = json!(confidence);
}

/// A result as a comparable string: the multiset of rows, each the multiset of its values
/// (candidates name their columns differently).
fn canonical(rows: &[Value]) -> String {
    let mut rows: Vec<String> = rows
        .iter()
        .map(|row| {
            let mut values: Vec<String> = match row {
                Value::Object(columns) => columns.values().map(Value::to_string).collect(),
                other => vec![other.to_string()],
            };
            values.sort();
            values.join("\u{1f}")
        })
        .collect();
    rows.sort();
    rows.join("\u{1e}")
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// A plain-language explanation of `sql`.
pub fn explain(sql: &str, model: &str) -> Result<String> {
    let prompt = format!(
        "Explain in two or three plain sentences, for someone who does not read SQL, what this PostgreSQL query returns:\n\n{sql}"
    );
    llm::generate(
        &prompt,
        model,
        Some("You explain SQL queries briefly and precisely."),
        None,
    )
}
