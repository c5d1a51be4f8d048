//! Checks the parsed attribute against the function and against the
//! option table, before any code is generated.
//!
//! The option table (`circuit-spec`) is the one `ConfigBuilder::build`
//! checks at run time, so a literal the attribute accepts never fails
//! there. A test in `tests/ui` pins each message.

use circuit_spec::{Key, Problem, Settings, Value};
use syn::{FnArg, Pat};

use crate::args::Args;
use crate::errors::Errors;
use crate::item::Function;

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
    check_key(args, errors);
    check_options(args, errors);
    check_timeout(args, function, errors);
    if let Some(retry) = function.and_then(|function| {
        function
            .attrs
            .iter()
            .find(|attr| crate::retry::is_retry(attr))
    }) {
        errors.push(syn::Error::new_spanned(
            retry,
            "write `#[retry]` above `#[circuit_breaker]`, not below it: retries go around the \
             breaker, so each attempt is recorded by it and a rejection ends them",
        ));
    }
    if let Some(function) = function {
        check_function(args, function, errors);
    }
}

/// Every value out of range and every broken rule between options, as the
/// option table judges them (`ConfigBuilder::build` asks the same table),
/// each spanned where the user fixes it.
fn check_options(args: &Args, errors: &mut Errors) {
    let mut settings = Settings::new();
    for option in &args.options {
        settings.set(option.option, option.value);
    }
    // Values as the user wrote them: `2.0`, `"1m"` with its quotes.
    let written = |key: Key, value: Value| {
        args.option(key)
            .map_or_else(|| value.to_string(), |option| option.written.clone())
    };
    // In the order the keys are written, as the user reads them.
    let mut problems = settings.problems();
    problems.sort_by_key(|problem| {
        args.options
            .iter()
            .position(|option| option.option == problem.key())
    });
    for problem in problems {
        let option = args
            .option(problem.key())
            .expect("problems name options that are set");
        let message = problem.explain(written);
        errors.push(match problem {
            // About the key's presence, not its value.
            Problem::ConflictingWindows | Problem::SlowCallRateWithoutDuration => {
                syn::Error::new(option.key.span(), message)
            }
            _ => syn::Error::new_spanned(&option.tokens, message),
        });
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

/// `key` needs a `name` to put the keys under; `max_keys` bounds a `key`.
fn check_key(args: &Args, errors: &mut Errors) {
    if let (Some(key), None) = (&args.key, &args.name) {
        errors.push(syn::Error::new_spanned(
            key,
            "`key` needs a `name`: each key's breaker is called `<name>/<key>`; write \
             `name = \"upstream\", key = ...`",
        ));
    }
    if let (Some((_, span)), None) = (args.max_keys, &args.key) {
        errors.push(syn::Error::new(
            span,
            "`max_keys` bounds the breakers of a `key`: add `key = ...`, or remove `max_keys`",
        ));
    }
}

/// `timeout` and `sleeper` go together, on an `async fn`.
fn check_timeout(args: &Args, function: Option<&Function>, errors: &mut Errors) {
    let is_async = function.is_some_and(|function| function.sig.asyncness.is_some());
    match (&args.timeout, &args.sleeper) {
        (Some((_, span)), _) if function.is_some() && !is_async => {
            errors.push(syn::Error::new(
                *span,
                "`timeout` is for an `async fn`: a sync call cannot be cut off while it runs; \
                 give its client a timeout of its own (a socket or request timeout)",
            ));
        }
        (Some((_, span)), None) => errors.push(syn::Error::new(
            *span,
            "`timeout` needs a `sleeper` to measure it: add `sleeper = tokio::time::sleep` (or \
             your runtime's sleep function)",
        )),
        (None, Some(sleeper)) => errors.push(syn::Error::new_spanned(
            sleeper,
            "`sleeper` measures a `timeout`: add `timeout = \"2s\"`, or remove `sleeper`",
        )),
        _ => {}
    }
}
