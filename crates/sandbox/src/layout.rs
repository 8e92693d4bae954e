//! Where things are: the MariaDB binaries, the files of each server, free loopback ports.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// What to tell the user when a MariaDB binary is missing.
pub const INSTALL_HINT: &str = "install with `apt-get install -y mariadb-server mariadb-client`";

/// The machine's own MariaDB service may listen there: never ours.
pub(crate) const RESERVED_PORT: u16 = 3306;

const EXTRA_DIRS: [&str; 2] = ["/usr/sbin", "/usr/bin"];
const SHM: &str = "/dev/shm";
/// Unix socket paths are limited to 108 bytes (sun_path).
const MAX_SOCKET_PATH: usize = 100;

/// The MariaDB programs the sandbox runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub mariadbd: PathBuf,
    pub install_db: PathBuf,
    /// The `mariadb` CLI (package mariadb-client).
    pub client: PathBuf,
}

impl Binaries {
    /// Finds `mariadbd`, `mariadb-install-db` and `mariadb` on PATH, /usr/sbin or /usr/bin.
    pub fn locate() -> Result<Binaries> {
        Ok(Binaries {
            mariadbd: find_binary("mariadbd")?,
            install_db: find_binary("mariadb-install-db")?,
            client: find_binary("mariadb")?,
        })
    }

    /// `mariadbd --version`, trimmed (cached per process: it starts the server binary).
    pub fn server_version(&self) -> Result<String> {
        static CACHE: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = cache.iter().find(|(p, _)| *p == self.mariadbd) {
            return Ok(v.clone());
        }
        let out = Command::new(&self.mariadbd)
            .arg("--version")
            .output()
            .with_context(|| format!("running {} --version", self.mariadbd.display()))?;
        if !out.status.success() {
            bail!(
                "{} --version failed: {}",
                self.mariadbd.display(),
                out.status
            );
        }
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        cache.push((self.mariadbd.clone(), v.clone()));
        Ok(v)
    }
}

/// Looks for an executable on PATH, then in /usr/sbin and /usr/bin (often not on a user's PATH).
pub fn find_binary(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(EXTRA_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        let executable = fs::metadata(&candidate)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if executable {
            return Ok(candidate);
        }
    }
    bail!("`{name}` not found on PATH, /usr/sbin or /usr/bin: {INSTALL_HINT}")
}

/// FNV-1a, 64 bits, as 16 hex digits: a stable short name for paths and cache keys.
pub(crate) fn short_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The files of one sandbox: `dir` holds the manifest, option files and logs; `run_root`
/// holds datadirs, sockets and pidfiles (on tmpfs when possible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub dir: PathBuf,
    pub run_root: PathBuf,
    pub tmpfs: bool,
}

impl Layout {
    /// Creates `dir` if needed and chooses the run root: `/dev/shm/lagless-<hash of dir>`
    /// when /dev/shm is writable and `want_tmpfs`, else `dir/data`.
    pub fn resolve(dir: &Path, want_tmpfs: bool) -> Result<Layout> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let shm = shm_root(&dir);
        if want_tmpfs && Path::new(SHM).is_dir() && fs::create_dir_all(&shm).is_ok() {
            return Ok(Layout {
                dir,
                run_root: shm,
                tmpfs: true,
            });
        }
        let run_root = dir.join("data");
        Ok(Layout {
            dir,
            run_root,
            tmpfs: false,
        })
    }

    /// The tmpfs run root a sandbox in `dir` uses (for `down` without manifest).
    pub fn shm_root(dir: &Path) -> PathBuf {
        shm_root(dir)
    }

    /// `dir/data`: the run root itself, or a symlink to it on tmpfs.
    pub fn data_link(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn cnf(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.cnf"))
    }
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }
    pub fn server_root(&self, name: &str) -> PathBuf {
        self.run_root.join(name)
    }
    pub fn datadir(&self, name: &str) -> PathBuf {
        self.server_root(name).join("data")
    }
    pub fn pidfile(&self, name: &str) -> PathBuf {
        self.server_root(name).join("mariadbd.pid")
    }
    pub fn socket(&self, name: &str) -> PathBuf {
        let p = self.server_root(name).join("mariadbd.sock");
        if p.as_os_str().len() <= MAX_SOCKET_PATH {
            return p;
        }
        let h = short_hash(self.dir.as_os_str().as_bytes());
        std::env::temp_dir().join(format!("lagless-{h}-{name}.sock"))
    }
}

