use crate::{from_toml_str, ConfigError, Role};

const EXAMPLE: &str = include_str!("../../../../lagless.example.toml");

fn err(text: &str) -> String {
    match from_toml_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn example_file_is_valid() {
    let c = from_toml_str(EXAMPLE).unwrap();
    assert_eq!(c.listener.address.to_string(), "127.0.0.1:6033");
    assert_eq!(c.clusters[0].primary().name, "primary");
    assert_eq!(c.clusters[0].servers.len(), 3);
    assert_eq!(c.clusters[0].servers[1].role, Role::Replica);
    let u = c.user("app").unwrap();
    assert_eq!(u.cluster, "main");
    assert_eq!(u.native_password.unwrap()[0], 0x63);
}

#[test]
fn worker_threads_default_to_one_per_core() {
    assert_eq!(
        from_toml_str(EXAMPLE).unwrap().listener.worker_threads,
        None
    );
    let one = EXAMPLE.replace("# worker_threads = 1", "worker_threads = 1");
    assert_eq!(
        from_toml_str(&one).unwrap().listener.worker_threads,
        Some(1)
    );
}

#[test]
fn runtime_is_multi_threaded_unless_one_per_thread_is_asked() {
    use crate::RuntimeModel;
    assert_eq!(
        from_toml_str(EXAMPLE).unwrap().listener.runtime,
        RuntimeModel::MultiThread
    );
    let tpc = EXAMPLE.replace(
        "# runtime = \"multi_thread\"",
        "runtime = \"thread_per_core\"",
    );
    assert_eq!(
        from_toml_str(&tpc).unwrap().listener.runtime,
        RuntimeModel::ThreadPerCore
    );
    let bad = EXAMPLE.replace("# runtime = \"multi_thread\"", "runtime = \"fibers\"");
    let e = err(&bad);
    assert!(e.contains("fibers") && e.contains("thread_per_core"), "{e}");
}

#[test]
fn optimistic_transactions_are_off_unless_asked_for() {
    assert!(
        !from_toml_str(EXAMPLE)
            .unwrap()
            .routing
            .optimistic_transactions
    );
    let on = EXAMPLE.replace(
        "optimistic_transactions = false",
        "optimistic_transactions = true",
    );
    assert!(from_toml_str(&on).unwrap().routing.optimistic_transactions);
}

#[test]
fn unknown_key_is_named() {
    let text = EXAMPLE.replace(
        "local_infile = false",
        "local_infile = false\nlocal_infle = true",
    );
    let e = err(&text);
    assert!(e.contains("local_infle"), "{e}");
}

#[test]
fn unknown_key_in_server_is_named() {
    let text = EXAMPLE.replace("weight = 1 ", "wieght = 1 ");
    let e = err(&text);
    assert!(e.contains("wieght"), "{e}");
}

#[test]
fn impossible_values_are_named() {
    let cases = [
        (
            "address = \"127.0.0.1:6033\"",
            "address = \"nowhere\"",
            "listener.address",
        ),
        (
            "max_connections = 10000",
            "max_connections = 0",
            "listener.max_connections",
        ),
        ("connect_ms = 2000", "connect_ms = 0", "timeouts.connect_ms"),
        (
            "# socket = \"/run/lagless/lagless.sock\"",
            "socket = \"run/lagless.sock\"",
            "listener.socket",
        ),
        (
            "# socket = \"/run/mysqld/mysqld.sock\"",
            "socket = \"/run/mysqld/too-long-for-sun-path/0123456789012345678901234567890123456789012345678901234567890123456789.sock\"",
            "clusters[0].servers[0].socket",
        ),
        (
            "# worker_threads = 1",
            "worker_threads = 0",
            "listener.worker_threads",
        ),
        (
            "weight = 1 ",
            "weight = 0 ",
            "clusters[0].servers[0].weight",
        ),
        (
            "address = \"127.0.0.1:3311\"",
            "address = \"127.0.0.1:99999\"",
            "clusters[0].servers[1].address",
        ),
        (
            "role = \"replica\"\n\n[[clusters.servers]]",
            "role = \"primary\"\n\n[[clusters.servers]]",
            "clusters[0].servers",
        ),
        (
            "native_password = \"*63",
            "native_password = \"63",
            "users[0].native_password",
        ),
        (
            "cluster = \"main\"",
            "cluster = \"other\"",
            "users[0].cluster",
        ),
        (
            "name = \"replica2\"",
            "name = \"replica1\"",
            "clusters[0].servers[2].name",
        ),
    ];
    for (from, to, key) in cases {
        assert!(EXAMPLE.contains(from), "example lacks {from}");
        let e = err(&EXAMPLE.replacen(from, to, 1));
        assert!(e.contains(key), "expected {key} in: {e}");
    }
}

#[test]
fn bad_role_is_refused() {
    let e = err(&EXAMPLE.replacen("role = \"replica\"", "role = \"leader\"", 1));
    assert!(e.contains("leader"), "{e}");
}

#[test]
fn user_needs_a_hash() {
    let text = EXAMPLE
        .lines()
        .filter(|l| !l.starts_with("native_password") && !l.starts_with("caching_sha2_password"))
        .collect::<Vec<_>>()
        .join("\n");
    let e = err(&text);
    assert!(
        e.contains("users[0]") && e.contains("lagless passwd"),
        "{e}"
    );
}

#[test]
fn empty_file_needs_clusters() {
    assert!(matches!(
        from_toml_str(""),
        Err(ConfigError::Invalid { .. })
    ));
}

#[test]
fn rules_resolve_targets_and_match_tables() {
    let c = from_toml_str(EXAMPLE).unwrap();
    assert_eq!(c.rules.len(), 1);
    let r = &c.rules[0];
    assert_eq!(r.target, crate::RuleTarget::Primary);
    let t = r.table.as_ref().unwrap();
    assert!(t.matches("audit_log") && t.matches("AUDIT_2024") && !t.matches("orders"));
    let text = format!(
        "{EXAMPLE}\n[[rules]]\ntable_regex = \"^tmp_[0-9]+$\"\ntarget = \"backend:replica2\"\n"
    );
    let c = from_toml_str(&text).unwrap();
    assert_eq!(c.rules[1].target, crate::RuleTarget::Backend(0, 2));
    assert!(c.rules[1].table.as_ref().unwrap().matches("tmp_12"));
    assert_eq!(c.rules[1].name, "rules[1]");
    for (target, key) in [
        ("\"cluster:nope\"", "rules[1].target"),
        ("\"somewhere\"", "rules[1].target"),
    ] {
        let text = format!("{EXAMPLE}\n[[rules]]\ntarget = {target}\n");
        assert!(err(&text).contains(key));
    }
    let text = format!("{EXAMPLE}\n[[rules]]\ntable_regex = \"(\"\ntarget = \"primary\"\n");
    assert!(err(&text).contains("rules[1].table_regex"));
}

#[test]
fn glob_edge_cases() {
    use crate::TableMatch;
    let g = |p: &str, t: &str| TableMatch::Glob(p.into()).matches(t);
    assert!(g("*", "") && g("a*b", "ab") && g("a*b", "axxb") && g("a?c", "abc"));
    assert!(!g("a?c", "ac") && !g("a*b", "abx") && g("*_log", "app_log"));
}

#[test]
fn binlog_streaming_takes_a_flag_or_auto() {
    use crate::BinlogStreaming;
    let with = |v: &str| {
        EXAMPLE.replace(
            "binlog_streaming = \"auto\"",
            &format!("binlog_streaming = {v}"),
        )
    };
    assert_eq!(
        from_toml_str(EXAMPLE).unwrap().monitor.binlog_streaming,
        BinlogStreaming::Auto
    );
    for (v, want) in [
        ("true", BinlogStreaming::On),
        ("false", BinlogStreaming::Off),
        ("\"on\"", BinlogStreaming::On),
        ("\"off\"", BinlogStreaming::Off),
    ] {
        assert_eq!(
            from_toml_str(&with(v)).unwrap().monitor.binlog_streaming,
            want,
            "{v}"
        );
    }
    let e = err(&with("\"sometimes\""));
    assert!(e.contains("sometimes") && e.contains("auto"), "{e}");
}

#[test]
fn sockets_are_where_lagless_dials_and_address_stays_the_identity() {
    let text = EXAMPLE
        .replace(
            "# socket = \"/run/lagless/lagless.sock\"",
            "socket = \"/run/lagless/lagless.sock\"",
        )
        .replace(
            "# socket = \"/run/mysqld/mysqld.sock\"",
            "socket = \"/run/mysqld/mysqld.sock\"",
        );
    let c = from_toml_str(&text).unwrap();
    assert_eq!(
        c.listener.socket.as_deref(),
        Some(std::path::Path::new("/run/lagless/lagless.sock"))
    );
    let primary = &c.clusters[0].servers[0];
    assert_eq!(primary.dial(), "/run/mysqld/mysqld.sock");
    assert_eq!(primary.address, "127.0.0.1:3310");
    let replica = &c.clusters[0].servers[1];
    assert_eq!(replica.socket, None);
    assert_eq!(replica.dial(), "127.0.0.1:3311");
    assert_eq!(from_toml_str(EXAMPLE).unwrap().listener.socket, None);
}
