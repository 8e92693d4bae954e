//! Protocol constants: capability flags, server status flags, command bytes, error codes and
//! character set ids.
//!
//! Capabilities are `u64`: the low 32 bits are the classic flags, the high 32 bits are MariaDB's
//! extended capabilities, which exist only when both sides clear [`CLIENT_MYSQL`].

// --- Capability flags (low 32 bits) ---
/// MariaDB's name for bit 0: when clear, the peer sends MariaDB extended capabilities.
pub const CLIENT_MYSQL: u64 = 1;
pub const CLIENT_LONG_PASSWORD: u64 = 1;
pub const CLIENT_FOUND_ROWS: u64 = 1 << 1;
pub const CLIENT_LONG_FLAG: u64 = 1 << 2;
pub const CLIENT_CONNECT_WITH_DB: u64 = 1 << 3;
pub const CLIENT_NO_SCHEMA: u64 = 1 << 4;
pub const CLIENT_COMPRESS: u64 = 1 << 5;
pub const CLIENT_ODBC: u64 = 1 << 6;
pub const CLIENT_LOCAL_FILES: u64 = 1 << 7;
pub const CLIENT_IGNORE_SPACE: u64 = 1 << 8;
pub const CLIENT_PROTOCOL_41: u64 = 1 << 9;
pub const CLIENT_INTERACTIVE: u64 = 1 << 10;
pub const CLIENT_SSL: u64 = 1 << 11;
pub const CLIENT_IGNORE_SIGPIPE: u64 = 1 << 12;
pub const CLIENT_TRANSACTIONS: u64 = 1 << 13;
pub const CLIENT_RESERVED: u64 = 1 << 14;
pub const CLIENT_SECURE_CONNECTION: u64 = 1 << 15;
pub const CLIENT_MULTI_STATEMENTS: u64 = 1 << 16;
pub const CLIENT_MULTI_RESULTS: u64 = 1 << 17;
pub const CLIENT_PS_MULTI_RESULTS: u64 = 1 << 18;
pub const CLIENT_PLUGIN_AUTH: u64 = 1 << 19;
pub const CLIENT_CONNECT_ATTRS: u64 = 1 << 20;
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u64 = 1 << 21;
pub const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: u64 = 1 << 22;
pub const CLIENT_SESSION_TRACK: u64 = 1 << 23;
pub const CLIENT_DEPRECATE_EOF: u64 = 1 << 24;
/// MySQL 8 only; changes the column-count packet.
pub const CLIENT_OPTIONAL_RESULTSET_METADATA: u64 = 1 << 25;
pub const CLIENT_ZSTD_COMPRESSION: u64 = 1 << 26;
pub const CLIENT_QUERY_ATTRIBUTES: u64 = 1 << 27;
pub const CLIENT_MULTI_FACTOR_AUTH: u64 = 1 << 28;
pub const CLIENT_CAPABILITY_EXTENSION: u64 = 1 << 29;
pub const CLIENT_SSL_VERIFY_SERVER_CERT: u64 = 1 << 30;
pub const CLIENT_REMEMBER_OPTIONS: u64 = 1 << 31;

// --- MariaDB extended capabilities (high 32 bits) ---
pub const MARIADB_CLIENT_PROGRESS: u64 = 1 << 32;
pub const MARIADB_CLIENT_COM_MULTI: u64 = 1 << 33;
pub const MARIADB_CLIENT_STMT_BULK_OPERATIONS: u64 = 1 << 34;
/// Also called MARIADB_CLIENT_EXTENDED_METADATA.
pub const MARIADB_CLIENT_EXTENDED_TYPE_INFO: u64 = 1 << 35;
pub const MARIADB_CLIENT_CACHE_METADATA: u64 = 1 << 36;
pub const MARIADB_CLIENT_BULK_UNIT_RESULTS: u64 = 1 << 37;

