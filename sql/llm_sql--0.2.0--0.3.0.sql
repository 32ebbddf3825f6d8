-- llm_sql 0.2.0 -> 0.3.0: ALTER EXTENSION llm_sql UPDATE.
--
-- What users meet first: embed is STABLE (the pgvector idiom embeds once and uses the index).
\echo Use "ALTER EXTENSION llm_sql UPDATE" to load this file. \quit

ALTER FUNCTION llm_sql.embed(text, text) STABLE PARALLEL RESTRICTED;
