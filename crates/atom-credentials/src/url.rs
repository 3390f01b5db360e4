//! `DatabaseUrl`: the connection URL, which may hold a password, and the
//! redaction that keeps that password out of every log and error.

use std::fmt;

use crate::error::CredentialError;

/// Which database a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite (bundled; the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    MySql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MariaDB/MySQL",
        })
    }
}

/// A database URL. `Display` and `Debug` show it with the password
/// replaced by `***`; only the connection code reads the real text.
///
/// - `sqlite://atom.db`, `sqlite:///abs/path.db`, `sqlite::memory:`: the
///   file is created if missing (`mode=rwc` is added unless a `mode` is
///   given).
/// - `postgres://` or `postgresql://user:pass@host:port/db`.
/// - `mysql://` or `mariadb://user:pass@host:port/db`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    text: String,
    backend: Backend,
}

impl DatabaseUrl {
    /// The default, an SQLite file in the working directory.
    pub const DEFAULT: &'static str = "sqlite://atom.db";

    /// Parses a URL and selects the backend by its scheme.
    pub fn parse(text: &str) -> Result<DatabaseUrl, CredentialError> {
        let text = text.trim();
        let (scheme, _) = text.split_once(':').unwrap_or((text, ""));
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::MySql,
            _ => {
                return Err(CredentialError::Config(format!(
                    "database URL {} has no supported scheme; use sqlite://atom.db, postgres://user@host/db or mysql://user@host/db",
                    redact_url(text)
                )));
            }
        };
        if backend != Backend::Sqlite {
            check_server_url(text)?;
        }
        let text = match backend {
            // sqlx knows the MariaDB protocol as mysql.
            Backend::MySql if scheme.eq_ignore_ascii_case("mariadb") => {
                format!("mysql{}", &text[scheme.len()..])
            }
            Backend::Sqlite if !text.contains(":memory:") && !has_query_param(text, "mode") => {
                let sep = if text.contains('?') { '&' } else { '?' };
                format!("{text}{sep}mode=rwc")
            }
            _ => text.to_owned(),
        };
        Ok(DatabaseUrl { text, backend })
    }

    /// The same database, but an SQLite file that does not exist is an
    /// error instead of being created (`mode=rwc` becomes `mode=rw`).
    pub fn without_create(&self) -> DatabaseUrl {
        let text = match self.backend {
            Backend::Sqlite => self.text.replace("mode=rwc", "mode=rw"),
            _ => self.text.clone(),
        };
        DatabaseUrl {
            text,
            backend: self.backend,
        }
    }

    /// The same database opened for reading only: an SQLite file is opened
    /// read-only (`mode=ro`: not created, never written, its journal mode
    /// left as it is), so that status commands and dry runs leave it byte
    /// for byte as they found it. A server database is unchanged here; the
    /// commands that use this URL send no writing statement.
    pub fn read_only(&self) -> DatabaseUrl {
        let text = match self.backend {
            Backend::Sqlite if !self.text.contains(":memory:") => {
                let text = self
                    .text
                    .replace("mode=rwc", "mode=ro")
                    .replace("mode=rw", "mode=ro");
                if has_query_param(&text, "mode") {
                    text
                } else {
                    let sep = if text.contains('?') { '&' } else { '?' };
                    format!("{text}{sep}mode=ro")
                }
            }
            _ => self.text.clone(),
        };
        DatabaseUrl {
            text,
            backend: self.backend,
        }
    }

    /// Whether this is an SQLite URL opened read-only ([`DatabaseUrl::read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.backend == Backend::Sqlite && has_query_param_value(&self.text, "mode", "ro")
    }

    /// The database file of an SQLite URL; `None` for an in-memory
    /// database or another backend.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        use std::str::FromStr as _;
        if self.backend != Backend::Sqlite || self.text.contains(":memory:") {
            return None;
        }
        let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(&self.text).ok()?;
        Some(options.get_filename().to_path_buf())
    }

    /// The folder of an SQLite database file (`.` for a bare file name);
    /// `None` for an in-memory database or another backend.
    pub fn sqlite_folder(&self) -> Option<std::path::PathBuf> {
        let file = self.sqlite_file()?;
        Some(match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        })
    }

    /// Whether this is an SQLite database file that does not exist (yet).
    pub fn sqlite_file_missing(&self) -> bool {
        self.sqlite_file().is_some_and(|f| !f.exists())
    }

    /// The backend the URL selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its password, for the driver only.
    pub(crate) fn expose(&self) -> &str {
        &self.text
    }
}

impl Default for DatabaseUrl {
    fn default() -> DatabaseUrl {
        DatabaseUrl {
            text: format!("{}?mode=rwc", DatabaseUrl::DEFAULT),
            backend: Backend::Sqlite,
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.text))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact_url(&self.text))
    }
}

