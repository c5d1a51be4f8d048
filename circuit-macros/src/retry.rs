//! The `#[retry]` attribute: parse its keys, check them and the function,
//! and expand to a retry loop, around a `#[circuit_breaker]` written below
//! it if there is one, so that every attempt goes through the breaker.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, ExprLit, FnArg, Ident, Lit, LitStr, Pat, Path, Type};

use crate::args::{self, Args, FallbackOn};
use crate::errors::Errors;
use crate::expand;
use crate::item::{self, Function};
use crate::validate;

/// The keys that are not rows of the retry option table, with the example
/// the messages suggest.
const OTHER_KEYS: &[(&str, &str)] = &[
    ("retry_if", "is_transient"),
    ("budget", "\"payments\""),
    ("sleeper", "tokio::time::sleep"),
    ("crate", "\"circuit_runtime\""),
];

/// Every key, with its example: the option table's rows, then the others.
fn keys() -> impl Iterator<Item = (&'static str, &'static str)> + Clone {
    circuit_spec::retry::RETRY_OPTIONS
        .iter()
        .map(|option| (option.name, option.example))
        .chain(OTHER_KEYS.iter().copied())
}

fn example(key: &str) -> &'static str {
    keys()
        .find(|&(name, _)| name == key)
        .map_or("...", |(_, example)| example)
}

/// A parsed `#[retry(...)]`.
#[derive(Default)]
struct RetryArgs {
    max_retries: Option<u32>,
    base_delay: Option<(Duration, Span)>,
    max_delay: Option<(Duration, Span)>,
    exponential_base: Option<f64>,
    jitter: Option<Ident>,
    max_elapsed: Option<Duration>,
    attempt_timeout: Option<(Duration, Span)>,
    retry_if: Option<Path>,
    budget: Option<LitStr>,
    sleeper: Option<Path>,
    krate: Option<Path>,
    seen: Vec<String>,
}

/// The attribute's whole job, as `#[circuit_breaker]`'s: every mistake at
/// once, and the function still emitted as written when there is one.
pub fn retry(attribute: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse(attribute, &mut errors);
    let function = match item::parse(&item, "retry") {
        Ok(function) => Some(function),
        Err(err) => {
            errors.push(err);
            None
        }
    };
    let mut breaker = None;
    if let Some(function) = &function {
        check_function(&args, function, &mut errors);
        breaker = breaker_below(function, &mut errors);
    }
    if let (Some((_, span)), Some((_, breaker))) = (args.attempt_timeout, &breaker) {
        if breaker.timeout.is_some() {
            errors.push(syn::Error::new(
                span,
                "each attempt's limit is written twice: the `timeout` of the \
                 `#[circuit_breaker]` below already limits every attempt; remove one",
            ));
        }
    }
    match (errors.into_error(), function) {
        (None, Some(mut function)) => {
            let (breaker, path) = match breaker {
                Some((index, args)) => {
                    let attribute = function.attrs.remove(index);
                    (Some(args), Some(attribute.path().clone()))
                }
                None => (None, None),
            };
            expand(&args, breaker.as_ref(), path.as_ref(), &function)
        }
        (error, _) => {
            let mut output = error
                .map(|error| error.to_compile_error())
                .unwrap_or_default();
            output.extend(item);
            output
        }
    }
}

fn parse(tokens: TokenStream, errors: &mut Errors) -> RetryArgs {
    let mut args = RetryArgs::default();
    for pair in args::split_at_commas(tokens) {
        let parsed = (|input: ParseStream| args::parse_pair(input, example)).parse2(pair);
        match parsed {
            Ok((key, value)) => {
                if let Err(err) = args.set(&key, &value) {
                    errors.push(err);
                }
            }
            Err(err) => errors.push(err),
        }
    }
    args.check_between_keys(errors);
    args
}

