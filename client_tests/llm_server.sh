# The Ollama-compatible LLM test server (client_tests/src/bin/llm_test_server.rs). Sourced by
# scripts/test and client_tests/run. Exports LLM_SQL_TEST_LLM_URL; both test suites read it.

LLM_SERVER_PORT=${LLM_SQL_TEST_LLM_PORT:-25440}
LLM_SERVER_PID=""

llm_server_up() { (exec 3<>"/dev/tcp/127.0.0.1/$LLM_SERVER_PORT") 2>/dev/null; }

# Builds (once) and starts the server unless one already answers on the port.
start_llm_server() {
  export LLM_SQL_TEST_LLM_URL="http://127.0.0.1:$LLM_SERVER_PORT"
  llm_server_up && return 0
  cargo build --quiet --manifest-path client_tests/Cargo.toml --bin llm_test_server \
    || die "could not build the LLM test server"
  client_tests/target/debug/llm_test_server --port "$LLM_SERVER_PORT" >"$TEST_ROOT/llm_server.log" 2>&1 &
  LLM_SERVER_PID=$!
  for _ in $(seq 100); do llm_server_up && return 0; sleep 0.1; done
  die "the LLM test server did not start (see $TEST_ROOT/llm_server.log)"
}

stop_llm_server() {
  [ -n "$LLM_SERVER_PID" ] && kill "$LLM_SERVER_PID" 2>/dev/null || true
  LLM_SERVER_PID=""
}
