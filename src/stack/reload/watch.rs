//! Reloading when the config file changes: the file's directory watched
//! with `notify`, events for the file debounced into one reload per save.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Reloader;

/// How long the file must stay quiet after a change before it is read.
///
/// An editor's save is several events: writing a temporary file and
/// renaming it over the config (vim, VS Code, `sed -i`), or truncating and
/// writing in pieces. 300 ms covers a save's events on a loaded machine
/// and is still instant to a person.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watching a config file; dropping it stops the watch.
pub struct Watch {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Reloader {
    /// Reloads each time the config file is saved, until the returned
    /// [`Watch`] is dropped. Must be called from a tokio runtime.
    ///
    /// The file's directory is watched, not the file: an editor that saves
    /// by renaming a new file over the old one replaces the file watched,
    /// and a watch on it would see nothing after the first save. Events
    /// for other files of the directory are ignored, as are reads (when
    /// the config is a symlink, as a Kubernetes ConfigMap's is, every
    /// event of the directory counts). Events closer than [`DEBOUNCE`] make
    /// one reload, once they stop, and only if the file's bytes changed
    /// since the last reload read them (a save without changes reloads
    /// nothing). Metadata
    /// changes alone (`touch`) are not a save: send `SIGHUP` instead. Call
    /// it once: each watch reloads on its own.
    pub fn watch(&self) -> notify::Result<Watch> {
        let path = self.path();
        let Some(name) = path.file_name().map(OsString::from) else {
            return Err(notify::Error::generic("the config path names no file"));
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => Path::new(".").to_owned(),
        };
        // A symlinked config (a Kubernetes ConfigMap: `gateway.toml ->
        // ..data/gateway.toml`, updated by renaming `..data`) changes
        // through other names of the directory: any of them may be a save.
        let linked = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        let changed = Arc::new(Notify::new());
        let signal = changed.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                let ours = linked || event.paths.iter().any(|p| p.file_name() == Some(&*name));
                if ours && is_change(&event.kind) {
                    // A permit is kept if the task is busy: no save is missed.
                    signal.notify_one();
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let reloader = self.clone();
        let task = tokio::spawn(async move {
            loop {
                changed.notified().await;
                // Until the file has been quiet for DEBOUNCE.
                while tokio::time::timeout(DEBOUNCE, changed.notified())
                    .await
                    .is_ok()
                {}
                // Saved as it was, or another file of the directory.
                if !reloader.file_changed() {
                    tracing::debug!("config file unchanged: no reload");
                    continue;
                }
                tracing::info!("config file changed: reloading");
                // The outcome is logged by the reload.
                let _ = reloader.clone().reload_in_background().await;
            }
        });
        Ok(Watch {
            _watcher: watcher,
            task,
        })
    }
}

/// Writes, creations, renames and removals; not reads (the reload's own
/// read of the file must not trigger another).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}
