//! The program-wide side of the `metrics` feature, in a binary of its own
//! since both are global: a metric prefix, and a publisher thread feeding
//! the globally installed exporter for the global registry.

mod common;

use std::time::{Duration, Instant};

use circuit_runtime::{registry, set_metric_prefix, Config, MetricPrefixError, MetricsPublisher};
use metrics_exporter_prometheus::PrometheusBuilder;

#[test]
fn a_publisher_feeds_the_installed_exporter_under_the_prefix_until_dropped() {
    assert!(matches!(
        set_metric_prefix("shop-front"),
        Err(MetricPrefixError::Invalid { .. })
    ));
    set_metric_prefix("shop").unwrap();
    let err = set_metric_prefix("other").unwrap_err();
    assert_eq!(
        err.to_string(),
        "metric names are fixed already (the state gauge is `shop_circuit_breaker_state`): set \
         the prefix once, before the first metric is published"
    );

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    let payments = registry().get_or_create("publisher.payments", Config::default());
    payments.call(|| Ok::<_, ()>(())).unwrap();
    payments.force_open();

    // A long interval: the publisher publishes once as it starts, and
    // dropping it must not wait for the next round.
    let publisher = MetricsPublisher::start(registry(), Duration::from_secs(3600)).unwrap();
    let expected = [
        r#"shop_circuit_breaker_state{name="publisher.payments"} 3"#,
        r#"shop_circuit_breaker_calls_total{name="publisher.payments",result="success"} 1"#,
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scrape = handle.render();
        if expected.iter().all(|line| scrape.contains(line)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the publisher never published {expected:?}:\n{scrape}"
        );
        std::thread::yield_now();
    }
    common::returns_within(
        "dropping the publisher",
        Duration::from_secs(10),
        move || {
            drop(publisher);
        },
    );
}
