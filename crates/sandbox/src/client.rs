//! Control-plane SQL through the `mariadb` CLI (package mariadb-client), with a timeout so
//! that a paused server cannot hang the caller.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::layout::INSTALL_HINT;

/// Longer statements go through stdin rather than the command line.
const MAX_ARG_SQL: usize = 64 * 1024;

/// One login over TCP to 127.0.0.1.
pub(crate) struct Login<'a> {
    pub client: &'a Path,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
}

/// Runs `sql` in batch mode (tab-separated); with `headers` the first line names the columns.
pub(crate) fn run(login: &Login, sql: &str, headers: bool, timeout: Duration) -> Result<String> {
    let mut cmd = Command::new(login.client);
    cmd.args(["--no-defaults", "--protocol=TCP", "-h127.0.0.1", "--batch"])
        .arg(format!("-P{}", login.port))
        .arg(format!("-u{}", login.user))
        .arg(format!("--password={}", login.password))
        .arg("--max-allowed-packet=1G")
        .arg(format!(
            "--connect-timeout={}",
            timeout.as_secs().clamp(1, 10)
        ));
    if !headers {
        cmd.arg("--skip-column-names");
    }
    let via_stdin = sql.len() > MAX_ARG_SQL;
    if !via_stdin {
        cmd.arg("-e").arg(sql);
    }
    cmd.stdin(if via_stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}: {INSTALL_HINT}", login.client.display()))?;
    let stdin = child.stdin.take().map(|mut w| {
        let sql = sql.to_string();
        thread::spawn(move || {
            let _ = w.write_all(sql.as_bytes());
        })
    });
    let mut out_pipe = child.stdout.take().context("no stdout")?;
    let mut err_pipe = child.stderr.take().context("no stderr")?;
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "query on port {} timed out after {timeout:?}: {}",
                login.port,
                short(sql)
            );
        }
        // Most control statements answer within a few milliseconds: poll fast at first.
        let nap = if start.elapsed() < Duration::from_millis(50) {
            1
        } else {
            10
        };
        thread::sleep(Duration::from_millis(nap));
    };
    if let Some(h) = stdin {
        let _ = h.join();
    }
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{} (port {}, user {}) running: {}",
            String::from_utf8_lossy(&err).trim(),
            login.port,
            login.user,
            short(sql)
        );
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn short(sql: &str) -> String {
    let mut s: String = sql.chars().take(200).collect();
    if s.len() < sql.len() {
        s.push_str("...");
    }
    s
}

/// Undoes the batch-mode escaping of \t, \n, \\ and \0.
pub(crate) fn unescape(v: &str) -> String {
    if !v.contains('\\') {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Parses batch output with a header line into one map per row (NULL stays "NULL").
pub(crate) fn parse_table(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = out.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header.split('\t').collect();
    lines
        .map(|line| {
            names
                .iter()
                .zip(line.split('\t'))
                .map(|(n, v)| (n.to_string(), unescape(v)))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_batch_tables() {
        let rows = parse_table("a\tb\n1\tx\\ty\nNULL\t\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["b"], "x\ty");
        assert_eq!(rows[1]["a"], "NULL");
        assert_eq!(rows[1]["b"], "");
        assert!(parse_table("").is_empty());
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("a\\\\b\\n"), "a\\b\n");
    }
}
