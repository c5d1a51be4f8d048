//! Two replicas sharing breakers through a real Redis on loopback.

mod common;

use std::time::Duration;

use circuit_runtime::{Config, State};
use common::{eventually, RedisServer, Replica};

fn config(threshold: u32) -> Config {
    Config::builder()
        .failure_threshold(threshold)
        .recovery_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn failures_seen_by_one_replica_open_the_breaker_of_the_other() {
    let redis = RedisServer::start();
    let a = Replica::new(&redis.url(), "a", "shared.db", config(2));
    let b = Replica::new(&redis.url(), "b", "shared.db", config(2));
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 0 && b.shared.good_rounds() > 0
    });

    a.breaker("shared.db").record_failure();
    a.breaker("shared.db").record_failure();
    assert_eq!(a.breaker("shared.db").state(), State::Open);
    eventually("B opens", || b.breaker("shared.db").state() == State::Open);

    let left = b.breaker("shared.db").retry_after().unwrap();
    assert!(
        left <= Duration::from_secs(30),
        "A's open period, not a new one: {left:?}"
    );
    assert!(left > Duration::from_secs(20), "{left:?}");
    assert!(b.breaker("shared.db").try_acquire().is_err());
    assert_eq!(
        redis.command("HGET {cb:shared.db} gen").as_deref(),
        Some("1"),
        "one transition in Redis"
    );
}

#[test]
fn an_operators_force_open_and_reset_reach_every_replica() {
    let redis = RedisServer::start();
    let a = Replica::new(&redis.url(), "a", "shared.mail", config(5));
    let b = Replica::new(&redis.url(), "b", "shared.mail", config(5));
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 0 && b.shared.good_rounds() > 0
    });

    a.breaker("shared.mail").force_open();
    eventually("B is forced open", || {
        b.breaker("shared.mail").state() == State::ForcedOpen
    });
    b.breaker("shared.mail").reset();
    eventually("A is reset", || {
        a.breaker("shared.mail").state() == State::Closed
    });
    assert_eq!(
        redis.command("HGET {cb:shared.mail} gen").as_deref(),
        Some("2")
    );
}

#[test]
fn two_replicas_tripping_together_make_one_transition() {
    let redis = RedisServer::start();
    let a = Replica::new(&redis.url(), "a", "shared.cache", config(1));
    let b = Replica::new(&redis.url(), "b", "shared.cache", config(1));
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 0 && b.shared.good_rounds() > 0
    });
    let (breaker_a, breaker_b) = (a.breaker("shared.cache"), b.breaker("shared.cache"));
    std::thread::scope(|scope| {
        scope.spawn(|| breaker_a.record_failure());
        scope.spawn(|| breaker_b.record_failure());
    });
    let rounds = (a.shared.good_rounds(), b.shared.good_rounds());
    eventually("both publish and read again", || {
        a.shared.good_rounds() > rounds.0 + 2 && b.shared.good_rounds() > rounds.1 + 2
    });
    assert_eq!(
        redis.command("HGET {cb:shared.cache} gen").as_deref(),
        Some("1")
    );
    assert_eq!(breaker_a.state(), State::Open);
    assert_eq!(breaker_b.state(), State::Open);
}

#[test]
fn a_redis_that_dies_degrades_the_replicas_and_they_rejoin_when_it_returns() {
    let redis = RedisServer::start();
    let a = Replica::new(&redis.url(), "a", "shared.queue", config(1));
    let b = Replica::new(&redis.url(), "b", "shared.queue", config(1));
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 0 && b.shared.good_rounds() > 0
    });

    let port = redis.stop();
    // Calls go on without Redis: each one reads local atomics only.
    for _ in 0..1_000 {
        a.breaker("shared.queue")
            .call(|| Ok::<_, ()>(()))
            .expect("closed, Redis or not");
    }
    eventually("A reports itself degraded", || a.shared.is_degraded());
    assert!(a.shared.last_error().is_some());
    let health = a.registry.health();
    assert_eq!(health.degraded_circuits, ["shared.queue"], "in health");
    assert!(health.healthy, "deciding alone is not being down");
    // Decided alone while degraded, and not replayed later.
    a.breaker("shared.queue").record_failure();
    assert_eq!(a.breaker("shared.queue").state(), State::Open);

    let redis = RedisServer::start_on(port);
    eventually("A rejoins", || !a.shared.is_degraded());
    assert!(!a.breaker("shared.queue").is_degraded());
    eventually("B rejoins", || !b.shared.is_degraded());
    let rounds = b.shared.good_rounds();
    eventually("B reads again", || b.shared.good_rounds() > rounds + 2);
    assert_eq!(
        b.breaker("shared.queue").state(),
        State::Closed,
        "A's trip while degraded is not replayed"
    );

    a.breaker("shared.queue").reset();
    a.breaker("shared.queue").record_failure();
    eventually("a trip after the return reaches B", || {
        b.breaker("shared.queue").state() == State::Open
    });
    drop(redis);
}