impl RetryArgs {
    fn set(&mut self, key: &Ident, value: &Expr) -> syn::Result<()> {
        let name = key.to_string();
        if !keys().any(|(known, _)| known == name) {
            let message = match circuit_spec::nearest(&name, keys().map(|(k, e)| (k, (k, e)))) {
                Some((known, example)) => format!(
                    "unknown key `{name}`: did you mean `{known}`? write `{known} = {example}`"
                ),
                None => format!(
                    "unknown key `{name}`; the keys of `#[retry]` are: {}",
                    keys().map(|(k, _)| k).collect::<Vec<_>>().join(", ")
                ),
            };
            return Err(syn::Error::new(key.span(), message));
        }
        if self.seen.contains(&name) {
            return Err(syn::Error::new(
                key.span(),
                format!("duplicate key `{name}`: each key may appear once; remove one of them"),
            ));
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "max_retries" => self.max_retries = Some(max_retries(value)?),
            "base_delay" => self.base_delay = Some(duration(key, value)?),
            "max_delay" => self.max_delay = Some(duration(key, value)?),
            "max_elapsed" => self.max_elapsed = Some(limit(key, value)?.0),
            "attempt_timeout" => self.attempt_timeout = Some(limit(key, value)?),
            "exponential_base" => self.exponential_base = Some(exponential_base(value)?),
            "jitter" => self.jitter = Some(jitter(value)?),
            "retry_if" => self.retry_if = Some(args::path(key, value)?),
            "sleeper" => self.sleeper = Some(args::path(key, value)?),
            "budget" => {
                let lit = args::lit_str(key, value)?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`budget` names a retry budget shared by every call site that names it: \
                         write `budget = \"payments\"`",
                    ));
                }
                self.budget = Some(lit);
            }
            _ => {
                let lit = args::lit_str(key, value)?;
                self.krate = Some(lit.parse::<Path>()?);
            }
        }
        Ok(())
    }

    fn check_between_keys(&self, errors: &mut Errors) {
        use circuit_spec::retry::{delays, DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY};
        let base = self.base_delay.map_or(DEFAULT_BASE_DELAY, |(base, _)| base);
        let max = self.max_delay.map_or(DEFAULT_MAX_DELAY, |(max, _)| max);
        let Err(message) = delays(base, max) else {
            return;
        };
        match (self.base_delay, self.max_delay) {
            (_, Some((_, span))) => errors.push(syn::Error::new(span, message)),
            (Some((_, span)), None) => errors.push(syn::Error::new(
                span,
                format!(
                    "`base_delay` ({}) is longer than the default `max_delay` ({}): lower it, or \
                     set `max_delay` too",
                    circuit_spec::duration::format(base),
                    circuit_spec::duration::format(max)
                ),
            )),
            (None, None) => {}
        }
    }
}

/// A `max_elapsed` or `attempt_timeout`: a duration above zero.
fn limit(key: &Ident, value: &Expr) -> syn::Result<(Duration, Span)> {
    let (limit, span) = duration(key, value)?;
    let option = if key == "max_elapsed" {
        "max_elapsed"
    } else {
        "attempt_timeout"
    };
    circuit_spec::retry::limit(option, limit)
        .map(|limit| (limit, span))
        .map_err(|range| {
            syn::Error::new(
                span,
                format!(
                    "`{option}` must be {}, got {}: write `{option} = {}`",
                    range.expected,
                    circuit_spec::duration::format(limit),
                    example(option)
                ),
            )
        })
}

fn integer(value: &Expr) -> Option<&syn::LitInt> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => Some(int),
        _ => None,
    }
}

fn max_retries(value: &Expr) -> syn::Result<u32> {
    let retries = integer(value)
        .and_then(|int| int.base10_parse::<u64>().ok())
        .ok_or_else(|| {
            syn::Error::new_spanned(
                value,
                "`max_retries` takes a whole number: write `max_retries = 3`",
            )
        })?;
    circuit_spec::retry::max_retries(retries)
        .map_err(|range| out_of_range(value, range, &retries.to_string()))
}

/// `{option}` must be `{expected}`, got what was written.
fn out_of_range(value: &Expr, range: circuit_spec::retry::OutOfRange, written: &str) -> syn::Error {
    syn::Error::new_spanned(
        value,
        format!(
            "`{}` must be {}, got {written}",
            range.option, range.expected
        ),
    )
}

