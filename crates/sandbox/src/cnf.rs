//! The option file of each server (read alone: `--defaults-file` comes first on its command line).

use std::fmt::Write as _;

use crate::state::{Durability, Role, ServerEntry};

/// Small, fast InnoDB. Shared with the template bootstrap: the redo log size must match.
pub(crate) const INNODB: &str = "\
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
innodb_doublewrite=0
innodb_buffer_pool_dump_at_shutdown=OFF
innodb_buffer_pool_load_at_startup=OFF
performance_schema=OFF
skip_name_resolve
";

/// mariadbd refuses to run as root unless told to.
pub(crate) fn user_line() -> &'static str {
    if nix::unistd::geteuid().is_root() {
        "user=root\n"
    } else {
        ""
    }
}

/// The cnf used while bootstrapping the template datadir.
pub(crate) fn bootstrap() -> String {
    format!("[mariadbd]\n{INNODB}{}", user_line())
}

pub(crate) struct Settings {
    pub durability: Durability,
    pub semi_sync: bool,
}

/// The full option file of one server.
pub(crate) fn render(s: &ServerEntry, settings: &Settings) -> String {
    let mut c = String::from("[mariadbd]\n");
    let _ = write!(
        c,
        "datadir={}\nsocket={}\npid-file={}\nlog-error={}\n",
        s.datadir.display(),
        s.socket.display(),
        s.pidfile.display(),
        s.log.display()
    );
    let _ = write!(c, "port={}\nbind-address=127.0.0.1\n", s.port);
    c.push_str(user_line());
    c.push_str(INNODB);
    let (trx, sync) = match settings.durability {
        Durability::Fast => (2, 0),
        Durability::Safe => (1, 1),
    };
    let _ = write!(
        c,
        "innodb_flush_log_at_trx_commit={trx}\nsync_binlog={sync}\n"
    );
    let _ = write!(
        c,
        "server_id={}\nlog_bin=mysql-bin\nrelay_log=relay-bin\nbinlog_format=ROW\n\
         log_slave_updates=ON\ngtid_strict_mode=ON\nreport_host={}\nreport_port={}\n",
        s.server_id, s.host, s.port
    );
    // Tests send rows larger than 16 MiB.
    c.push_str("max_allowed_packet=1G\nmax_connections=500\n");
    // Any server may become a replica after a failover. A replica notices a hung primary only
    // after slave_net_timeout of silence (heartbeats every half of it): 2 s, not the default 60.
    c.push_str("slave_net_timeout=2\n");
    match s.role {
        Role::Primary => {
            if settings.semi_sync {
                c.push_str(
                    "rpl_semi_sync_master_enabled=ON\nrpl_semi_sync_master_wait_point=AFTER_SYNC\n",
                );
            }
        }
        Role::Replica => {
            // In the file, not SET GLOBAL: it must survive restarts.
            c.push_str("read_only=ON\n");
            if settings.semi_sync {
                c.push_str("rpl_semi_sync_slave_enabled=ON\n");
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(role: Role) -> ServerEntry {
        ServerEntry {
            name: "replica1".into(),
            role,
            server_id: 2,
            host: "127.0.0.1".into(),
            port: 3311,
            socket: PathBuf::from("/s"),
            pid: None,
            datadir: PathBuf::from("/d"),
            pidfile: PathBuf::from("/p"),
            cnf: PathBuf::from("/c"),
            log: PathBuf::from("/l"),
        }
    }

    #[test]
    fn replica_is_read_only_and_semi_sync() {
        let settings = Settings {
            durability: Durability::Safe,
            semi_sync: true,
        };
        let c = render(&entry(Role::Replica), &settings);
        assert!(c.contains("read_only=ON\n"));
        assert!(c.contains("rpl_semi_sync_slave_enabled=ON\n"));
        assert!(c.contains("sync_binlog=1\n"));
        assert!(c.contains("server_id=2\n"));
        let p = render(&entry(Role::Primary), &settings);
        assert!(!p.contains("read_only"));
        assert!(p.contains("rpl_semi_sync_master_wait_point=AFTER_SYNC"));
    }
}
