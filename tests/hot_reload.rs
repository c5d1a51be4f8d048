//! Hot reload: a real file in a temporary directory, edited while a watch
//! runs, and the reloads its hook reports. Each test has a registry and a
//! directory of its own. Waits are for file events, bounded, never for time
//! to pass.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use circuit_runtime::{Config, Registry, Reload};

/// Long enough for any file event on a loaded machine; a test that waits
/// this long has failed.
const EVENT_WAIT: Duration = Duration::from_secs(20);

struct Scene {
    registry: &'static Registry,
    reloads: Receiver<Reload>,
    file: PathBuf,
    dir: PathBuf,
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A registry whose reloads arrive on a channel, and a file holding `text`.
fn scene(test_name: &str, text: &str) -> Scene {
    let dir = std::env::temp_dir().join(format!(
        "circuit-hot-reload-{}-{test_name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("breakers.toml");
    std::fs::write(&file, text).unwrap();
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let (sender, reloads) = mpsc::channel();
    registry.on_reload(move |reload| {
        let _ = sender.send(reload.clone());
    });
    Scene {
        registry,
        reloads,
        file,
        dir,
    }
}

impl Scene {
    fn next_reload(&self) -> Reload {
        self.reloads
            .recv_timeout(EVENT_WAIT)
            .expect("the edit is reloaded")
    }

    /// Replaces the file whole, as editors and deploy tools do.
    fn replace(&self, text: &str) {
        let temporary = self.dir.join(".breakers.toml.tmp");
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, &self.file).unwrap();
    }
}

fn threshold(registry: &Registry, name: &str) -> u32 {
    registry.get(name).unwrap().config().failure_threshold()
}

#[test]
fn an_edit_is_applied_to_running_breakers() {
    let scene = scene("edit", "[breakers.db]\nfailure_threshold = 3\n");
    scene.registry.get_or_create("db", Config::default());
    let _watch = scene.registry.watch_toml_file(&scene.file).unwrap();
    let first = scene.next_reload();
    assert_eq!(
        first.outcome.unwrap(),
        ["db"],
        "loaded when the watch starts"
    );
    assert_eq!(threshold(scene.registry, "db"), 3);

    // Replaced whole: a write in place could be seen half done (empty) by
    // a reload on a stalled machine, which is a valid file of its own.
    scene.replace("[breakers.db]\nfailure_threshold = 1\n");
    let reload = scene.next_reload();
    assert_eq!(reload.file.as_deref(), Some(scene.file.as_path()));
    assert_eq!(reload.outcome.unwrap(), ["db"]);
    assert_eq!(threshold(scene.registry, "db"), 1);
}

#[test]
fn a_bad_edit_keeps_the_last_good_configuration_and_is_reported() {
    let scene = scene("bad", "[breakers.db]\nfailure_threshold = 3\n");
    scene.registry.get_or_create("db", Config::default());
    let _watch = scene.registry.watch_toml_file(&scene.file).unwrap();
    scene.next_reload();

    scene.replace("[breakers.db]\nfailure_threshold = 2\njitter = 5.0\n");
    let err = scene.next_reload().outcome.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:10: [breakers.db] `jitter` must be between 0 and 1, got 5.0: write e.g. \
             `jitter = 0.1`",
            scene.file.display()
        )
    );
    assert_eq!(
        threshold(scene.registry, "db"),
        3,
        "nothing of the bad edit applied"
    );

    scene.replace("[breakers.db]\nfailure_threshold = 2\njitter = 0.5\n");
    assert_eq!(scene.next_reload().outcome.unwrap(), ["db"]);
    assert_eq!(threshold(scene.registry, "db"), 2);
}

#[test]
fn a_burst_of_writes_is_reloaded_once_it_is_quiet() {
    let scene = scene("burst", "[breakers.db]\nfailure_threshold = 1\n");
    scene.registry.get_or_create("db", Config::default());
    let _watch = scene
        .registry
        .watch_toml_file_with(&scene.file, Duration::from_millis(300))
        .unwrap();
    scene.next_reload();
    for threshold in 2..=6 {
        std::fs::write(
            &scene.file,
            format!("[breakers.db]\nfailure_threshold = {threshold}\n"),
        )
        .unwrap();
    }
    let mut reloads = 0;
    // A reload may catch a write half done (and report it): only the count
    // of reloads and the final options matter here.
    while threshold(scene.registry, "db") != 6 {
        scene.next_reload();
        reloads += 1;
    }
    assert!(reloads < 5, "five writes in a burst took {reloads} reloads");
}

#[test]
fn a_half_written_or_missing_file_is_reported_and_read_again() {
    let scene = scene("missing", "[breakers.db]\nfailure_threshold = 3\n");
    scene.registry.get_or_create("db", Config::default());
    let _watch = scene.registry.watch_toml_file(&scene.file).unwrap();
    scene.next_reload();
    std::fs::remove_file(&scene.file).unwrap();
    let err = scene.next_reload().outcome.unwrap_err();
    assert!(err.to_string().starts_with("cannot read "), "{err}");
    assert_eq!(threshold(scene.registry, "db"), 3);
    scene.replace("[breakers.db]\nfailure_threshold = 3\n");
    assert_eq!(
        scene.next_reload().outcome.unwrap(),
        Vec::<String>::new(),
        "same as before"
    );
}

#[test]
fn a_file_with_a_mistake_is_not_watched() {
    let scene = scene("initial", "[breakers.db]\nfailure_threshold = 0\n");
    let err = scene.registry.watch_toml_file(&scene.file).unwrap_err();
    assert_eq!(err.problems().len(), 1);
    assert!(
        scene.next_reload().outcome.is_err(),
        "reported all the same"
    );
    let err = scene
        .registry
        .watch_toml_file(Path::new("/nonexistent/breakers.toml"))
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent"), "{err}");
}

#[test]
fn dropping_the_guard_stops_the_watch() {
    let scene = scene("drop", "[breakers.db]\nfailure_threshold = 3\n");
    scene.registry.get_or_create("db", Config::default());
    let watch = scene
        .registry
        .watch_toml_file_with(&scene.file, Duration::from_millis(10))
        .unwrap();
    scene.next_reload();
    drop(watch);
    std::fs::write(&scene.file, "[breakers.db]\nfailure_threshold = 1\n").unwrap();
    // Ten times the debounce: a watch still running would have reloaded.
    match scene.reloads.recv_timeout(Duration::from_millis(100)) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("no reload after the guard is dropped, got {other:?}"),
    }
    assert_eq!(threshold(scene.registry, "db"), 3);
}
