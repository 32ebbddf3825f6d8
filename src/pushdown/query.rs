//! Whole queries over foreign tables of `llm_sql_fdw` (imported attachments) as one DuckDB
//! query, so that joins, grouping and sorting run in DuckDB instead of row by row through the
//! foreign data wrapper.
//!
//! What translates: SELECT [DISTINCT] over those foreign tables, subqueries in FROM and joins
//! (inner, left, right, full, cross), WHERE, GROUP BY, HAVING, ORDER BY, LIMIT and OFFSET, with
//! the expressions of `super::expression`. Not: CTEs, set operations, window functions,
//! subquery expressions (EXISTS, IN (SELECT …)), grouping sets, DISTINCT ON, LATERAL,
//! TABLESAMPLE, or any other kind of relation.
//!
//! The query does not go through Postgres's executor, so the checks it would make are made
//! here: the caller's privileges on every relation and column it reads
//! (`ExecCheckPermissions`), and no row-level security or inheritance children.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::FromDatum;

use super::{byte_order, expression, text_type, Scope};
use crate::quote;

/// A translated query; the row limit is kept apart so that a cap can be added.
#[derive(Debug)]
pub struct DuckQuery {
    body: String,
    limit: Option<u64>,
    offset: u64,
}

impl DuckQuery {
    /// The DuckDB SQL, returning at most `cap` rows.
    pub fn sql(&self, cap: u64) -> String {
        let limit = self.limit.map_or(cap, |limit| limit.min(cap));
        match self.offset {
            0 => format!("{} LIMIT {limit}", self.body),
            offset => format!("{} LIMIT {limit} OFFSET {offset}", self.body),
        }
    }
}

/// The DuckDB form of an analysed query, when every relation it reads is a foreign table of
/// `llm_sql_fdw` that the caller may read and everything it computes means the same in DuckDB.
///
/// # Safety
/// `query` must be a valid analysed Query.
pub unsafe fn query(query: *mut pg_sys::Query) -> Option<DuckQuery> {
    unsafe {
        let level = Level { query };
        let names: Vec<String> = level
            .outputs()
            .iter()
            .map(|entry| match (**entry).resname.is_null() {
                true => "?column?".to_string(),
                false => CStr::from_ptr((**entry).resname)
                    .to_string_lossy()
                    .into_owned(),
            })
            .collect();
        let names = quote::unique(names.iter().map(String::as_str));
        let (body, limit, offset) = level.select(|i| quote::ident(&names[i]))?;
        Some(DuckQuery {
            body,
            limit,
            offset,
        })
    }
}

/// One query level: its range table names the Vars.
struct Level {
    query: *mut pg_sys::Query,
}

impl Scope for Level {
    unsafe fn column(&self, var: *mut pg_sys::Var) -> Option<String> {
        unsafe {
            if (*var).varlevelsup != 0 || (*var).varattno <= 0 {
                return None;
            }
            let index = (*var).varno;
            let entry = self.entry(index)?;
            let attno = (*var).varattno;
            match (*entry).rtekind {
                pg_sys::RTEKind::RTE_RELATION => {
                    let name = pg_sys::get_attname((*entry).relid, attno, true);
                    (!name.is_null()).then(|| {
                        let name = CStr::from_ptr(name).to_string_lossy();
                        format!("r{index}.{}", quote::ident(&name))
                    })
                }
                pg_sys::RTEKind::RTE_SUBQUERY => Some(format!("r{index}.c{attno}")),
                // A column of a join (USING, or a join with an alias) is one of its inputs'
                // columns, or COALESCE of both for a full join.
                pg_sys::RTEKind::RTE_JOIN => nth_expression((*entry).joinaliasvars, attno, self),
                // Above GROUP BY, a grouped expression is a column of the grouping step.
                pg_sys::RTEKind::RTE_GROUP => nth_expression((*entry).groupexprs, attno, self),
                _ => None,
            }
        }
    }
}

/// The expression at 1-based `position` of `list`, translated.
unsafe fn nth_expression(list: *mut pg_sys::List, position: i16, scope: &Level) -> Option<String> {
    unsafe {
        let position = i32::from(position);
        (position <= pg_sys::list_length(list))
            .then(|| expression(pg_sys::list_nth(list, position - 1).cast(), scope))
            .flatten()
    }
}

