//! Code generation: the annotated function with its body routed through the
//! breaker, and nothing else changed.
//!
//! Generated code reaches the runtime only through `#krate::__private`, and
//! its locals are `Span::mixed_site()` identifiers, which the user's body can
//! neither see nor shadow.

use proc_macro2::{Group, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{parse_quote, FnArg, Ident, Pat, Path, ReturnType, Type};

use circuit_spec::Value;

use crate::args::{self, Args, FallbackOn};
use crate::errors::Errors;
use crate::item::{self, Function};
use crate::validate;

/// The attribute's whole job: parse, validate, expand.
///
/// On any error the output is every error followed by the item exactly as
/// written, so the function still exists for its callers and a typo in the
/// attribute is reported once, not once per call site.
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = args::parse(args, &mut errors);
    let function = match item::parse(&item, "circuit_breaker") {
        Ok(function) => Some(function),
        Err(err) => {
            errors.push(err);
            None
        }
    };
    validate::check(&args, function.as_ref(), &mut errors);
    match (errors.into_error(), function) {
        (None, Some(function)) => expand(&args, &function),
        (error, _) => {
            let mut output = error
                .map(|error| error.to_compile_error())
                .unwrap_or_default();
            output.extend(item);
            output
        }
    }
}

/// One argument of the function as the fallback receives it.
pub struct Argument {
    /// `self` or the argument's name, as the user wrote it.
    pub ident: TokenStream,
    /// A reference (receiver or argument): passed again after the call, as
    /// a reborrow, instead of being cloned.
    pub by_reference: bool,
}

