//! `lagless passwd`: the hashes of a password, as lines for a [[users]] entry.

use std::io::BufRead;

use lagless_protocol::auth::{caching_sha2_stored, native_password_hash};

#[derive(clap::Args)]
pub struct PasswdArgs {
    /// The password (visible in the process list; prefer standard input).
    #[arg(long)]
    password: Option<String>,
}

pub fn run(args: &PasswdArgs) -> anyhow::Result<()> {
    let password = match &args.password {
        Some(p) => p.clone(),
        None => {
            eprintln!("password (one line on standard input):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    print!("{}", user_lines(&password));
    Ok(())
}

/// The config values for a password: (native_password, caching_sha2_password).
pub fn hashes(password: &str) -> (String, String) {
    (
        format!("*{}", hex_upper(&native_password_hash(password.as_bytes()))),
        hex_lower(&caching_sha2_stored(password.as_bytes())),
    )
}

/// The two TOML lines that let a user log in with either method.
pub fn user_lines(password: &str) -> String {
    let (native, sha2) = hashes(password);
    format!("native_password = \"{native}\"\ncaching_sha2_password = \"{sha2}\"\n")
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
