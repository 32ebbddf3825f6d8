//! What a correction round tells the model besides Postgres's error: what the catalog knows
//! about the name that failed (the relations that have a column of that name, the closest
//! names), or the PostgreSQL spelling of a function from another SQL dialect. Small models
//! repeat a failing query when told only the error; a name they can copy changes the next
//! draft.

use super::context::Relation;

/// The hint for `error` (Postgres's message), or None when the catalog has nothing to add.
pub fn hint(error: &str, relations: &[Relation]) -> Option<String> {
    if let Some(column) = missing(error, "column ") {
        return column_hint(&column, relations);
    }
    if let Some(relation) = missing(error, "relation ") {
        return relation_hint(&relation, relations);
    }
    if let Some(operands) = error.strip_prefix("operator does not exist: ") {
        return operator_hint(operands);
    }
    if let Some(function) = error
        .strip_prefix("function ")
        .and_then(|rest| rest.split('(').next())
    {
        return dialect_hint(function);
    }
    None
}

/// The name in `column "x" does not exist`, `column t.x does not exist`, `relation "s.t" …`.
fn missing(error: &str, prefix: &str) -> Option<String> {
    let rest = error.strip_prefix(prefix)?;
    let name = rest.strip_suffix(" does not exist")?;
    let last = name.rsplit('.').next().unwrap_or(name);
    Some(last.trim_matches('"').to_string())
}

/// The unquoted, unqualified form of a relation's name.
fn bare(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name).trim_matches('"')
}

fn similarity(a: &str, b: &str) -> f64 {
    strsim::normalized_levenshtein(&a.to_lowercase(), &b.to_lowercase())
}

/// Most names a hint lists.
const LISTED: usize = 5;

fn column_hint(column: &str, relations: &[Relation]) -> Option<String> {
    let having: Vec<&str> = relations
        .iter()
        .filter(|r| r.columns.iter().any(|(name, _)| name == column))
        .map(|r| r.name.as_str())
        .take(LISTED)
        .collect();
    if !having.is_empty() {
        return Some(format!(
            "Column {column} belongs to: {}. Join that table or qualify the column with the right table.",
            having.join(", ")
        ));
    }
    let mut close: Vec<(f64, String)> = relations
        .iter()
        .flat_map(|r| {
            r.columns.iter().map(move |(name, _)| {
                let score = similarity(column, name).max(contained(column, name));
                (score, format!("{}.{name}", r.name))
            })
        })
        .filter(|(score, _)| *score >= 0.5)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<String> = close.into_iter().take(LISTED).map(|c| c.1).collect();
    match close.is_empty() {
        true => Some(format!(
            "No table has a column named {column}; use only the columns listed in the schema."
        )),
        false => Some(format!(
            "No table has a column named {column}. Columns with similar names: {}.",
            close.join(", ")
        )),
    }
}

/// 0.8 when one name contains the other (`student` and `student_id`), else 0.
fn contained(a: &str, b: &str) -> f64 {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    if a.len() >= 3 && b.len() >= 3 && (a.contains(&b) || b.contains(&a)) {
        0.8
    } else {
        0.0
    }
}

fn relation_hint(relation: &str, relations: &[Relation]) -> Option<String> {
    let mut close: Vec<(f64, &str)> = relations
        .iter()
        .map(|r| {
            let name = bare(&r.name);
            (
                similarity(relation, name).max(contained(relation, name)),
                r.name.as_str(),
            )
        })
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<&str> = close.into_iter().take(3).map(|c| c.1).collect();
    (!close.is_empty()).then(|| {
        format!(
            "There is no table {relation}. The closest names are: {}.",
            close.join(", ")
        )
    })
}

/// LIKE on a date or a number, or a comparison of mismatched types.
fn operator_hint(operands: &str) -> Option<String> {
    let temporal = ["date", "timestamp", "time "]
        .iter()
        .any(|t| operands.contains(t));
    if operands.contains(" ~~ ") || operands.contains(" ~~* ") {
        return Some(match temporal {
            true => "LIKE compares text only. For a date or timestamp write extract(year from col) = 2025, or col >= '2025-01-01' AND col < '2026-01-01'.".to_string(),
            false => "LIKE compares text only; cast the column to text (col::text LIKE …) or compare it as a number.".to_string(),
        });
    }
    temporal.then(|| {
        "Compare dates and timestamps with date literals ('2025-01-31') or date arithmetic (d - interval '30 days'); the difference of two dates is a number of days.".to_string()
    })
}

