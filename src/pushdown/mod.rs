//! Postgres expression and query trees as DuckDB SQL, for the part of SQL that DuckDB computes
//! exactly as Postgres does. Anything outside that part gives `None` and stays with Postgres.
//!
//! Two users: the foreign data wrapper sends a foreign table's WHERE clauses to DuckDB
//! (`expression`), and `llm_sql.ask` runs a whole query over attachments in DuckDB (`query`).
//!
//! The part DuckDB gets:
//! - values of type boolean, smallint, integer, bigint, real, double precision, numeric, date,
//!   timestamp, timestamptz, text and varchar; constants of these types;
//! - comparisons; on text only `=` and `<>`, unless the collation orders by bytes as DuckDB
//!   does (C, POSIX, C.UTF-8), which also decides ORDER BY, min and max of text;
//! - `+`, `-`, `*` and unary minus on numbers (numeric scales follow the same rules in both);
//!   not `/` or `%`, whose integer division and division by zero differ;
//! - text `||`; LIKE and ILIKE with a constant pattern without backslashes (Postgres's default
//!   escape), ILIKE only with an ASCII pattern;
//! - AND, OR, NOT, IS [NOT] NULL, IN and NOT IN lists, searched CASE, COALESCE;
//! - widening casts between integers, integers and reals to double, integers to numeric, date to
//!   timestamp; `extract` / `date_part` of whole-number fields of dates and timestamps;
//! - the aggregates count, sum, min, max, bool_and, bool_or, and avg of reals, with DISTINCT and
//!   FILTER (avg of integers and numerics is numeric in Postgres but double in DuckDB).
//!
//! Sums of reals may differ in the last bits, as they do between Postgres's own serial and
//! parallel plans.

pub mod foreign_table;
mod query;

use std::ffi::CStr;

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

use crate::quote;

pub use query::{query, DuckQuery};

/// Names the columns that `Var`s refer to.
pub trait Scope {
    /// DuckDB SQL for the column `var` refers to, or None when it cannot be named.
    ///
    /// # Safety
    /// `var` must be a valid Var of the tree being translated.
    unsafe fn column(&self, var: *mut pg_sys::Var) -> Option<String>;
}

/// Number types: arithmetic on them means the same in both.
fn number_type(t: Oid) -> bool {
    matches!(
        t,
        pg_sys::INT2OID
            | pg_sys::INT4OID
            | pg_sys::INT8OID
            | pg_sys::FLOAT4OID
            | pg_sys::FLOAT8OID
            | pg_sys::NUMERICOID
    )
}

/// The types whose comparisons DuckDB evaluates identically.
fn ordered_type(t: Oid) -> bool {
    number_type(t)
        || matches!(
            t,
            pg_sys::BOOLOID | pg_sys::DATEOID | pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID
        )
}

/// Text compares equal the same way everywhere (deterministic collations); order may differ.
fn text_type(t: Oid) -> bool {
    matches!(t, pg_sys::TEXTOID | pg_sys::VARCHAROID)
}

fn value_type(t: Oid) -> bool {
    ordered_type(t) || text_type(t)
}

/// True when `collation` orders text by its bytes, as DuckDB's default collation does: C and
/// POSIX, and C.UTF-8, which orders by code point (the same order for UTF-8).
fn byte_order(collation: Oid) -> bool {
    if collation == pg_sys::C_COLLATION_OID || collation == Oid::from(951) {
        return true;
    }
    collation == pg_sys::DEFAULT_COLLATION_OID && database_collation_is_byte_order()
}

fn database_collation_is_byte_order() -> bool {
    thread_local! {
        static BYTE_ORDER: std::cell::OnceCell<bool> = const { std::cell::OnceCell::new() };
    }
    BYTE_ORDER.with(|cell| {
        *cell.get_or_init(|| {
            // A backend stays in one database, so one look suffices.
            Spi::get_one::<bool>(
                "SELECT CASE datlocprovider WHEN 'c' THEN datcollate IN ('C', 'POSIX', 'C.UTF-8', 'C.utf8')
                                            WHEN 'b' THEN true ELSE false END
                   FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()",
            )
            .ok()
            .flatten()
            .unwrap_or(false)
        })
    })
}

