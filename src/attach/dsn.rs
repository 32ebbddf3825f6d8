//! Attachment names and connection strings: which kind of database a DSN names, how to hand it
//! to DuckDB without its password, and how to show it without its password.
//!
//! Passwords never reach DuckDB's connection strings: DuckDB shows those in `duckdb_databases()`
//! and in its connection errors. The password travels in a DuckDB secret instead, which DuckDB
//! always prints redacted.

use std::fmt::Write;

use crate::error::{Error, Result};

/// What `attachments()` and error messages print instead of a password.
pub const REDACTED: &str = "********";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Duckdb,
    Postgres,
    Mysql,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Duckdb => "duckdb",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        }
    }

    pub fn parse(name: &str) -> Result<Kind> {
        match name.trim().to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Kind::Sqlite),
            "duckdb" => Ok(Kind::Duckdb),
            "postgres" | "postgresql" => Ok(Kind::Postgres),
            "mysql" | "mariadb" => Ok(Kind::Mysql),
            _ => Err(
                Error::invalid_parameter(format!("unknown attachment type \"{name}\""))
                    .with_hint("Use one of: sqlite, duckdb, postgres, mysql."),
            ),
        }
    }

    /// A local file (as opposed to a server reached over the network).
    pub fn is_file(self) -> bool {
        matches!(self, Kind::Sqlite | Kind::Duckdb)
    }

    /// The DuckDB extension that reads this kind (DuckDB files need none).
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Kind::Sqlite => Some("sqlite"),
            Kind::Duckdb => None,
            Kind::Postgres => Some("postgres"),
            Kind::Mysql => Some("mysql"),
        }
    }

    /// Infers the kind from the DSN's form, as documented for `llm_sql.attach`.
    pub fn infer(dsn: &str) -> Result<Kind> {
        let lower = dsn.trim().to_ascii_lowercase();
        if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
            return Ok(Kind::Postgres);
        }
        if lower.starts_with("mysql://") {
            return Ok(Kind::Mysql);
        }
        if let Some(pairs) = key_values(dsn) {
            let has = |key: &str| pairs.iter().any(|(k, _)| k == key);
            if has("database") {
                return Ok(Kind::Mysql);
            }
            if has("dbname") || has("host") {
                return Ok(Kind::Postgres);
            }
        }
        for (suffix, kind) in [
            (".sqlite", Kind::Sqlite),
            (".sqlite3", Kind::Sqlite),
            (".db", Kind::Sqlite),
            (".duckdb", Kind::Duckdb),
            (".ddb", Kind::Duckdb),
        ] {
            if lower.ends_with(suffix) {
                return Ok(kind);
            }
        }
        Err(Error::invalid_parameter(
            "cannot tell the attachment type from the DSN",
        )
        .with_hint(
            "Pass type => 'sqlite' | 'duckdb' | 'postgres' | 'mysql' (a URI postgresql://… or mysql://…, \
             libpq key=value, or a file ending in .sqlite, .sqlite3, .db, .duckdb or .ddb is recognised).",
        ))
    }
}

/// A DSN split for DuckDB: the connection string without its password, and the password.
#[derive(Debug, PartialEq, Eq)]
pub struct Connect {
    pub conninfo: String,
    pub password: Option<String>,
}

/// Splits the password off a server DSN. Postgres URIs become libpq key=value strings, because
/// DuckDB only merges a secret into the key=value form.
pub fn split_password(kind: Kind, dsn: &str) -> Result<Connect> {
    let dsn = dsn.trim();
    if let Some(uri) = Uri::parse(dsn) {
        if kind == Kind::Postgres {
            let mut pairs = uri.libpq_pairs();
            let password = take(&mut pairs, &["password"]).or(uri.password);
            return Ok(Connect {
                conninfo: join_pairs(&pairs, true),
                password,
            });
        }
        return Ok(Connect {
            conninfo: uri.without_password(dsn),
            password: uri.password,
        });
    }
    match key_values(dsn) {
        Some(mut pairs) => {
            let password = take(&mut pairs, &["password", "passwd"]);
            // DuckDB's MySQL extension reads plain key=value pairs, without quoting.
            let quoted = kind != Kind::Mysql;
            if !quoted && pairs.iter().any(|(_, v)| v.is_empty() || v.contains(char::is_whitespace) || v.contains('\'')) {
                return Err(Error::invalid_parameter(
                    "MySQL DSN values (other than the password) cannot be empty or contain spaces or quotes",
                )
                .with_detail(format!("DSN: {}", redact(dsn)))
                .with_hint("Use the URI form mysql://user:password@host:port/database."));
            }
            Ok(Connect {
                conninfo: join_pairs(&pairs, quoted),
                password,
            })
        }
        None => Err(Error::invalid_parameter(format!(
            "cannot parse the {} DSN",
            kind.name()
        ))
        .with_detail(format!("DSN: {}", redact(dsn)))
        .with_hint(
            "Use a URI (postgresql://user:password@host:port/db, mysql://user:password@host:port/db) \
             or key=value pairs (host=… port=… user=… password=… dbname=…/database=…).",
        )),
    }
}

