//! Keyed breakers: one breaker per dependency instance, through the
//! attribute's `key = ...` and through `Registry::keyed`.

use std::sync::{Arc, Mutex};

use circuit_runtime::{
    circuit_breaker, registry, CircuitOpenError, Config, Event, KeyLimits, Registry, State,
};

#[derive(Clone, Debug, PartialEq)]
enum FetchError {
    Down,
    Unavailable(String),
}

impl From<CircuitOpenError> for FetchError {
    fn from(open: CircuitOpenError) -> Self {
        FetchError::Unavailable(open.name().to_owned())
    }
}

/// One client type talking to many hosts: the trap a single breaker per
/// function falls into.
struct Client {
    host: String,
}

impl Client {
    fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
        }
    }

    #[circuit_breaker(name = "keyed.hosts", key = self.host, failure_threshold = 2)]
    fn fetch(&self, healthy: bool) -> Result<String, FetchError> {
        if healthy {
            Ok(self.host.clone())
        } else {
            Err(FetchError::Down)
        }
    }

    #[circuit_breaker(name = "keyed.async_hosts", key = self.host, failure_threshold = 2)]
    async fn fetch_async(&self, healthy: bool) -> Result<String, FetchError> {
        std::future::ready(()).await;
        if healthy {
            Ok(self.host.clone())
        } else {
            Err(FetchError::Down)
        }
    }
}

#[test]
fn two_hosts_behind_one_client_type_trip_independently() {
    let (a, b) = (Client::new("a.example:443"), Client::new("b.example:443"));
    assert_eq!(a.fetch(false), Err(FetchError::Down));
    assert_eq!(a.fetch(false), Err(FetchError::Down));

    assert_eq!(
        a.fetch(true),
        Err(FetchError::Unavailable("keyed.hosts/a.example:443".into())),
        "host A's breaker is open"
    );
    assert_eq!(
        b.fetch(true),
        Ok("b.example:443".into()),
        "host B is not punished for A"
    );
    assert_eq!(
        registry().get("keyed.hosts/a.example:443").unwrap().state(),
        State::Open
    );
    assert_eq!(
        registry().get("keyed.hosts/b.example:443").unwrap().state(),
        State::Closed
    );
}

#[test]
fn async_keyed_calls_trip_per_host_too() {
    futures::executor::block_on(async {
        let (a, b) = (Client::new("a"), Client::new("b"));
        for _ in 0..2 {
            assert_eq!(a.fetch_async(false).await, Err(FetchError::Down));
        }
        assert_eq!(
            a.fetch_async(true).await,
            Err(FetchError::Unavailable("keyed.async_hosts/a".into()))
        );
        assert_eq!(b.fetch_async(true).await, Ok("b".into()));
    });
}

#[circuit_breaker(name = "keyed.topics", key = topic, max_keys = 2, failure_threshold = 1)]
fn publish(topic: &str, healthy: bool) -> Result<(), FetchError> {
    if healthy {
        Ok(())
    } else {
        Err(FetchError::Down)
    }
}

#[test]
fn keys_beyond_max_keys_share_the_overflow_breaker() {
    publish("orders", true).unwrap();
    publish("payments", true).unwrap();
    publish("audit", true).unwrap();
    publish("metrics", false).unwrap_err();

    let names: Vec<String> = registry()
        .names()
        .into_iter()
        .filter(|name| name.starts_with("keyed.topics/"))
        .collect();
    assert_eq!(
        names,
        [
            "keyed.topics/_overflow",
            "keyed.topics/orders",
            "keyed.topics/payments"
        ]
    );
    assert_eq!(
        publish("audit", true),
        Err(FetchError::Unavailable("keyed.topics/_overflow".into())),
        "every key beyond the bound shares one breaker"
    );
    assert_eq!(publish("orders", true), Ok(()));
}

#[test]
fn the_first_overflowing_key_is_announced_once() {
    let registry = Registry::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    registry.on_event(move |event: &Event| {
        if let Event::KeyOverflow(overflow) = event {
            sink.lock().unwrap().push(event.to_string());
            assert_eq!(overflow.max_keys, 1);
        }
    });
    let tenants = registry.keyed_with("tenants", Config::default(), KeyLimits::new().max_keys(1));
    for tenant in ["a", "b", "c", "b"] {
        tenants.get(tenant);
    }
    assert_eq!(
        *events.lock().unwrap(),
        ["circuit breaker 'tenants/_overflow' takes the keys beyond the first 1, from key 'b' on"]
    );
    assert_eq!(tenants.len(), 1);
}

