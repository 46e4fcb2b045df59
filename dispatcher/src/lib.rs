//! Dispatcher Lambda (issue 5): not built yet.