fn duration(key: &Ident, value: &Expr) -> syn::Result<(Duration, Span)> {
    // A bare integer means seconds, as in `#[circuit_breaker]`.
    if let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    {
        if !crate::args::is_number_suffix(int.suffix()) {
            return Err(crate::args::unit_outside_quotes(int));
        }
        let seconds = int.base10_parse::<u64>()?;
        return Ok((Duration::from_secs(seconds), int.span()));
    }
    let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` takes a duration in quotes: write `{key} = {}`",
                example(&key.to_string())
            ),
        ));
    };
    circuit_spec::duration::parse(&lit.value())
        .map(|duration| (duration, lit.span()))
        .map_err(|problem| syn::Error::new(lit.span(), format!("`{key}`: {problem}")))
}

fn exponential_base(value: &Expr) -> syn::Result<f64> {
    let number = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Float(float),
            ..
        }) => float.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<f64>().ok(),
        _ => None,
    };
    let Some(base) = number else {
        return Err(syn::Error::new_spanned(
            value,
            "`exponential_base` takes a number: write `exponential_base = 2.0`",
        ));
    };
    let written = value.to_token_stream().to_string().replace(' ', "");
    circuit_spec::retry::exponential_base(base)
        .map_err(|range| out_of_range(value, range, &written))
}

/// The `Jitter` variant a value names.
fn jitter(value: &Expr) -> syn::Result<Ident> {
    let (text, span) =
        match value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => (lit.value(), lit.span()),
            Expr::Lit(ExprLit {
                lit: Lit::Bool(on), ..
            }) => (on.value.to_string(), on.span),
            _ => return Err(syn::Error::new_spanned(
                value,
                "`jitter` is one of \"none\", \"full\", \"equal\", \"decorrelated\" (or `true`, \
                 `false`): write `jitter = \"full\"`",
            )),
        };
    let mode =
        circuit_spec::retry::jitter(&text).map_err(|message| syn::Error::new(span, message))?;
    let variant = match mode {
        "none" => "None",
        "equal" => "Equal",
        "decorrelated" => "Decorrelated",
        _ => "Full",
    };
    Ok(Ident::new(variant, span))
}

/// Checks the function against the keys: what each attempt needs.
fn check_function(args: &RetryArgs, function: &Function, errors: &mut Errors) {
    let sig = &function.sig;
    let is_async = sig.asyncness.is_some();
    match (&args.sleeper, is_async) {
        (None, true) => errors.push(syn::Error::new(
            sig.fn_token.span,
            "an `async fn` under `#[retry]` needs a sleeper to wait between attempts: add \
             `sleeper = tokio::time::sleep` (or your runtime's sleep function) to `#[retry]`",
        )),
        (Some(sleeper), false) => errors.push(syn::Error::new_spanned(
            sleeper,
            "`sleeper` is for an `async fn`: a sync function waits on its own thread; remove \
             `sleeper`",
        )),
        _ => {}
    }
    if let (Some((_, span)), false) = (args.attempt_timeout, is_async) {
        errors.push(syn::Error::new(
            span,
            "`attempt_timeout` is for an `async fn`: a sync attempt cannot be cut off while it \
             runs; give its client a timeout of its own",
        ));
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) if receiver.reference.is_none() => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "`#[retry]` cannot retry a method that takes `self` by value: each attempt \
                     needs its own `self`; take `&self`",
                ));
            }
            FnArg::Receiver(receiver) if is_async && receiver.mutability.is_some() => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "an `async fn` under `#[retry]` cannot take `&mut self`: each attempt's \
                     future would hold it while the next attempt needs it; take `&self`",
                ));
            }
            FnArg::Typed(typed) => {
                if !matches!(&*typed.pat, Pat::Ident(_)) {
                    errors.push(syn::Error::new_spanned(
                        &typed.pat,
                        "`#[retry]` needs each argument bound to a name, to give every attempt \
                         its own copy: write `point: Point` and destructure inside",
                    ));
                }
                if is_async && matches!(&*typed.ty, Type::Reference(r) if r.mutability.is_some()) {
                    errors.push(syn::Error::new_spanned(
                        &typed.ty,
                        "an `async fn` under `#[retry]` cannot take a `&mut` argument: each \
                         attempt's future would hold it while the next attempt needs it",
                    ));
                }
            }
            FnArg::Receiver(_) => {}
        }
    }
}

/// The `#[circuit_breaker]` written below `#[retry]`, parsed and checked,
/// with its position among the function's attributes.
fn breaker_below(function: &Function, errors: &mut Errors) -> Option<(usize, Args)> {
    let index = function.attrs.iter().position(is_circuit_breaker)?;
    let tokens = match &function.attrs[index].meta {
        syn::Meta::List(list) => list.tokens.clone(),
        _ => TokenStream::new(),
    };
    let mut breaker_errors = Errors::default();
    let args = args::parse(tokens, &mut breaker_errors);
    validate::check(&args, Some(function), &mut breaker_errors);
    if let Some(error) = breaker_errors.into_error() {
        errors.push(error);
    }
    Some((index, args))
}

