//! Captures what a test's code logs, as the text format prints it.
//!
//! Shared by the tests that read log lines; each is a test binary of its
//! own, so no other test's subscriber interferes.

use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// Everything logged while the guard returned by [`LogBuffer::capture`] lives.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// Captures events at `level` and above in text format, without ANSI
    /// colours, on this thread until the guard drops.
    pub fn capture(level: tracing::Level) -> (LogBuffer, DefaultGuard) {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