/// Mask of the classic (low 32-bit) capabilities.
pub const BASE_CAPS_MASK: u64 = 0xFFFF_FFFF;

// --- Server status flags ---
pub const SERVER_STATUS_IN_TRANS: u16 = 0x0001;
pub const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
pub const SERVER_QUERY_NO_GOOD_INDEX_USED: u16 = 0x0010;
pub const SERVER_QUERY_NO_INDEX_USED: u16 = 0x0020;
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;
pub const SERVER_STATUS_LAST_ROW_SENT: u16 = 0x0080;
pub const SERVER_STATUS_DB_DROPPED: u16 = 0x0100;
pub const SERVER_STATUS_NO_BACKSLASH_ESCAPES: u16 = 0x0200;
pub const SERVER_STATUS_METADATA_CHANGED: u16 = 0x0400;
pub const SERVER_QUERY_WAS_SLOW: u16 = 0x0800;
pub const SERVER_PS_OUT_PARAMS: u16 = 0x1000;
pub const SERVER_STATUS_IN_TRANS_READONLY: u16 = 0x2000;
pub const SERVER_SESSION_STATE_CHANGED: u16 = 0x4000;

// --- Session state change types (OK packet, CLIENT_SESSION_TRACK) ---
pub const SESSION_TRACK_SYSTEM_VARIABLES: u8 = 0;
pub const SESSION_TRACK_SCHEMA: u8 = 1;
pub const SESSION_TRACK_STATE_CHANGE: u8 = 2;
pub const SESSION_TRACK_GTIDS: u8 = 3;
pub const SESSION_TRACK_TRANSACTION_CHARACTERISTICS: u8 = 4;
pub const SESSION_TRACK_TRANSACTION_STATE: u8 = 5;

/// Command bytes (first byte of a client request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    Sleep = 0x00,
    Quit = 0x01,
    InitDb = 0x02,
    Query = 0x03,
    FieldList = 0x04,
    CreateDb = 0x05,
    DropDb = 0x06,
    Refresh = 0x07,
    Shutdown = 0x08,
    Statistics = 0x09,
    ProcessInfo = 0x0a,
    Connect = 0x0b,
    ProcessKill = 0x0c,
    Debug = 0x0d,
    Ping = 0x0e,
    Time = 0x0f,
    DelayedInsert = 0x10,
    ChangeUser = 0x11,
    BinlogDump = 0x12,
    TableDump = 0x13,
    ConnectOut = 0x14,
    RegisterSlave = 0x15,
    StmtPrepare = 0x16,
    StmtExecute = 0x17,
    StmtSendLongData = 0x18,
    StmtClose = 0x19,
    StmtReset = 0x1a,
    SetOption = 0x1b,
    StmtFetch = 0x1c,
    Daemon = 0x1d,
    BinlogDumpGtid = 0x1e,
    ResetConnection = 0x1f,
    /// MariaDB bulk execute.
    StmtBulkExecute = 0xfa,
    /// MariaDB COM_MULTI (MARIADB_CLIENT_COM_MULTI).
    Multi = 0xfe,
}

impl Command {
    const ALL: [Command; 34] = [
        Self::Sleep,
        Self::Quit,
        Self::InitDb,
        Self::Query,
        Self::FieldList,
        Self::CreateDb,
        Self::DropDb,
        Self::Refresh,
        Self::Shutdown,
        Self::Statistics,
        Self::ProcessInfo,
        Self::Connect,
        Self::ProcessKill,
        Self::Debug,
        Self::Ping,
        Self::Time,
        Self::DelayedInsert,
        Self::ChangeUser,
        Self::BinlogDump,
        Self::TableDump,
        Self::ConnectOut,
        Self::RegisterSlave,
        Self::StmtPrepare,
        Self::StmtExecute,
        Self::StmtSendLongData,
        Self::StmtClose,
        Self::StmtReset,
        Self::SetOption,
        Self::StmtFetch,
        Self::Daemon,
        Self::BinlogDumpGtid,
        Self::ResetConnection,
        Self::StmtBulkExecute,
        Self::Multi,
    ];

