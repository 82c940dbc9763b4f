//! Unit tests of the core with scripted answers.
