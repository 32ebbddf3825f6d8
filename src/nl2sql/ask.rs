//! `llm_sql.ask`: question → schema context → model → SQL → gate → read-only run.
//!
//! A failed attempt (no SQL, rejected by the gate, an error while planning or running) goes
//! back to the model with the error, up to `llm_sql.ask_max_attempts` times. With
//! `candidates = n`, n candidates are written independently and the answer whose result most
//! of them share wins; `confidence` is that share. A model that asks for clarification, or a
//! confidence below `llm_sql.ask_min_confidence`, gives status `clarification_needed`. Every
//! call is written to `llm_sql.ask_log`; working SQL is cached by question, visible schema,
//! model and role (`history`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::guard::Checked;
use super::history::{cache_key, cached_sql, log, read_only_transaction, remember};
use super::{context, extract, guard, prompt, Engine, Rows};
use crate::error::{Error, Result};
use crate::llm;
use crate::settings;

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
        explanation: Option<String>,
        confidence: Option<f64>,
    },
    Clarify {
        questions: Vec<String>,
        confidence: Option<f64>,
    },
    Failed,
}

/// The JSON answer of `ask_full`. With `execute` false (generate_sql) the SQL is written and
/// checked (parsed and analysed, so unknown relations and columns are corrected) but not run.
pub fn answer(question: &str, options: &Options, execute: bool) -> Result<Value> {
    let started = Instant::now();
    let question = check_question(question)?;
    let context = context::build(
        question,
        options.schemas.as_deref(),
        settings::ASK_CONTEXT_BUDGET.get().max(1) as usize,
    )?;
    let mut report = json!({
        "engine": null, "model": options.model, "cached": false, "attempts": [],
        "query_id": null,
        "rows": [], "row_count": 0, "truncated": false, "sql": null, "explanation": null,
        "clarifying_questions": [], "confidence": null,
        "llm_ms": millis(context.model_time),
    });
    let key = cache_key(
        question,
        &context.fingerprint,
        &options.model,
        options.max_rows,
    )?;
    let cached = cached_sql(&key)?
        .and_then(|sql| guard::check(&sql).ok())
        .and_then(|query| {
            run(&query, options, execute)
                .ok()
                .map(|rows| (query.sql, rows))
        });
    if let Some((sql, rows)) = cached {
        report["cached"] = json!(true);
        answered(&mut report, &sql, rows, None, None);
    } else {
        let base = prompt::messages(question, &context.text)?;
        let mut attempts = Vec::new();
        let mut outcomes = Vec::new();
        let mut llm_time = context.model_time;
        for index in 0..options.candidates {
            // Several candidates need different drafts; one is best written without sampling.
            let temperature = if options.candidates == 1 {
                0.0
            } else {
                0.2 + 0.1 * index as f64
            };
            let (outcome, tried, spent) = candidate(base.clone(), options, temperature, execute)?;
            attempts.extend(tried);
            outcomes.push(outcome);
            llm_time += spent;
        }
        report["attempts"] = json!(attempts);
        report["llm_ms"] = json!(millis(llm_time));
        decide(&mut report, outcomes, options.candidates);
        if report["status"] == "ok" {
            remember(&key, report["sql"].as_str().unwrap_or_default())?;
        }
    }
    if options.explain && report["explanation"].is_null() {
        if let Some(sql) = report["sql"].as_str().map(str::to_string) {
            report["explanation"] = json!(explain(&sql, &options.model)?);
        }
    }
    report["duration_ms"] = json!(millis(started.elapsed()));
    // In a read-only transaction (BEGIN READ ONLY, a standby) nothing is written.
    if !read_only_transaction() {
        report["query_id"] = json!(log(question, &report)?);
    }
    Ok(report)
}

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

/// Runs a checked query; without `execute`, only says which engine would run it.
fn run(query: &Checked, options: &Options, execute: bool) -> Result<Rows> {
    if !execute {
        return Ok(Rows {
            rows: Vec::new(),
            truncated: false,
            engine: match query.duckdb {
                Some(_) => Engine::DuckDb,
                None => Engine::Postgres,
            },
        });
    }
    let timeout = Duration::from_millis(settings::ASK_TIMEOUT_MS.get().max(1) as u64);
    super::run(query, options.max_rows, timeout)
}

/// One candidate: drafts and corrections until a query passes and runs, the model asks for
/// clarification, or the attempts run out. Returns the attempts made and the model's time.
fn candidate(
    mut messages: Vec<Value>,
    options: &Options,
    temperature: f64,
    execute: bool,
) -> Result<(Outcome, Vec<Value>, Duration)> {
    let mut attempts = Vec::new();
    let mut llm_time = Duration::ZERO;
    let sampling = json!({"temperature": temperature});
    for _ in 0..settings::ASK_MAX_ATTEMPTS.get().max(1) {
        let asked = Instant::now();
        let reply = llm::chat_json(
            &Value::Array(messages.clone()),
            &options.model,
            Some(&sampling),
        )?;
        llm_time += asked.elapsed();
        let content = reply["content"].as_str().unwrap_or_default().to_string();
        let parsed = extract::parse(&content);
        let Some(sql) = parsed.sql else {
            if !parsed.clarifying_questions.is_empty() {
                let outcome = Outcome::Clarify {
                    questions: parsed.clarifying_questions,
                    confidence: parsed.confidence,
                };
                return Ok((outcome, attempts, llm_time));
            }
            let error = "the answer contains no SQL query";
            attempts.push(json!({"sql": null, "error": error}));
            prompt::correction(&mut messages, &content, None, error);
            continue;
        };
        match guard::check(&sql).and_then(|query| Ok((run(&query, options, execute)?, query.sql))) {
            Ok((rows, checked)) => {
                attempts.push(json!({"sql": checked, "error": null}));
                let outcome = Outcome::Answered {
                    sql: checked,
                    rows,
                    explanation: parsed.explanation,
                    confidence: parsed.confidence,
                };
                return Ok((outcome, attempts, llm_time));
            }
            Err(error) => {
                attempts.push(json!({"sql": sql, "error": error.message}));
                prompt::correction(&mut messages, &content, Some(&sql), &error.message);
            }
        }
    }
    Ok((Outcome::Failed, attempts, llm_time))
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
        report["engine"] = json!(rows.engine.name());
        report["confidence"] = json!(confidence);
        report["explanation"] = json!(explanation);
        report["clarifying_questions"] = json!(clarification.map(|c| c.0).unwrap_or_else(|| vec![
            "The question can be read in more than one way; could you say more precisely what you want to know?".to_string()
        ]));
        return;
    }
    answered(report, &sql, rows, explanation, confidence);
}

fn answered(
    report: &mut Value,
    sql: &str,
    rows: Rows,
    explanation: Option<String>,
    confidence: Option<f64>,
) {
    report["status"] = json!("ok");
    report["engine"] = json!(rows.engine.name());
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