/// Input:
///
/// ```text
/// #[circuit_breaker(name = "quotes", failure_threshold = 3, fallback = cached)]
/// pub fn fetch(id: u32) -> Result<Quote, ApiError> { body }
/// ```
///
/// Output:
///
/// ```text
/// pub fn fetch(id: u32) -> Result<Quote, ApiError> {
///     let breaker = {
///         static SITE: CallSite = CallSite::new();
///         SITE.breaker("quotes", || build("quotes", Config::builder().failure_threshold(3)))
///     };
///     let permit = match breaker.try_acquire() {
///         Ok(permit) => permit,
///         Err(_) => return cached(id),            // or: return reject(rejection)
///     };
///     finish::<Result<Quote, ApiError>, _, _>(permit, every_error, || body)
/// }
/// ```
///
/// Without a fallback, a sync function makes the whole call in one
/// `call_or_reject::<Ret, _, _>(breaker, every_error, || body)`: the
/// runtime's `call_with`, whose closed path keeps the permit in registers
/// (acquiring first and matching, as above, measured 6 ns slower).
///
/// An `async fn` without a fallback awaits
/// `call_async_or_reject::<Ret, _, _>(breaker, every_error, async body)`,
/// one future that asks the breaker on its first poll; with a fallback it
/// acquires as above, awaits `finish_async(permit, is_failure, async body)`
/// and awaits its fallback on a rejection. With `fallback_on = "any_error"`
/// the arguments are cloned first and a failed outcome goes to the fallback
/// too.
fn expand(args: &Args, function: &Function) -> TokenStream {
    let Function {
        attrs,
        vis,
        sig,
        body,
    } = function;
    let krate: Path = args
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::circuit_runtime));
    let private = quote!(#krate::__private);
    let def = Span::mixed_site();
    let breaker = Ident::new("breaker", def);
    let permit = Ident::new("permit", def);
    let outcome = Ident::new("outcome", def);

    let (ret, ret_span) = return_type(sig);
    let is_failure = args
        .is_failure
        .as_ref()
        .map_or_else(|| quote!(#private::every_error), ToTokens::to_token_stream);
    let is_async = sig.asyncness.is_some();
    let limit = time_limit(args, &private);

    let arguments = arguments(sig);
    let any_error = matches!(args.fallback_on, Some((FallbackOn::AnyError, _)));

    let resolve = resolve_breaker(args, sig, &private, &breaker);
    if args.fallback.is_none() {
        let call = match &limit {
            Some(limit) => {
                let call = respan(quote!(#private::call_async_timeout_or_reject), ret_span);
                quote_spanned! {ret_span=>
                    #call::<#ret, _, _, _>(#breaker, #limit, #is_failure, async #body).await
                }
            }
            None => call_or_reject(
                &private,
                is_async,
                &breaker,
                &is_failure,
                body,
                &ret,
                ret_span,
            ),
        };
        // The breaker's closed path grows a small function past the
        // inliner's threshold: a hint restores the choice it would have
        // made without the attribute (measured: 12.6 ns against 10.3 ns
        // through the `attribute` bench). The user's own inline attribute,
        // if any, decides instead. Not for a breaker named after the type:
        // inlined into another codegen unit, its `type_name` is another
        // copy of the string, which its site finds only out of line (16 ns
        // against 12.5 through the `method` bench).
        let user_decides = attrs.iter().any(|attr| attr.path().is_ident("inline"));
        let inline =
            (!is_async && !user_decides && !named_after_type(args, sig)).then(|| quote!(#[inline]));
        return quote! {
            #(#attrs)*
            #inline
            #vis #sig {
                #resolve
                #call
            }
        };
    }
    let (copies, after_failure) = match (any_error, &args.fallback) {
        (true, Some(fallback)) => {
            fallback_on_error(fallback, &arguments, &private, is_async, &outcome, &breaker)
        }
        _ => (TokenStream::new(), TokenStream::new()),
    };
    // Each path into the runtime that bounds the return type is spanned at
    // it whole: rustc reports an unmet bound at the called path's span.
    let run = if let Some(limit) = &limit {
        let finish_async = respan(quote!(#private::finish_async_timeout), ret_span);
        quote_spanned!(ret_span=>
            #finish_async::<#ret, _, _, _>(#permit, #limit, #is_failure, async #body).await
        )
    } else if is_async {
        let finish_async = respan(quote!(#private::finish_async), ret_span);
        quote_spanned!(ret_span=>
            #finish_async::<#ret, _, _>(#permit, #is_failure, async #body).await
        )
    } else {
        let finish = respan(quote!(#private::finish), ret_span);
        quote_spanned!(ret_span=> #finish::<#ret, _, _>(#permit, #is_failure, || #body))
    };
    let tail = if after_failure.is_empty() {
        run
    } else {
        quote! {
            let #outcome = #run;
            #after_failure
            #outcome
        }
    };

    let rejected_arm = args
        .fallback
        .as_ref()
        .map(|fallback| rejected_arm(fallback, &arguments, &private, is_async, &breaker));
    quote! {
        #(#attrs)*
        #vis #sig {
            #resolve
            #copies
            let #permit = match #breaker.try_acquire() {
                ::core::result::Result::Ok(#permit) => #permit,
                #rejected_arm
            };
            #tail
        }
    }
}

/// The match arm of a rejected call with a fallback: the fallback, counted
/// first.
fn rejected_arm(
    fallback: &Path,
    arguments: &[Argument],
    private: &TokenStream,
    is_async: bool,
    breaker: &Ident,
) -> TokenStream {
    let passed: Vec<_> = arguments.iter().map(|argument| &argument.ident).collect();
    let rejection = Ident::new("rejection", Span::mixed_site());
    let cause = rejection.to_token_stream();
    let call = call_fallback(fallback, private, is_async, &passed, &cause);
    quote! {
        ::core::result::Result::Err(#rejection) => {
            #private::fallback_after_rejection(#breaker);
            return #call;
        }
    }
}

/// `limit, sleeper` for a `timeout`, checked to be on an `async fn` with
/// a sleeper.
fn time_limit(args: &Args, private: &TokenStream) -> Option<TokenStream> {
    let ((limit, _), sleeper) = (args.timeout?, args.sleeper.as_ref()?);
    let (secs, nanos) = (limit.as_secs(), limit.subsec_nanos());
    Some(quote!(#private::Duration::new(#secs, #nanos), #sleeper))
}

/// The whole call of a function without a fallback, in one runtime call:
/// for a sync function, the runtime's own `call_with` (the hot path); for
/// an `async fn`, one future that asks the breaker on its first poll, as
/// the function's body would.
fn call_or_reject(
    private: &TokenStream,
    is_async: bool,
    breaker: &Ident,
    is_failure: &TokenStream,
    body: &Group,
    ret: &TokenStream,
    ret_span: Span,
) -> TokenStream {
    if is_async {
        let call_async_or_reject = respan(quote!(#private::call_async_or_reject), ret_span);
        quote_spanned! {ret_span=>
            #call_async_or_reject::<#ret, _, _>(#breaker, #is_failure, async #body).await
        }
    } else {
        let call_or_reject = respan(quote!(#private::call_or_reject), ret_span);
        quote_spanned! {ret_span=>
            #call_or_reject::<#ret, _, _>(#breaker, #is_failure, || #body)
        }
    }
}

/// `let breaker = ...;`: the call site's `static` cache, filled through the
/// registry on the first call.
///
/// A method without a `name` gets a `MethodSite` instead of a `CallSite`:
///
/// ```text
/// let breaker = {
///     static SITE: MethodSite = MethodSite::new();
///     SITE.breaker(type_name::<Self>(), "fetch", config)
/// };
/// ```
pub fn resolve_breaker(
    args: &Args,
    sig: &syn::Signature,
    private: &TokenStream,
    breaker: &Ident,
) -> TokenStream {
    let site = Ident::new("CIRCUIT_BREAKER_SITE", Span::mixed_site());
    let fn_name = sig.ident.unraw().to_string();
    let name = args.name.as_ref().map_or_else(
        || quote!(::core::concat!(::core::module_path!(), "::", #fn_name)),
        ToTokens::to_token_stream,
    );
    let config = config(args, private, &name);
    // A method without a `name` is named after its type, found at run time
    // (`type_name::<Self>()`): the attribute only sees the method, and two
    // types in one module often have methods of the same name. In a trait's
    // default method the one `static` serves every implementing type, hence
    // a site that keeps a breaker per type. The name is passed as a value,
    // not as a function: inlined, it is a constant the site compares by
    // address.
    if let Some(key) = &args.key {
        return keyed_breaker(args, key, private, breaker, &name, &config);
    }
    let lookup = if named_after_type(args, sig) {
        quote! {
            static #site: #private::MethodSite = #private::MethodSite::new();
            #site.breaker(::core::any::type_name::<Self>(), #fn_name, #config)
        }
    } else {
        quote! {
            static #site: #private::CallSite = #private::CallSite::new();
            #site.breaker(#name, #config)
        }
    };
    quote! {
        let #breaker = {
            #lookup
        };
    }
}

/// `let breaker = ...;` for a keyed breaker: the call site caches the keyed
/// name's table, and each call finds its key's breaker in it. The breaker
/// is held (an `Arc`) for the call, so one the registry replaces meanwhile
/// still finishes the call.
///
/// ```text
/// let breaker_of_key = {
///     static SITE: KeyedSite = KeyedSite::new();
///     SITE.breaker("upstream", breaker_key(&(self.host)), key_limits(None), config)
/// };
/// let breaker = &*breaker_of_key;
/// ```
fn keyed_breaker(
    args: &Args,
    key: &syn::Expr,
    private: &TokenStream,
    breaker: &Ident,
    name: &TokenStream,
    config: &TokenStream,
) -> TokenStream {
    let site = Ident::new("CIRCUIT_BREAKER_SITE", Span::mixed_site());
    let owner = Ident::new("breaker_of_key", Span::mixed_site());
    let span = key.span();
    let check = respan(quote!(#private::breaker_key), span);
    let key = quote_spanned!(span=> #check(&(#key)));
    let max_keys = args.max_keys.map_or_else(
        || quote!(::core::option::Option::None),
        |(max, _)| quote!(::core::option::Option::Some(#max)),
    );
    quote! {
        let #owner = {
            static #site: #private::KeyedSite = #private::KeyedSite::new();
            #site.breaker(#name, #key, #private::key_limits(#max_keys), #config)
        };
        let #breaker: &#private::CircuitBreaker = &#owner;
    }
}

/// Whether the breaker is named after the method's type, found at run time.
fn named_after_type(args: &Args, sig: &syn::Signature) -> bool {
    args.name.is_none() && args.key.is_none() && sig.receiver().is_some()
}

/// The return type for a turbofish (`impl Trait` erased to `_`), and the
/// span the calls that bound it are spanned at: only names that resolve
/// anywhere appear in those calls (absolute paths and the locals passed
/// in), so "must return a `Result`" and "needs `From<CircuitOpenError>`"
/// point at the return type.
pub fn return_type(sig: &syn::Signature) -> (TokenStream, Span) {
    match &sig.output {
        ReturnType::Default => (quote_spanned!(sig.ident.span()=> ()), sig.ident.span()),
        ReturnType::Type(_, ty) => {
            let span = ty.span();
            let mut ty = (**ty).clone();
            ImplTraitEraser.visit_type_mut(&mut ty);
            (ty.into_token_stream(), span)
        }
    }
}

/// `fallback_on = "any_error"`: the copies taken before the body can move
/// the originals, each spanned at its argument so "not `Clone`" points
/// there, and the check that sends a failed outcome to the fallback.
fn fallback_on_error(
    fallback: &Path,
    arguments: &[Argument],
    private: &TokenStream,
    is_async: bool,
    outcome: &Ident,
    breaker: &Ident,
) -> (TokenStream, TokenStream) {
    let mut copies = TokenStream::new();
    let mut passed = Vec::new();
    for (index, argument) in arguments.iter().enumerate() {
        if argument.by_reference {
            passed.push(argument.ident.clone());
            continue;
        }
        let copy = format_ident!("argument_{}", index, span = Span::mixed_site());
        let ident = &argument.ident;
        // Borrowed through a local, not `&#ident`: rustc would otherwise
        // suggest borrowing the argument, since `&T` is always `Clone`.
        let clone = respan(quote!(#private::clone_for_fallback), ident.span());
        let borrowed = Ident::new("argument", Span::mixed_site().located_at(ident.span()));
        copies.extend(quote_spanned! {ident.span()=>
            let #copy = {
                let #borrowed = &#ident;
                #clone(#borrowed)
            };
        });
        passed.push(copy.into_token_stream());
    }
    let cause = Ident::new("cause", Span::mixed_site());
    let passed: Vec<_> = passed.iter().collect();
    let call = call_fallback(
        fallback,
        private,
        is_async,
        &passed,
        &cause.to_token_stream(),
    );
    let after_failure = quote! {
        if let ::core::option::Option::Some(#cause) = #private::failed_with(&#outcome) {
            #private::fallback_after_failure(#breaker);
            return #call;
        }
    };
    (copies, after_failure)
}

/// The configuration a call site registers: the `config` function, the
/// keys' builder chain, or the defaults.
fn config(args: &Args, private: &TokenStream, name: &TokenStream) -> TokenStream {
    if let Some((_, path)) = &args.config {
        return path.to_token_stream();
    }
    if args.options.is_empty() {
        return quote!(#private::Config::default);
    }
    let setters = args.options.iter().map(|option| {
        let key = &option.key;
        let value = match option.value {
            Value::Count(value) => {
                let value = u32::try_from(value).expect("validated range");
                Literal::u32_unsuffixed(value).into_token_stream()
            }
            Value::Number(value) => Literal::f64_unsuffixed(value).into_token_stream(),
            Value::Duration(value) => {
                let secs = value.as_secs();
                let nanos = value.subsec_nanos();
                quote!(#private::Duration::new(#secs, #nanos))
            }
        };
        quote!(.#key(#value))
    });
    quote!(|| #private::build(#name, #private::Config::builder() #(#setters)*))
}

/// The call of the fallback, spanned at its path so a signature mismatch
/// is reported at `fallback = ...`.
///
/// The fallback takes the function's arguments, and may take after them
/// why it runs (a `FallbackCause`): `run_fallback` accepts both shapes, and
/// which one the fallback has is inferred from its signature.
pub fn call_fallback(
    fallback: &Path,
    private: &TokenStream,
    is_async: bool,
    arguments: &[&TokenStream],
    cause: &TokenStream,
) -> TokenStream {
    let span = fallback.span();
    let arguments = respan(quote!(#(#arguments,)*), span);
    if is_async {
        let run = respan(quote!(#private::run_async_fallback), span);
        quote_spanned!(span=> #run(#fallback, (#arguments), #cause).await)
    } else {
        let run = respan(quote!(#private::run_fallback), span);
        quote_spanned!(span=> #run(#fallback, (#arguments), #cause))
    }
}

/// `tokens` moved to where `span` is, so that an error about them points at
/// the user's token that `span` comes from. Names still resolve as before
/// (`located_at` keeps their hygiene).
pub fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(group.span().located_at(span));
                token = TokenTree::Group(respanned);
            } else {
                token.set_span(token.span().located_at(span));
            }
            token
        })
        .collect()
}

pub fn arguments(sig: &syn::Signature) -> Vec<Argument> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Receiver(receiver) => Some(Argument {
                ident: receiver.self_token.to_token_stream(),
                by_reference: receiver.reference.is_some()
                    || matches!(*receiver.ty, Type::Reference(_)),
            }),
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) => Some(Argument {
                    ident: pat.ident.to_token_stream(),
                    by_reference: matches!(*typed.ty, Type::Reference(_)),
                }),
                // Rejected by validation when a fallback needs them.
                _ => None,
            },
        })
        .collect()
}

/// Replaces `impl Trait` with `_` in a type used as a turbofish: the opaque
/// type has no name there, and inference fills it in.
struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.span()),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}
