//! Hot reload (feature `watch`): a configuration file watched for edits,
//! each burst of edits applied once, checked whole, as
//! [`Registry::load_toml_file`] applies a file.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::{ConfigFileError, Registry};

/// How long a file must go unchanged before an edit is applied: editors
/// write a file in several steps (truncate, write, rename), and a half
/// written file must not be loaded.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// Watches a configuration file while it lives; dropping it stops the
/// watch (and waits for a reload under way to finish).
#[must_use = "the file is watched only while the guard lives"]
pub struct WatchGuard {
    path: PathBuf,
    stop: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
    /// Dropped before the thread is joined: no more events after that.
    watcher: Option<notify::RecommendedWatcher>,
}

enum Message {
    Changed,
    Stop,
}

impl WatchGuard {
    /// The file watched.
    ///
    /// ```no_run
    /// let guard = circuit_runtime::registry().watch_toml_file("breakers.toml")?;
    /// assert_eq!(guard.path(), std::path::Path::new("breakers.toml"));
    /// # Ok::<(), circuit_runtime::ConfigFileError>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        drop(self.watcher.take());
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchGuard")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Loads a configuration file (feature `watch`), then applies every
    /// edit of it as [`load_toml_file`](Self::load_toml_file) does, until
    /// the guard is dropped. Edits in quick succession are applied once,
    /// when the file has been quiet for [`DEFAULT_DEBOUNCE`]. An edit with
    /// a mistake changes nothing: the last good configuration stays. Every
    /// reload, good or bad, goes to the [`on_reload`](Self::on_reload)
    /// hooks.
    ///
    /// The file's directory is watched, not the file, so a file replaced
    /// whole (an editor's save, a renamed temporary file, a Kubernetes
    /// `ConfigMap` swapping its link) is followed; a reload happens when
    /// the file's text changed. The watch runs on a thread of its own:
    /// no async runtime is needed.
    ///
    /// # Errors
    ///
    /// A [`ConfigFileError`] when the file cannot be read or has mistakes
    /// the first time (nothing is watched then), or its directory cannot
    /// be watched.
    ///
    /// ```no_run
    /// use circuit_runtime::registry;
    ///
    /// registry().on_reload(|reload| match &reload.outcome {
    ///     Ok(changed) => eprintln!("breakers reconfigured: {changed:?}"),
    ///     Err(err) => eprintln!("configuration kept; the edit has mistakes:\n{err}"),
    /// });
    /// let _watch = registry().watch_toml_file("config/breakers.toml")?;
    /// // ... serve; edits to the file apply while `_watch` lives.
    /// # Ok::<(), circuit_runtime::ConfigFileError>(())
    /// ```
    pub fn watch_toml_file(
        &'static self,
        path: impl AsRef<Path>,
    ) -> Result<WatchGuard, ConfigFileError> {
        self.watch_toml_file_with(path, DEFAULT_DEBOUNCE)
    }

    /// [`watch_toml_file`](Self::watch_toml_file), applying an edit once
    /// the file has been quiet for `debounce`.
    ///
    /// # Errors
    ///
    /// As [`watch_toml_file`](Self::watch_toml_file).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let _watch = circuit_runtime::registry()
    ///     .watch_toml_file_with("config/breakers.toml", Duration::from_secs(1))?;
    /// # Ok::<(), circuit_runtime::ConfigFileError>(())
    /// ```
    pub fn watch_toml_file_with(
        &'static self,
        path: impl AsRef<Path>,
        debounce: Duration,
    ) -> Result<WatchGuard, ConfigFileError> {
        let path = path.as_ref().to_owned();
        let watch_error = |source: notify::Error| ConfigFileError::Watch {
            path: path.clone(),
            source: Arc::new(source),
        };
        let (sender, events) = mpsc::channel();
        let on_event = sender.clone();
        let mut file_events =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|event| !event.kind.is_access()) {
                    let _ = on_event.send(Message::Changed);
                }
            })
            .map_err(watch_error)?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        file_events
            .watch(&directory, RecursiveMode::NonRecursive)
            .map_err(watch_error)?;
        // Loaded once the directory is watched, so no edit falls between.
        let mut last_text = ConfigFileError::read(&path)?;
        self.load_file_text(&path, &last_text)?;
        let file = path.clone();
        let thread = std::thread::Builder::new()
            .name("circuit-config-watch".to_owned())
            .spawn(move || {
                while let Ok(Message::Changed) = events.recv() {
                    // Quiet for `debounce` first: the burst an editor's
                    // save makes is one reload.
                    loop {
                        match events.recv_timeout(debounce) {
                            Ok(Message::Changed) => {}
                            Err(RecvTimeoutError::Timeout) => break,
                            Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    // Other files in the directory, and saves that change
                    // nothing, are not reloads. A file that cannot be read
                    // is reported as such, and read again at the next event.
                    match ConfigFileError::read(&file) {
                        Ok(text) if text == last_text => {}
                        Ok(text) => {
                            let _ = self.load_file_text(&file, &text);
                            last_text = text;
                        }
                        Err(err) => {
                            last_text.clear();
                            let _ = self.report(Some(file.clone()), Err(err));
                        }
                    }
                }
            })
            .map_err(|source| watch_error(notify::Error::io(source)))?;
        Ok(WatchGuard {
            path,
            stop: sender,
            thread: Some(thread),
            watcher: Some(file_events),
        })
    }
}