    /// The command for a byte, if known.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0x00..=0x1f => Self::ALL.get(usize::from(b)).copied(),
            0xfa => Some(Self::StmtBulkExecute),
            0xfe => Some(Self::Multi),
            _ => None,
        }
    }

    /// The server's name for the command, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sleep => "COM_SLEEP",
            Self::Quit => "COM_QUIT",
            Self::InitDb => "COM_INIT_DB",
            Self::Query => "COM_QUERY",
            Self::FieldList => "COM_FIELD_LIST",
            Self::CreateDb => "COM_CREATE_DB",
            Self::DropDb => "COM_DROP_DB",
            Self::Refresh => "COM_REFRESH",
            Self::Shutdown => "COM_SHUTDOWN",
            Self::Statistics => "COM_STATISTICS",
            Self::ProcessInfo => "COM_PROCESS_INFO",
            Self::Connect => "COM_CONNECT",
            Self::ProcessKill => "COM_PROCESS_KILL",
            Self::Debug => "COM_DEBUG",
            Self::Ping => "COM_PING",
            Self::Time => "COM_TIME",
            Self::DelayedInsert => "COM_DELAYED_INSERT",
            Self::ChangeUser => "COM_CHANGE_USER",
            Self::BinlogDump => "COM_BINLOG_DUMP",
            Self::TableDump => "COM_TABLE_DUMP",
            Self::ConnectOut => "COM_CONNECT_OUT",
            Self::RegisterSlave => "COM_REGISTER_SLAVE",
            Self::StmtPrepare => "COM_STMT_PREPARE",
            Self::StmtExecute => "COM_STMT_EXECUTE",
            Self::StmtSendLongData => "COM_STMT_SEND_LONG_DATA",
            Self::StmtClose => "COM_STMT_CLOSE",
            Self::StmtReset => "COM_STMT_RESET",
            Self::SetOption => "COM_SET_OPTION",
            Self::StmtFetch => "COM_STMT_FETCH",
            Self::Daemon => "COM_DAEMON",
            Self::BinlogDumpGtid => "COM_BINLOG_DUMP_GTID",
            Self::ResetConnection => "COM_RESET_CONNECTION",
            Self::StmtBulkExecute => "COM_STMT_BULK_EXECUTE",
            Self::Multi => "COM_MULTI",
        }
    }
}

/// A server error number with its SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: u16,
    pub sql_state: [u8; 5],
}

const fn ec(code: u16, sql_state: &[u8; 5]) -> ErrorCode {
    ErrorCode {
        code,
        sql_state: *sql_state,
    }
}