/// The name of a built-in function or operator, when `name` (from get_func_name / get_opname)
/// is set; None for anything user-defined.
unsafe fn builtin_name(oid: Oid, name: *mut std::ffi::c_char) -> Option<String> {
    (u32::from(oid) < pg_sys::FirstGenbkiObjectId && !name.is_null())
        // SAFETY: a palloc'd NUL-terminated name.
        .then(|| {
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        })
}

unsafe fn args(list: *mut pg_sys::List) -> Vec<*mut pg_sys::Node> {
    unsafe {
        pgrx::PgList::<pg_sys::Node>::from_pg(list)
            .iter_ptr()
            .collect()
    }
}

/// DuckDB SQL for an expression, when it means exactly the same there.
///
/// # Safety
/// `node` must be null or a valid analysed expression; `scope` must name its Vars.
pub unsafe fn expression(node: *mut pg_sys::Node, scope: &dyn Scope) -> Option<String> {
    unsafe {
        if node.is_null() {
            return None;
        }
        let each = |list: *mut pg_sys::List| -> Option<Vec<String>> {
            args(list)
                .into_iter()
                .map(|a| expression(a, scope))
                .collect()
        };
        match (*node).type_ {
            pg_sys::NodeTag::T_Var => {
                let var = node as *mut pg_sys::Var;
                if !value_type((*var).vartype) {
                    return None;
                }
                scope.column(var)
            }
            pg_sys::NodeTag::T_RelabelType => {
                let relabel = node as *mut pg_sys::RelabelType;
                value_type((*relabel).resulttype)
                    .then(|| expression((*relabel).arg.cast(), scope))
                    .flatten()
            }
            pg_sys::NodeTag::T_Const => constant(node as *mut pg_sys::Const),
            pg_sys::NodeTag::T_OpExpr => operator(node as *mut pg_sys::OpExpr, scope),
            pg_sys::NodeTag::T_BoolExpr => {
                let expr = node as *mut pg_sys::BoolExpr;
                let parts = each((*expr).args)?;
                match (*expr).boolop {
                    pg_sys::BoolExprType::AND_EXPR => Some(format!("({})", parts.join(" AND "))),
                    pg_sys::BoolExprType::OR_EXPR => Some(format!("({})", parts.join(" OR "))),
                    _ => parts.first().map(|p| format!("(NOT {p})")),
                }
            }
            pg_sys::NodeTag::T_NullTest => {
                let test = node as *mut pg_sys::NullTest;
                if (*test).argisrow {
                    return None;
                }
                let arg = expression((*test).arg.cast(), scope)?;
                Some(match (*test).nulltesttype {
                    pg_sys::NullTestType::IS_NULL => format!("({arg} IS NULL)"),
                    _ => format!("({arg} IS NOT NULL)"),
                })
            }
            pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                in_list(node as *mut pg_sys::ScalarArrayOpExpr, scope)
            }
            pg_sys::NodeTag::T_CaseExpr => {
                let case = node as *mut pg_sys::CaseExpr;
                if !(*case).arg.is_null() || !value_type((*case).casetype) {
                    return None;
                }
                let mut sql = String::from("(CASE");
                for when in args((*case).args) {
                    let when = when as *mut pg_sys::CaseWhen;
                    let condition = expression((*when).expr.cast(), scope)?;
                    let result = expression((*when).result.cast(), scope)?;
                    sql.push_str(&format!(" WHEN {condition} THEN {result}"));
                }
                if !(*case).defresult.is_null() {
                    let otherwise = expression((*case).defresult.cast(), scope)?;
                    sql.push_str(&format!(" ELSE {otherwise}"));
                }
                sql.push_str(" END)");
                Some(sql)
            }
            pg_sys::NodeTag::T_CoalesceExpr => {
                let coalesce = node as *mut pg_sys::CoalesceExpr;
                if !value_type((*coalesce).coalescetype) {
                    return None;
                }
                Some(format!("COALESCE({})", each((*coalesce).args)?.join(", ")))
            }
            pg_sys::NodeTag::T_FuncExpr => function(node as *mut pg_sys::FuncExpr, scope),
            pg_sys::NodeTag::T_Aggref => aggregate(node as *mut pg_sys::Aggref, scope),
            _ => None,
        }
    }
}

