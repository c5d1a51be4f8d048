//! The attribute's arguments, parsed into a typed AST.
//!
//! The arguments are split at top-level commas first and each `key = value`
//! is parsed on its own, so one malformed pair does not hide the mistakes in
//! the others: every error is collected and reported together.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitStr, Path, Token, UnOp};

use crate::duration;
use crate::errors::Errors;

/// The kind of value a runtime option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number of calls (`u32`).
    Count,
    /// A real number (`f64`).
    Number,
    /// A duration: `"250ms"` or an integer of seconds.
    Duration,
}

/// Every runtime option: its key (the name of its `ConfigBuilder` method),
/// its kind, and the example the error messages suggest.
pub const OPTIONS: &[(&str, Kind, &str)] = &[
    ("failure_threshold", Kind::Count, "5"),
    ("success_threshold", Kind::Count, "1"),
    ("half_open_max_calls", Kind::Count, "1"),
    ("window_size", Kind::Count, "10"),
    ("minimum_calls", Kind::Count, "10"),
    ("failure_rate_threshold", Kind::Number, "0.5"),
    ("slow_call_rate_threshold", Kind::Number, "0.5"),
    ("recovery_backoff", Kind::Number, "2.0"),
    ("jitter", Kind::Number, "0.1"),
    ("recovery_timeout", Kind::Duration, "\"30s\""),
    ("window_duration", Kind::Duration, "\"10s\""),
    ("slow_call_duration", Kind::Duration, "\"2s\""),
    ("max_recovery_timeout", Kind::Duration, "\"10m\""),
    ("half_open_timeout", Kind::Duration, "\"60s\""),
];

/// The keys that are not runtime options, with the example the error
/// messages suggest.
const OTHER_KEYS: &[(&str, &str)] = &[
    ("name", "\"quotes\""),
    ("fallback", "cached_quote"),
    ("fallback_on", "\"any_error\""),
    ("is_failure", "is_transient"),
    ("config", "quotes_config"),
    ("crate", "\"circuit_runtime\""),
];

/// A parsed attribute: `#[circuit_breaker(name = "quotes", ...)]`.
#[derive(Default)]
pub struct Args {
    pub name: Option<LitStr>,
    pub krate: Option<Path>,
    pub fallback: Option<Path>,
    pub fallback_on: Option<(FallbackOn, Span)>,
    pub is_failure: Option<Path>,
    /// The `config` key and its path.
    pub config: Option<(Ident, Path)>,
    /// Runtime options, in the order written.
    pub options: Vec<ConfigOption>,
    /// Every key seen, to reject duplicates.
    seen: Vec<String>,
}

/// When the fallback runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackOn {
    /// Only when the breaker rejects the call (the default).
    Rejection,
    /// Also when the call ran and returned an error.
    AnyError,
}

/// One runtime option, `failure_threshold = 5`.
pub struct ConfigOption {
    pub key: Ident,
    pub value: Value,
    /// The value's tokens, where range errors point.
    pub tokens: TokenStream,
    /// The value as written, for messages (`2.0`, not `2`).
    pub written: String,
}

/// An option's value, checked for kind but not yet for range.
#[derive(Clone, Copy, Debug)]
pub enum Value {
    /// A whole number; negative values are kept so the range check can
    /// name them.
    Integer(i128),
    Number(f64),
    Duration(std::time::Duration),
}

/// The example value for `key`, for messages that say what to write.
pub fn example(key: &str) -> &'static str {
    OPTIONS
        .iter()
        .map(|&(k, _, e)| (k, e))
        .chain(OTHER_KEYS.iter().copied())
        .find(|&(k, _)| k == key)
        .map_or("...", |(_, e)| e)
}

/// Parses the attribute's tokens, adding every mistake to `errors`.
pub fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    for pair in split_at_commas(tokens) {
        match Pair::parse.parse2(pair) {
            Ok(pair) => args.set(pair, errors),
            Err(err) => errors.push(err),
        }
    }
    args
}