/// A server URL as the driver will read it (the `url` crate, as sqlx does):
/// refused here with the form to use, instead of as a driver error later.
fn check_server_url(text: &str) -> Result<(), CredentialError> {
    const FORM: &str = "the form is postgres://user:password@host:port/database (or mysql://...), with special characters in the password percent-encoded";
    // url's messages are fixed phrases ("invalid port number"), never the input.
    let parsed = ::url::Url::parse(text).map_err(|e| {
        CredentialError::Config(format!(
            "database URL {} is not a valid URL ({e}); {FORM}",
            redact_url(text)
        ))
    })?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(CredentialError::Config(format!(
            "database URL {} names no host; {FORM}",
            redact_url(text)
        )));
    }
    Ok(())
}

fn has_query_param_value(url: &str, name: &str, value: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| {
        q.split('&')
            .any(|pair| pair.split_once('=') == Some((name, value)))
    })
}

fn has_query_param(url: &str, name: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    })
}

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "pass", "pwd", "sslpassword"];

/// A URL with its password (in the user-info part and in `password=`-like
/// query parameters) replaced by `***`. The user name, host, port and
/// database stay, so the operator can still see where it points.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_query(url);
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    // The user-info ends at the LAST '@': a password may hold '/', '?',
    // '#' or '@' unescaped, and cutting at the first of those would leave
    // the rest of it in the output. (An '@' later in the URL only makes the
    // redaction wider, never narrower.)
    let host_part = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let host_len = host_part.find(['/', '?', '#']).unwrap_or(host_part.len());
    out.push_str(&host_part[..host_len]);
    out.push_str(&redact_query(&host_part[host_len..]));
    out
}

fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                format!("{k}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{path}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Redacts every URL found in a free text (a driver's error message).
pub(crate) fn redact_urls_in(text: &str) -> String {
    if !text.contains("://") && !text.to_ascii_lowercase().contains("password=") {
        return text.to_owned();
    }
    text.split(' ')
        .map(|word| {
            if word.contains("://") || word.contains('?') {
                redact_url(word)
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            (
                "postgres://atom:s3cr%40t@db:5432/atom",
                "postgres://atom:***@db:5432/atom",
            ),
            (
                "mysql://root:p@ss@127.0.0.1:3306/test",
                "mysql://root:***@127.0.0.1:3306/test",
            ),
            (
                "postgres://u@h/db?password=hunter2&sslmode=require",
                "postgres://u@h/db?password=***&sslmode=require",
            ),
            ("postgres://u:@h/db", "postgres://u:***@h/db"),
            // Unescaped '/', '?' and '#' inside a password.
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:a?b#c/d@h:5432/db?sslmode=require",
                "postgres://u:***@h:5432/db?sslmode=require",
            ),
            ("sqlite://atom.db?mode=rwc", "sqlite://atom.db?mode=rwc"),
            ("postgres://h/db", "postgres://h/db"),
            ("not a url", "not a url"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        let url = DatabaseUrl::parse("postgresql://atom:hunter2@db/atom").unwrap();
        assert!(!url.to_string().contains("hunter2"));
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.expose().contains("hunter2"));
    }

    #[test]
    fn free_text_is_scrubbed() {
        let text = "error connecting to mysql://root:hunter2@h/db: refused";
        let out = redact_urls_in(text);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("refused"));
    }

    #[test]
    fn backends_and_sqlite_create_mode() {
        let u = DatabaseUrl::parse("sqlite://atom.db").unwrap();
        assert_eq!(u.backend(), Backend::Sqlite);
        assert_eq!(u.expose(), "sqlite://atom.db?mode=rwc");
        let u = DatabaseUrl::parse("sqlite://x.db?mode=ro").unwrap();
        assert_eq!(u.expose(), "sqlite://x.db?mode=ro");
        let u = DatabaseUrl::parse("mariadb://root@h/db").unwrap();
        assert_eq!(
            (u.backend(), u.expose()),
            (Backend::MySql, "mysql://root@h/db")
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(DatabaseUrl::default().expose(), "sqlite://atom.db?mode=rwc");
        assert_eq!(
            DatabaseUrl::default().without_create().expose(),
            "sqlite://atom.db?mode=rw"
        );
        let pg = DatabaseUrl::parse("postgres://u@h/db").unwrap();
        assert_eq!(pg.without_create(), pg);
        assert_eq!(pg.sqlite_file(), None);
        assert_eq!(
            DatabaseUrl::parse("sqlite:///srv/atom/atom.db")
                .unwrap()
                .sqlite_file(),
            Some(std::path::PathBuf::from("/srv/atom/atom.db"))
        );
        assert_eq!(
            DatabaseUrl::default().sqlite_file(),
            Some(std::path::PathBuf::from("atom.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap().sqlite_file(),
            None
        );
    }

    #[test]
    fn unknown_scheme_is_an_error_without_the_password() {
        let err = DatabaseUrl::parse("oracle://u:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no supported scheme"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
