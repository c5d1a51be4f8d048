//! Configuration files: what they set, in which order, and every mistake
//! they can hold, each reported at its line and column with its table and
//! key, and changing nothing.
// Options are read back exactly as written: comparing them exactly is right.
#![allow(clippy::float_cmp)]

use std::time::Duration;

use circuit_runtime::{circuit_breaker, registry, Config, ConfigFileError, Registry};

#[path = "common/api.rs"]
mod api;
use api::ApiError;

/// The one mistake `text` holds, as the error prints it.
fn the_mistake(text: &str) -> String {
    let err = Registry::new()
        .load_toml(text)
        .expect_err("the file has a mistake");
    assert_eq!(err.problems().len(), 1, "one mistake: {err}");
    err.to_string()
}

#[test]
fn an_unknown_key_is_named_with_its_place_and_the_key_it_looks_like() {
    let message = the_mistake("[breakers.orders_db]\nfailure_treshold = 3\n");
    assert_eq!(
        message,
        "<string>:2:1: [breakers.orders_db] unknown key `failure_treshold`: did you mean \
         `failure_threshold`? write `failure_threshold = 5`"
    );
    let message = the_mistake("[defaults]\n\n  colour = \"red\"\n");
    assert!(
        message.starts_with(
            "<string>:3:3: [defaults] unknown key `colour`; the keys are: failure_threshold,"
        ),
        "{message}"
    );
}

#[test]
fn a_value_of_the_wrong_type_says_what_the_key_takes() {
    assert_eq!(
        the_mistake("[profiles.database]\nfailure_threshold = \"5\"\n"),
        "<string>:2:21: [profiles.database] `failure_threshold` takes a whole number: write \
         `failure_threshold = 5`"
    );
    assert_eq!(
        the_mistake("[defaults]\njitter = true\n"),
        "<string>:2:10: [defaults] `jitter` takes a number, without quotes: write `jitter = 0.1`"
    );
    assert_eq!(
        the_mistake("[defaults]\nrecovery_timeout = \"10\"\n"),
        "<string>:2:20: [defaults] `recovery_timeout`: \"10\" has no unit: write \"10s\" for \
         seconds or \"10ms\" for milliseconds (a bare integer without quotes, 10, also means \
         seconds)"
    );
}

#[test]
fn a_value_out_of_range_gives_the_allowed_values() {
    assert_eq!(
        the_mistake("[breakers.db]\nsuccess_threshold = 70000\n"),
        "<string>:2:21: [breakers.db] `success_threshold` must be between 1 and 65535, got \
         70000: write e.g. `success_threshold = 1`"
    );
    assert_eq!(
        the_mistake("[breakers.db]\nslow_call_duration = \"0ms\"\n"),
        "<string>:2:22: [breakers.db] `slow_call_duration` must be greater than zero, got \
         \"0ms\": write e.g. `slow_call_duration = \"2s\"`"
    );
}

#[test]
fn a_broken_rule_between_options_is_found_across_the_base_chain() {
    let message = the_mistake(
        "[profiles.windowed]\nwindow_size = 5\n\n[breakers.db]\nbase = \"windowed\"\nminimum_calls = 8\n",
    );
    assert_eq!(
        message,
        "<string>:6:1: [breakers.db] `minimum_calls` (8) must be at most `window_size` (5), or \
         the window never holds enough calls to judge a rate: lower `minimum_calls` or raise \
         `window_size`"
    );
    let message = the_mistake("[defaults]\nslow_call_rate_threshold = 0.5\n");
    assert_eq!(
        message,
        "<string>:2:1: [defaults] `slow_call_rate_threshold` needs `slow_call_duration` to say \
         which calls are slow: add e.g. `slow_call_duration = \"2s\"`"
    );
    assert_eq!(
        the_mistake("[breakers.db]\nwindow_size = 5\nwindow_duration = \"10s\"\n"),
        "<string>:3:1: [breakers.db] `window_size` and `window_duration` cannot both be set: a \
         breaker keeps either a count window or a time window; remove one of them"
    );
}

