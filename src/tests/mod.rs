//! In-backend tests (`cargo pgrx test`): each runs inside a transaction of a real PostgreSQL 18
//! backend with the extension installed, against the real embedded DuckDB.

use pgrx::prelude::*;

#[pg_test]
fn query_returns_typed_rows() {
    let x = Spi::get_one::<i32>("SELECT x FROM llm_sql.query('SELECT 42 AS x') AS t(x int)");
    assert_eq!(x, Ok(Some(42)));
}
