//! A proxy context over a configuration whose servers need not exist: nothing connects, since
//! the monitor is never started here.

#![allow(dead_code)] // each test binary uses a part

use std::sync::Arc;

use lagless_proxy::ProxyContext;

pub const CONFIG: &str = r#"
[listener]
address = "127.0.0.1:6033"

[[users]]
name = "app"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"

[[users]]
name = "boss"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
route = "primary"

[[users]]
name = "careful"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
consistency = "primary"

[[clusters]]
name = "main"
user = "app"
[[clusters.servers]]
name = "primary"
address = "127.0.0.1:1"
role = "primary"
[[clusters.servers]]
name = "replica1"
address = "127.0.0.1:2"
role = "replica"
[[clusters.servers]]
name = "replica2"
address = "127.0.0.1:3"
role = "replica"

[[clusters]]
name = "analytics"
user = "app"
[[clusters.servers]]
name = "a-primary"
address = "127.0.0.1:4"
role = "primary"
[[clusters.servers]]
name = "a-replica"
address = "127.0.0.1:5"
role = "replica"

[[rules]]
name = "events"
table = "events_*"
class = "read"
target = "cluster:analytics"
"#;

pub fn context() -> Arc<ProxyContext> {
    let config = lagless_config::from_toml_str(CONFIG).expect("test config is valid");
    Arc::new(ProxyContext::new(Arc::new(config), "10.11.0-MariaDB-lagless".into()).unwrap())
}

/// Percent-encodes a query-string value.
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
