//! Integration tests of atom-audit.
