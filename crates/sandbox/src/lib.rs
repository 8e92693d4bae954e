//! Local MariaDB replication sandboxes (primary + replicas) for the demo, tests and benchmarks.
