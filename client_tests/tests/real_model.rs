//! ask and the chat functions against a real language model: llama.cpp's llama-server with the
//! pinned Qwen2.5-Coder-1.5B weights (scripts/llm-server, started by client_tests/run, which sets
//! LLM_SQL_REAL_LLM_URL and LLM_SQL_REAL_LLM_MODEL), over its OpenAI-compatible API, at
//! temperature 0. The questions are ones this model answers right through ask: a change that
//! breaks the prompt, the extraction, the value lookup or the OpenAI path turns them wrong.

use std::sync::Mutex;

use llm_sql_client_tests::*;

/// One test at a time: the server's answers then depend only on what this file asked before
/// (requests in parallel share its slots and prompt cache in whatever order they arrive).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn real_server() -> (String, String) {
    let url = std::env::var("LLM_SQL_REAL_LLM_URL")
        .expect("LLM_SQL_REAL_LLM_URL is not set: run these tests through client_tests/run");
    let model = std::env::var("LLM_SQL_REAL_LLM_MODEL").expect("LLM_SQL_REAL_LLM_MODEL is not set");
    (url, model)
}

/// A session pointed at the real model.
fn session() -> Client {
    let (url, model) = real_server();
    let mut client = superuser();
    client
        .batch_execute(&format!(
            "SET llm_sql.llm_url = '{url}'; SET llm_sql.llm_api = 'openai';
             SET llm_sql.chat_model = '{model}'; SET llm_sql.request_timeout = '300s';"
        ))
        .unwrap();
    client
}

/// A session pointed at the real model, with a small zoo in schema `zoo`.
fn zoo() -> Client {
    let mut client = session();
    client
        .batch_execute(
            "SET llm_sql.ask_cache_ttl = 0; SET llm_sql.ask_schemas = 'zoo';
             SET llm_sql.ask_time_budget = '600s';
             DROP SCHEMA IF EXISTS zoo CASCADE;
             CREATE SCHEMA zoo;
             CREATE TABLE zoo.keepers (id int PRIMARY KEY, name text NOT NULL, hired_on date NOT NULL);
             CREATE TABLE zoo.animals (
                 id int PRIMARY KEY,
                 name text NOT NULL,
                 species text NOT NULL,
                 born_on date,
                 weight_kg numeric(8, 2),
                 keeper_id int REFERENCES zoo.keepers);
             COMMENT ON COLUMN zoo.animals.species IS 'Common name of the species';
             INSERT INTO zoo.keepers VALUES (1, 'Amara Okafor', '2015-03-01'),
                 (2, 'Björn Lindqvist', '2019-07-15'), (3, 'Chen Wei', '2021-01-10');
             INSERT INTO zoo.animals VALUES
                 (1, 'Tembo', 'Elephant', '2005-04-12', 4200, 1),
                 (2, 'Kali', 'Elephant', '2012-09-30', 3100, 1),
                 (3, 'Raja', 'Tiger', '2016-02-02', 190, 2),
                 (4, 'Sheru', 'Tiger', '2018-06-21', 175.5, 2),
                 (5, 'Pingu', 'Penguin', '2020-11-11', 4.2, 3),
                 (6, 'Flipper', 'Penguin', '2021-03-03', 3.9, 3),
                 (7, 'Waddles', 'Penguin', '2022-05-05', 4.5, 3),
                 (8, 'Gerry', 'Giraffe', '2014-08-08', 800, 1),
                 (9, 'Zara', 'Zebra', '2017-10-01', 350, 1);
             ANALYZE zoo.keepers, zoo.animals;",
        )
        .unwrap();
    client
}

fn ask_full(client: &mut Client, question: &str) -> serde_json::Value {
    let row = client
        .query_one("SELECT llm_sql.ask_full($1)::text", &[&question])
        .unwrap();
    serde_json::from_str(&row.get::<_, String>(0)).unwrap()
}

/// The answer's values, row by row, as text (column names vary from model to model).
fn values(answer: &serde_json::Value) -> Vec<Vec<String>> {
    answer["rows"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|row| {
            let mut values: Vec<String> = row
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.to_string().trim_matches('"').to_string())
                .collect();
            values.sort();
            values
        })
        .collect()
}

#[test]
fn a_real_model_answers_questions_through_ask() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut client = zoo();
    let answer = ask_full(&mut client, "How many penguins are there?");
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(values(&answer), [["3"]], "{answer}");
    assert_eq!(answer["model_calls"], 1, "{answer}");
    assert!(
        answer["tokens"]["prompt"].as_u64().unwrap() > 100,
        "{answer}"
    );

    let answer = ask_full(
        &mut client,
        "What is the name of the keeper who looks after the most animals?",
    );
    assert_eq!(answer["status"], "ok", "{answer}");
    let first = values(&answer);
    assert_eq!(first.len(), 1, "{answer}");
    assert!(first[0].contains(&"Amara Okafor".to_string()), "{answer}");

    // A value only the data knows: "Bjorn" is stored as 'Björn Lindqvist'.
    let answer = ask_full(
        &mut client,
        "What is the total weight of the animals Bjorn looks after?",
    );
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(values(&answer), [["365.5"]], "{answer}");
}

#[test]
fn generate_and_chat_reach_a_real_model_over_the_openai_api() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut client = session();
    let text = client
        .query_one(
            "SELECT llm_sql.generate('Reply with the single word: yes', options => '{\"temperature\": 0, \"max_tokens\": 5}')",
            &[],
        )
        .unwrap()
        .get::<_, String>(0);
    assert!(text.to_lowercase().contains("yes"), "{text}");
    let reply = client
        .query_one(
            "SELECT llm_sql.chat('[{\"role\": \"user\", \"content\": \"What is 2 + 3? Answer with the number only.\"}]',
                                 options => '{\"temperature\": 0, \"max_tokens\": 5}')::text",
            &[],
        )
        .unwrap()
        .get::<_, String>(0);
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["role"], "assistant", "{reply}");
    assert!(reply["content"].as_str().unwrap().contains('5'), "{reply}");
}
