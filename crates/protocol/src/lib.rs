//! MySQL/MariaDB wire protocol without I/O: framing, handshake, authentication, OK/ERR/EOF packets.