unsafe fn operator(op: *mut pg_sys::OpExpr, scope: &dyn Scope) -> Option<String> {
    unsafe {
        let name = builtin_name((*op).opno, pg_sys::get_opname((*op).opno))?;
        let operands = args((*op).args);
        let types: Vec<Oid> = operands.iter().map(|a| pg_sys::exprType(*a)).collect();
        let numbers = types.iter().all(|t| number_type(*t)) && number_type((*op).opresulttype);
        if let [operand] = operands[..] {
            return (name == "-" && numbers)
                .then(|| Some(format!("(- {})", expression(operand, scope)?)))
                .flatten();
        }
        let [left, right] = operands[..] else {
            return None;
        };
        let text = types.iter().any(|t| text_type(*t));
        // timestamptz against timestamp or date depends on the time zone, which DuckDB keeps
        // its own way.
        let zoned = types
            .iter()
            .filter(|t| **t == pg_sys::TIMESTAMPTZOID)
            .count();
        let values = types.iter().all(|t| value_type(*t)) && zoned != 1;
        let sql_operator = match name.as_str() {
            "=" | "<>" if values => name.as_str(),
            "<" | "<=" | ">" | ">=" if values && (!text || byte_order((*op).inputcollid)) => {
                name.as_str()
            }
            "+" | "-" | "*" if numbers => name.as_str(),
            "||" if types.iter().all(|t| text_type(*t)) => "||",
            "~~" | "!~~" | "~~*" | "!~~*" if text => {
                let ascii_only = name.contains('*');
                like_pattern(right, ascii_only)?;
                match name.as_str() {
                    "~~" => "LIKE",
                    "!~~" => "NOT LIKE",
                    "~~*" => "ILIKE",
                    _ => "NOT ILIKE",
                }
            }
            _ => return None,
        };
        let (l, r) = (expression(left, scope)?, expression(right, scope)?);
        Some(format!("({l} {sql_operator} {r})"))
    }
}

/// A LIKE pattern DuckDB reads the same way: a text constant without backslashes (Postgres's
/// default escape character; DuckDB has none), ASCII when case is folded.
unsafe fn like_pattern(node: *mut pg_sys::Node, ascii_only: bool) -> Option<()> {
    unsafe {
        let node = match (*node).type_ {
            pg_sys::NodeTag::T_RelabelType => (*(node as *mut pg_sys::RelabelType)).arg.cast(),
            _ => node,
        };
        if (*node).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let c = node as *mut pg_sys::Const;
        if (*c).constisnull || !text_type((*c).consttype) {
            return None;
        }
        let pattern = String::from_datum((*c).constvalue, false)?;
        (!pattern.contains('\\') && (!ascii_only || pattern.is_ascii())).then_some(())
    }
}

/// `x IN (…)` and `x NOT IN (…)` with a list of values.
unsafe fn in_list(op: *mut pg_sys::ScalarArrayOpExpr, scope: &dyn Scope) -> Option<String> {
    unsafe {
        let name = builtin_name((*op).opno, pg_sys::get_opname((*op).opno))?;
        let negated = match (name.as_str(), (*op).useOr) {
            ("=", true) => false,
            ("<>", false) => true,
            _ => return None,
        };
        let [left, right] = args((*op).args)[..] else {
            return None;
        };
        if (*right).type_ != pg_sys::NodeTag::T_ArrayExpr
            || (*(right as *mut pg_sys::ArrayExpr)).multidims
        {
            return None;
        }
        let items: Option<Vec<String>> = args((*(right as *mut pg_sys::ArrayExpr)).elements)
            .into_iter()
            .map(|item| expression(item, scope))
            .collect();
        let not = if negated { "NOT " } else { "" };
        Some(format!(
            "({} {not}IN ({}))",
            expression(left, scope)?,
            items?.join(", ")
        ))
    }
}

