//! A replica that has not applied a schema change yet answers a read with "no such table"
//! (or database, column, function) where the primary would answer it. Such a read, outside a
//! transaction and before the client saw anything, is run again on the primary: the error
//! reaches the client only if the primary gives it too.

/// ER_BAD_DB_ERROR, ER_BAD_FIELD_ERROR, ER_NO_SUCH_TABLE, ER_SP_DOES_NOT_EXIST.
const SCHEMA_LAG_ERRORS: [u16; 4] = [1049, 1054, 1146, 1305];

/// Whether a replica's error `code` may only mean that it lags behind a schema change.
pub fn may_be_schema_lag(code: u16) -> bool {
    SCHEMA_LAG_ERRORS.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_objects_are_schema_lag_and_other_errors_are_not() {
        for code in [1049, 1054, 1146, 1305] {
            assert!(may_be_schema_lag(code), "{code}");
        }
        // Syntax, duplicate key, access denied, lock wait: the primary would say the same.
        for code in [1064, 1062, 1142, 1205, 0] {
            assert!(!may_be_schema_lag(code), "{code}");
        }
    }
}
