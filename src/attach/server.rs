//! Reaching PostgreSQL and MySQL servers: where a connection string points, the rules a
//! non-superuser's connection must follow, and waiting for a server to answer in steps that
//! honour cancel and statement_timeout.
//!
//! **Password rule.** The server process connects as the `postgres` OS user, from the database
//! host, with whatever credentials that user has lying around (peer and trust authentication,
//! `~/.pgpass`, `PGPASSWORD`, `MYSQL_PWD`, MariaDB's unix_socket accounts). Like postgres_fdw
//! and dblink, a non-superuser's attachment may only log in where the server asked for and
//! checked the password that the attachment itself gives:
//! * the DSN must hold a non-empty password (so no password file or environment variable is
//!   consulted);
//! * PostgreSQL: libpq's `require_auth=scram-sha-256,md5,password` is added to every connection
//!   (after whatever the DSN says, so it wins), and libpq refuses a server that did not ask for
//!   the password: trust, peer, ident, cert-only, GSSAPI;
//! * MySQL: only TCP connections to a named host (MariaDB's client takes `localhost` and
//!   `socket=` to the Unix socket, where unix_socket accounts log in as the OS user), and
//!   `llm_sql.attach` checks that the server refuses a wrong password.
//!
//! **Waiting.** DuckDB's clients connect without checking for interrupts, so a server that
//! accepts connections and never answers would hold a backend (and every new session of a
//! grantee) for the whole connect timeout. Before DuckDB connects, llm_sql opens a connection
//! itself and waits for the server's first byte (MySQL's greeting; PostgreSQL's reply to an
//! SSLRequest), checking for interrupts every 50 ms.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pgrx::pg_sys::{self, Oid};
use pgrx::PgSqlErrorCode;

use super::dsn::{self, Kind};
use crate::error::{Error, Result};

/// libpq's list of methods in which the server asks for the password and checks it.
const PASSWORD_METHODS: &str = "scram-sha-256,md5,password";

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
    /// The client library's default Unix socket (MySQL's `localhost`), whose path it decides.
    DefaultSocket,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::DefaultSocket => write!(f, "the default Unix socket"),
        }
    }
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    // libpq and MySQL both take the last value of a repeated key.
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The endpoints libpq tries, in order, for a key=value connection string (what
/// `dsn::split_password` makes of every PostgreSQL DSN).
fn postgres_endpoints(conninfo: &str) -> Vec<Endpoint> {
    let pairs = dsn::key_values(conninfo).unwrap_or_default();
    let hosts: Vec<&str> = value(&pairs, "hostaddr")
        .or(value(&pairs, "host"))
        .unwrap_or("")
        .split(',')
        .collect();
    let ports: Vec<&str> = value(&pairs, "port").unwrap_or("").split(',').collect();
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports
                .get(if ports.len() == 1 { 0 } else { i })
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(5432);
            let host = host.trim();
            // libpq's default (no host) is the Unix socket in /tmp, as in DuckDB's libpq.
            if host.is_empty() || host.starts_with('/') {
                let dir = if host.is_empty() { "/tmp" } else { host };
                Endpoint::Unix(PathBuf::from(format!("{dir}/.s.PGSQL.{port}")))
            } else {
                Endpoint::Tcp {
                    host: host.to_string(),
                    port,
                }
            }
        })
        .collect()
}

/// Where MariaDB's client connects for a DuckDB MySQL connection string (a `mysql://` URI or
/// key=value pairs): the Unix socket for `socket=`, an empty host or `localhost`.
fn mysql_endpoint(conninfo: &str) -> Endpoint {
    let (host, port, socket) = match conninfo.strip_prefix("mysql://") {
        Some(rest) => {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let hostport = authority.rsplit('@').next().unwrap_or("");
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().unwrap_or(3306)),
                None => (hostport.to_string(), 3306),
            };
            let socket = rest.split_once('?').and_then(|(_, query)| {
                query.split('&').find_map(|param| {
                    param
                        .split_once('=')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("socket"))
                        .map(|(_, v)| v.to_string())
                })
            });
            (host, port, socket)
        }
        None => {
            let pairs = dsn::key_values(conninfo).unwrap_or_default();
            (
                value(&pairs, "host").unwrap_or("").to_string(),
                value(&pairs, "port")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(3306),
                value(&pairs, "socket")
                    .or(value(&pairs, "unix_socket"))
                    .map(str::to_string),
            )
        }
    };
    match socket {
        Some(path) => Endpoint::Unix(PathBuf::from(path)),
        None if host.is_empty() || host.eq_ignore_ascii_case("localhost") => {
            Endpoint::DefaultSocket
        }
        None => Endpoint::Tcp { host, port },
    }
}

