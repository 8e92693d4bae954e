//! SQL statement classifier for MySQL/MariaDB routing: text in, class and routing
//! facts out. No I/O, no heap allocation, no `unsafe`, linear time, never panics.
//!
//! Parts:
//! * [`lexer`]: a hand-written zero-copy lexer over `&str` (comments, executable
//!   comments `/*! */` / `/*M! */`, optimizer hints `/*+ */`, strings with or without
//!   backslash escapes, backtick and ANSI-quoted identifiers, variables, `;`), driven by
//!   [`LexOptions`] (`ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`).
//! * [`hints`]: routing hints in the first comment (`/* lagless:primary */`,
//!   `lagless:replica`, `lagless:backend=NAME`, also inside `/*+ ... */`).
//! * `classify`, `set`, `cursor`, `keywords` (private): the single-pass statement
//!   classifier behind [`classify`] and [`statements`], with a compile-time keyword table.
//! * [`class`]: the result types, [`StatementClass`] and its sub-kinds, with the
//!   restrictiveness order ([`StatementClass::rank`]) used for multi-statement text.
//! * [`tables`](mod@tables): lazy, allocation-free extraction of table names
//!   ([`tables()`], [`Classification::tables`]). It re-lexes on demand rather than
//!   filling an array inside `classify`, so callers that never ask pay nothing.
//!
//! [`classify`] returns a [`Classification`]: the class, the hint, `first_keyword`,
//! `statement_count`/`multi`, and facts the router needs whatever the class:
//! `uses_user_variables`, `assigns_user_variables`, `primary_only_functions`,
//! `autocommit` (from any `SET autocommit`), `sets_sql_mode`. Unparseable or malformed
//! text is [`StatementClass::Unknown`]: send it to the primary.
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
pub mod quote;
mod set;
pub mod tables;

pub use class::{MetaKind, SessionKind, StatementClass, TransactionKind, TxScope, XaKind};
pub use classify::{classify, statements, Classification, Statements};
pub use hints::RoutingHint;
pub use lexer::LexOptions;
pub use quote::quote_literal;
pub use tables::{tables, TableRef, Tables};
