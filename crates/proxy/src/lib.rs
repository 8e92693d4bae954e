//! The proxy: listener, client session loop and query engine.