/// Whether `attr` is `#[circuit_breaker(...)]`, under any path.
pub fn is_circuit_breaker(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "circuit_breaker")
}

/// Whether `attr` is `#[retry(...)]`, under any path.
pub fn is_retry(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "retry")
}

/// Without a breaker:
///
/// ```text
/// fn fetch(id: u32) -> Result<Quote, ApiError> {
///     static RETRY: OnceLock<RetryConfig> = OnceLock::new();
///     let retry = RETRY.get_or_init(|| retry_config("fetch", RetryConfig::builder()...));
///     retry_plain::<Result<Quote, ApiError>, _, _>(retry, judge, || {
///         let id = clone_for_attempt(&id);
///         (|| -> Result<Quote, ApiError> { body })()
///     })
/// }
/// ```
///
/// With a `#[circuit_breaker]` below, the breaker is resolved as it
/// resolves it, and `retry_through(breaker, ...)` makes each attempt
/// through it; a rejection goes to the breaker's fallback, or becomes the
/// function's error, as it would without retries.
fn expand(
    args: &RetryArgs,
    breaker: Option<&Args>,
    breaker_attribute_path: Option<&Path>,
    function: &Function,
) -> TokenStream {
    let Function {
        attrs,
        vis,
        sig,
        body,
    } = function;
    let krate: Path = args
        .krate
        .clone()
        .or_else(|| breaker.and_then(|breaker| breaker.krate.clone()))
        .unwrap_or_else(|| syn::parse_quote!(::circuit_runtime));
    let private = quote!(#krate::__private);
    let def = Span::mixed_site();
    let retry = Ident::new("retry", def);
    let (ret, ret_span) = expand::return_type(sig);
    let is_async = sig.asyncness.is_some();
    let fn_name = sig.ident.to_string();

    let config = config(args, &private, &fn_name);
    let judge = judge(args, &private, &ret);
    let copies = attempt_copies(sig, is_async, &private);
    let attempt = if is_async {
        quote!(|| { #copies async move #body })
    } else {
        quote!(|| { #copies (|| -> #ret #body)() })
    };
    let sleeper = args.sleeper.as_ref().map(|sleeper| quote!(#sleeper,));
    let limit = args
        .attempt_timeout
        .or_else(|| breaker.and_then(|breaker| breaker.timeout))
        .map(|(limit, _)| {
            let (secs, nanos) = (limit.as_secs(), limit.subsec_nanos());
            quote!(#private::Duration::new(#secs, #nanos))
        });
    let shared = Shared {
        private: &private,
        ret: &ret,
        ret_span,
        sig,
        retry: &retry,
        sleeper,
        limit,
        judge,
        attempt,
    };
    let run = match breaker {
        None => shared.plain(),
        Some(breaker_args) => shared.through(breaker_args),
    };
    let site = format_ident!("CIRCUIT_RETRY_CONFIG", span = def);
    // The copies keep the arguments' `mut`; the parameters themselves are
    // never mutated.
    let mut sig = sig.clone();
    for input in &mut sig.inputs {
        if let FnArg::Typed(typed) = input {
            if let Pat::Ident(pat) = &mut *typed.pat {
                if !matches!(&*typed.ty, Type::Reference(_)) {
                    pat.mutability = None;
                }
            }
        }
    }
    // The breaker's attribute is consumed here, not expanded: name its
    // path once so the user's import of it is not reported unused.
    let breaker_path = breaker_attribute_path.map(|path| {
        quote! {
            #[allow(unused_imports)]
            use #path as _;
        }
    });
    // As `#[circuit_breaker]` does: the loop's first attempt grows a small
    // function past the inliner's threshold; the user's own hint decides
    // if there is one (measured in the `retry_first_attempt` bench).
    let user_decides = attrs.iter().any(|attr| attr.path().is_ident("inline"));
    let inline = (!is_async && !user_decides).then(|| quote!(#[inline]));
    quote! {
        #(#attrs)*
        #inline
        #vis #sig {
            #breaker_path
            let #retry = {
                static #site: #private::OnceLock<#private::RetryConfig> = #private::OnceLock::new();
                #site.get_or_init(|| #config)
            };
            #run
        }
    }
}

/// What the two expansions of the loop share.
struct Shared<'a> {
    private: &'a TokenStream,
    ret: &'a TokenStream,
    ret_span: Span,
    sig: &'a syn::Signature,
    /// The retry configuration's local.
    retry: &'a Ident,
    /// `sleeper,` on an `async fn`.
    sleeper: Option<TokenStream>,
    /// Each attempt's time limit (`attempt_timeout`, or the breaker's
    /// `timeout`), on an `async fn`.
    limit: Option<TokenStream>,
    /// What to retry.
    judge: TokenStream,
    /// The closure that makes one attempt.
    attempt: TokenStream,
}

impl Shared<'_> {
    fn is_async(&self) -> bool {
        self.sig.asyncness.is_some()
    }

    /// What a timeout becomes in the function's error, checked at its
    /// return type.
    fn timed_out(&self) -> TokenStream {
        let Shared { private, ret, .. } = self;
        let span = self.ret_span;
        let path = expand::respan(quote!(#private::timeout_error), span);
        quote_spanned!(span=> #path::<#ret>)
    }

    fn await_(&self) -> Option<TokenStream> {
        let span = self.ret_span;
        self.is_async().then(|| quote_spanned!(span=> .await))
    }

    /// `retry_plain(retry, judge, attempt)`, or its async twin.
    fn plain(&self) -> TokenStream {
        let Shared {
            private,
            ret,
            retry,
            sleeper,
            judge,
            attempt,
            ..
        } = self;
        let (plain, holes, limit) = match &self.limit {
            Some(limit) => {
                let timed_out = self.timed_out();
                (
                    quote!(#private::retry_plain_async_timed),
                    quote!(_, _, _, _),
                    Some(quote!(#limit, #timed_out,)),
                )
            }
            None if self.is_async() => (
                quote!(#private::retry_plain_async),
                quote!(_, _, _, _),
                None,
            ),
            None => (quote!(#private::retry_plain), quote!(_, _), None),
        };
        let plain = expand::respan(plain, self.ret_span);
        let await_ = self.await_();
        // Spanned at the return type as a whole, so an error type that
        // lacks a bound is one error there, not one per token.
        let span = self.ret_span;
        quote_spanned!(span=> #plain::<#ret, #holes>(#retry, #sleeper #limit #judge, #attempt) #await_)
    }

    /// The breaker resolved as `#[circuit_breaker]` resolves it, and every
    /// attempt through it: a rejection goes to its fallback or becomes the
    /// function's error, and with `fallback_on = "any_error"` the fallback
    /// runs once the retries are spent.
    fn through(&self, breaker_args: &Args) -> TokenStream {
        let Shared {
            private,
            ret,
            retry,
            sleeper,
            judge,
            attempt,
            sig,
            ..
        } = self;
        let def = Span::mixed_site();
        let breaker = Ident::new("breaker", def);
        let outcome = Ident::new("outcome", def);
        let rejection = Ident::new("rejection", def);
        let resolve = expand::resolve_breaker(breaker_args, sig, private, &breaker);
        let is_failure = breaker_args
            .is_failure
            .as_ref()
            .map_or_else(|| quote!(#private::every_error), ToTokens::to_token_stream);
        let (through, holes) = match &self.limit {
            Some(_) => (
                quote!(#private::retry_through_async_timed),
                quote!(_, _, _, _, _, _),
            ),
            None if self.is_async() => (
                quote!(#private::retry_through_async),
                quote!(_, _, _, _, _, _),
            ),
            None => (quote!(#private::retry_through), quote!(_, _, _)),
        };
        let limit = self.limit.as_ref().map(|limit| {
            let timed_out = self.timed_out();
            quote!(#limit, #timed_out,)
        });
        let through = expand::respan(through, self.ret_span);
        let arguments = expand::arguments(sig);
        let passed: Vec<_> = arguments.iter().map(|argument| &argument.ident).collect();
        let cause = Ident::new("cause", def);
        let fallback = |reason: TokenStream, cause: TokenStream| {
            breaker_args.fallback.as_ref().map(|fallback| {
                let call =
                    expand::call_fallback(fallback, private, self.is_async(), &passed, &cause);
                quote!({ #private::#reason(#breaker); #call })
            })
        };
        let on_rejection = fallback(
            quote!(fallback_after_rejection),
            rejection.to_token_stream(),
        )
        .unwrap_or_else(|| quote!(#private::reject::<#ret>(#rejection)));
        let on_failure = match breaker_args.fallback_on {
            Some((FallbackOn::AnyError, _)) => {
                fallback(quote!(fallback_after_failure), cause.to_token_stream()).map(|call| {
                    quote! {
                        match #private::failed_with(&#outcome) {
                            ::core::option::Option::Some(#cause) => #call,
                            ::core::option::Option::None => #outcome,
                        }
                    }
                })
            }
            _ => None,
        }
        .unwrap_or_else(|| quote!(#outcome));
        let await_ = self.await_();
        let span = self.ret_span;
        let call = quote_spanned! {span=>
            #through::<#ret, #holes>(#breaker, #retry, #sleeper #limit #judge, #is_failure, #attempt) #await_
        };
        quote! {
            #resolve
            match #call {
                #private::RetryOutcome::Succeeded(#outcome) => #outcome,
                #private::RetryOutcome::Failed(#outcome) => #on_failure,
                #private::RetryOutcome::Rejected(#rejection) => #on_rejection,
            }
        }
    }
}

/// What decides whether an error is retried: `retry_if`, else the error's
/// own [`Classify`] if it has one, else every error.
fn judge(args: &RetryArgs, private: &TokenStream, ret: &TokenStream) -> TokenStream {
    let error = Ident::new("error", Span::mixed_site());
    if let Some(path) = &args.retry_if {
        return quote!(|#error: &_| #private::retry_if_verdict(#path(#error)));
    }
    // The error's type is inferred from the runtime's bound, not named:
    // a return type with `impl Trait` in it cannot be named.
    let _ = ret;
    quote! {
        |#error: &_| {
            #[allow(unused_imports)]
            use #private::{JudgeAny as _, JudgeClassified as _};
            (&&&#private::RetryJudge::of(#error)).verdict(#error)
        }
    }
}

/// The builder chain of the keys.
fn config(args: &RetryArgs, private: &TokenStream, fn_name: &str) -> TokenStream {
    let duration = |duration: Duration| {
        let (secs, nanos) = (duration.as_secs(), duration.subsec_nanos());
        quote!(#private::Duration::new(#secs, #nanos))
    };
    let mut setters = Vec::new();
    if let Some(retries) = args.max_retries {
        setters.push(quote!(.max_retries(#retries)));
    }
    if let Some((base, _)) = args.base_delay {
        let base = duration(base);
        setters.push(quote!(.base_delay(#base)));
    }
    if let Some((max, _)) = args.max_delay {
        let max = duration(max);
        setters.push(quote!(.max_delay(#max)));
    }
    if let Some(base) = args.exponential_base {
        setters.push(quote!(.exponential_base(#base)));
    }
    if let Some(variant) = &args.jitter {
        setters.push(quote!(.jitter(#private::RetryJitter::#variant)));
    }
    if let Some(limit) = args.max_elapsed {
        let limit = duration(limit);
        setters.push(quote!(.max_elapsed(#limit)));
    }
    if let Some(budget) = &args.budget {
        setters.push(quote!(.budget(#private::retry_budget(#budget))));
    }
    quote!(#private::retry_config(#fn_name, #private::RetryConfig::builder() #(#setters)*))
}

/// Each attempt's own copies of the arguments taken by value, bound to the
/// same names; `&mut` arguments reborrowed.
fn attempt_copies(sig: &syn::Signature, is_async: bool, private: &TokenStream) -> TokenStream {
    let mut copies = TokenStream::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else { continue };
        let Pat::Ident(pat) = &*typed.pat else {
            continue;
        };
        let ident = &pat.ident;
        match &*typed.ty {
            Type::Reference(reference) if reference.mutability.is_some() => {
                if !is_async {
                    copies.extend(quote!(let #ident = &mut *#ident;));
                }
            }
            Type::Reference(_) => {}
            _ => {
                // Spanned at the argument, so "not `Clone`" points there.
                let span = ident.span();
                let clone = expand::respan(quote!(#private::clone_for_attempt), span);
                let borrowed = Ident::new("argument", Span::mixed_site().located_at(span));
                let mutability = &pat.mutability;
                copies.extend(quote::quote_spanned! {span=>
                    let #mutability #ident = {
                        let #borrowed = &#ident;
                        #clone(#borrowed)
                    };
                });
            }
        }
    }
    copies
}