impl Level {
    unsafe fn entry(&self, index: i32) -> Option<*mut pg_sys::RangeTblEntry> {
        unsafe {
            let table = (*self.query).rtable;
            (index >= 1 && index <= pg_sys::list_length(table))
                .then(|| pg_sys::list_nth(table, index - 1).cast())
        }
    }

    /// The result columns (not the ones kept only for sorting).
    unsafe fn outputs(&self) -> Vec<*mut pg_sys::TargetEntry> {
        unsafe {
            super::args((*self.query).targetList)
                .into_iter()
                .map(|e| e as *mut pg_sys::TargetEntry)
                .filter(|e| !(**e).resjunk)
                .collect()
        }
    }

    /// The SELECT without LIMIT, and its limit and offset. `name(i)` is the alias of the i-th
    /// result column.
    unsafe fn select(&self, name: impl Fn(usize) -> String) -> Option<(String, Option<u64>, u64)> {
        unsafe {
            let q = self.query;
            let unsupported = (*q).commandType != pg_sys::CmdType::CMD_SELECT
                || !(*q).utilityStmt.is_null()
                || (*q).hasWindowFuncs
                || (*q).hasTargetSRFs
                || (*q).hasSubLinks
                || (*q).hasDistinctOn
                || (*q).hasRecursive
                || (*q).hasModifyingCTE
                || (*q).hasForUpdate
                || !(*q).cteList.is_null()
                || !(*q).setOperations.is_null()
                || !(*q).groupingSets.is_null()
                || !(*q).rowMarks.is_null()
                || (*q).limitOption != pg_sys::LimitOption::LIMIT_OPTION_COUNT;
            if unsupported {
                return None;
            }
            let jointree = (*q).jointree;
            let from: Option<Vec<String>> = super::args((*jointree).fromlist)
                .into_iter()
                .map(|item| self.source(item))
                .collect();
            // FROM first: a query over local tables ends here.
            let from = from?;
            if !pg_sys::ExecCheckPermissions((*q).rtable, (*q).rteperminfos, false) {
                return None;
            }
            let mut columns = Vec::new();
            for (i, entry) in self.outputs().into_iter().enumerate() {
                let value = expression((*entry).expr.cast(), self)?;
                columns.push(format!("{value} AS {}", name(i)));
            }
            if columns.is_empty() || from.is_empty() {
                return None;
            }
            let distinct = if (*q).distinctClause.is_null() {
                ""
            } else {
                "DISTINCT "
            };
            let mut sql = format!(
                "SELECT {distinct}{} FROM {}",
                columns.join(", "),
                from.join(", ")
            );
            if !(*jointree).quals.is_null() {
                sql.push_str(&format!(" WHERE {}", expression((*jointree).quals, self)?));
            }
            let groups = self.sort_items((*q).groupClause, false)?;
            if !groups.is_empty() {
                sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
            }
            if !(*q).havingQual.is_null() {
                sql.push_str(&format!(" HAVING {}", expression((*q).havingQual, self)?));
            }
            let order = self.sort_items((*q).sortClause, true)?;
            if !order.is_empty() {
                sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
            }
            let limit = count((*q).limitCount)?;
            let offset = count((*q).limitOffset)?.unwrap_or(0);
            Some((sql, limit, offset))
        }
    }

    /// GROUP BY expressions, or ORDER BY items with direction and NULLS placement.
    unsafe fn sort_items(&self, clauses: *mut pg_sys::List, ordering: bool) -> Option<Vec<String>> {
        unsafe {
            let mut items = Vec::new();
            for clause in super::args(clauses) {
                let clause = clause as *mut pg_sys::SortGroupClause;
                let entry = pg_sys::get_sortgroupref_tle(
                    (*clause).tleSortGroupRef,
                    (*self.query).targetList,
                );
                let expr = (*entry).expr.cast::<pg_sys::Node>();
                let mut item = expression(expr, self)?;
                if ordering {
                    if text_type(pg_sys::exprType(expr)) && !byte_order(pg_sys::exprCollation(expr))
                    {
                        return None;
                    }
                    item.push_str(if (*clause).reverse_sort {
                        " DESC"
                    } else {
                        " ASC"
                    });
                    item.push_str(if (*clause).nulls_first {
                        " NULLS FIRST"
                    } else {
                        " NULLS LAST"
                    });
                }
                items.push(item);
            }
            Some(items)
        }
    }