/// Casts that convert values the same way, and `extract` / `date_part`.
unsafe fn function(func: *mut pg_sys::FuncExpr, scope: &dyn Scope) -> Option<String> {
    unsafe {
        let operands = args((*func).args);
        let result = (*func).funcresulttype;
        let cast = matches!(
            (*func).funcformat,
            pg_sys::CoercionForm::COERCE_IMPLICIT_CAST | pg_sys::CoercionForm::COERCE_EXPLICIT_CAST
        );
        if cast {
            let [operand] = operands[..] else {
                return None;
            };
            let from = pg_sys::exprType(operand);
            let integer = |t: Oid| matches!(t, pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID);
            let target = match result {
                pg_sys::INT2OID if integer(from) => "SMALLINT",
                pg_sys::INT4OID if integer(from) => "INTEGER",
                pg_sys::INT8OID if integer(from) => "BIGINT",
                pg_sys::FLOAT4OID if integer(from) => "REAL",
                pg_sys::FLOAT8OID if integer(from) || from == pg_sys::FLOAT4OID => "DOUBLE",
                // An unconstrained numeric is DECIMAL(18,3) in DuckDB: say how wide instead.
                pg_sys::NUMERICOID if integer(from) => "DECIMAL(19,0)",
                pg_sys::TIMESTAMPOID if from == pg_sys::DATEOID => "TIMESTAMP",
                _ => return None,
            };
            return Some(format!("CAST({} AS {target})", expression(operand, scope)?));
        }
        let name = builtin_name((*func).funcid, pg_sys::get_func_name((*func).funcid))?;
        let [field, source] = operands[..] else {
            return None;
        };
        if !matches!(name.as_str(), "extract" | "date_part")
            || (*field).type_ != pg_sys::NodeTag::T_Const
        {
            return None;
        }
        let field = field as *mut pg_sys::Const;
        if (*field).constisnull || !text_type((*field).consttype) {
            return None;
        }
        let field = String::from_datum((*field).constvalue, false)?.to_ascii_lowercase();
        let whole_day = [
            "year", "month", "day", "quarter", "dow", "isodow", "doy", "week",
        ];
        let allowed = match pg_sys::exprType(source) {
            pg_sys::DATEOID => whole_day.contains(&field.as_str()),
            pg_sys::TIMESTAMPOID => {
                whole_day.contains(&field.as_str()) || matches!(field.as_str(), "hour" | "minute")
            }
            _ => false,
        };
        allowed
            .then(|| {
                Some(format!(
                    "extract({field} FROM {})",
                    expression(source, scope)?
                ))
            })
            .flatten()
    }
}

/// `pg_aggregate.aggkind` of a plain aggregate (not ordered-set or hypothetical-set).
const AGGKIND_NORMAL: u8 = b'n';

