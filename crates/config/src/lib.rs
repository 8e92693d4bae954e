//! Configuration: TOML types and validation; no I/O beyond reading the file.
