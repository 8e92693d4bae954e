//! SQL statement classifier: text in, class and routing facts out; no I/O.