#[test]
fn one_replica_at_a_time_runs_the_trial_of_a_shared_breaker() {
    let redis = RedisServer::start();
    let quick = || {
        Config::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_millis(500))
            .build()
            .unwrap()
    };
    let a = Replica::new(&redis.url(), "a", "shared.search", quick());
    let b = Replica::new(&redis.url(), "b", "shared.search", quick());
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 0 && b.shared.good_rounds() > 0
    });
    let (breaker_a, breaker_b) = (a.breaker("shared.search"), b.breaker("shared.search"));
    breaker_a.record_failure();
    eventually("B opens", || breaker_b.metrics().times_opened == 1);

    // Both ask for a trial until one gets it; it then holds it, unjudged.
    let mut trial = None;
    eventually("one replica gets the trial", || {
        if let Ok(permit) = breaker_a.try_acquire() {
            trial = Some(("a", permit));
        } else if let Ok(permit) = breaker_b.try_acquire() {
            trial = Some(("b", permit));
        }
        trial.is_some()
    });
    let (winner, permit) = trial.unwrap();
    let loser = if winner == "a" {
        &breaker_b
    } else {
        &breaker_a
    };
    let rounds = (a.shared.good_rounds(), b.shared.good_rounds());
    eventually("several rounds pass", || {
        a.shared.good_rounds() > rounds.0 + 5 && b.shared.good_rounds() > rounds.1 + 5
    });
    assert!(
        loser.try_acquire().is_err(),
        "{winner} holds the trial; the other waits"
    );
    assert_eq!(loser.state(), State::Open);

    permit.record_success();
    eventually("the other replica closes with the winner", || {
        loser.state() == State::Closed
    });
    assert!(loser.try_acquire().is_ok());
}

#[test]
fn a_slow_redis_slows_the_sync_and_no_call() {
    let redis = RedisServer::start();
    let proxy = common::SlowProxy::start(redis.port, Duration::from_millis(200));
    let slow = Replica::new(&proxy.url(), "slow", "shared.slow", config(1));
    let fast = Replica::new(&redis.url(), "fast", "shared.slow", config(1));
    eventually("both replicas reach Redis", || {
        slow.shared.good_rounds() > 0 && fast.shared.good_rounds() > 0
    });

    // A round through the proxy takes at least 200 ms; ten thousand calls
    // end inside one, so none of them waited on it.
    let breaker = slow.breaker("shared.slow");
    let rounds = slow.shared.good_rounds();
    for _ in 0..10_000 {
        breaker.call(|| Ok::<_, ()>(())).expect("closed");
    }
    assert!(
        slow.shared.good_rounds() <= rounds + 1,
        "ten thousand calls outlasted the sync's rounds"
    );

    // The slow replica's trip still reaches the other, late.
    breaker.record_failure();
    eventually("the trip crosses the slow link", || {
        fast.breaker("shared.slow").state() == State::Open
    });
}

#[test]
fn once_the_sync_stops_an_open_breaker_recovers_on_its_own() {
    let redis = RedisServer::start();
    let quick = Config::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let a = Replica::new(&redis.url(), "a", "shared.stopped", quick);
    eventually("A reaches Redis", || a.shared.good_rounds() > 0);
    let breaker = a.breaker("shared.stopped");
    drop(a.shared);
    breaker.record_failure();
    assert!(!breaker.trials_held(), "no lease to wait for");
    eventually("its own trial runs", || breaker.try_acquire().is_ok());
}

#[test]
fn failures_in_a_row_counted_across_replicas_trip_them_all() {
    let redis = RedisServer::start();
    let a = Replica::counting(&redis.url(), "a", "counted.db", config(4));
    let b = Replica::counting(&redis.url(), "b", "counted.db", config(4));
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 0 && b.shared.good_rounds() > 0
    });
    for replica in [&a, &b] {
        replica.breaker("counted.db").record_failure();
        replica.breaker("counted.db").record_failure();
    }
    assert_eq!(
        a.breaker("counted.db").state(),
        State::Closed,
        "two of four, alone"
    );
    eventually("both open on the cluster's four", || {
        a.breaker("counted.db").state() == State::Open
            && b.breaker("counted.db").state() == State::Open
    });
    assert_eq!(
        redis.command("HGET {cb:counted.db} gen").as_deref(),
        Some("1")
    );
}

