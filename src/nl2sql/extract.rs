//! Finding the answer in what a model wrote. Models are asked for a JSON object
//! (`{"sql": …, "explanation": …, "confidence": …, "clarifying_questions": […]}`), but many
//! answer with prose, code fences or bare SQL anyway. In that order of preference:
//!
//! 1. a JSON object: the whole reply, a ```json fence, or the outermost `{…}` in the text;
//! 2. a fenced code block (```sql … ``` or ``` … ```);
//! 3. bare SQL: from the first line starting with SELECT, WITH, VALUES or TABLE up to its
//!    first semicolon outside quotes (or a blank line, or the end).
//!
//! A reply without SQL may ask a question instead: `clarifying_questions` in the JSON, or a line
//! `CLARIFY: …` (the SQL answer format).
//!
//! A trailing semicolon is dropped. Whether the SQL is acceptable is decided by `guard`, not
//! here: this only finds it.

use serde_json::Value;

/// What a model's reply says.
#[derive(Debug, Default, PartialEq)]
pub struct Reply {
    pub sql: Option<String>,
    pub explanation: Option<String>,
    /// Between 0 and 1, when the model gave one.
    pub confidence: Option<f64>,
    pub clarifying_questions: Vec<String>,
}

pub fn parse(reply: &str) -> Reply {
    if let Some(object) = json_object(reply) {
        return from_json(&object);
    }
    let sql = fenced(reply)
        .or_else(|| bare_sql(reply))
        .map(|s| trim_sql(&s))
        .filter(|s| !s.is_empty());
    let clarifying_questions = match sql {
        Some(_) => Vec::new(),
        None => clarification(reply).into_iter().collect(),
    };
    Reply {
        sql,
        clarifying_questions,
        ..Reply::default()
    }
}

/// The question after `CLARIFY:` (how the SQL answer format asks for clarification).
fn clarification(reply: &str) -> Option<String> {
    reply.lines().find_map(|line| {
        let line = line.trim();
        let (head, rest) = line.split_at_checked("CLARIFY:".len())?;
        let question = rest.trim();
        (head.eq_ignore_ascii_case("clarify:") && !question.is_empty())
            .then(|| question.to_string())
    })
}

