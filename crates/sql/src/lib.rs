//! SQL statement classifier for MySQL/MariaDB routing: text in, class and routing
//! facts out. No I/O, no heap allocation on the hot path, no `unsafe`.
//!
//! Parts:
//! * [`lexer`]: a hand-written zero-copy lexer over `&str` (comments, executable
//!   comments `/*! */` / `/*M! */`, optimizer hints `/*+ */`, strings with or without
//!   backslash escapes, backtick and ANSI-quoted identifiers, variables, `;`), driven by
//!   [`LexOptions`] (`ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`).
//! * [`hints`]: routing hints in the first comment (`/* lagless:primary */`,
//!   `lagless:replica`, `lagless:backend=NAME`).
//! * `classify` / `set` / `cursor` (private): the single-pass statement classifier behind
//!   [`classify`] and [`statements`].
//! * [`class`]: the result types, [`StatementClass`] and its sub-kinds, with the
//!   restrictiveness order used for multi-statement text.
//! * [`tables`]: lazy, allocation-free extraction of table names ([`tables()`],
//!   [`Classification::tables`]), kept out of `classify` so classification stays fast.
//!
//! ```
//! use lagless_sql::{classify, LexOptions, StatementClass};
//! let c = classify("SELECT c FROM sbtest1 WHERE id = 42", &LexOptions::default());
//! assert_eq!(c.class, StatementClass::Read);
//! assert_eq!(c.tables().next().unwrap().name, "sbtest1");
//! let c = classify("/* lagless:primary */ SELECT 1; SELECT 2 FOR UPDATE", &LexOptions::default());
//! assert_eq!(c.class, StatementClass::LockingRead);
//! assert!(c.multi);
//! assert_eq!(c.hint, Some(lagless_sql::RoutingHint::Primary));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod class;
mod classify;
mod cursor;
pub mod hints;
mod keywords;
pub mod lexer;
mod set;
pub mod tables;

pub use class::{MetaKind, SessionKind, StatementClass, TransactionKind, TxScope, XaKind};
pub use classify::{classify, statements, Classification, Statements};
pub use hints::RoutingHint;
pub use lexer::LexOptions;
pub use tables::{tables, TableRef, Tables};