/// Splits at commas outside any group; empty pieces (a trailing comma) are
/// dropped.
fn split_at_commas(tokens: TokenStream) -> Vec<TokenStream> {
    let mut pieces = vec![TokenStream::new()];
    for token in tokens {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == ',' => pieces.push(TokenStream::new()),
            _ => pieces.last_mut().expect("never empty").extend([token]),
        }
    }
    pieces.retain(|piece| !piece.is_empty());
    pieces
}

/// `key = value`, before the key is known to exist.
struct Pair {
    key: Ident,
    value: Expr,
}

impl Parse for Pair {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // `parse_any` so that `crate` is accepted as a key.
        let key = Ident::parse_any(input)?;
        if input.is_empty() {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "`{key}` needs a value: write `{key} = {}`",
                    example(&key.to_string())
                ),
            ));
        }
        let eq: Token![=] = input.parse().map_err(|_| {
            syn::Error::new(
                input.span(),
                format!(
                    "expected `=` after `{key}`: write `{key} = {}`",
                    example(&key.to_string())
                ),
            )
        })?;
        if input.is_empty() {
            return Err(syn::Error::new_spanned(
                quote::quote!(#key #eq),
                format!(
                    "`{key}` needs a value after `=`: write `{key} = {}`",
                    example(&key.to_string())
                ),
            ));
        }
        let value: Expr = input.parse()?;
        if !input.is_empty() {
            return Err(input.error(format!(
                "unexpected tokens after the value of `{key}`; separate keys with commas"
            )));
        }
        Ok(Pair { key, value })
    }
}

impl Args {
    /// The one setter every key goes through: it rejects duplicates alike
    /// for all keys, then checks the value's kind.
    fn set(&mut self, Pair { key, value }: Pair, errors: &mut Errors) {
        let name = key.to_string();
        let known = OPTIONS.iter().any(|&(k, _, _)| k == name)
            || OTHER_KEYS.iter().any(|&(k, _)| k == name);
        if !known {
            errors.push(syn::Error::new(key.span(), unknown_key_message(&name)));
            return;
        }
        if self.seen.contains(&name) {
            errors.push(syn::Error::new(
                key.span(),
                format!("duplicate key `{name}`: each key may appear once; remove one of them"),
            ));
            return;
        }
        self.seen.push(name.clone());
        let result = match name.as_str() {
            "name" => lit_str(&key, &value).map(|lit| self.name = Some(lit)),
            "crate" => lit_str(&key, &value)
                .and_then(|lit| lit.parse::<Path>())
                .map(|path| self.krate = Some(path)),
            "fallback" => path(&key, &value).map(|path| self.fallback = Some(path)),
            "is_failure" => path(&key, &value).map(|path| self.is_failure = Some(path)),
            "config" => path(&key, &value).map(|path| self.config = Some((key.clone(), path))),
            "fallback_on" => fallback_on(&key, &value).map(|on| self.fallback_on = Some(on)),
            _ => {
                let kind = OPTIONS
                    .iter()
                    .find(|&&(k, _, _)| k == name)
                    .map(|&(_, kind, _)| kind)
                    .expect("known option");
                option_value(&key, kind, &value).map(|parsed| {
                    self.options.push(ConfigOption {
                        key: key.clone(),
                        value: parsed,
                        tokens: value.to_token_stream(),
                        written: value.to_token_stream().to_string().replace(' ', ""),
                    });
                })
            }
        };
        if let Err(err) = result {
            errors.push(err);
        }
    }

    /// The option written under `key`, if any.
    pub fn option(&self, key: &str) -> Option<&ConfigOption> {
        self.options.iter().find(|option| option.key == key)
    }
}