/// The DSN with any password replaced by `********`.
pub fn redact(dsn: &str) -> String {
    if let Some(uri) = Uri::parse(dsn.trim()) {
        let mut shown = dsn.trim().to_string();
        if let Some(range) = uri.password_range {
            shown.replace_range(range, REDACTED);
        }
        return redact_query_password(&shown);
    }
    match key_values(dsn) {
        Some(pairs) => join_pairs(
            &pairs
                .into_iter()
                .map(|(k, v)| {
                    if k == "password" || k == "passwd" {
                        (k, REDACTED.to_string())
                    } else {
                        (k, v)
                    }
                })
                .collect::<Vec<_>>(),
            true,
        ),
        None => dsn.to_string(),
    }
}

/// Replaces every occurrence of `password` in `text` (an error message, say).
/// (Passwords shorter than 4 characters are not searched for: they would match ordinary words.
/// They never reach DuckDB's connection strings in the first place.)
pub fn scrub(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if p.chars().count() >= 4 => text.replace(p, REDACTED),
        _ => text.to_string(),
    }
}

fn redact_query_password(uri: &str) -> String {
    let Some((base, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={REDACTED}"),
            _ => param.to_string(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn take(pairs: &mut Vec<(String, String)>, keys: &[&str]) -> Option<String> {
    let mut found = None;
    pairs.retain(|(k, v)| {
        if keys.contains(&k.as_str()) {
            found = Some(v.clone());
            false
        } else {
            true
        }
    });
    found
}

/// `scheme://[user[:password]@][hosts][/dbname][?k=v&…]`, percent-decoded.
struct Uri {
    user: Option<String>,
    password: Option<String>,
    /// Byte range of the (still encoded) password in the original text.
    password_range: Option<std::ops::Range<usize>>,
    hosts: String,
    dbname: Option<String>,
    params: Vec<(String, String)>,
}

impl Uri {
    fn parse(dsn: &str) -> Option<Uri> {
        let scheme_end = dsn.find("://")?;
        let scheme = &dsn[..scheme_end];
        if !scheme.chars().all(|c| c.is_ascii_alphanumeric()) || scheme.is_empty() {
            return None;
        }
        let rest_start = scheme_end + 3;
        let rest = &dsn[rest_start..];
        // The authority ends at the path, query or fragment; a password must encode '/', '?', '#'.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (mut user, mut password, mut password_range) = (None, None, None);
        if let Some(info) = userinfo {
            match info.split_once(':') {
                Some((u, p)) => {
                    user = Some(decode(u));
                    password = Some(decode(p));
                    let start = rest_start + u.len() + 1;
                    password_range = Some(start..start + p.len());
                }
                None => user = Some(decode(info)),
            }
        }
        let tail = &rest[authority_end..];
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, query),
            None => (tail, ""),
        };
        let path = path.split('#').next().unwrap_or("");
        let dbname = path.strip_prefix('/').filter(|p| !p.is_empty()).map(decode);
        let params = query
            .split('#')
            .next()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Some(Uri {
            user,
            password,
            password_range,
            hosts: hosts.to_string(),
            dbname,
            params,
        })
    }

    fn without_password(&self, original: &str) -> String {
        let mut out = original.to_string();
        if let Some(range) = &self.password_range {
            // Drop ":password" from "user:password@".
            out.replace_range(range.start - 1..range.end, "");
        }
        out
    }

    /// libpq key=value pairs equivalent to a postgres URI (hosts "h1:p1,h2:p2" included).
    fn libpq_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let (mut hosts, mut ports) = (Vec::new(), Vec::new());
        for spec in self.hosts.split(',').filter(|h| !h.is_empty()) {
            let (host, port) = match spec.strip_prefix('[') {
                // IPv6: [::1]:5432
                Some(v6) => match v6.split_once(']') {
                    Some((h, p)) => (h.to_string(), p.strip_prefix(':').unwrap_or("").to_string()),
                    None => (spec.to_string(), String::new()),
                },
                None => match spec.rsplit_once(':') {
                    Some((h, p)) => (decode(h), p.to_string()),
                    None => (decode(spec), String::new()),
                },
            };
            hosts.push(host);
            ports.push(port);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            pairs.push(("host".to_string(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".to_string(), ports.join(",")));
        }
        if let Some(user) = &self.user {
            pairs.push(("user".to_string(), user.clone()));
        }
        if let Some(db) = &self.dbname {
            pairs.push(("dbname".to_string(), db.clone()));
        }
        pairs.extend(self.params.iter().cloned());
        pairs
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses libpq-style `key=value key='quoted \' value'` pairs; `None` when the text is not of
/// that form (a file path, say).
pub fn key_values(dsn: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = dsn.trim().chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
            key.push(c.to_ascii_lowercase());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next()?);
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// `conninfo` (libpq key=value pairs) with `key` set to `value`, in place of any value it had.
pub fn with_pair(conninfo: &str, key: &str, value: &str) -> String {
    let mut pairs = key_values(conninfo).unwrap_or_default();
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_string(), value.to_string()));
    join_pairs(&pairs, true)
}

/// Writes pairs back as `key='value' …` (libpq quoting) or plain `key=value …`.
fn join_pairs(pairs: &[(String, String)], quoted: bool) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push(' ');
        }
        if quoted {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            let _ = write!(out, "{key}='{escaped}'");
        } else {
            let _ = write!(out, "{key}={value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_kinds() {
        for (dsn, kind) in [
            ("postgresql://u:p@h/db", Kind::Postgres),
            ("postgres://h", Kind::Postgres),
            ("host=127.0.0.1 dbname=x", Kind::Postgres),
            ("dbname=x", Kind::Postgres),
            ("mysql://u@h:3306/shop", Kind::Mysql),
            ("host=h database=shop", Kind::Mysql),
            ("/data/crm.sqlite", Kind::Sqlite),
            ("/data/crm.SQLITE3", Kind::Sqlite),
            ("x.db", Kind::Sqlite),
            ("/data/w.duckdb", Kind::Duckdb),
            ("w.ddb", Kind::Duckdb),
        ] {
            assert_eq!(Kind::infer(dsn).unwrap(), kind, "{dsn}");
        }
        assert!(Kind::infer("/data/file.csv").is_err());
        assert!(Kind::infer("").is_err());
    }

    #[test]
    fn splits_passwords_off() {
        let c = split_password(
            Kind::Postgres,
            "postgresql://alice:s%40cret%3B@db.example:6543/sales?sslmode=disable",
        )
        .unwrap();
        assert_eq!(c.password.as_deref(), Some("s@cret;"));
        assert_eq!(
            c.conninfo,
            "host='db.example' port='6543' user='alice' dbname='sales' sslmode='disable'"
        );
        let c = split_password(Kind::Postgres, "host=h password='it''s' user=bob");
        // libpq quoting escapes with a backslash, not by doubling.
        assert!(c.is_err() || !c.unwrap().conninfo.contains("it"));
        let c = split_password(Kind::Postgres, r"host=h password='it\'s x' user=bob").unwrap();
        assert_eq!(c.password.as_deref(), Some("it's x"));
        assert_eq!(c.conninfo, "host='h' user='bob'");
        let c = split_password(Kind::Mysql, "mysql://u:p%40ss@127.0.0.1:3306/shop").unwrap();
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.conninfo, "mysql://u@127.0.0.1:3306/shop");
        let c = split_password(Kind::Mysql, "host=h database=shop passwd=x").unwrap();
        assert_eq!(c.password.as_deref(), Some("x"));
        assert_eq!(c.conninfo, "host=h database=shop");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgresql://alice:secret@h/db?password=other"),
            "postgresql://alice:********@h/db?password=********"
        );
        assert_eq!(
            redact("host=h password='a b' user=u"),
            "host='h' password='********' user='u'"
        );
        assert_eq!(redact("/data/x.sqlite"), "/data/x.sqlite");
        assert_eq!(
            scrub("failed for secret!", Some("secret")),
            "failed for ********!"
        );
    }
}
