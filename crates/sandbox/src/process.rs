//! Processes: detached spawning, liveness and identity through /proc, signals.
//!
//! PID 1 may reap orphans late, so a dead server can linger as a zombie that `kill -0`
//! still sees: liveness reads the state letter in /proc/PID/stat instead.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// Starts `program args...` in its own session (so it outlives us and ignores our terminal),
/// stdin from /dev/null, stdout and stderr appended to `log`. Returns its pid; the child is
/// not waited for here ([`is_running`] reaps it once it exits).
pub fn spawn_detached(program: &Path, args: &[String], log: &Path) -> Result<u32> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(child.id())
}

/// The state letter of /proc/PID/stat (R, S, D, T, Z, ...), None when there is no such process.
pub fn state(pid: u32) -> Option<char> {
    stat_state(&format!("/proc/{pid}/stat"))
}

fn stat_state(path: &str) -> Option<char> {
    let stat = fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

fn dead(state: Option<char>) -> bool {
    matches!(state, None | Some('Z') | Some('X') | Some('x'))
}

/// True when the process exists and is neither a zombie nor dead. Reaps it if it is our
/// exited child (harmless ECHILD otherwise).
pub fn is_running(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match state(pid) {
        None => false,
        Some('Z') => {
            // A killed multi-threaded process shows its leader as a zombie while other
            // threads still exit and hold its sockets: it is gone once every task is.
            let tasks = fs::read_dir(format!("/proc/{pid}/task"))
                .map(|it| {
                    it.filter_map(|e| e.ok())
                        .map(|e| e.file_name())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let live = tasks.iter().any(|t| {
                !dead(stat_state(&format!(
                    "/proc/{pid}/task/{}/stat",
                    t.to_string_lossy()
                )))
            });
            if !live {
                let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
            }
            live
        }
        s => !dead(s),
    }
}

/// True when stopped by SIGSTOP (state T).
pub fn is_paused(pid: u32) -> bool {
    state(pid) == Some('T')
}

/// The NUL-separated arguments of a process (empty for zombies and kernel threads).
pub fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// True when `pid` is running with exactly `arg` among its arguments (our identity check:
/// `--defaults-file=<our cnf>`), which guards against pid reuse.
pub fn is_ours(pid: u32, arg: &str) -> bool {
    is_running(pid) && cmdline(pid).iter().any(|a| a == arg)
}

/// Running processes having an argument that satisfies `pred`.
pub fn find(pred: impl Fn(&str) -> bool) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid: &u32| cmdline(pid).iter().any(|a| pred(a)) && is_running(pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// Sends `sig`; a process that is already gone is not an error.
pub fn signal(pid: u32, sig: Signal) -> Result<()> {
    match kill(Pid::from_raw(pid as i32), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("sending {sig} to {pid}")),
    }
}

/// Waits until none of `pids` runs; returns the ones still running at the deadline.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| is_running(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        sleep(Duration::from_millis(5));
    }
}

/// SIGTERM (plus SIGCONT, in case one is paused), wait up to `grace`, then SIGKILL.
pub fn terminate(pids: &[u32], grace: Duration) -> Result<()> {
    for &p in pids {
        signal(p, Signal::SIGTERM)?;
        signal(p, Signal::SIGCONT)?;
    }
    let left = wait_gone(pids, grace);
    for &p in &left {
        tracing::warn!(pid = p, "did not stop after SIGTERM; sending SIGKILL");
        signal(p, Signal::SIGKILL)?;
    }
    let stuck = wait_gone(&left, Duration::from_secs(5));
    anyhow::ensure!(stuck.is_empty(), "processes {stuck:?} survived SIGKILL");
    Ok(())
}

/// True when some IPv4 socket listens on `port` (read from /proc/net/tcp: a readiness
/// probe that, unlike a TCP connect, leaves no "Aborted connection" in the server's log).
pub fn listening(port: u16) -> bool {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let local_port = f.get(1).and_then(|a| a.rsplit(':').next());
        let port_matches = local_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port);
        port_matches && f.get(3) == Some(&"0A")
    })
}

/// The pid in a pidfile, if any.
pub fn read_pidfile(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_running() {
        let me = std::process::id();
        assert!(is_running(me));
        assert!(!is_paused(me));
        assert!(!cmdline(me).is_empty());
        assert!(!is_running(0));
    }

    #[test]
    fn sees_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening(port));
        drop(l);
    }

    #[test]
    fn terminate_a_detached_sleep() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let pid = spawn_detached(Path::new("/bin/sleep"), &["30".into()], &log).unwrap();
        // Until the child has exec'd, /proc shows the parent's command line.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !is_ours(pid, "30") && Instant::now() < deadline {
            sleep(Duration::from_millis(2));
        }
        assert!(is_ours(pid, "30"));
        signal(pid, Signal::SIGSTOP).unwrap();
        assert!(wait_gone(&[], Duration::ZERO).is_empty());
        let deadline = Instant::now() + Duration::from_secs(2);
        while !is_paused(pid) && Instant::now() < deadline {
            sleep(Duration::from_millis(2));
        }
        assert!(is_paused(pid));
        terminate(&[pid], Duration::from_secs(5)).unwrap();
        assert!(!is_running(pid));
    }
}
