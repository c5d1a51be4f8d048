//! The registry: the global one and local ones. Tests in this binary run in
//! parallel and share `registry()`, so those that use it pick names no other
//! test uses and only look at their own entries.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use circuit_runtime::{registry, Config, ManualClock, Registry, State};

fn tripping_config(clock: &ManualClock) -> Config {
    Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// The names in `names` that start with `prefix`.
fn own(names: Vec<String>, prefix: &str) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .collect()
}

#[test]
fn the_global_registry_is_one_instance() {
    assert!(std::ptr::eq(registry(), registry()));
    let breaker = registry().get_or_create("registry.global.one", Config::default());
    let again = registry().get("registry.global.one").unwrap();
    assert!(Arc::ptr_eq(&breaker, &again));
    let from_thread = std::thread::spawn(|| registry().get("registry.global.one"))
        .join()
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&breaker, &from_thread));
}

#[test]
fn get_or_create_returns_the_same_breaker_for_a_name() {
    let registry = Registry::new();
    let first = registry.get_or_create("db", Config::default());
    let second = registry.get_or_create("db", Config::default());
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(first.name(), "db");
    first.force_open();
    assert_eq!(
        second.state(),
        State::ForcedOpen,
        "one breaker, two handles"
    );
    assert!(registry.conflicts().is_empty(), "same config: no conflict");
}

#[test]
fn the_first_registration_wins() {
    let registry = Registry::new();
    let lenient = Config::builder().failure_threshold(10).build().unwrap();
    let strict = Config::builder().failure_threshold(1).build().unwrap();
    let first = registry.get_or_create("payments", lenient.clone());
    let second = registry.get_or_create("payments", strict.clone());
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(second.config(), lenient, "the later config is not applied");
    second.record_failure();
    assert_eq!(second.state(), State::Closed);

    let conflicts = registry.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].name, "payments");
    assert_eq!(conflicts[0].registered, lenient);
    assert_eq!(conflicts[0].requested, strict);

    registry.get_or_create("payments", strict.clone());
    assert_eq!(registry.conflicts().len(), 1, "each distinct request once");
    let other = Config::builder().failure_threshold(2).build().unwrap();
    registry.get_or_create("payments", other.clone());
    let conflicts = registry.conflicts();
    assert_eq!(conflicts.len(), 2);
    assert_eq!(conflicts[1].requested, other);
}

#[test]
fn the_first_registration_wins_in_the_global_registry() {
    let name = "registry.global.first-wins";
    let first = registry().get_or_create(name, Config::default());
    let strict = Config::builder().failure_threshold(1).build().unwrap();
    let second = registry().get_or_create(name, strict.clone());
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(second.config().failure_threshold(), 5);
    assert!(registry()
        .conflicts()
        .iter()
        .any(|c| c.name == name && c.requested == strict && c.registered == Config::default()));
}

#[test]
fn concurrent_registrations_of_one_name_share_one_breaker() {
    let registry = Registry::new();
    let threads = 8;
    let barrier = Barrier::new(threads);
    let breakers: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    registry.get_or_create("contended", Config::default())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(breakers.iter().all(|b| Arc::ptr_eq(b, &breakers[0])));
    assert_eq!(registry.names(), ["contended"]);
}

#[test]
fn get_finds_only_registered_names() {
    let registry = Registry::new();
    assert!(registry.get("missing").is_none());
    let created = registry.get_or_create("present", Config::default());
    assert!(Arc::ptr_eq(&registry.get("present").unwrap(), &created));
    assert!(registry.get("Present").is_none(), "names are exact");
    assert!(circuit_runtime::registry()
        .get("registry.never-registered")
        .is_none());
}

#[test]
fn names_are_sorted() {
    let registry = Registry::new();
    assert!(registry.names().is_empty());
    for name in ["search", "auth", "mail"] {
        registry.get_or_create(name, Config::default());
    }
    assert_eq!(registry.names(), ["auth", "mail", "search"]);
}

#[test]
fn a_cached_handle_stays_the_registrys_breaker() {
    let registry = Registry::new();
    let clock = ManualClock::new();
    let cached = registry.get_or_create("cached", tripping_config(&clock));
    for i in 0..100 {
        registry.get_or_create(&format!("filler-{i}"), Config::default());
    }
    cached.record_failure();
    assert_eq!(registry.get("cached").unwrap().state(), State::Open);
    assert!(registry.open_circuits().contains(&"cached".to_owned()));
}

