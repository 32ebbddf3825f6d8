//! Values from the data, for questions that name one: a model cannot guess that "UK" is
//! stored as 'United Kingdom', "hip hop" as 'Hip-Hop/Rap' or "Zoe Saldana" as 'Zoë Saldaña'.
//!
//! For each relation the model is shown (tables and materialized views, not views or foreign
//! tables, whose reads may be slow or remote), the distinct values of its short text columns
//! are read from its first rows, as the caller, through the same gate and read-only sandbox as
//! the model's queries: privileges and row-level security hold, and nothing of another role
//! runs. Two things come of them:
//! - `listed`: every value of a column with few distinct ones that are all codes (a status, a
//!   flag, a category code; `is_code`), shown under the schema, within a share of the context
//!   budget. It changes only with the data, so the model server can keep reusing the prompt;
//! - `matched`: values the question seems to name (a word in common, ignoring case and
//!   accents; a number without its leading zeros; an acronym of the value), shown with the
//!   question.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use unicode_normalization::UnicodeNormalization;

use super::context::{words, Context, Relation, STOP_WORDS};
use super::{guard, run_read_only};
use crate::quote::{ident, pg_literal};

/// Rows of a relation read for values.
const SAMPLED_ROWS: usize = 20_000;
/// Distinct values read per relation.
const DISTINCT_VALUES: usize = 5_000;
/// A column with at most this many distinct values has them all listed.
const LISTED_VALUES: usize = 12;
/// Values longer than this are neither listed nor matched (free text, not a name or a code).
const LONGEST_VALUE: usize = 40;
/// Most values shown as matching the question.
const MATCHED_VALUES: usize = 8;

#[derive(Default)]
pub struct Values {
    /// `schema.table.column: 'a', 'b', …` for columns with few distinct values.
    pub listed: Vec<String>,
    /// `schema.table.column = 'value'` for values the question seems to name.
    pub matched: Vec<String>,
}

/// The values of the shown relations' text columns, read within `within` (what is not read by
/// then is left out); the listed ones take at most `listing_budget` characters.
pub fn gather(
    question: &str,
    context: &Context,
    within: Duration,
    listing_budget: usize,
) -> Values {
    let started = Instant::now();
    let schema_words: Vec<String> = context
        .shown
        .iter()
        .flat_map(|i| {
            let relation = &context.relations[*i];
            let columns = relation.columns.iter().flat_map(|(c, _)| words(c));
            words(&relation.name).into_iter().chain(columns)
        })
        .collect();
    let asked = Question::new(question, &schema_words);
    let mut values = Values::default();
    let mut matched: Vec<(f64, String)> = Vec::new();
    let mut listed_size = 0;
    for relation in context.shown.iter().map(|i| &context.relations[*i]) {
        let Some(left) = within.checked_sub(started.elapsed()) else {
            break;
        };
        let Some(sampled) = sample(relation, left) else {
            continue;
        };
        for (column, distinct) in sampled {
            let qualified = format!("{}.{}", relation.name, column);
            let literals: Vec<(&String, String)> = distinct
                .iter()
                .filter_map(|v| Some((v, pg_literal(v).ok()?)))
                .collect();
            if literals.len() <= LISTED_VALUES
                && !literals.is_empty()
                && distinct.iter().all(|v| is_code(v))
            {
                let listed: Vec<&str> = literals.iter().map(|(_, l)| l.as_str()).collect();
                let line = format!("{qualified}: {}", listed.join(", "));
                if listed_size + line.len() <= listing_budget {
                    listed_size += line.len();
                    values.listed.push(line);
                }
            }
            for (value, literal) in &literals {
                let score = asked.score(value);
                if score > 0.0 {
                    matched.push((score, format!("{qualified} = {literal}")));
                }
            }
        }
    }
    matched.sort_by(|a, b| b.0.total_cmp(&a.0));
    values.matched = matched
        .into_iter()
        .take(MATCHED_VALUES)
        .map(|m| m.1)
        .collect();
    values
}

/// A value a model cannot guess from the question's words: a code, a flag or a status
/// (`'D'`, `'in_stock'`, `'AC-LAPTOP'`). Values of several words (names, titles) are left to
/// matching, which finds them when the question names them: listing them costs tokens in
/// every prompt, and on the 62-table benchmark schema, time (13.0 s per question against
/// 10.0 s without any listing) for no answer gained.
fn is_code(value: &str) -> bool {
    !value.chars().any(char::is_whitespace)
}

fn is_short_text(type_name: &str) -> bool {
    type_name == "text"
        || type_name.starts_with("character varying")
        || type_name.starts_with("character(")
        || type_name == "character"
        || type_name == "citext"
}

