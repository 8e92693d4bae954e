//! Pure routing decisions: given a statement's class, the session state and a cluster view, where it goes.