#[test]
fn snapshots_show_each_breakers_name_state_metrics_and_config() {
    let registry = Registry::new();
    let clock = ManualClock::new();
    let config = tripping_config(&clock);
    let tripped = registry.get_or_create("b-tripped", config.clone());
    let healthy = registry.get_or_create("a-healthy", Config::default());
    healthy.call(|| Ok::<_, ()>(())).unwrap();
    let _ = tripped.call(|| Err::<(), _>(()));
    let _ = tripped.call(|| Ok::<_, ()>(()));

    let snapshots = registry.snapshots();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(snapshots[0].name, "a-healthy");
    assert_eq!(snapshots[0].state, State::Closed);
    assert_eq!(snapshots[0].metrics, healthy.metrics());
    assert_eq!(snapshots[0].metrics.successful_calls, 1);
    assert_eq!(snapshots[0].config, Config::default());

    assert_eq!(snapshots[1].name, "b-tripped");
    assert_eq!(snapshots[1].state, State::Open);
    assert_eq!(snapshots[1].metrics.failed_calls, 1);
    assert_eq!(snapshots[1].metrics.rejected_calls, 1);
    assert_eq!(snapshots[1].metrics.times_opened, 1);
    assert_eq!(snapshots[1].config, config);
}

#[test]
fn snapshots_of_the_global_registry_include_its_breakers() {
    let name = "registry.global.snapshot";
    registry()
        .get_or_create(name, Config::default())
        .force_open();
    let snapshot = registry()
        .snapshots()
        .into_iter()
        .find(|s| s.name == name)
        .expect("the breaker is in the snapshots");
    assert_eq!(snapshot.state, State::ForcedOpen);
}

#[test]
fn open_circuits_lists_open_and_forced_open_breakers() {
    let registry = Registry::new();
    let clock = ManualClock::new();
    let open = registry.get_or_create("open", tripping_config(&clock));
    let forced = registry.get_or_create("forced", Config::default());
    let half_open = registry.get_or_create("half-open", tripping_config(&clock));
    let disabled = registry.get_or_create("disabled", Config::default());
    registry.get_or_create("closed", Config::default());

    half_open.record_failure();
    clock.advance(Duration::from_secs(10));
    let _trial = half_open.try_acquire().unwrap();
    assert_eq!(half_open.state(), State::HalfOpen);
    open.record_failure();
    forced.force_open();
    disabled.disable();

    assert_eq!(registry.open_circuits(), ["forced", "open"]);
}

#[test]
fn open_circuits_of_the_global_registry() {
    let prefix = "registry.global.open.";
    let open = registry().get_or_create(&format!("{prefix}b"), Config::default());
    let closed = registry().get_or_create(&format!("{prefix}a"), Config::default());
    open.force_open();
    assert_eq!(
        own(registry().open_circuits(), prefix),
        [format!("{prefix}b")]
    );
    closed.force_open();
    open.reset();
    assert_eq!(
        own(registry().open_circuits(), prefix),
        [format!("{prefix}a")]
    );
}

#[test]
fn reset_all_resets_every_breaker_and_counts_those_not_closed() {
    let registry = Registry::new();
    let clock = ManualClock::new();
    let open = registry.get_or_create("open", tripping_config(&clock));
    let forced = registry.get_or_create("forced", Config::default());
    let disabled = registry.get_or_create("disabled", Config::default());
    let half_open = registry.get_or_create("half-open", tripping_config(&clock));
    let closed = registry.get_or_create("closed", Config::default());

    half_open.record_failure();
    clock.advance(Duration::from_secs(10));
    drop(half_open.try_acquire().unwrap());
    assert_eq!(half_open.state(), State::HalfOpen);
    open.record_failure();
    forced.force_open();
    disabled.disable();
    closed.record_failure();

    assert_eq!(registry.reset_all(), 4);
    assert!(registry
        .snapshots()
        .iter()
        .all(|snapshot| snapshot.state == State::Closed));
    assert!(registry.open_circuits().is_empty());
    assert_eq!(
        closed.metrics().consecutive_failures,
        0,
        "even a closed breaker is reset"
    );
    assert_eq!(registry.reset_all(), 0, "nothing left to reset");
    assert_eq!(Registry::new().reset_all(), 0);
}
