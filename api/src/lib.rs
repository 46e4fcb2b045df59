//! Reporting API (issue 6): not built yet.