pub const ER_CON_COUNT_ERROR: ErrorCode = ec(1040, b"08004");
pub const ER_HANDSHAKE_ERROR: ErrorCode = ec(1043, b"08S01");
pub const ER_DBACCESS_DENIED_ERROR: ErrorCode = ec(1044, b"42000");
pub const ER_ACCESS_DENIED_ERROR: ErrorCode = ec(1045, b"28000");
pub const ER_NO_DB_ERROR: ErrorCode = ec(1046, b"3D000");
pub const ER_UNKNOWN_COM_ERROR: ErrorCode = ec(1047, b"08S01");
pub const ER_BAD_DB_ERROR: ErrorCode = ec(1049, b"42000");
pub const ER_SERVER_SHUTDOWN: ErrorCode = ec(1053, b"08S01");
pub const ER_NET_PACKET_TOO_LARGE: ErrorCode = ec(1153, b"08S01");
pub const ER_NET_READ_ERROR: ErrorCode = ec(1158, b"08S01");
pub const ER_NET_READ_INTERRUPTED: ErrorCode = ec(1159, b"08S01");
pub const ER_TOO_MANY_USER_CONNECTIONS: ErrorCode = ec(1203, b"42000");
pub const ER_LOCK_WAIT_TIMEOUT: ErrorCode = ec(1205, b"HY000");
pub const ER_LOCK_DEADLOCK: ErrorCode = ec(1213, b"40001");
pub const ER_UNKNOWN_STMT_HANDLER: ErrorCode = ec(1243, b"HY000");
pub const ER_NOT_SUPPORTED_AUTH_MODE: ErrorCode = ec(1251, b"08004");
pub const ER_OPTION_PREVENTS_STATEMENT: ErrorCode = ec(1290, b"HY000");
pub const ER_STMT_HAS_NO_OPEN_CURSOR: ErrorCode = ec(1421, b"HY000");
pub const ER_QUERY_INTERRUPTED: ErrorCode = ec(1317, b"70100");
pub const ER_UNKNOWN_ERROR: ErrorCode = ec(1105, b"HY000");
pub const ER_WRONG_VALUE_FOR_VAR: ErrorCode = ec(1231, b"42000");
pub const ER_NOT_SUPPORTED_YET: ErrorCode = ec(1235, b"42000");
/// MariaDB: max_statement_time exceeded.
pub const ER_STATEMENT_TIMEOUT: ErrorCode = ec(1969, b"70100");

// --- Lagless's own errors ---
// Client-side codes (2000-2999, e.g. 2006, 2013) must not be sent by a server: libmariadb
// (the mariadb CLI, sysbench, mysqlclient) turns an ERR packet carrying one into
// 2027 "Received malformed packet". Like ProxySQL, Lagless uses codes from 9000.

/// A backend server could not be reached (or refused the login): the statement did not run.
pub const PROXY_BACKEND_UNREACHABLE: ErrorCode = ec(9001, b"HY000");
/// The backend connection broke while a statement ran: its outcome is unknown.
pub const PROXY_BACKEND_LOST: ErrorCode = ec(9002, b"HY000");
pub const PROXY_BACKEND_LOST_MESSAGE: &str = "Lost connection to backend server during query";
/// The session's transaction was lost with its server (failover): nothing of it committed.
pub const PROXY_TRANSACTION_LOST: ErrorCode = ec(9003, b"HY000");

// --- Character set / collation ids ---
pub const LATIN1_SWEDISH_CI: u8 = 8;
pub const UTF8MB3_GENERAL_CI: u8 = 33;
pub const UTF8MB4_GENERAL_CI: u8 = 45;
pub const UTF8MB4_BIN: u8 = 46;
pub const BINARY: u8 = 63;
pub const UTF8MB3_BIN: u8 = 83;
pub const UTF8MB4_UNICODE_CI: u8 = 224;
/// MySQL 8's default; MariaDB does not know it.
pub const UTF8MB4_0900_AI_CI: u8 = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_from_u8_roundtrips() {
        for b in 0..=255u8 {
            if let Some(c) = Command::from_u8(b) {
                assert_eq!(c as u8, b, "{}", c.name());
            }
        }
        assert_eq!(Command::from_u8(0x0e), Some(Command::Ping));
        assert_eq!(Command::from_u8(0x1f), Some(Command::ResetConnection));
        assert_eq!(Command::from_u8(0x20), None);
        assert_eq!(Command::Query.name(), "COM_QUERY");
    }

    #[test]
    fn mariadb_greeting_caps() {
        let caps: u64 = 0x81ff_f7fe | (0x1d << 32);
        assert_eq!(caps & CLIENT_MYSQL, 0);
        assert_ne!(caps & CLIENT_SESSION_TRACK, 0);
        assert_ne!(caps & CLIENT_DEPRECATE_EOF, 0);
        assert_eq!(caps & CLIENT_SSL, 0);
        assert_ne!(caps & MARIADB_CLIENT_CACHE_METADATA, 0);
        assert_eq!(caps & MARIADB_CLIENT_COM_MULTI, 0);
    }
}
