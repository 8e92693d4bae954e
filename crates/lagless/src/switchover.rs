//! `lagless switchover`: asks a running proxy (its admin interface) for a planned change of
//! primary, and prints the report.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(clap::Args, Debug)]
pub struct SwitchoverArgs {
    /// The server to promote (default: the most advanced replica).
    #[arg(long)]
    to: Option<String>,
    /// The cluster (default: the first).
    #[arg(long)]
    cluster: Option<String>,
    /// The proxy's admin interface.
    #[arg(long, default_value = "127.0.0.1:6034")]
    admin: String,
}

pub fn run(args: &SwitchoverArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(to) = &args.to {
        query.push(format!("to={}", encode(to)));
    }
    if let Some(c) = &args.cluster {
        query.push(format!("cluster={}", encode(c)));
    }
    let path = format!("/switchover?{}", query.join("&"));
    let mut s = TcpStream::connect(&args.admin)
        .with_context(|| format!("cannot reach the admin interface at {}", args.admin))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: lagless\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    if status != "200" {
        bail!(
            "switchover refused ({status}): {}",
            json["error"].as_str().unwrap_or(body)
        );
    }
    println!("{}", json["report"].as_str().unwrap_or(body));
    Ok(())
}

/// Percent-encodes a query value (server and cluster names are usually plain already).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
