"""Execution accuracy of llm_sql.ask against a plain one-shot prompt, question by question.

Called by benches/nl2sql/run, which starts the cluster (schemas loaded) and the model server.

    bench.py --psql PSQL --port PORT --url URL --model MODEL --api openai|ollama
             [--scripted] [--arms baseline,ask] [--only shop,wide] [--limit N]
             [--set llm_sql.x=y ...] --out benches/results/nl2sql-<model>.md

Arms:
- baseline: the same model and server, one chat message holding the schema file's CREATE TABLE
  and COMMENT statements and the question (the usual text-to-SQL prompt), temperature 0, the
  same cap on answer tokens as ask; the SQL is the reply's first ```sql block, or its first
  SELECT/WITH statement. Run read-only with a 30 s statement_timeout.
- ask: llm_sql.ask_full(question) with default settings (cache off), plus any --set.

A question is right when the answer has as many rows as the gold query and each gold row's
values appear in its answer row (extra columns are tolerated, column names ignored, numbers
rounded to 2 decimals, row order ignored unless the question has "ordered": true).
With --scripted (the project's test server), the model's reply is scripted as the gold SQL:
a plumbing check that must score 100 %.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_TOKENS = 400


def options():
    p = argparse.ArgumentParser()
    p.add_argument("--psql", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--api", default="openai")
    p.add_argument("--scripted", action="store_true")
    p.add_argument("--arms", default="baseline,ask")
    p.add_argument("--only", default="")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--out", required=True)
    return p.parse_args()


ARGS = options()
SCHEMAS = [s for s in ["shop", "wide", "cryptic", "vals", "dates"]
           if not ARGS.only or s in ARGS.only.split(",")]


def psql(schema, query, *settings, read_only=False):
    args = [ARGS.psql, "-h", "/tmp", "-p", ARGS.port, "-U", "postgres", "-d", "llm_sql_bench",
            "-XAtq", "-v", "ON_ERROR_STOP=1"]
    if read_only:
        args += ["-c", "SET default_transaction_read_only = on", "-c", "SET statement_timeout = '30s'"]
    for s in (f"SET search_path = {schema}",) + settings:
        args += ["-c", s]
    args += ["-c", query]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return done.stdout.strip()


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def rows_of(schema, sql, read_only=False):
    # json (not jsonb) keeps columns that share a name; rows are read as lists of pairs.
    text = psql(schema, f"SELECT coalesce(json_agg(g), '[]') FROM (\n{sql}\n) g", read_only=read_only)
    return json.loads(text, object_pairs_hook=list)


def values(row):
    if isinstance(row, list):
        return [v for _, v in row]
    if isinstance(row, dict):
        return list(row.values())
    return [row]


def canonical(v):
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return json.dumps(round(float(v), 2))
    if isinstance(v, str):
        try:
            return json.dumps(round(float(v), 2))
        except ValueError:
            return json.dumps(v)
    return json.dumps(v, sort_keys=True)


def contains(answer_row, gold_row):
    have = [canonical(v) for v in values(answer_row)]
    for v in (canonical(v) for v in values(gold_row)):
        if v not in have:
            return False
        have.remove(v)
    return True


def right(gold, answer, ordered):
    if len(gold) != len(answer):
        return False
    if ordered:
        return all(contains(a, g) for g, a in zip(gold, answer))
    unused = list(answer)
    for g in sorted(gold, key=lambda r: -len(values(r))):
        match = next((a for a in unused if contains(a, g)), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def schema_ddl(schema):
    """The CREATE TABLE and COMMENT statements of the schema's script."""
    text = open(os.path.join(HERE, "schemas", f"{schema}.sql")).read()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = re.split(r";\s*\n", text)
    keep = [s.strip() + ";" for s in statements
            if re.match(r"\s*(CREATE\s+TABLE|COMMENT\s+ON)", s, re.I)]
    return "\n\n".join(keep)


