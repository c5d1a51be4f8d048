//! `#[circuit_breaker]` on a trait's default methods: without a `name`,
//! each implementing type gets its own breaker, named after that type;
//! with one, they share it. Every test uses its own trait, so its breaker
//! names are its own: tests run in parallel.

use std::sync::{Arc, Barrier};
use std::thread;

use circuit_runtime::{circuit_breaker, registry, State};

#[path = "common/api.rs"]
mod api;
use api::{registered, ApiError};

struct Primary;
struct Replica;

trait Source {
    fn label(&self) -> &'static str;

    #[circuit_breaker(failure_threshold = 1, recovery_timeout = "1h")]
    fn fetch(&self, fail: bool) -> Result<&'static str, ApiError> {
        if fail {
            return Err(ApiError::Down);
        }
        Ok(self.label())
    }
}

impl Source for Primary {
    fn label(&self) -> &'static str {
        "primary"
    }
}

impl Source for Replica {
    fn label(&self) -> &'static str {
        "replica"
    }
}

#[test]
fn a_trait_default_method_gets_one_breaker_per_implementing_type() {
    assert_eq!(Primary.fetch(true), Err(ApiError::Down));
    assert_eq!(Primary.fetch(false), Err(ApiError::Unavailable));

    assert_eq!(
        Replica.fetch(false),
        Ok("replica"),
        "Primary's open breaker does not reject Replica's calls"
    );

    let primary = registered(concat!(module_path!(), "::Primary::fetch"));
    let replica = registered(concat!(module_path!(), "::Replica::fetch"));
    assert!(!Arc::ptr_eq(&primary, &replica));
    assert_eq!(primary.state(), State::Open);
    assert_eq!(replica.state(), State::Closed);
    assert_eq!(replica.metrics().successful_calls, 1);
}

trait AsyncSource {
    fn label(&self) -> &'static str;

    #[circuit_breaker(failure_threshold = 1, recovery_timeout = "1h")]
    async fn fetch_async(&self, fail: bool) -> Result<&'static str, ApiError> {
        if fail {
            return Err(ApiError::Down);
        }
        Ok(self.label())
    }
}

impl AsyncSource for Primary {
    fn label(&self) -> &'static str {
        "primary"
    }
}

impl AsyncSource for Replica {
    fn label(&self) -> &'static str {
        "replica"
    }
}

#[test]
fn an_async_trait_default_method_gets_one_breaker_per_implementing_type() {
    futures::executor::block_on(async {
        assert_eq!(Replica.fetch_async(true).await, Err(ApiError::Down));
        assert_eq!(Replica.fetch_async(false).await, Err(ApiError::Unavailable));

        assert_eq!(
            Primary.fetch_async(false).await,
            Ok("primary"),
            "Replica's open breaker does not reject Primary's calls"
        );
    });

    let primary = registered(concat!(module_path!(), "::Primary::fetch_async"));
    let replica = registered(concat!(module_path!(), "::Replica::fetch_async"));
    assert!(!Arc::ptr_eq(&primary, &replica));
    assert_eq!(primary.state(), State::Closed);
    assert_eq!(replica.state(), State::Open);
}

trait SharedSource {
    #[circuit_breaker(
        name = "trait_methods.shared",
        failure_threshold = 1,
        recovery_timeout = "1h"
    )]
    fn fetch_shared(&self, fail: bool) -> Result<(), ApiError> {
        if fail {
            return Err(ApiError::Down);
        }
        Ok(())
    }
}

impl SharedSource for Primary {}
impl SharedSource for Replica {}

#[test]
fn a_trait_default_method_with_a_name_shares_its_breaker_among_implementing_types() {
    assert_eq!(Primary.fetch_shared(true), Err(ApiError::Down));
    assert_eq!(
        Replica.fetch_shared(false),
        Err(ApiError::Unavailable),
        "Primary's failure opened the breaker Replica shares"
    );
    assert_eq!(registered("trait_methods.shared").state(), State::Open);
    assert!(registry()
        .get(concat!(module_path!(), "::Replica::fetch_shared"))
        .is_none());
}

struct Client<T>(T);

impl<T: Clone> Client<T> {
    #[circuit_breaker(failure_threshold = 1, recovery_timeout = "1h")]
    fn lookup(&self, fail: bool) -> Result<T, ApiError> {
        if fail {
            return Err(ApiError::Down);
        }
        Ok(self.0.clone())
    }
}

#[test]
fn a_generic_inherent_method_shares_one_breaker_across_instantiations() {
    assert_eq!(Client(7_u8).lookup(false), Ok(7));
    assert_eq!(
        Client(String::from("b")).lookup(false),
        Ok(String::from("b"))
    );
    let shared = registered(concat!(module_path!(), "::Client::lookup"));
    assert_eq!(shared.metrics().successful_calls, 2);

    assert_eq!(Client(String::from("c")).lookup(true), Err(ApiError::Down));
    assert_eq!(
        Client(8_u8).lookup(false),
        Err(ApiError::Unavailable),
        "a failure through Client<String> opened Client<u8>'s breaker"
    );
    assert_eq!(shared.state(), State::Open);
}

trait Counted {
    #[circuit_breaker]
    fn count(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

struct North;
struct South;
struct East;
struct West;

impl Counted for North {}
impl Counted for South {}
impl Counted for East {}
impl Counted for West {}

#[test]
fn concurrent_first_calls_through_several_types_each_reach_their_own_breaker() {
    const THREADS_PER_TYPE: u64 = 4;
    const CALLS: u64 = 500;
    let types: [&(dyn Counted + Sync); 4] = [&North, &South, &East, &West];
    let start = Barrier::new(types.len() * usize::try_from(THREADS_PER_TYPE).unwrap());
    thread::scope(|scope| {
        for &counted in &types {
            for _ in 0..THREADS_PER_TYPE {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    for _ in 0..CALLS {
                        counted.count().unwrap();
                    }
                });
            }
        }
    });

    let names = [
        concat!(module_path!(), "::North::count"),
        concat!(module_path!(), "::South::count"),
        concat!(module_path!(), "::East::count"),
        concat!(module_path!(), "::West::count"),
    ];
    for name in names {
        assert_eq!(
            registered(name).metrics().successful_calls,
            THREADS_PER_TYPE * CALLS,
            "every call through {name} and no other"
        );
    }
}
