//! The template datadir: bootstrapped once per (server version, users), cached, then copied.
//!
//! Users and schemas are created while the template has no binlog (`--skip-log-bin`), so every
//! copy starts with an empty GTID state and replicas need not replicate them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::cnf;
use crate::layout::{short_hash, Binaries, DirLock};
use crate::state::Credentials;

/// Quotes a string as an SQL literal.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The bootstrap SQL. One statement per line: the bootstrap reader does not split lines.
pub(crate) fn bootstrap_sql(users: &Credentials) -> String {
    let root = quote(&users.root.password);
    let (repl, repl_pw) = (
        quote(&users.replication.user),
        quote(&users.replication.password),
    );
    let (app, app_pw) = (quote(&users.app.user), quote(&users.app.password));
    let (adm, adm_pw) = (quote(&users.admin.user), quote(&users.admin.password));
    let mut lines = vec![
        // Must come first, else ERROR 1290 (--skip-grant-tables) on user statements.
        "FLUSH PRIVILEGES;".to_string(),
        // install-db also creates password-less root@<hostname> and root@::1: drop them.
        "DELETE FROM mysql.global_priv WHERE User IN ('root','') AND Host NOT IN ('localhost','127.0.0.1');".into(),
        "DELETE FROM mysql.proxies_priv WHERE User IN ('root','') AND Host NOT IN ('localhost','127.0.0.1');".into(),
        "FLUSH PRIVILEGES;".into(),
    ];
    for host in ["'localhost'", "'127.0.0.1'"] {
        lines.push(format!(
            "CREATE OR REPLACE USER 'root'@{host} IDENTIFIED BY {root};"
        ));
        lines.push(format!(
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@{host} WITH GRANT OPTION;"
        ));
    }
    lines.push(format!(
        "CREATE OR REPLACE USER {repl}@'%' IDENTIFIED BY {repl_pw};"
    ));
    lines.push(format!(
        "GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICA MONITOR ON *.* TO {repl}@'%';"
    ));
    // No SUPER / READ_ONLY ADMIN: read_only replicas must refuse the app's writes.
    lines.push(format!(
        "CREATE OR REPLACE USER {app}@'%' IDENTIFIED BY {app_pw};"
    ));
    for schema in ["`app`", "`sbtest`", "`sbtest\\_%`", "`test`", "`test\\_%`"] {
        lines.push(format!("GRANT ALL PRIVILEGES ON {schema}.* TO {app}@'%';"));
    }
    lines.push(format!(
        "GRANT PROCESS, SHOW DATABASES ON *.* TO {app}@'%';"
    ));
    // Monitor, promote (READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, ...) and backend login:
    // ALL PRIVILEGES covers every one of them.
    lines.push(format!(
        "CREATE OR REPLACE USER {adm}@'%' IDENTIFIED BY {adm_pw};"
    ));
    lines.push(format!(
        "GRANT ALL PRIVILEGES ON *.* TO {adm}@'%' WITH GRANT OPTION;"
    ));
    lines.push("CREATE DATABASE IF NOT EXISTS `app`;".into());
    lines.push("CREATE DATABASE IF NOT EXISTS `sbtest`;".into());
    let mut sql = lines.join("\n");
    sql.push('\n');
    sql
}

/// Where templates are cached: $LAGLESS_TEMPLATE_CACHE, else $XDG_CACHE_HOME/lagless/templates,
/// else ~/.cache/lagless/templates, else a directory under /tmp.
pub(crate) fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("LAGLESS_TEMPLATE_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match base {
        Some(b) => b.join("lagless").join("templates"),
        None => std::env::temp_dir().join("lagless-templates"),
    }
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// Returns the cached template datadir, building it first if needed.
pub(crate) fn ensure(bins: &Binaries, version: &str, users: &Credentials) -> Result<PathBuf> {
    let sql = bootstrap_sql(users);
    let key = short_hash(format!("{version}\n{}\n{sql}", cnf::bootstrap()).as_bytes());
    let root = cache_root();
    let done = root.join(&key);
    if done.join("data").join("mysql").is_dir() {
        return Ok(done.join("data"));
    }
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    // One builder at a time (threads and processes); the others then find it done.
    let _lock = DirLock::acquire(&root)?;
    if done.join("data").join("mysql").is_dir() {
        return Ok(done.join("data"));
    }
    // install-db is fsync-bound on disk: bootstrap on tmpfs, then copy into the cache.
    let shm = Path::new("/dev/shm");
    let scratch_base = if shm.is_dir() { shm } else { root.as_path() };
    let scratch = scratch_base.join(format!(".lagless-tpl-{}", unique_suffix()));
    let stage = root.join(format!(".tmp-{key}-{}", unique_suffix()));
    let result = build(bins, &sql, &scratch).and_then(|data| {
        fs::create_dir_all(&stage)?;
        fs::write(stage.join("VERSION"), format!("{version}\n"))?;
        copy_tree(&data, &stage.join("data"))?;
        // Atomic publish; a concurrent builder may have won the race, which is fine.
        if fs::rename(&stage, &done).is_err() && !done.join("data").join("mysql").is_dir() {
            bail!("could not publish template {}", done.display());
        }
        Ok(())
    });
    let _ = fs::remove_dir_all(&scratch);
    let _ = fs::remove_dir_all(&stage);
    result?;
    Ok(done.join("data"))
}

/// Runs mariadb-install-db in `scratch`; returns the new datadir.
fn build(bins: &Binaries, sql: &str, scratch: &Path) -> Result<PathBuf> {
    fs::create_dir_all(scratch)?;
    let cnf_path = scratch.join("bootstrap.cnf");
    let sql_path = scratch.join("bootstrap.sql");
    let data = scratch.join("data");
    fs::write(&cnf_path, cnf::bootstrap())?;
    fs::write(&sql_path, sql)?;
    let out = Command::new(&bins.install_db)
        .arg(format!("--defaults-file={}", cnf_path.display()))
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .args(["--skip-name-resolve", "--skip-log-bin"])
        .arg(format!("--extra-file={}", sql_path.display()))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bins.install_db.display()))?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
        bail!(
            "mariadb-install-db failed ({}):\n{}",
            out.status,
            errors.join("\n")
        );
    }
    Ok(data)
}

/// `cp -a src dst` (dst must not exist).
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    copy_many(src, &[dst.to_path_buf()])
}

/// Copies `src` to every destination at once (one `cp -a` each, run in parallel).
pub(crate) fn copy_many(src: &Path, dsts: &[PathBuf]) -> Result<()> {
    let mut children = Vec::new();
    for dst in dsts {
        // Sparse: the redo log and system tablespace are mostly zeros (34 MB -> 6.5 MB).
        let child = Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(src)
            .arg(dst)
            .stdin(Stdio::null())
            .spawn()
            .context("running cp")?;
        children.push((dst, child));
    }
    let mut failed = Vec::new();
    for (dst, mut child) in children {
        if !child.wait()?.success() {
            failed.push(dst.display().to_string());
        }
    }
    if !failed.is_empty() {
        bail!("cp -a {} failed for {}", src.display(), failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a'b\\c"), "'a''b\\\\c'");
    }

    #[test]
    fn bootstrap_starts_with_flush_and_has_one_statement_per_line() {
        let sql = bootstrap_sql(&Credentials::default());
        assert!(sql.starts_with("FLUSH PRIVILEGES;\n"));
        assert!(sql.lines().all(|l| l.ends_with(';')));
        assert!(sql.contains("'lagless'@'%' IDENTIFIED BY 'lagless-admin'"));
    }
}
