//! The LLM server's API key. It lives in `llm_sql.llm_api_key`, a table on which no role but
//! llm_sql's owner has any privilege, and is read as that owner for each request.
//!
//! It is not a setting: a setting's value can be read by any role in a session where llm_sql's
//! library is not loaded yet (`SHOW` of the placeholder postgresql.conf or ALTER SYSTEM made),
//! and ALTER ROLE / ALTER DATABASE values are readable by everyone in pg_db_role_setting.
//! `llm_sql.llm_api_key` the setting only remains to refuse values with a pointer here
//! (`crate::settings`).

use pgrx::prelude::*;

use crate::error::{Error, Result};
use crate::run_as::as_extension_owner;
use crate::run_as::current_user;

/// The key, if one is set.
pub fn get() -> Result<Option<String>> {
    as_extension_owner(|| {
        Ok(Spi::get_one::<String>(
            "SELECT (SELECT api_key FROM llm_sql.llm_api_key)",
        )?)
    })
}

/// `llm_sql.set_llm_api_key`: sets (or with NULL or an empty text, removes) the key. Only
/// superusers and llm_sql's owner may.
pub fn set(key: Option<&str>) -> Result<()> {
    let user = current_user();
    let owner = crate::run_as::extension_owner()?;
    // SAFETY: catalog lookups on the backend thread.
    let allowed = unsafe { pg_sys::superuser_arg(user) || pg_sys::has_privs_of_role(user, owner) };
    if !allowed {
        return Err(Error::permission_denied(
            "only superusers and llm_sql's owner may set the LLM API key",
        ));
    }
    let key = key.map(str::trim).filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.chars().any(char::is_control)) {
        return Err(Error::invalid_parameter(
            "the API key contains control characters (a line break?)",
        ));
    }
    as_extension_owner(|| {
        Spi::run("DELETE FROM llm_sql.llm_api_key")?;
        if let Some(key) = key {
            Spi::run_with_args(
                "INSERT INTO llm_sql.llm_api_key (api_key, set_by) VALUES ($1, $2)",
                &[key.into(), user.into()],
            )?;
        }
        Ok(())
    })
}

pgrx::extension_sql!(
    r#"
-- The LLM server's API key (llm_sql.set_llm_api_key). No privilege for PUBLIC: llm_sql reads it
-- as its owner for each request. Kept by pg_dump, like the attachment registry's passwords.
CREATE TABLE llm_sql.llm_api_key (
    api_key text NOT NULL,
    set_by oid NOT NULL,
    set_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE UNIQUE INDEX llm_api_key_one_row ON llm_sql.llm_api_key ((true));
REVOKE ALL ON llm_sql.llm_api_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('llm_sql.llm_api_key', '');
COMMENT ON TABLE llm_sql.llm_api_key IS
    'The LLM server''s API key (set with llm_sql.set_llm_api_key; llm_sql''s owner only)';
"#,
    name = "llm_api_key",
    requires = ["schema_usage"],
);