#[test]
fn a_missing_base_suggests_the_profile_it_looks_like() {
    assert_eq!(
        the_mistake("[profiles.database]\n[breakers.db]\nbase = \"databse\"\n"),
        "<string>:3:8: [breakers.db] `base = \"databse\"` names no profile: did you mean \
         `database`?"
    );
    assert_eq!(
        the_mistake("[breakers.db]\nbase = \"database\"\n"),
        "<string>:2:8: [breakers.db] `base = \"database\"` names no profile: the file has no \
         [profiles.<name>] table"
    );
}

#[test]
fn a_circular_base_is_named_link_by_link() {
    let err = Registry::new()
        .load_toml("[profiles.a]\nbase = \"b\"\n[profiles.b]\nbase = \"a\"\n")
        .unwrap_err();
    let first = &err.problems()[0];
    assert_eq!((first.line, first.column), (2, 8));
    assert_eq!(first.table.as_deref(), Some("profiles.a"));
    assert_eq!(first.key.as_deref(), Some("base"));
    assert_eq!(
        first.message,
        "`base` goes round in a circle: profiles.a -> profiles.b -> profiles.a; one of them must \
         not have a `base`"
    );
}

#[test]
fn a_misplaced_table_or_base_says_where_it_belongs() {
    assert_eq!(
        the_mistake("[breaker.db]\nfailure_threshold = 3\n"),
        "<string>:1:2: unknown table `breaker`: did you mean `breakers`?"
    );
    assert_eq!(
        the_mistake("[defaults]\nbase = \"database\"\n"),
        "<string>:2:1: [defaults] `base` is for profiles and breakers: [defaults] are what \
         everything is based on"
    );
    assert_eq!(
        the_mistake("breakers = 3\n"),
        "<string>:1:12: `breakers` must be a table, not an integer: write `[breakers.<name>]` \
         on a line of its own, with its options below it"
    );
}

#[test]
fn a_syntax_error_is_reported_at_its_line() {
    let err = Registry::new()
        .load_toml("[defaults]\nfailure_threshold = = 3\n")
        .unwrap_err();
    let problem = &err.problems()[0];
    assert_eq!(problem.line, 2, "{err}");
    assert!(problem.message.starts_with("not valid TOML: "), "{err}");
}

#[test]
fn every_mistake_is_reported_at_once_in_the_files_order() {
    let err = Registry::new()
        .load_toml(
            "[defaults]\njitter = 2.0\n[breakers.a]\nfailure_threshold = 0\n[breakers.b]\nbase = \"x\"\n",
        )
        .unwrap_err();
    let places: Vec<(usize, usize)> = err.problems().iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(places, [(2, 10), (4, 21), (6, 8)]);
    assert!(err
        .to_string()
        .starts_with("<string> has 3 mistakes:\n  <string>:2:10: [defaults]"));
}

#[test]
fn a_file_with_a_mistake_changes_nothing() {
    let registry = Registry::new();
    let db = registry.get_or_create("db", Config::default());
    registry
        .load_toml("[breakers.db]\nfailure_threshold = 3\n")
        .unwrap();
    assert_eq!(db.config().failure_threshold(), 3);
    let err = registry
        .load_toml("[breakers.db]\nfailure_threshold = 7\n[breakers.mail]\njitter = 9.0\n")
        .unwrap_err();
    assert_eq!(err.problems().len(), 1);
    assert_eq!(
        db.config().failure_threshold(),
        3,
        "the last good file stays"
    );
    let mail = registry.get_or_create("mail", Config::default());
    assert_eq!(mail.config().jitter(), 0.0);
}