def chat(messages):
    body = {"model": ARGS.model, "messages": messages, "temperature": 0, "max_tokens": MAX_TOKENS,
            "stream": False}
    path = "/v1/chat/completions"
    if ARGS.api == "ollama":
        body = {"model": ARGS.model, "messages": messages, "stream": False,
                "options": {"temperature": 0, "num_predict": MAX_TOKENS}}
        path = "/api/chat"
    request = urllib.request.Request(ARGS.url.rstrip("/") + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    reply = json.load(urllib.request.urlopen(request, timeout=600))
    if ARGS.api == "ollama":
        return reply["message"]["content"], reply.get("prompt_eval_count", 0)
    return reply["choices"][0]["message"]["content"], reply.get("usage", {}).get("prompt_tokens", 0)


def first_sql(reply):
    fence = re.search(r"```(?:sql|postgresql|postgres)?[ \t]*\n(.*?)(?:```|\Z)", reply, re.S | re.I)
    if fence:
        return fence.group(1).strip().rstrip(";")
    bare = re.search(r"^[ \t]*((?:SELECT|WITH)\b.*?)(?:;|\n\s*\n|\Z)", reply, re.S | re.I | re.M)
    return bare.group(1).strip() if bare else None


def baseline(schema, item, ddl):
    prompt = (f"{ddl}\n\n-- Using valid PostgreSQL, answer the following question for the tables "
              f"provided above.\n-- Question: {item['q']}\n")
    started = time.time()
    reply, prompt_tokens = chat([{"role": "user", "content": prompt}])
    sql = first_sql(reply)
    try:
        rows = rows_of(schema, sql, read_only=True) if sql else None
        error = None if sql else "no SQL in the reply"
    except RuntimeError as e:
        rows, error = None, str(e).splitlines()[0]
    return {"rows": rows, "sql": sql, "error": error, "seconds": time.time() - started,
            "calls": 1, "prompt_tokens": prompt_tokens}


def script(key, gold, i):
    dressed = [json.dumps({"sql": gold, "confidence": 0.95}),
               f"Here is the query:\n```sql\n{gold};\n```\nIt answers the question.",
               f"{gold};\n\nThis query answers the question."][i % 3]
    request = urllib.request.Request(f"{ARGS.url}/_script/{key}", data=json.dumps([dressed]).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
    return f"{ARGS.url}/key={key}"


def ask(schema, item, i):
    target = script(f"{schema}{i}", item["sql"], i) if ARGS.scripted else ARGS.url
    settings = [f"SET llm_sql.ask_schemas = {literal(schema)}", "SET llm_sql.ask_cache_ttl = 0",
                f"SET llm_sql.llm_api = {literal(ARGS.api)}", f"SET llm_sql.llm_url = {literal(target)}",
                f"SET llm_sql.chat_model = {literal(ARGS.model)}", "SET llm_sql.ask_timeout = '30s'"]
    for s in ARGS.set:
        name, value = s.split("=", 1)
        settings.append(f"SET {name} = {literal(value)}")
    started = time.time()
    try:
        answer = json.loads(psql(schema, f"SELECT llm_sql.ask_full({literal(item['q'])})", *settings))
    except RuntimeError as e:
        answer = {"status": "ERROR", "error": str(e).splitlines()[0], "attempts": []}
    ok = answer.get("status") == "ok"
    return {"rows": answer.get("rows") if ok else None, "sql": answer.get("sql"),
            "status": answer.get("status"), "error": answer.get("error"),
            "attempts": answer.get("attempts", []), "seconds": time.time() - started,
            "calls": answer.get("model_calls", 0),
            "prompt_tokens": (answer.get("tokens") or {}).get("prompt", 0)}


def main():
    arms = ARGS.arms.split(",")
    if ARGS.scripted:
        arms = ["ask"]
    records = []
    for schema in SCHEMAS:
        questions = json.load(open(os.path.join(HERE, "questions", f"{schema}.json")))
        if ARGS.limit:
            questions = questions[:ARGS.limit]
        golds = [rows_of(schema, item["sql"]) for item in questions]
        ddl = schema_ddl(schema)
        # One arm after the other over a schema: each keeps its prompt prefix in the server's cache.
        for arm in arms:
            for i, (item, gold) in enumerate(zip(questions, golds)):
                result = baseline(schema, item, ddl) if arm == "baseline" else ask(schema, item, i)
                result.update(schema=schema, arm=arm, q=item["q"],
                              right=result["rows"] is not None and right(gold, result["rows"], item.get("ordered", False)))
                del result["rows"]
                records.append(result)
                print(f"{arm:8} {schema:7} {'✓' if result['right'] else '✗'} {result['seconds']:6.1f}s "
                      f"{item['q'][:70]}", flush=True)
    report(records, arms)
    if ARGS.scripted and not all(r["right"] for r in records):
        sys.exit(1)


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


def summary(rs):
    n = len(rs)
    good = sum(r["right"] for r in rs)
    return (f"{good}/{n} ({100.0 * good / n:.1f} %) | {statistics.median(r['seconds'] for r in rs):.1f} | "
            f"{p90([r['seconds'] for r in rs]):.1f} | {statistics.mean(r['calls'] for r in rs):.2f} | "
            f"{statistics.median(r['prompt_tokens'] for r in rs):.0f}")


def report(records, arms):
    json.dump(records, open(ARGS.out.replace(".md", ".json"), "w"), indent=1, ensure_ascii=False)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [f"# Text-to-SQL execution accuracy: {'plumbing (test server)' if ARGS.scripted else ARGS.model}", "",
             f"Questions of `benches/nl2sql/questions/*.json` over the schemas of `benches/nl2sql/schemas/`, "
             f"run by `benches/nl2sql/run` on {time.strftime('%Y-%m-%d', time.gmtime())}.",
             f"Server: `{ARGS.url}` ({ARGS.api} API), model `{ARGS.model}`; machine: {os.cpu_count()} cores "
             f"({cpu}), {platform.system()}.",
             ("Settings: " + ", ".join(f"`{s}`" for s in ARGS.set) if ARGS.set else "Settings: defaults (cache off)."),
             "", "A question is right when the answer has the gold query's rows (extra columns tolerated, "
             "numbers rounded to 2 decimals, row order ignored unless asked for). `baseline` is one plain prompt "
             "(the CREATE TABLE and COMMENT statements and the question, temperature 0); `ask` is "
             "`llm_sql.ask_full`. Seconds are wall-clock per question; prompt tokens are the median per "
             "question over all model calls (the server reuses a cached prefix, so they are not all computed).",
             "", "| schema | arm | right | median s | p90 s | model calls | prompt tokens |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for schema in SCHEMAS + ["all"]:
        for arm in arms:
            rs = [r for r in records if r["arm"] == arm and (schema == "all" or r["schema"] == schema)]
            if rs:
                lines.append(f"| {'**all**' if schema == 'all' else schema} | {arm} | {summary(rs)} |")
    lines += ["", "## Per question", "", "| schema | question | " + " | ".join(arms) + " |",
              "|---|---|" + "---|" * len(arms)]
    by_question = {}
    for r in records:
        by_question.setdefault((r["schema"], r["q"]), {})[r["arm"]] = r
    for (schema, q), per_arm in by_question.items():
        cells = []
        for arm in arms:
            r = per_arm.get(arm)
            cells.append("" if r is None else f"{'✓' if r['right'] else '✗'} {r['seconds']:.0f}s")
        lines.append(f"| {schema} | {q.replace('|', '/')} | " + " | ".join(cells) + " |")
    open(ARGS.out, "w").write("\n".join(lines) + "\n")
    print(f"-> {ARGS.out}")
    for arm in arms:
        rs = [r for r in records if r["arm"] == arm]
        print(f"{arm}: {summary(rs)}")


main()
