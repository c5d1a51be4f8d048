//! The annotated function: attributes, visibility and signature parsed, the
//! body kept as raw tokens. Parsing the body would cost compile time and
//! buy nothing: the expansion never looks inside it, and rustc reports the
//! body's own errors better than a macro could.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Token, Visibility};

/// A free function, an associated function or a method, with a body.
pub struct Function {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    /// The body, braces included.
    pub body: Group,
}

impl Parse for Function {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if input.peek(Token![default]) {
            return Err(input.error("`#[circuit_breaker]` does not support `default fn`"));
        }
        let sig: Signature = input.parse()?;
        if input.peek(Token![;]) {
            return Err(syn::Error::new(
                sig.ident.span(),
                "`#[circuit_breaker]` needs the function's body: put it on the function in the \
                 `impl` block, not on a declaration without a body",
            ));
        }
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(
                body.span(),
                "expected the function's body in braces",
            ));
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the function's body"));
        }
        Ok(Function {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// Parses the item, or explains which kind of item it is and where the
/// attribute belongs instead.
pub fn parse(item: &TokenStream, attribute: &str) -> syn::Result<Function> {
    let function = syn::parse2::<Function>(item.clone());
    if function.is_ok() {
        return function;
    }
    match item_keyword(item.clone()) {
        Some(keyword) if keyword != "fn" => Err(syn::Error::new(
            keyword.span(),
            format!(
                "`#[{attribute}]` protects functions and methods, not a `{keyword}`: put it \
                 on the `fn` whose calls it should protect"
            ),
        )),
        _ => function,
    }
}

/// The keyword that says what the item is (`struct`, `const`, `fn`), past
/// its attributes and visibility, and past qualifiers that only functions
/// take.
fn item_keyword(item: TokenStream) -> Option<proc_macro2::Ident> {
    let mut tokens = item.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            // An attribute: `#` then `[...]` (or `!` then `[...]`).
            TokenTree::Punct(punct) if punct.as_char() == '#' => {
                if matches!(tokens.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!') {
                    tokens.next();
                }
                tokens.next();
            }
            TokenTree::Group(_) | TokenTree::Literal(_) | TokenTree::Punct(_) => {}
            TokenTree::Ident(ident) => {
                let text = ident.to_string();
                let qualifier = matches!(text.as_str(), "pub" | "async" | "unsafe" | "extern");
                // `const` is an item of its own unless a function follows.
                let const_fn = text == "const"
                    && matches!(tokens.peek(), Some(TokenTree::Ident(next))
                        if ["fn", "async", "unsafe", "extern"].contains(&next.to_string().as_str()));
                if !qualifier && !const_fn {
                    return Some(ident);
                }
            }
        }
    }
    None
}
