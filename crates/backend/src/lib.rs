//! Backend server connections: connect, authenticate, forward packets.