/// Functions of other SQL dialects that small models write, and the PostgreSQL way.
const DIALECT: &[(&str, &str)] = &[
    (
        "strftime",
        "to_char(ts, 'YYYY-MM') or extract(year from ts)",
    ),
    (
        "datediff",
        "date2 - date1 (days between two dates), or extract(epoch from ts2 - ts1)",
    ),
    (
        "date_diff",
        "date2 - date1 (days between two dates), or extract(epoch from ts2 - ts1)",
    ),
    (
        "timestampdiff",
        "extract(epoch from ts2 - ts1) / 3600 for hours, date2 - date1 for days",
    ),
    ("julianday", "date2 - date1 (days between two dates)"),
    ("year", "extract(year from d)"),
    ("month", "extract(month from d)"),
    ("day", "extract(day from d)"),
    ("quarter", "extract(quarter from d)"),
    ("dayofweek", "extract(dow from d) (0 = Sunday)"),
    ("weekday", "extract(isodow from d) (1 = Monday)"),
    ("date_format", "to_char(d, 'YYYY-MM-DD')"),
    ("ifnull", "coalesce(a, b)"),
    ("isnull", "coalesce(a, b)"),
    ("nvl", "coalesce(a, b)"),
    ("iif", "CASE WHEN … THEN … ELSE … END"),
    ("if", "CASE WHEN … THEN … ELSE … END"),
    ("len", "length(s)"),
    ("getdate", "now()"),
    ("curdate", "current_date"),
    ("date_add", "d + interval '1 day'"),
    ("date_sub", "d - interval '1 day'"),
    ("group_concat", "string_agg(s, ', ')"),
    ("median", "percentile_cont(0.5) WITHIN GROUP (ORDER BY x)"),
];

fn dialect_hint(function: &str) -> Option<String> {
    let name = function.rsplit('.').next()?.trim().to_lowercase();
    DIALECT
        .iter()
        .find(|(other, _)| *other == name)
        .map(|(_, ours)| format!("PostgreSQL has no {name}(); write {ours}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Vec<Relation> {
        vec![
            Relation::with_columns("school.students", &["id", "full_name"]),
            Relation::with_columns("school.enrolments", &["student_id", "course_id"]),
            Relation::with_columns("school.courses", &["id", "title"]),
        ]
    }

    #[test]
    fn an_unknown_column_names_the_tables_that_have_it_or_close_names() {
        let relations = catalog();
        assert_eq!(
            hint(r#"column "student_id" does not exist"#, &relations).as_deref(),
            Some("Column student_id belongs to: school.enrolments. Join that table or qualify the column with the right table.")
        );
        assert_eq!(
            hint("column s.student_id does not exist", &relations).as_deref(),
            Some("Column student_id belongs to: school.enrolments. Join that table or qualify the column with the right table.")
        );
        let close = hint(r#"column "fullname" does not exist"#, &relations).unwrap();
        assert!(close.contains("school.students.full_name"), "{close}");
        let none = hint(r#"column "zzz" does not exist"#, &relations).unwrap();
        assert!(
            none.starts_with("No table has a column named zzz"),
            "{none}"
        );
    }

    #[test]
    fn an_unknown_relation_names_the_closest_ones() {
        let hinted = hint(r#"relation "student" does not exist"#, &catalog()).unwrap();
        assert!(
            hinted.starts_with("There is no table student. The closest names are: school.students"),
            "{hinted}"
        );
    }

    #[test]
    fn functions_of_other_dialects_get_the_postgres_spelling() {
        let hinted = hint(
            "function strftime(unknown, date) does not exist",
            &catalog(),
        )
        .unwrap();
        assert!(hinted.contains("to_char"), "{hinted}");
        assert_eq!(
            hint("function my_own(integer) does not exist", &catalog()),
            None
        );
        assert_eq!(hint("division by zero", &catalog()), None);
        let like = hint(
            "operator does not exist: timestamp with time zone ~~ unknown",
            &catalog(),
        )
        .unwrap();
        assert!(like.contains("extract(year from col)"), "{like}");
    }
}
