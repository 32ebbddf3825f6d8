# Shared settings for scripts/setup, scripts/pg, scripts/test and the benches.
# Sourced, not run. Every path can be overridden from the environment.

# Downloads and toolchains live outside the repo so that a fresh clone reuses them.
LLM_SQL_CACHE=${LLM_SQL_CACHE:-$HOME/.cache/llm_sql}
# The PostgreSQL tree must be readable by the `postgres` OS user, so it is not under $HOME.
LLM_SQL_PREFIX=${LLM_SQL_PREFIX:-/opt/llm_sql}
PG_HOME="$LLM_SQL_PREFIX/pg18"
PG_CONFIG="$PG_HOME/bin/pg_config"
PG_BIN="$PG_HOME/bin"
PG_PKGLIBDIR="$PG_HOME/lib"          # pg_config --pkglibdir of this relocatable build

# The dev cluster that `scripts/pg` manages.
DEV_PGDATA=${DEV_PGDATA:-/var/lib/llm_sql/dev}
DEV_PGPORT=${DEV_PGPORT:-5418}
DEV_DB=${DEV_DB:-llm_sql}
# Scratch space for the test clusters (must be writable by `postgres`).
TEST_ROOT=${TEST_ROOT:-/var/lib/llm_sql/test}

PG_OS_USER=postgres
PGRX_VERSION=0.18.1
DUCKDB_VERSION=1.5.5
DUCKDB_PLATFORM=linux_amd64

export PGRX_HOME="$LLM_SQL_CACHE/pgrx"
export PATH="$LLM_SQL_CACHE/tools/bin:$HOME/.cargo/bin:$PATH"
# libduckdb.so is linked from, and installed next to, the extension in PostgreSQL's lib dir.
export DUCKDB_LIB_DIR="$PG_PKGLIBDIR"
# DuckDB's C++ headers of the same release, for src/engine/shim.cpp (unpacked by scripts/setup).
export DUCKDB_CPP_INCLUDE_DIR="$LLM_SQL_CACHE/duckdb-$DUCKDB_VERSION-include"

die() { printf '\n\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
step() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

# Run a command as the postgres OS user (PostgreSQL refuses to run as root).
as_pg() { sudo -u "$PG_OS_USER" -H -- "$@"; }

# DuckDB extensions are loaded from here (the default of llm_sql.duckdb_extension_directory),
# laid out as DuckDB expects: <dir>/v<version>/<platform>/<name>.duckdb_extension
DUCKDB_EXT_DIR="$PG_PKGLIBDIR/llm_sql/duckdb_extensions"
# The built-in embedding model's files (src/embeddings/builtin looks for them here).
BUILTIN_MODEL_DIR="$PG_PKGLIBDIR/llm_sql/all-MiniLM-L6-v2"

# Unlinks the installed llm_sql.so before a new one is copied in. Running backends (the dev
# cluster's embedding worker, say) keep the old file mapped; copying over it in place would
# change their mapped pages and kill them with SIGBUS.
release_installed_library() { rm -f "$PG_PKGLIBDIR/llm_sql.so"; }