    unsafe fn source(&self, node: *mut pg_sys::Node) -> Option<String> {
        unsafe {
            match (*node).type_ {
                pg_sys::NodeTag::T_RangeTblRef => {
                    let index = (*(node as *mut pg_sys::RangeTblRef)).rtindex;
                    let entry = self.entry(index)?;
                    if (*entry).lateral || !(*entry).tablesample.is_null() {
                        return None;
                    }
                    match (*entry).rtekind {
                        pg_sys::RTEKind::RTE_RELATION => {
                            Some(format!("{} AS r{index}", foreign_relation(entry)?))
                        }
                        pg_sys::RTEKind::RTE_SUBQUERY => {
                            let inner = Level {
                                query: (*entry).subquery,
                            };
                            // Outer Vars name a subquery column by its position (resno).
                            let positions: Vec<i16> =
                                inner.outputs().iter().map(|e| (**e).resno).collect();
                            let (mut sql, limit, offset) =
                                inner.select(|i| format!("c{}", positions[i]))?;
                            if let Some(limit) = limit {
                                sql.push_str(&format!(" LIMIT {limit}"));
                            }
                            if offset > 0 {
                                sql.push_str(&format!(" OFFSET {offset}"));
                            }
                            Some(format!("({sql}) AS r{index}"))
                        }
                        _ => None,
                    }
                }
                pg_sys::NodeTag::T_JoinExpr => {
                    let join = node as *mut pg_sys::JoinExpr;
                    let left = self.source((*join).larg)?;
                    let right = self.source((*join).rarg)?;
                    let kind = match (*join).jointype {
                        pg_sys::JoinType::JOIN_INNER if (*join).quals.is_null() => {
                            return Some(format!("({left} CROSS JOIN {right})"));
                        }
                        pg_sys::JoinType::JOIN_INNER => "JOIN",
                        pg_sys::JoinType::JOIN_LEFT => "LEFT JOIN",
                        pg_sys::JoinType::JOIN_RIGHT => "RIGHT JOIN",
                        pg_sys::JoinType::JOIN_FULL => "FULL JOIN",
                        _ => return None,
                    };
                    let on = expression((*join).quals, self)?;
                    Some(format!("({left} {kind} {right} ON {on})"))
                }
                _ => None,
            }
        }
    }
}

/// The DuckDB relation behind a foreign table of `llm_sql_fdw`, when reading it in DuckDB is
/// what Postgres would do: no row-level security, no inheritance children.
unsafe fn foreign_relation(entry: *mut pg_sys::RangeTblEntry) -> Option<String> {
    unsafe {
        let relid = (*entry).relid;
        if (*entry).relkind as u8 != pg_sys::RELKIND_FOREIGN_TABLE
            || pg_sys::check_enable_rls(relid, pg_sys::InvalidOid, true)
                == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
        {
            return None;
        }
        let relation = pg_sys::RelationIdGetRelation(relid);
        if relation.is_null() {
            return None;
        }
        let children = (*(*relation).rd_rel).relhassubclass;
        pg_sys::RelationClose(relation);
        if children && (*entry).inh {
            return None;
        }
        super::foreign_table::duckdb_relation(relid)
    }
}

/// A LIMIT or OFFSET: None for an expression that is not a constant; Some(None) for none.
unsafe fn count(node: *mut pg_sys::Node) -> Option<Option<u64>> {
    unsafe {
        if node.is_null() {
            return Some(None);
        }
        // `LIMIT 3` is int8(3): folded to a constant the way the planner would.
        let node = pg_sys::eval_const_expressions(std::ptr::null_mut(), node);
        if (*node).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let c = node as *mut pg_sys::Const;
        if (*c).constisnull {
            return Some(None);
        }
        let value = i64::from_datum((*c).constvalue, false)?;
        u64::try_from(value).ok().map(Some)
    }
}
