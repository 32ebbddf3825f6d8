//! Helpers shared by the benchmark programs.

use std::time::{Duration, Instant};

pub fn connect(port: u16) -> postgres::Client {
    postgres::Config::new()
        .host("/tmp")
        .port(port)
        .user("postgres")
        .dbname("llm_sql_bench")
        .connect(postgres::NoTls)
        .expect("connect to the benchmark cluster")
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}
