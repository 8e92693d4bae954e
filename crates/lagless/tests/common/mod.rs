//! Shared by the fault tests (`failover.rs`, `faults.rs`): the client side of their workloads.

use lagless_e2e::faults::{ClientError, Load};
use lagless_e2e::rt;
use mysql_async::prelude::*;

/// A client error as the fault report counts it: the error code, else the kind of failure.
pub fn client_error(e: mysql_async::Error) -> ClientError {
    let kind = match &e {
        mysql_async::Error::Server(s) => s.code.to_string(),
        mysql_async::Error::Io(_) => "io".into(),
        mysql_async::Error::Driver(_) => "driver".into(),
        _ => "other".into(),
    };
    ClientError {
        kind,
        message: e.to_string(),
    }
}

/// A client inserting ids `first_id + 1, + 2, ...` into `table` in autocommit through `url`.
pub fn insert_load(name: &str, url: String, table: &str, first_id: u64) -> Load {
    let sql = format!("INSERT INTO {table} VALUES (?)");
    Load::spawn(name, first_id, move || {
        let rt = rt();
        let mut c = rt.block_on(mysql_async::Conn::from_url(url))?;
        Ok(move |id: u64| {
            rt.block_on(c.exec_drop(sql.as_str(), (id,)))
                .map_err(client_error)
        })
    })
}