#[test]
fn a_failure_rate_over_the_time_window_is_judged_on_every_replicas_calls() {
    let redis = RedisServer::start();
    let rated = || {
        Config::builder()
            .failure_threshold(100)
            .failure_rate_threshold(0.5)
            .window_duration(Duration::from_secs(10))
            .minimum_calls(4)
            .build()
            .unwrap()
    };
    let a = Replica::counting(&redis.url(), "a", "counted.api", rated());
    let b = Replica::counting(&redis.url(), "b", "counted.api", rated());
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 0 && b.shared.good_rounds() > 0
    });
    let (breaker_a, breaker_b) = (a.breaker("counted.api"), b.breaker("counted.api"));
    breaker_a.record_success();
    breaker_a.record_success();
    breaker_a.record_failure();
    breaker_b.record_failure();
    breaker_b.record_failure();
    assert_eq!(
        breaker_a.state(),
        State::Closed,
        "1 of 3, below the minimum, alone"
    );
    assert_eq!(
        breaker_b.state(),
        State::Closed,
        "2 of 2, below the minimum, alone"
    );
    eventually("3 failures of 5 calls across both open them", || {
        breaker_a.state() == State::Open && breaker_b.state() == State::Open
    });
}

#[test]
fn with_a_quorum_one_replicas_trip_stays_its_own_until_another_trips() {
    let redis = RedisServer::start();
    let replica = |id: &str| {
        Replica::built(&redis.url(), id, "quorum.db", config(1), |builder| {
            builder.share_transitions("quorum.db").quorum(2)
        })
    };
    let (a, b, c) = (replica("a"), replica("b"), replica("c"));
    eventually("the replicas reach Redis", || {
        [&a, &b, &c]
            .iter()
            .all(|replica| replica.shared.good_rounds() > 0)
    });
    a.breaker("quorum.db").record_failure();
    let rounds = c.shared.good_rounds();
    eventually("C reads several times", || {
        c.shared.good_rounds() > rounds + 5
    });
    assert_eq!(
        c.breaker("quorum.db").state(),
        State::Closed,
        "one trip is not a quorum"
    );
    assert_eq!(b.breaker("quorum.db").state(), State::Closed);

    b.breaker("quorum.db").record_failure();
    eventually("C opens on the second trip", || {
        c.breaker("quorum.db").state() == State::Open
    });
}

#[test]
fn a_reconfiguration_made_on_one_replica_reaches_every_replica() {
    let redis = RedisServer::start();
    let a = Replica::new(&redis.url(), "a", "shared.config", config(5));
    let b = Replica::new(&redis.url(), "b", "shared.config", config(5));
    eventually("both replicas reach Redis", || {
        a.shared.good_rounds() > 1 && b.shared.good_rounds() > 1
    });
    a.registry.configure("shared.config", config(2));
    eventually("B runs A's configuration", || {
        b.breaker("shared.config").config().failure_threshold() == 2
    });
    let rounds = a.shared.good_rounds();
    eventually("A reads several times", || {
        a.shared.good_rounds() > rounds + 3
    });
    assert_eq!(
        redis
            .command("HGET {cb:shared.config}:config version")
            .as_deref(),
        Some("1"),
        "applied on B, not published back"
    );
}

#[test]
fn a_damaged_key_of_one_name_does_not_stop_the_others() {
    let redis = RedisServer::start();
    let both = |builder: circuit_redis::SharedBreakersBuilder| {
        builder
            .share_transitions("damaged.one")
            .share_transitions("damaged.two")
    };
    let a = Replica::built(&redis.url(), "a", "damaged.two", config(1), both);
    let b = Replica::built(&redis.url(), "b", "damaged.two", config(1), both);
    a.registry.get_or_create("damaged.one", config(1));
    b.registry.get_or_create("damaged.one", config(1));
    // An operator's stray writes: one name's configuration key is a
    // string, and its state holds what no script wrote.
    assert_eq!(
        redis.command("SET {cb:damaged.one}:config oops").as_deref(),
        Some("+OK")
    );
    assert_eq!(
        redis
            .command("HSET {cb:damaged.one} gen abc open_until xyz")
            .as_deref(),
        Some(":2")
    );
    // A reconfiguration of the damaged name cannot be published; the
    // replica's other names go on.
    a.breaker("damaged.one").reconfigure(config(3));
    let rounds = (a.shared.good_rounds(), b.shared.good_rounds());
    eventually("both replicas' rounds stay good", || {
        a.shared.good_rounds() > rounds.0 + 2 && b.shared.good_rounds() > rounds.1 + 2
    });
    assert!(
        a.shared
            .last_error()
            .unwrap_or_default()
            .contains("damaged.one"),
        "{:?}",
        a.shared.last_error()
    );
    let refused = b.shared.last_error().unwrap_or_default();
    assert!(
        refused.contains("damaged.one") && refused.contains("WRONGTYPE"),
        "the damaged name is reported: {refused:?}"
    );

    a.breaker("damaged.two").record_failure();
    eventually("B opens the undamaged name", || {
        b.breaker("damaged.two").state() == State::Open
    });
    for _ in 0..3 {
        // Its failure threshold is 3 since the reconfiguration.
        a.breaker("damaged.one").record_failure();
    }
    assert_eq!(a.breaker("damaged.one").state(), State::Open);
    eventually("and the damaged one's transitions still reach B", || {
        b.breaker("damaged.one").state() == State::Open
    });
}