fn shm_root(dir: &Path) -> PathBuf {
    Path::new(SHM).join(format!(
        "lagless-{}",
        short_hash(dir.as_os_str().as_bytes())
    ))
}

/// An exclusive lock on `dir/.lock`, so two `up`/`down` on one sandbox do not interleave.
pub(crate) struct DirLock(#[allow(dead_code)] Flock<File>);

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!("locking {}: {e}", path.display()))?;
        Ok(DirLock(lock))
    }
}

/// True when nothing listens on 127.0.0.1:`port` (a bind test).
pub fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Where test ports are picked: 10000-30000, less the kernel's ephemeral range.
const TEST_PORTS: (u16, u16) = (10_000, 30_000);

/// The widest part of [`TEST_PORTS`] outside the ephemeral range `lo..=hi` (where the kernel
/// puts outgoing connections, which could take a picked port before its server binds it). The
/// whole of it when less than 1000 ports would be left.
fn test_port_region(ephemeral: Option<(u16, u16)>) -> (u16, u16) {
    let (start, end) = TEST_PORTS;
    let Some((lo, hi)) = ephemeral else {
        return TEST_PORTS;
    };
    let below = (start, lo.clamp(start, end));
    let above = (hi.saturating_add(1).clamp(start, end), end);
    let widest = if below.1 - below.0 >= above.1 - above.0 {
        below
    } else {
        above
    };
    if widest.1 - widest.0 < 1000 {
        TEST_PORTS
    } else {
        widest
    }
}

/// The kernel's ephemeral port range, if it can be read.
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|p| p.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// Picks a base port P such that P..P+count are all free on 127.0.0.1, never 3306, and
/// distinct from the ranges already handed out in this process. Ports come from 10000-30000
/// outside the kernel's ephemeral range, at a random place so parallel test binaries rarely
/// meet.
pub fn free_base_port(count: usize) -> Result<u16> {
    static GIVEN: Mutex<Vec<(u16, u16)>> = Mutex::new(Vec::new());
    static SEED: OnceLock<RandomState> = OnceLock::new();
    let count = u16::try_from(count.max(1)).context("too many ports")?;
    let seed = SEED.get_or_init(RandomState::new);
    let (start, end) = test_port_region(ephemeral_ports());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for attempt in 0..500u64 {
        let mut h = seed.build_hasher();
        h.write_u64(attempt);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let base =
            start + (h.finish() % u64::from((end - start).saturating_sub(count).max(1))) as u16;
        let end = base + count;
        let overlaps = given.iter().any(|&(b, e)| base < e && b < end);
        if overlaps || (base..end).contains(&RESERVED_PORT) {
            continue;
        }
        if (base..end).all(port_free) {
            given.push((base, end));
            return Ok(base);
        }
    }
    bail!("no {count} consecutive free ports found on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable() {
        assert_eq!(short_hash(b""), "cbf29ce484222325");
        assert_ne!(short_hash(b"/a"), short_hash(b"/b"));
    }

    #[test]
    fn test_ports_avoid_the_ephemeral_range() {
        assert_eq!(test_port_region(None), (10_000, 30_000));
        assert_eq!(test_port_region(Some((32_768, 60_999))), (10_000, 30_000));
        assert_eq!(test_port_region(Some((20_000, 60_999))), (10_000, 20_000));
        assert_eq!(test_port_region(Some((1_024, 12_000))), (12_001, 30_000));
        assert_eq!(test_port_region(Some((12_000, 26_000))), (26_001, 30_000));
        // Nothing sensible left: the whole range, as before.
        assert_eq!(test_port_region(Some((1_024, 65_535))), (10_000, 30_000));
        assert_eq!(test_port_region(Some((10_500, 29_500))), (10_000, 30_000));
    }

    #[test]
    fn free_ports_do_not_overlap() {
        let a = free_base_port(3).unwrap();
        let b = free_base_port(3).unwrap();
        assert!(a + 3 <= b || b + 3 <= a);
        assert!(port_free(a));
    }

    #[test]
    fn long_socket_paths_move_to_tmp() {
        let dir = PathBuf::from(format!("/x/{}", "d".repeat(120)));
        let l = Layout {
            dir: dir.clone(),
            run_root: dir.join("data"),
            tmpfs: false,
        };
        assert!(l.socket("replica1").as_os_str().len() <= MAX_SOCKET_PATH);
    }
}