#[test]
fn keys_are_found_by_their_text_whatever_their_type() {
    let registry = Registry::new();
    let shards = registry.keyed("shards", Config::default());
    let seven = shards.get(&7_u8);
    assert!(Arc::ptr_eq(&seven, &shards.get("7")));
    assert!(Arc::ptr_eq(&seven, &shards.get(&String::from("7"))));
    assert!(Arc::ptr_eq(&seven, &shards.get(&format_args!("{}", 7))));
    assert!(!Arc::ptr_eq(&seven, &shards.get("07")));
    assert_eq!(shards.len(), 2);
}

#[test]
fn every_handle_of_a_name_shares_its_breakers() {
    let registry = Registry::new();
    let first = registry.keyed("topics", Config::default());
    let second = registry.keyed(
        "topics",
        Config::builder().failure_threshold(1).build().unwrap(),
    );
    assert!(Arc::ptr_eq(&first.get("orders"), &second.get("orders")));
    assert_eq!(
        second.get("orders").config().failure_threshold(),
        5,
        "the first registration's configuration"
    );
    let conflicts = registry.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        (conflicts[0].name.as_str(), conflicts[0].differing.clone()),
        ("topics", vec!["failure_threshold"])
    );
}

#[test]
fn each_key_is_seen_by_snapshots_and_health_like_any_breaker() {
    let registry = Registry::new();
    let hosts = registry.keyed("hosts", Config::default());
    hosts.get("a").force_open();
    hosts.get("b");
    let health = registry.health();
    assert!(!health.healthy);
    assert_eq!(health.open_circuits, ["hosts/a"]);
    let names: Vec<&str> = health.circuits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["hosts/a", "hosts/b"]);
}

#[test]
fn configuring_the_keyed_name_configures_every_key_and_a_key_alone_wins() {
    let registry = Registry::new();
    let hosts = registry.keyed("hosts", Config::default());
    let (a, b) = (hosts.get("a"), hosts.get("b"));

    let every = Config::builder().failure_threshold(2).build().unwrap();
    registry.configure("hosts", every);
    assert_eq!(a.config().failure_threshold(), 2, "a running key, in place");
    assert_eq!(b.config().failure_threshold(), 2);
    assert_eq!(
        hosts.get("c").config().failure_threshold(),
        2,
        "a key made later"
    );

    let only_b = Config::builder().failure_threshold(9).build().unwrap();
    registry.configure("hosts/b", only_b);
    registry.configure(
        "hosts",
        Config::builder().failure_threshold(3).build().unwrap(),
    );
    assert_eq!(a.config().failure_threshold(), 3);
    assert_eq!(
        b.config().failure_threshold(),
        9,
        "configured by its own name"
    );
}

#[test]
fn a_removed_key_gets_a_fresh_breaker_on_its_next_use() {
    let registry = Registry::new();
    let hosts = registry.keyed("hosts", Config::default());
    let old = hosts.get("a");
    old.force_open();
    let removed = registry.remove("hosts/a").unwrap();
    assert!(Arc::ptr_eq(&old, &removed));

    let fresh = hosts.get("a");
    assert!(!Arc::ptr_eq(&old, &fresh));
    assert_eq!(fresh.state(), State::Closed);
    assert!(Arc::ptr_eq(&fresh, &registry.get("hosts/a").unwrap()));
    assert_eq!(hosts.len(), 1, "the same key, not a new one");
}

#[test]
fn a_key_replaced_with_another_clock_is_followed() {
    let registry = Registry::new();
    let hosts = registry.keyed("hosts", Config::default());
    let old = hosts.get("a");
    let clock = circuit_runtime::ManualClock::new();
    registry.configure("hosts/a", Config::builder().clock(clock).build().unwrap());
    let fresh = hosts.get("a");
    assert!(!Arc::ptr_eq(&old, &fresh));
    assert!(Arc::ptr_eq(&fresh, &registry.get("hosts/a").unwrap()));
}

