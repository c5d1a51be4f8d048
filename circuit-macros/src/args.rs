//! The attribute's arguments, parsed into a typed AST.
//!
//! The arguments are split at top-level commas first and each `key = value`
//! is parsed on its own, so one malformed pair does not hide the mistakes in
//! the others: every error is collected and reported together.

use circuit_spec::{Key, Problem, Raw, Value};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitStr, Path, Token, UnOp};

use crate::errors::Errors;

/// The keys that are not runtime options, with the example the error
/// messages suggest.
const OTHER_KEYS: &[(&str, &str)] = &[
    ("name", "\"quotes\""),
    ("fallback", "cached_quote"),
    ("fallback_on", "\"any_error\""),
    ("is_failure", "is_transient"),
    ("config", "quotes_config"),
    ("timeout", "\"2s\""),
    ("sleeper", "tokio::time::sleep"),
    ("crate", "\"circuit_runtime\""),
    ("key", "self.host"),
    ("max_keys", "1000"),
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
    /// An `async fn`'s time limit, and where it is written.
    pub timeout: Option<(std::time::Duration, Span)>,
    /// What measures `timeout`.
    pub sleeper: Option<Path>,
    /// The expression whose text picks the call's breaker under `name`.
    pub key: Option<Expr>,
    /// The bound on a keyed name's breakers, and where it is written.
    pub max_keys: Option<(usize, Span)>,
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
    /// The option `key` names.
    pub option: Key,
    pub value: Value,
    /// The value's tokens, where range errors point.
    pub tokens: TokenStream,
    /// The value as written, for messages (`2.0`, not `2`).
    pub written: String,
}

/// The example value for `key`, for messages that say what to write.
pub fn example(key: &str) -> &'static str {
    match Key::from_name(key) {
        Some(option) => option.spec().example,
        None => OTHER_KEYS
            .iter()
            .find(|&&(k, _)| k == key)
            .map_or("...", |&(_, e)| e),
    }
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
pub fn split_at_commas(tokens: TokenStream) -> Vec<TokenStream> {
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
        parse_pair(input, example).map(|(key, value)| Pair { key, value })
    }
}

/// `key = value`, with mistakes explained by suggesting `example(key)`:
/// how every attribute of this crate reads one key.
pub fn parse_pair(
    input: ParseStream,
    example: fn(&str) -> &'static str,
) -> syn::Result<(Ident, Expr)> {
    {
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
        Ok((key, value))
    }
}

