//! Checks the parsed attribute against the function and against the
//! runtime's ranges, before any code is generated.
//!
//! The ranges are those of `circuit_runtime::ConfigError`, word for word, so
//! a literal the attribute accepts never fails `ConfigBuilder::build` at run
//! time. A test in `tests/ui` pins each message.

use std::time::Duration;

use syn::{FnArg, Pat};

use crate::args::{example, Args, ConfigOption, Value};
use crate::errors::Errors;
use crate::item::Function;

/// The runtime's defaults that cross-option rules read when a key is absent.
const DEFAULT_WINDOW_SIZE: i128 = 10;
const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest `success_threshold` and `half_open_max_calls`
/// (`circuit_runtime::MAX_TRIAL_CALLS`).
const MAX_TRIAL_CALLS: i128 = 65_535;
/// `circuit_runtime::MAX_WINDOW_SIZE`.
const MAX_WINDOW_SIZE: i128 = 1_000_000;

/// Adds every mistake in `args` and `function` to `errors`.
pub fn check(args: &Args, function: Option<&Function>, errors: &mut Errors) {
    if let Some(name) = &args.name {
        if name.value().is_empty() {
            errors.push(syn::Error::new(
                name.span(),
                "`name` cannot be empty: write `name = \"quotes\"`, or leave `name` out to use \
                 the function's path",
            ));
        }
    }
    if let Some((config_key, path)) = &args.config {
        for option in &args.options {
            errors.push(syn::Error::new(
                option.key.span(),
                format!(
                    "`{key}` cannot be combined with `{config_key} = {path}`: set `{key}` in the \
                     `Config` that `{path}` returns, or remove `{config_key}`",
                    key = option.key,
                    path = quote::quote!(#path).to_string().replace(' ', ""),
                ),
            ));
        }
    }
    for option in &args.options {
        if let Err(err) = check_range(option) {
            errors.push(err);
        }
    }
    check_combinations(args, errors);
    if let Some(function) = function {
        check_function(args, function, errors);
    }
}

fn out_of_range(option: &ConfigOption, expected: &str) -> syn::Error {
    let key = &option.key;
    let got = &option.written;
    syn::Error::new_spanned(
        &option.tokens,
        format!(
            "`{key}` must be {expected}, got {got}: write e.g. `{key} = {}`",
            example(&key.to_string())
        ),
    )
}

fn check_range(option: &ConfigOption) -> syn::Result<()> {
    let key = option.key.to_string();
    match option.value {
        Value::Integer(value) => {
            let (max, expected) = match key.as_str() {
                "success_threshold" | "half_open_max_calls" => {
                    (MAX_TRIAL_CALLS, "between 1 and 65535")
                }
                "window_size" => (MAX_WINDOW_SIZE, "between 1 and 1000000"),
                _ => (i128::from(u32::MAX), "at least 1"),
            };
            if value < 1 {
                return Err(out_of_range(option, expected));
            }
            if value > max {
                let expected = if max == i128::from(u32::MAX) {
                    "at most 4294967295"
                } else {
                    expected
                };
                return Err(out_of_range(option, expected));
            }
        }
        Value::Number(value) => {
            let ok = match key.as_str() {
                "recovery_backoff" => value >= 1.0 && value.is_finite(),
                "jitter" => (0.0..=1.0).contains(&value),
                _ => value > 0.0 && value <= 1.0,
            };
            if !ok {
                let expected = match key.as_str() {
                    "recovery_backoff" => "at least 1.0",
                    "jitter" => "between 0 and 1",
                    _ => "greater than 0 and at most 1",
                };
                return Err(out_of_range(option, expected));
            }
        }
        Value::Duration(value) => {
            if value.is_zero() {
                return Err(out_of_range(option, "greater than zero"));
            }
        }
    }
    Ok(())
}

fn integer(args: &Args, key: &str) -> Option<i128> {
    match args.option(key)?.value {
        Value::Integer(value) => Some(value),
        _ => None,
    }
}

fn duration(args: &Args, key: &str) -> Option<Duration> {
    match args.option(key)?.value {
        Value::Duration(value) => Some(value),
        _ => None,
    }
}

/// The rules between options, as `ConfigBuilder::build` applies them.
fn check_combinations(args: &Args, errors: &mut Errors) {
    if let (Some(_), Some(duration)) = (args.option("window_size"), args.option("window_duration"))
    {
        errors.push(syn::Error::new(
            duration.key.span(),
            "`window_size` and `window_duration` cannot both be set: a breaker keeps either a \
             count window or a time window; remove one of them",
        ));
    }
    if let Some(rate) = args.option("slow_call_rate_threshold") {
        if args.option("slow_call_duration").is_none() {
            errors.push(syn::Error::new(
                rate.key.span(),
                "`slow_call_rate_threshold` needs `slow_call_duration` to say which calls are \
                 slow: add e.g. `slow_call_duration = \"2s\"`",
            ));
        }
    }
    if let Some(minimum) = args.option("minimum_calls") {
        let window = match integer(args, "window_size") {
            Some(size) => Some(size),
            None if args.option("window_duration").is_none() => Some(DEFAULT_WINDOW_SIZE),
            None => None,
        };
        if let (Some(minimum_calls), Some(window_size)) = (integer(args, "minimum_calls"), window) {
            if minimum_calls > window_size && window_size >= 1 {
                let default = if args.option("window_size").is_none() {
                    ", the default"
                } else {
                    ""
                };
                errors.push(syn::Error::new_spanned(
                    &minimum.tokens,
                    format!(
                        "`minimum_calls` ({minimum_calls}) must be at most `window_size` \
                         ({window_size}{default}), or the window never holds enough calls to \
                         judge a rate: lower `minimum_calls` or raise `window_size`"
                    ),
                ));
            }
        }
    }
    if let Some(max) = duration(args, "max_recovery_timeout") {
        let recovery = duration(args, "recovery_timeout").unwrap_or(DEFAULT_RECOVERY_TIMEOUT);
        if max < recovery && !max.is_zero() {
            let option = args.option("max_recovery_timeout").expect("present");
            let recovery = args.option("recovery_timeout").map_or_else(
                || "60s, the default".to_owned(),
                |option| option.written.clone(),
            );
            errors.push(syn::Error::new_spanned(
                &option.tokens,
                format!(
                    "`max_recovery_timeout` ({}) must be at least `recovery_timeout` \
                     ({recovery}): backoff only ever lengthens the open time; raise \
                     `max_recovery_timeout` or leave it out",
                    option.written
                ),
            ));
        }
    }
}

/// The rules that involve the function itself.
fn check_function(args: &Args, function: &Function, errors: &mut Errors) {
    if let Some(constness) = &function.sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[circuit_breaker]` cannot protect a `const fn`: a breaker reads and updates shared \
             state at run time; remove `const`",
        ));
    }
    if let Some((_, span)) = args.fallback_on {
        if args.fallback.is_none() {
            errors.push(syn::Error::new(
                span,
                "`fallback_on` needs a `fallback`: add `fallback = your_fallback_fn`",
            ));
        }
    }
    if args.fallback.is_some() {
        // The fallback is called with the function's arguments by name.
        for input in &function.sig.inputs {
            if let FnArg::Typed(typed) = input {
                if !matches!(&*typed.pat, Pat::Ident(ident) if ident.subpat.is_none()) {
                    errors.push(syn::Error::new_spanned(
                        &typed.pat,
                        "with a `fallback`, every argument needs a name, since the fallback is \
                         called with the same arguments: bind it to a name here and destructure \
                         it in the body",
                    ));
                }
            }
        }
    }
}
