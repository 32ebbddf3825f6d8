//! How the engine lives inside a backend: memory while streaming, threads and their signals.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// A field of this backend's /proc status, in kB (VmHWM = peak resident memory).
    fn status_kb(field: &str) -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    #[pg_test]
    fn ten_million_rows_stream_without_being_held_in_memory() {
        // Warm up: DuckDB is open and its buffers are allocated before the baseline.
        Spi::run("SET LOCAL work_mem = '1MB'").unwrap();
        Spi::get_one::<i64>("SELECT count(*) FROM llm_sql.query('SELECT i, ''0123456789abcdef'' AS s FROM range(100000) t(i)') AS t(i bigint, s text)").unwrap();
        let before = status_kb("VmHWM");
        // Held whole, 10M rows of (bigint, 16-char text) would take > 500 MB of backend memory.
        let (count, sum) = Spi::get_two::<i64, i64>(
            "SELECT count(*), sum(length(s)) FROM llm_sql.query(
               'SELECT i, ''0123456789abcdef'' AS s FROM range(10000000) t(i)') AS t(i bigint, s text)",
        )
        .unwrap();
        assert_eq!((count, sum), (Some(10_000_000), Some(160_000_000)));
        let grown_mb = (status_kb("VmHWM") - before) / 1024;
        assert!(
            grown_mb < 150,
            "peak memory grew by {grown_mb} MB while streaming 10M rows"
        );
    }

    #[pg_test]
    fn threads_besides_the_backend_block_every_signal() {
        // Open DuckDB (2 worker threads by default) and run a query (starts the watcher).
        Spi::get_one::<i64>("SELECT s FROM llm_sql.query('SELECT sum(i)::BIGINT AS s FROM range(1000000) t(i)') AS t(s bigint)")
            .unwrap();
        let pid = std::process::id().to_string();
        let mut others = 0;
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let tid = task.unwrap().file_name().into_string().unwrap();
            let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
            let blocked = status
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .unwrap()
                .trim()
                .to_string();
            let blocked = u64::from_str_radix(&blocked, 16).unwrap();
            // SIGINT (2), SIGTERM (15), SIGALRM (14), SIGUSR1 (10): the signals Postgres handles.
            let handled = [2u32, 10, 14, 15]
                .iter()
                .all(|s| blocked & (1u64 << (s - 1)) != 0);
            if tid == pid {
                assert!(!handled, "the backend thread must keep receiving signals");
            } else {
                others += 1;
                assert!(
                    handled,
                    "thread {tid} does not block Postgres's signals (SigBlk {blocked:x})"
                );
            }
        }
        assert!(
            others >= 2,
            "expected DuckDB worker and watcher threads, found {others}"
        );
    }

    #[pg_test]
    fn first_use_opens_duckdb_lazily() {
        // The backend has not used DuckDB yet: only the backend thread exists.
        let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
        assert_eq!(threads, 1, "DuckDB must not start before it is used");
        Spi::get_one::<i32>("SELECT a FROM llm_sql.query('SELECT 1 AS a') AS t(a int)").unwrap();
        assert!(std::fs::read_dir("/proc/self/task").unwrap().count() > 1);
    }
}