#[test]
fn a_configuration_file_targets_every_key_or_one() {
    let registry = Registry::new();
    let hosts = registry.keyed("hosts", Config::default());
    let (a, b) = (hosts.get("a"), hosts.get("b"));
    let changed = registry
        .load_toml(
            r#"
            [breakers.hosts]
            failure_threshold = 2

            [breakers."hosts/b"]
            recovery_timeout = "5s"
            "#,
        )
        .unwrap();
    assert_eq!(changed, ["hosts/a", "hosts/b"]);
    assert_eq!(a.config().failure_threshold(), 2);
    assert_eq!(
        b.config().failure_threshold(),
        2,
        "the name's table under its own"
    );
    assert_eq!(
        b.config().recovery_timeout(),
        std::time::Duration::from_secs(5)
    );
    assert_eq!(
        a.config().recovery_timeout(),
        std::time::Duration::from_secs(60)
    );
    assert_eq!(
        hosts.get("c").config().failure_threshold(),
        2,
        "a key made later"
    );
}

#[test]
fn concurrent_first_uses_of_one_key_make_one_breaker() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let hosts = registry.keyed_with("hosts", Config::default(), KeyLimits::new().max_keys(4));
    let breakers: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let hosts = hosts.clone();
                scope.spawn(move || (0..8).map(|key| hosts.get(&key)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for other in &breakers[1..] {
        for (mine, theirs) in breakers[0].iter().zip(other) {
            assert!(Arc::ptr_eq(mine, theirs));
        }
    }
    assert_eq!(hosts.len(), 4, "never more keys than the bound");
    assert_eq!(registry.names().len(), 5, "four keys and the overflow");
}

#[test]
fn two_first_uses_of_one_key_never_push_another_key_to_the_overflow() {
    for round in 0..200 {
        let registry = Registry::new();
        let overflows = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&overflows);
        registry.on_event(move |event: &Event| {
            if matches!(event, Event::KeyOverflow(_)) {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let family = registry.keyed_with("race", Config::default(), KeyLimits::new().max_keys(2));
        let barrier = std::sync::Barrier::new(3);
        std::thread::scope(|scope| {
            for key in ["same", "same", "other"] {
                let (family, barrier) = (&family, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    assert_eq!(family.get(key).name(), format!("race/{key}"));
                });
            }
        });
        assert_eq!(
            overflows.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "round {round}"
        );
        assert_eq!(family.len(), 2);
    }
}

#[test]
fn a_replaced_overflow_breaker_is_followed() {
    let registry = Registry::new();
    let family = registry.keyed_with("spill", Config::default(), KeyLimits::new().max_keys(1));
    family.get("a");
    let old = family.get("b");
    assert_eq!(old.name(), "spill/_overflow");
    let fresh = registry.replace("spill/_overflow", Config::default());
    assert!(Arc::ptr_eq(&family.get("c"), &fresh));
    registry.remove("spill/_overflow");
    let again = family.get("d");
    assert!(Arc::ptr_eq(
        &again,
        &registry.get("spill/_overflow").unwrap()
    ));
}

#[test]
fn a_key_longer_than_max_key_len_shares_the_overflow_breaker() {
    let registry = Registry::new();
    let family = registry.keyed("long", Config::default());
    let long = "k".repeat(circuit_runtime::MAX_KEY_LEN + 1);
    assert_eq!(family.get(&long).name(), "long/_overflow");
    let longest = "k".repeat(circuit_runtime::MAX_KEY_LEN);
    assert_eq!(family.get(&longest).name(), format!("long/{longest}"));
}

#[test]
fn removing_the_keyed_name_keeps_its_configuration() {
    let registry = Registry::new();
    let strict = Config::builder().failure_threshold(1).build().unwrap();
    registry.keyed("kept", strict).get("a");
    assert!(registry.remove("kept").is_none());
    let b = registry.keyed("kept", Config::default()).get("b");
    assert_eq!(b.config().failure_threshold(), 1);
}

#[test]
fn a_breaker_registered_by_a_keys_name_first_joins_the_keyed_name() {
    let registry = Registry::new();
    let early = registry.get_or_create("hosts/a", Config::default());
    let family = registry.keyed("hosts", Config::default());
    assert!(Arc::ptr_eq(&early, &family.get("a")));
    registry.configure(
        "hosts",
        Config::builder().failure_threshold(9).build().unwrap(),
    );
    assert_eq!(early.config().failure_threshold(), 9);
}

#[test]
fn dropping_a_registry_frees_its_keyed_breakers() {
    let weak = {
        let registry = Registry::new();
        let family = registry.keyed("freed", Config::default());
        Arc::downgrade(&family.get("a"))
    };
    assert!(weak.upgrade().is_none());
}
