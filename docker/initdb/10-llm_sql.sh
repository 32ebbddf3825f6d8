#!/usr/bin/env bash
# Runs once, when the official image initialises an empty data directory: creates llm_sql
# (with pgvector) in the default database and template1, so that new databases have it too,
# and points llm_sql at the model server named by LLM_SQL_LLM_URL (compose.yml: the ollama
# service), with the models named by LLM_SQL_CHAT_MODEL and LLM_SQL_EMBEDDING_MODEL, and the
# API key LLM_SQL_LLM_API_KEY.
set -Eeuo pipefail
psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
for db in template1 "$POSTGRES_DB"; do
  "${psql[@]}" --dbname "$db" -c "CREATE EXTENSION IF NOT EXISTS llm_sql CASCADE"
  # The API key goes where only llm_sql's owner can read it; psql takes it from the
  # environment (\getenv), so it is never quoted by hand nor on a command line.
  if [ -n "${LLM_SQL_LLM_API_KEY:-}" ]; then
    printf '%s\n' '\getenv key LLM_SQL_LLM_API_KEY' "SELECT llm_sql.set_llm_api_key(:'key');" \
      | "${psql[@]}" --dbname "$db" >/dev/null
  fi
done
settings=()
[ -n "${LLM_SQL_LLM_URL:-}" ] && settings+=("ALTER SYSTEM SET llm_sql.llm_url = '${LLM_SQL_LLM_URL//\'/\'\'}'")
[ -n "${LLM_SQL_CHAT_MODEL:-}" ] && settings+=("ALTER SYSTEM SET llm_sql.chat_model = '${LLM_SQL_CHAT_MODEL//\'/\'\'}'")
[ -n "${LLM_SQL_EMBEDDING_MODEL:-}" ] && settings+=("ALTER SYSTEM SET llm_sql.embedding_model = '${LLM_SQL_EMBEDDING_MODEL//\'/\'\'}'")
settings+=("ALTER SYSTEM SET llm_sql.worker_database = '${POSTGRES_DB//\'/\'\'}'")
for statement in "${settings[@]}"; do
  "${psql[@]}" --dbname postgres -c "$statement"
done
"${psql[@]}" --dbname postgres -c "SELECT pg_reload_conf()"