impl Args {
    /// The one setter every key goes through: it rejects duplicates alike
    /// for all keys, then checks the value's kind.
    fn set(&mut self, Pair { key, value }: Pair, errors: &mut Errors) {
        let name = key.to_string();
        let known = Key::from_name(&name).is_some() || OTHER_KEYS.iter().any(|&(k, _)| k == name);
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
            "sleeper" => path(&key, &value).map(|path| self.sleeper = Some(path)),
            "key" => {
                self.key = Some(value);
                Ok(())
            }
            "max_keys" => max_keys(&value).map(|max| self.max_keys = Some((max, key.span()))),
            "timeout" => lit_str(&key, &value).and_then(|lit| {
                let limit = circuit_spec::duration::parse(&lit.value()).map_err(|problem| {
                    syn::Error::new(lit.span(), format!("`timeout`: {problem}"))
                })?;
                if limit.is_zero() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`timeout` must be greater than zero: write `timeout = \"2s\"`",
                    ));
                }
                self.timeout = Some((limit, lit.span()));
                Ok(())
            }),
            _ => {
                let option = Key::from_name(&name).expect("known option");
                option_value(option, &value).map(|parsed| {
                    self.options.push(ConfigOption {
                        key: key.clone(),
                        option,
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
    pub fn option(&self, key: Key) -> Option<&ConfigOption> {
        self.options.iter().find(|option| option.option == key)
    }
}

fn unknown_key_message(name: &str) -> String {
    circuit_spec::unknown_key(name, OTHER_KEYS)
}

pub fn lit_str(key: &Ident, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        // A bare name was most likely meant as the string itself.
        Expr::Path(path) if path.qself.is_none() => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` takes a string: write `{key} = \"{}\"`",
                path.to_token_stream().to_string().replace(' ', "")
            ),
        )),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` takes a string: write `{key} = {}`",
                example(&key.to_string())
            ),
        )),
    }
}

pub fn path(key: &Ident, value: &Expr) -> syn::Result<Path> {
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

/// `max_keys = 1000`: a whole number of at least 1.
fn max_keys(value: &Expr) -> syn::Result<usize> {
    let message = "`max_keys` takes a whole number of at least 1: write `max_keys = 1000`";
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<usize>() {
            Ok(max) if max >= 1 => Ok(max),
            _ => Err(syn::Error::new_spanned(value, message)),
        },
        _ => Err(syn::Error::new_spanned(value, message)),
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

/// A literal an option may take, with its sign if negative.
enum Literal {
    Int(i128),
    Float(f64),
    Str(LitStr),
}

/// Whether a number literal's suffix is a number type's (`5u32`, `0.5f64`)
/// or absent.
pub fn is_number_suffix(suffix: &str) -> bool {
    suffix.is_empty()
        || [
            "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
            "f32", "f64",
        ]
        .contains(&suffix)
}

/// `250ms` written without quotes: Rust reads a number with a suffix, and
/// taking the number alone would make it seconds.
pub fn unit_outside_quotes(literal: &impl ToTokens) -> syn::Error {
    let written = literal.to_token_stream().to_string();
    syn::Error::new_spanned(
        literal,
        format!("`{written}` is not a number: write a duration in quotes, `\"{written}\"`"),
    )
}

fn literal(value: &Expr) -> Option<syn::Result<Literal>> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Int(int) if !is_number_suffix(int.suffix()) => Some(Err(unit_outside_quotes(int))),
            Lit::Float(float) if !is_number_suffix(float.suffix()) => {
                Some(Err(unit_outside_quotes(float)))
            }
            Lit::Int(int) => Some(int.base10_parse::<i128>().map(Literal::Int)),
            Lit::Float(float) => Some(float.base10_parse::<f64>().map(Literal::Float)),
            Lit::Str(lit) => Some(Ok(Literal::Str(lit.clone()))),
            _ => None,
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match literal(expr)? {
            Ok(Literal::Int(int)) => Some(Ok(Literal::Int(-int))),
            Ok(Literal::Float(float)) => Some(Ok(Literal::Float(-float))),
            Ok(Literal::Str(_)) => None,
            Err(err) => Some(Err(err)),
        },
        _ => None,
    }
}

/// Reads an option's literal by the option table's rules, spanning a
/// mistake at the literal.
fn option_value(option: Key, value: &Expr) -> syn::Result<Value> {
    let literal = literal(value).transpose()?;
    let text;
    let raw = match &literal {
        // Saturated: a number that large is out of range either way, and
        // the message shows it as written.
        Some(Literal::Int(int)) => {
            Raw::Integer(i64::try_from(*int).unwrap_or(if *int < 0 { i64::MIN } else { i64::MAX }))
        }
        Some(Literal::Float(float)) => Raw::Float(*float),
        Some(Literal::Str(lit)) => {
            text = lit.value();
            Raw::Str(&text)
        }
        None => Raw::Other("an expression"),
    };
    option.value_from(raw).map_err(|problem| {
        let written = value.to_token_stream().to_string().replace(' ', "");
        let message = problem.explain(|_, _| written.clone());
        match (&problem, &literal) {
            (Problem::BadDuration { .. }, Some(Literal::Str(lit))) => {
                syn::Error::new(lit.span(), message)
            }
            _ => syn::Error::new_spanned(value, message),
        }
    })
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
