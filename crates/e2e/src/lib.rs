//! End-to-end test support: a sandbox topology plus a running proxy.