fn from_json(object: &serde_json::Map<String, Value>) -> Reply {
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let questions = ["clarifying_questions", "questions", "clarification"]
        .iter()
        .find_map(|key| object.get(*key))
        .map(|value| match value {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Value::String(one) if !one.trim().is_empty() => vec![one.clone()],
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let confidence = object.get("confidence").and_then(|c| match c {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('%').parse::<f64>().ok(),
        _ => None,
    });
    // Some models answer 85 for 85 %.
    let confidence = confidence.map(|c| if c > 1.0 { c / 100.0 } else { c });
    Reply {
        sql: text("sql")
            .or_else(|| text("query"))
            .map(|sql| trim_sql(&fenced(&sql).unwrap_or(sql))),
        explanation: text("explanation"),
        confidence: confidence
            .filter(|c| c.is_finite())
            .map(|c| c.clamp(0.0, 1.0)),
        clarifying_questions: questions,
    }
}

/// The reply as a JSON object, or the first ```json fence, or its outermost braces.
fn json_object(reply: &str) -> Option<serde_json::Map<String, Value>> {
    let candidates = [
        Some(reply.trim().to_string()),
        fence_with(reply, |language| language.eq_ignore_ascii_case("json")),
        reply
            .find('{')
            .zip(reply.rfind('}'))
            .filter(|(start, end)| start < end)
            .map(|(start, end)| reply[start..=end].to_string()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|text| match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => Some(object),
            _ => None,
        })
}

/// The first code fence that is not JSON.
fn fenced(text: &str) -> Option<String> {
    fence_with(text, |language| !language.eq_ignore_ascii_case("json"))
}

/// The body of the first ``` fence whose language tag satisfies `wanted`.
fn fence_with(text: &str, wanted: impl Fn(&str) -> bool) -> Option<String> {
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let line_end = after.find('\n').unwrap_or(after.len());
        let language = after[..line_end].trim();
        let body = &after[(line_end + 1).min(after.len())..];
        let close = body.find("```").unwrap_or(body.len());
        if wanted(language) {
            return Some(body[..close].trim().to_string());
        }
        rest = &body[(close + 3).min(body.len())..];
    }
    None
}

/// SQL written straight into prose.
fn bare_sql(text: &str) -> Option<String> {
    const STARTS: [&str; 4] = ["select", "with", "values", "table"];
    let mut offset = 0;
    let start = text.split_inclusive('\n').find_map(|line| {
        let here = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        let first = trimmed
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        STARTS
            .contains(&first.as_str())
            .then(|| here + (line.len() - trimmed.len()))
    })?;
    let sql = &text[start..];
    let end = statement_end(sql)
        .or_else(|| sql.find("\n\n"))
        .unwrap_or(sql.len());
    Some(sql[..end].to_string())
}

/// Byte offset of the first semicolon outside quotes, identifiers, dollar quotes and comments.
fn statement_end(sql: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b';' => return Some(i),
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |e| i + 2 + e + 1);
            }
            b'$' => {
                // $tag$ … $tag$
                if let Some(len) = sql[i + 1..].find('$') {
                    let tag = &sql[i..i + len + 2];
                    let valid = tag[1..tag.len() - 1]
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_');
                    if valid && !tag[1..].starts_with(|c: char| c.is_ascii_digit()) {
                        let body = i + tag.len();
                        i = sql[body..]
                            .find(tag)
                            .map_or(bytes.len(), |e| body + e + tag.len() - 1);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Without surrounding whitespace and trailing semicolons.
fn trim_sql(sql: &str) -> String {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(reply: &str) -> Option<String> {
        parse(reply).sql
    }

    #[test]
    fn json_in_any_wrapping() {
        let plain = r#"{"sql": "SELECT 1;", "explanation": "one", "confidence": 0.9}"#;
        let reply = parse(plain);
        assert_eq!(reply.sql.as_deref(), Some("SELECT 1"));
        assert_eq!(reply.explanation.as_deref(), Some("one"));
        assert_eq!(reply.confidence, Some(0.9));
        let fenced = format!("Here you go:\n```json\n{plain}\n```\nEnjoy");
        assert_eq!(parse(&fenced), reply);
        let inline = format!("Sure! {plain} Let me know.");
        assert_eq!(parse(&inline), reply);
        assert_eq!(
            parse(r#"{"sql": "SELECT 2", "confidence": 85}"#).confidence,
            Some(0.85)
        );
        assert_eq!(
            parse(r#"{"sql": "SELECT 2", "confidence": "70%"}"#).confidence,
            Some(0.7)
        );
    }

    #[test]
    fn clarifications() {
        let reply = parse(
            r#"{"sql": null, "clarifying_questions": ["Which year?", "Gross or net?"], "confidence": 0.2}"#,
        );
        assert_eq!(reply.sql, None);
        assert_eq!(reply.clarifying_questions, ["Which year?", "Gross or net?"]);
        let one = parse(r#"{"clarification": "Which region do you mean?"}"#);
        assert_eq!(one.clarifying_questions, ["Which region do you mean?"]);
        let line = parse("I need to know more.\nCLARIFY: Which year do you mean?\n");
        assert_eq!(line.sql, None);
        assert_eq!(line.clarifying_questions, ["Which year do you mean?"]);
        // A query wins over a clarification.
        let both = parse("```sql\nSELECT 1\n```\nclarify: or 2?");
        assert_eq!(both.sql.as_deref(), Some("SELECT 1"));
        assert!(both.clarifying_questions.is_empty());
    }

    #[test]
    fn fences_and_prose() {
        assert_eq!(
            sql("The query:\n```sql\nSELECT name\n  FROM users;\n```\nIt lists users.").as_deref(),
            Some("SELECT name\n  FROM users")
        );
        assert_eq!(sql("```\nselect 1\n```").as_deref(), Some("select 1"));
        assert_eq!(
            sql("To answer this, run:\n\n  WITH t AS (SELECT 1) SELECT * FROM t;\n\nThis works because…")
                .as_deref(),
            Some("WITH t AS (SELECT 1) SELECT * FROM t")
        );
        assert_eq!(
            sql("SELECT 'a;b', \"x;y\", $$c;d$$ -- e;f\n FROM t; trailing words").as_deref(),
            Some("SELECT 'a;b', \"x;y\", $$c;d$$ -- e;f\n FROM t")
        );
        assert_eq!(
            sql("select count(*) from orders\n\nThat counts the orders.").as_deref(),
            Some("select count(*) from orders")
        );
        // The JSON's sql may itself be fenced.
        assert_eq!(
            sql(r#"{"sql": "```sql\nSELECT 3;\n```"}"#).as_deref(),
            Some("SELECT 3")
        );
    }

    #[test]
    fn nothing_found() {
        assert_eq!(parse("I cannot answer that."), Reply::default());
        assert_eq!(parse(""), Reply::default());
        assert_eq!(sql("Selection of the best: none"), None);
    }
}