fn unknown_key_message(name: &str) -> String {
    let all = OPTIONS
        .iter()
        .map(|&(k, _, _)| k)
        .chain(OTHER_KEYS.iter().map(|&(k, _)| k));
    let nearest = all
        .clone()
        .map(|k| (distance(name, k), k))
        .min_by_key(|&(d, _)| d)
        .filter(|&(d, k)| d <= (k.len() / 3).max(2));
    match nearest {
        Some((_, k)) => format!(
            "unknown key `{name}`: did you mean `{k}`? write `{k} = {}`",
            example(k)
        ),
        None => format!(
            "unknown key `{name}`; the keys are: {}",
            all.collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

fn lit_str(key: &Ident, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` takes a string: write `{key} = {}`",
                example(&key.to_string())
            ),
        )),
    }
}

fn path(key: &Ident, value: &Expr) -> syn::Result<Path> {
    match value {
        Expr::Path(expr) if expr.qself.is_none() && expr.attrs.is_empty() => Ok(expr.path.clone()),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` takes a path to a function, without quotes: write `{key} = {}`",
                lit.value()
            ),
        )),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` takes a path to a function: write `{key} = {}`",
                example(&key.to_string())
            ),
        )),
    }
}

fn fallback_on(key: &Ident, value: &Expr) -> syn::Result<(FallbackOn, Span)> {
    let lit = lit_str(key, value)?;
    match lit.value().as_str() {
        "rejection" => Ok((FallbackOn::Rejection, lit.span())),
        "any_error" => Ok((FallbackOn::AnyError, lit.span())),
        other => Err(syn::Error::new(
            lit.span(),
            format!(
                "`fallback_on` is \"rejection\" (the default: only calls the breaker rejects) \
                 or \"any_error\" (also calls that fail), not \"{other}\""
            ),
        )),
    }
}

/// A number, with its sign if negative.
enum Numeric {
    Int(i128),
    Float(f64),
    Str(LitStr),
}

fn numeric(value: &Expr) -> Option<syn::Result<Numeric>> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Int(int) => Some(int.base10_parse::<i128>().map(Numeric::Int)),
            Lit::Float(float) => Some(float.base10_parse::<f64>().map(Numeric::Float)),
            Lit::Str(lit) => Some(Ok(Numeric::Str(lit.clone()))),
            _ => None,
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match numeric(expr)? {
            Ok(Numeric::Int(int)) => Some(Ok(Numeric::Int(-int))),
            Ok(Numeric::Float(float)) => Some(Ok(Numeric::Float(-float))),
            Ok(Numeric::Str(_)) => None,
            Err(err) => Some(Err(err)),
        },
        _ => None,
    }
}

fn option_value(key: &Ident, kind: Kind, value: &Expr) -> syn::Result<Value> {
    let example = example(&key.to_string());
    let wrong = |what: &str| {
        syn::Error::new_spanned(
            value,
            format!("`{key}` takes {what}: write `{key} = {example}`"),
        )
    };
    let parsed = numeric(value).transpose()?;
    match (kind, parsed) {
        (Kind::Count, Some(Numeric::Int(int))) => Ok(Value::Integer(int)),
        (Kind::Count, _) => Err(wrong("a whole number")),
        #[allow(clippy::cast_precision_loss)] // thresholds are small
        (Kind::Number, Some(Numeric::Int(int))) => Ok(Value::Number(int as f64)),
        (Kind::Number, Some(Numeric::Float(float))) => Ok(Value::Number(float)),
        (Kind::Number, _) => Err(wrong("a number, without quotes")),
        (Kind::Duration, Some(Numeric::Str(lit))) => duration::parse(&lit.value())
            .map(Value::Duration)
            .map_err(|message| syn::Error::new(lit.span(), format!("`{key}`: {message}"))),
        (Kind::Duration, Some(Numeric::Int(int))) => u64::try_from(int)
            .map(|secs| Value::Duration(std::time::Duration::from_secs(secs)))
            .map_err(|_| {
                syn::Error::new_spanned(
                    value,
                    format!("`{key}` must be greater than zero: write `{key} = {example}`"),
                )
            }),
        (Kind::Duration, _) => Err(wrong(
            "a duration: a string with a unit (\"250ms\", \"30s\", \"2m\", \"1h\") or an integer of seconds",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_get_a_suggestion() {
        assert!(
            unknown_key_message("failure_treshold").contains("did you mean `failure_threshold`")
        );
        assert!(unknown_key_message("fallbak").contains("did you mean `fallback`"));
        assert!(unknown_key_message("colour").contains("the keys are"));
    }

    #[test]
    fn commas_inside_groups_do_not_split() {
        let pieces = split_at_commas(quote::quote!(a = f::<(u8, u8)>, b = 1,));
        assert_eq!(pieces.len(), 2);
    }
}
