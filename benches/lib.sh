# Shared by the benchmark scripts. Sourced after scripts/lib.sh.

# bench_cluster <dir> <port> [postgresql.conf line]: a fresh cluster with llm_sql in
# database llm_sql_bench.
bench_cluster() {
  local dir=$1 port=$2 extra=${3:-}
  as_pg "$PG_BIN/pg_ctl" -D "$dir" stop -m fast -w >/dev/null 2>&1 || true
  rm -rf "$dir" && install -d -o "$PG_OS_USER" -m 700 "$dir"
  as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  scripts/cluster-conf "$dir" "$port" "$extra"
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
  "$PG_BIN/psql" -h /tmp -p "$port" -U postgres -d postgres -XAtq -c "CREATE DATABASE llm_sql_bench"
  "$PG_BIN/psql" -h /tmp -p "$port" -U postgres -d llm_sql_bench -XAtq -c "CREATE EXTENSION llm_sql CASCADE"
}

stop_cluster_at() { as_pg "$PG_BIN/pg_ctl" -D "$1" stop -m fast -w >/dev/null 2>&1 || true; }