/// The distinct short values of each text column of `relation`, in column order; None when
/// the relation has none or could not be read in time.
fn sample(relation: &Relation, within: Duration) -> Option<Vec<(String, Vec<String>)>> {
    if !matches!(relation.kind.as_str(), "r" | "p" | "m") {
        return None;
    }
    let columns: Vec<&str> = relation
        .columns
        .iter()
        .filter(|(_, type_name)| is_short_text(type_name))
        .map(|(name, _)| name.as_str())
        .collect();
    if columns.is_empty() {
        return None;
    }
    let pairs: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("({i}, {}::text)", ident(c)))
        .collect();
    let sql = format!(
        "SELECT DISTINCT v.c AS c, v.x AS x \
           FROM (SELECT {} FROM {} LIMIT {SAMPLED_ROWS}) AS s, \
                LATERAL (VALUES {}) AS v(c, x) \
          WHERE v.x IS NOT NULL AND length(v.x) <= {LONGEST_VALUE} \
          ORDER BY 1, 2 LIMIT {DISTINCT_VALUES}",
        columns
            .iter()
            .map(|c| ident(c))
            .collect::<Vec<_>>()
            .join(", "),
        relation.name,
        pairs.join(", "),
    );
    let read =
        guard::check(&sql).and_then(|query| run_read_only(&query.sql, DISTINCT_VALUES, within));
    let rows = match read {
        Ok(rows) => rows.rows,
        Err(e) => {
            pgrx::debug1!(
                "llm_sql.ask: no values read from {}: {}",
                relation.name,
                e.message
            );
            return None;
        }
    };
    let mut by_column: HashMap<usize, Vec<String>> = HashMap::new();
    for row in rows {
        if let (Some(c), Some(x)) = (row["c"].as_u64(), row["x"].as_str()) {
            by_column.entry(c as usize).or_default().push(x.to_string());
        }
    }
    Some(
        columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| by_column.remove(&i).map(|v| (c.to_string(), v)))
            .collect(),
    )
}

/// Lower case, accents dropped: "Zoë Saldaña" → "zoe saldana".
fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The folded words of a text (letters and digits), numbers without leading zeros.
fn tokens(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| match t.chars().all(|c| c.is_ascii_digit()) {
            true => t.trim_start_matches('0').to_string(),
            false => t.to_string(),
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// The question's words that could name a value.
pub struct Question {
    words: Vec<String>,
    acronyms: Vec<String>,
}

/// Words too common in questions to say which value is meant.
const COMMON: &[&str] = &[
    "average", "count", "customer", "date", "each", "first", "last", "list", "most", "name",
    "names", "number", "order", "orders", "show", "since", "total", "year", "month", "only",
    "give", "find", "between", "over", "under", "more", "less", "least", "highest", "lowest",
    "per", "their", "them", "these", "those", "every", "value", "values", "type", "status",
];

impl Question {
    /// `schema_words`: the words of the shown relations' and columns' names, which say which
    /// table a question is about, not which value.
    pub fn new(question: &str, schema_words: &[String]) -> Question {
        let words = tokens(question)
            .into_iter()
            .filter(|t| t.len() >= 3 || t.chars().all(|c| c.is_ascii_digit()))
            .filter(|t| !COMMON.contains(&t.as_str()) && !STOP_WORDS.contains(&t.as_str()))
            .filter(|t| !schema_words.iter().any(|w| w == t || format!("{w}s") == *t))
            .collect();
        Question {
            words,
            acronyms: acronyms(question),
        }
    }

    /// How well `value` matches the question: the share of its words the question has, 1 for
    /// an acronym; 0 when nothing matches.
    pub fn score(&self, value: &str) -> f64 {
        let value_tokens = tokens(value);
        if value_tokens.is_empty() {
            return 0.0;
        }
        let initials: String = value_tokens
            .iter()
            .filter(|t| !["and", "of", "the", "for"].contains(&t.as_str()))
            .filter_map(|t| t.chars().next())
            .collect();
        if initials.len() >= 2 && self.acronyms.contains(&initials) {
            return 1.0;
        }
        let shared = value_tokens
            .iter()
            .filter(|t| {
                (t.len() >= 3 || t.chars().all(|c| c.is_ascii_digit())) && self.words.contains(t)
            })
            .count();
        shared as f64 / value_tokens.len() as f64
    }
}

/// Acronyms in a question, folded: "UK", "HR", "R&D", "R and D".
fn acronyms(question: &str) -> Vec<String> {
    let mut found = Vec::new();
    let raw: Vec<&str> = question
        .split(|c: char| c.is_whitespace() || ",.?!;:()\"'".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    for word in &raw {
        let letters: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
        let upper = letters
            .chars()
            .all(|c| c.is_uppercase() || c.is_ascii_digit());
        if (2..=5).contains(&letters.chars().count())
            && upper
            && letters.chars().any(char::is_alphabetic)
        {
            found.push(fold(&letters));
        }
    }
    // Single letters joined by "and" / "&": R and D, R & D.
    for window in raw.windows(3) {
        let single = |w: &str| w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
        if single(window[0])
            && ["and", "&"].contains(&window[1].to_lowercase().as_str())
            && single(window[2])
        {
            found.push(fold(&format!("{}{}", window[0], window[2])));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(question: &str, value: &str) -> f64 {
        Question::new(question, &["genre".to_string(), "name".to_string()]).score(value)
    }

    #[test]
    fn values_match_without_case_accents_leading_zeros_or_with_initials() {
        assert!(score("How many hip hop tracks are there?", "Hip-Hop/Rap") > 0.6);
        assert_eq!(score("Songs by Zoe Saldana", "Zoë Saldaña"), 1.0);
        assert_eq!(score("Books by Kierkegaard", "Søren Kierkegaard"), 0.5);
        assert_eq!(
            score("Which album has catalogue number 417?", "CAT-00417"),
            0.5
        );
        assert_eq!(
            score("How many listeners are from the UK?", "United Kingdom"),
            1.0
        );
        assert_eq!(score("Budget of R and D", "Research & Development"), 1.0);
        assert_eq!(score("Budget of R&D", "Research & Development"), 1.0);
    }

    #[test]
    fn schema_words_and_common_words_match_nothing() {
        // "genre" names a column; "total" and "name" are in every other question.
        assert_eq!(score("Total tracks per genre", "Genre total"), 0.0);
        assert_eq!(score("What is the name of the oldest?", "Name"), 0.0);
        assert_eq!(score("How many orders were placed?", "Jazz"), 0.0);
    }
}