fn owner_is_superuser(owner: Oid) -> bool {
    // SAFETY: catalog lookup on the backend thread.
    unsafe { pg_sys::superuser_arg(owner) }
}

fn must_check_password(what: &str, why: &str) -> Error {
    Error::permission_denied(format!("{what}: {why}"))
        .with_detail(
            "A non-superuser's attachment may only log in to a server that asks for and checks the \
             password it gives, as with postgres_fdw and dblink: the database server itself must \
             not lend its own identity (peer, trust, password files, unix_socket accounts).",
        )
        .with_hint("Give the server's user and password in the DSN, or ask a superuser to attach it and grant it to you.")
}

/// The connection string DuckDB gets for a server attachment owned by `owner`: unchanged for
/// superusers; for other roles, checked against the password rule (see the module comment)
/// and, for PostgreSQL, with `require_auth` added.
pub fn connection_for(
    kind: Kind,
    alias: &str,
    conninfo: &str,
    password: Option<&str>,
    owner: Oid,
) -> Result<String> {
    if owner_is_superuser(owner) {
        return Ok(conninfo.to_string());
    }
    let what = format!("cannot attach \"{alias}\" for a role that is not a superuser");
    if password.is_none_or(|p| p.is_empty()) {
        return Err(must_check_password(&what, "the DSN has no password"));
    }
    match kind {
        Kind::Postgres => Ok(dsn::with_pair(conninfo, "require_auth", PASSWORD_METHODS)),
        _ => match mysql_endpoint(conninfo) {
            Endpoint::Unix(_) | Endpoint::DefaultSocket => Err(must_check_password(
                &what,
                "MySQL connections through the Unix socket (localhost, socket=) are reserved to superusers",
            )
            .with_hint("Connect over TCP: host=127.0.0.1 (or the server's name) with user and password.")),
            Endpoint::Tcp { .. } => Ok(conninfo.to_string()),
        },
    }
}

/// The error for a server that proved it does not check passwords (it accepted a wrong one).
pub fn accepted_wrong_password(alias: &str) -> Error {
    must_check_password(
        &format!("cannot attach \"{alias}\" for a role that is not a superuser"),
        "the server accepted a wrong password for this account",
    )
}

/// Waits until the server that `conninfo` names answers, at most `timeout`, checking for
/// interrupts all along. PostgreSQL: the first endpoint that answers will do (libpq tries them
/// in order).
pub fn wait_for_answer(kind: Kind, conninfo: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    match kind {
        Kind::Postgres => {
            // SSLRequest: length 8, code 80877103. A server answers 'S' or 'N' at once.
            let hello = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
            let mut last = None;
            for endpoint in postgres_endpoints(conninfo) {
                match answers(&endpoint, &hello, deadline, "PostgreSQL", timeout) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = Some(e),
                }
            }
            last.map_or(Ok(()), Err)
        }
        _ => answers(&mysql_endpoint(conninfo), &[], deadline, "MySQL", timeout),
    }
}

fn unreachable(what: &str, endpoint: &Endpoint, why: impl std::fmt::Display) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
        format!("cannot reach {what} server at {endpoint}: {why}"),
    )
    .with_hint("Check host and port; llm_sql.attach_timeout bounds the wait.")
}