unsafe fn aggregate(agg: *mut pg_sys::Aggref, scope: &dyn Scope) -> Option<String> {
    unsafe {
        let plain = (*agg).agglevelsup == 0
            && (*agg).aggkind as u8 == AGGKIND_NORMAL
            && (*agg).aggorder.is_null()
            && (*agg).aggdirectargs.is_null()
            && !(*agg).aggvariadic;
        if !plain {
            return None;
        }
        let name = builtin_name((*agg).aggfnoid, pg_sys::get_func_name((*agg).aggfnoid))?;
        let inputs: Vec<*mut pg_sys::Node> = args((*agg).args)
            .into_iter()
            .map(|entry| (*(entry as *mut pg_sys::TargetEntry)).expr.cast())
            .collect();
        let call = if (*agg).aggstar {
            (name == "count").then(|| "count(*)".to_string())?
        } else {
            let [input] = inputs[..] else {
                return None;
            };
            let t = pg_sys::exprType(input);
            let allowed = match name.as_str() {
                "count" => value_type(t),
                "sum" => number_type(t),
                "avg" => matches!(t, pg_sys::FLOAT4OID | pg_sys::FLOAT8OID),
                "min" | "max" => {
                    ordered_type(t) || (text_type(t) && byte_order((*agg).inputcollid))
                }
                "bool_and" | "bool_or" => t == pg_sys::BOOLOID,
                _ => false,
            };
            if !allowed {
                return None;
            }
            let distinct = if (*agg).aggdistinct.is_null() {
                ""
            } else {
                "DISTINCT "
            };
            format!("{name}({distinct}{})", expression(input, scope)?)
        };
        match (*agg).aggfilter.is_null() {
            true => Some(call),
            false => Some(format!(
                "{call} FILTER (WHERE {})",
                expression((*agg).aggfilter.cast(), scope)?
            )),
        }
    }
}

/// A constant as a DuckDB literal; dates and timestamps in ISO 8601 (independent of DateStyle).
///
/// # Safety
/// `c` must be a valid Const.
pub unsafe fn constant(c: *mut pg_sys::Const) -> Option<String> {
    unsafe {
        if (*c).constisnull {
            return value_type((*c).consttype).then(|| "NULL".into());
        }
        let value = (*c).constvalue;
        let output = || {
            let (mut out_fn, mut varlena) = (Oid::INVALID, false);
            pg_sys::getTypeOutputInfo((*c).consttype, &mut out_fn, &mut varlena);
            CStr::from_ptr(pg_sys::OidOutputFunctionCall(out_fn, value))
                .to_string_lossy()
                .into_owned()
        };
        let iso = |type_oid: Oid| {
            let mut buf = [0 as std::ffi::c_char; pg_sys::MAXDATELEN as usize + 1];
            pg_sys::JsonEncodeDateTime(buf.as_mut_ptr(), value, type_oid, std::ptr::null());
            CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
        };
        let finite = |text: &str| {
            !text.is_empty()
                && !text.to_ascii_lowercase().contains("inf")
                && !text.to_ascii_lowercase().contains("nan")
        };
        match (*c).consttype {
            pg_sys::BOOLOID => Some(if bool::from_datum(value, false)? {
                "TRUE".into()
            } else {
                "FALSE".into()
            }),
            pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID => Some(output()),
            pg_sys::FLOAT4OID => {
                let text = output();
                finite(&text).then(|| format!("CAST('{text}' AS REAL)"))
            }
            pg_sys::FLOAT8OID => {
                let text = output();
                finite(&text).then(|| format!("CAST('{text}' AS DOUBLE)"))
            }
            pg_sys::NUMERICOID => {
                // DuckDB reads a literal of more than 38 digits as a double.
                let text = output();
                let digits = text.chars().filter(char::is_ascii_digit).count();
                (finite(&text) && digits <= 38).then_some(text)
            }
            pg_sys::TEXTOID | pg_sys::VARCHAROID => Some(quote::duck_literal(&output())),
            pg_sys::DATEOID => {
                let text = iso(pg_sys::DATEOID);
                finite(&text).then(|| format!("DATE '{text}'"))
            }
            pg_sys::TIMESTAMPOID => {
                let text = iso(pg_sys::TIMESTAMPOID);
                finite(&text).then(|| format!("CAST('{text}' AS TIMESTAMP)"))
            }
            pg_sys::TIMESTAMPTZOID => {
                let text = iso(pg_sys::TIMESTAMPTZOID);
                finite(&text).then(|| format!("CAST('{text}' AS TIMESTAMPTZ)"))
            }
            _ => None,
        }
    }
}