#[test]
fn options_come_from_the_breaker_its_bases_the_code_the_defaults_then_the_built_ins() {
    let registry = Registry::new();
    let code = Config::builder()
        .failure_threshold(9)
        .success_threshold(4)
        .half_open_max_calls(4)
        .build()
        .unwrap();
    let db = registry.get_or_create("orders_db", code);
    registry
        .load_toml(
            r#"
            [defaults]
            recovery_timeout = "30s"
            half_open_max_calls = 2
            jitter = 0.1

            [profiles.base]
            failure_threshold = 5
            success_threshold = 3

            [profiles.database]
            base = "base"
            failure_threshold = 3

            [breakers.orders_db]
            base = "database"
            recovery_timeout = "45s"
            "#,
        )
        .unwrap();
    let config = db.config();
    assert_eq!(
        config.recovery_timeout(),
        Duration::from_secs(45),
        "its own"
    );
    assert_eq!(
        config.failure_threshold(),
        3,
        "its base over the base's base"
    );
    assert_eq!(
        config.success_threshold(),
        3,
        "its base's base over the code"
    );
    assert_eq!(
        config.half_open_max_calls(),
        4,
        "the code over the defaults"
    );
    assert_eq!(config.jitter(), 0.1, "the defaults over the built-ins");
    assert_eq!(
        config.half_open_timeout(),
        Duration::from_secs(60),
        "the built-ins"
    );
}

#[test]
fn a_name_the_file_stops_naming_goes_back_to_its_codes_options() {
    let registry = Registry::new();
    let db = registry.get_or_create(
        "db",
        Config::builder().failure_threshold(9).build().unwrap(),
    );
    let changed = registry
        .load_toml("[breakers.db]\nfailure_threshold = 3\n")
        .unwrap();
    assert_eq!(changed, ["db"]);
    assert_eq!(db.config().failure_threshold(), 3);
    let unchanged = registry
        .load_toml("[breakers.db]\nfailure_threshold = 3\n")
        .unwrap();
    assert!(unchanged.is_empty());
    let changed = registry
        .load_toml("[breakers.other]\njitter = 0.5\n")
        .unwrap();
    assert_eq!(changed, ["db"]);
    assert_eq!(db.config().failure_threshold(), 9);
}

#[test]
fn a_configured_name_keeps_its_configuration_over_the_file() {
    let registry = Registry::new();
    registry.configure(
        "db",
        Config::builder().failure_threshold(2).build().unwrap(),
    );
    let db = registry.get_or_create("db", Config::default());
    let changed = registry
        .load_toml("[breakers.db]\nfailure_threshold = 3\n")
        .unwrap();
    assert!(changed.is_empty());
    assert_eq!(db.config().failure_threshold(), 2);
}

#[test]
fn a_files_mistakes_name_the_file_and_a_missing_file_says_so() {
    let dir = std::env::temp_dir().join(format!("circuit-config-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("breakers.toml");
    std::fs::write(&path, "[breakers.db]\njitter = 2.0\n").unwrap();
    let err = Registry::new().load_toml_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:10: [breakers.db] `jitter` must be between 0 and 1, got 2.0: write e.g. \
             `jitter = 0.1`",
            path.display()
        )
    );
    let missing = dir.join("missing.toml");
    let err = Registry::new().load_toml_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigFileError::Read { .. }));
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read {}: ", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[circuit_breaker(name = "config_file.before", failure_threshold = 5)]
fn loaded_before() -> Result<(), ApiError> {
    Err(ApiError::Down)
}

#[circuit_breaker(name = "config_file.after", failure_threshold = 5)]
fn loaded_after() -> Result<(), ApiError> {
    Err(ApiError::Down)
}

/// The only test that loads a file into the global registry, which holds
/// one file at a time.
#[test]
fn the_file_wins_over_the_attribute_loaded_before_or_after_the_first_call() {
    assert_eq!(
        loaded_after(),
        Err(ApiError::Down),
        "under the attribute's 5"
    );
    let changed = registry()
        .load_toml(
            "[breakers.\"config_file.before\"]\nfailure_threshold = 1\n\
             [breakers.\"config_file.after\"]\nfailure_threshold = 2\n",
        )
        .unwrap();
    assert_eq!(changed, ["config_file.after"], "the running one");

    assert_eq!(loaded_before(), Err(ApiError::Down));
    assert_eq!(
        loaded_before(),
        Err(ApiError::Unavailable),
        "tripped at 1, not 5"
    );
    assert_eq!(
        loaded_after(),
        Err(ApiError::Down),
        "the second failure trips it"
    );
    assert_eq!(loaded_after(), Err(ApiError::Unavailable));
}