/// Connects to `endpoint`, sends `hello` and waits for one byte of answer before `deadline`.
fn answers(
    endpoint: &Endpoint,
    hello: &[u8],
    deadline: Instant,
    what: &str,
    timeout: Duration,
) -> Result<()> {
    let out_of_time = || {
        unreachable(
            what,
            endpoint,
            format!(
                "no answer within llm_sql.attach_timeout ({} ms)",
                timeout.as_millis()
            ),
        )
    };
    let mut stream: Box<dyn ReadWrite> = match endpoint {
        Endpoint::Tcp { host, port } => {
            let address = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| unreachable(what, endpoint, e))?
                .next()
                .ok_or_else(|| unreachable(what, endpoint, "the host name has no address"))?;
            match connect_tcp(address, deadline) {
                Ok(Some(stream)) => Box::new(stream),
                Ok(None) => return Err(out_of_time()),
                Err(e) => return Err(unreachable(what, endpoint, e)),
            }
        }
        // A local socket connects or fails at once.
        Endpoint::Unix(path) => {
            Box::new(UnixStream::connect(path).map_err(|e| unreachable(what, endpoint, e))?)
        }
        // Only the client library knows where it is (superusers only).
        Endpoint::DefaultSocket => return Ok(()),
    };
    if !hello.is_empty() {
        stream
            .write_all(hello)
            .map_err(|e| unreachable(what, endpoint, e))?;
    }
    let mut byte = [0u8; 1];
    loop {
        pgrx::check_for_interrupts!();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(out_of_time());
        }
        stream.set_timeout(left.min(Duration::from_millis(50)));
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(unreachable(
                    what,
                    endpoint,
                    "the server closed the connection",
                ))
            }
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(unreachable(what, endpoint, e)),
        }
    }
}

/// A stream whose reads can be bounded.
trait ReadWrite: Read + Write {
    fn set_timeout(&self, timeout: Duration);
}

impl ReadWrite for TcpStream {
    fn set_timeout(&self, timeout: Duration) {
        let _ = self.set_read_timeout(Some(timeout));
    }
}

impl ReadWrite for UnixStream {
    fn set_timeout(&self, timeout: Duration) {
        let _ = self.set_read_timeout(Some(timeout));
    }
}

/// A TCP connection established before `deadline` (None when it was not), checking for
/// interrupts while the handshake is under way: a host that drops packets is waited for in
/// 50 ms steps, not in one blocking connect.
fn connect_tcp(address: SocketAddr, deadline: Instant) -> std::io::Result<Option<TcpStream>> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_nonblocking(true)?;
    match socket.connect(&address.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => loop {
            pgrx::check_for_interrupts!();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut poll = libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            let step = left.min(Duration::from_millis(50)).as_millis() as libc::c_int;
            // SAFETY: one valid pollfd for an open socket.
            let ready = unsafe { libc::poll(&mut poll, 1, step.max(1)) };
            if ready > 0 {
                if let Some(error) = socket.take_error()? {
                    return Err(error);
                }
                break;
            }
            if ready < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        },
        Err(e) => return Err(e),
    }
    socket.set_nonblocking(false)?;
    Ok(Some(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_postgres_endpoints() {
        assert_eq!(
            postgres_endpoints("host='a,/run/pg' port='5433,5434' user='u'"),
            vec![
                Endpoint::Tcp {
                    host: "a".into(),
                    port: 5433
                },
                Endpoint::Unix(PathBuf::from("/run/pg/.s.PGSQL.5434")),
            ]
        );
        assert_eq!(
            postgres_endpoints("dbname='x'"),
            vec![Endpoint::Unix(PathBuf::from("/tmp/.s.PGSQL.5432"))]
        );
        // The last value of a key counts, as in libpq; hostaddr wins over host.
        assert_eq!(
            postgres_endpoints("host='h' port='1' host='/s' hostaddr='10.0.0.1'"),
            vec![Endpoint::Tcp {
                host: "10.0.0.1".into(),
                port: 1
            }]
        );
    }

    #[test]
    fn finds_mysql_endpoints() {
        let tcp = |host: &str, port| Endpoint::Tcp {
            host: host.into(),
            port,
        };
        assert_eq!(
            mysql_endpoint("mysql://u@db.example:3307/shop"),
            tcp("db.example", 3307)
        );
        assert_eq!(
            mysql_endpoint("host=127.0.0.1 database=x"),
            tcp("127.0.0.1", 3306)
        );
        for local in [
            "mysql://u@localhost/shop",
            "mysql://u@127.0.0.1/shop?socket=/tmp/m.sock",
            "host=LOCALHOST database=x",
            "database=x",
            "host=10.1.1.1 socket=/tmp/m.sock",
            "host=10.1.1.1 unix_socket=/tmp/m.sock",
        ] {
            assert!(
                matches!(
                    mysql_endpoint(local),
                    Endpoint::Unix(_) | Endpoint::DefaultSocket
                ),
                "{local}"
            );
        }
    }
}
