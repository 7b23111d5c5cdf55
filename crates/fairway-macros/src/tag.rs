//! The key of `#[tag(...)]` on a field of a `#[derive(Event)]` struct: a string literal, or
//! the path of a `&str` constant so that queries and views name the key with the same
//! constant.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote_spanned};
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Meta, Path};

/// The forms `#[tag]` accepts, named by its error.
const FORMS: &str = "#[tag] takes one tag key: a string literal, `#[tag(\"course\")]`, or the path of a `&str` \
                     constant, `#[tag(COURSE)]`";

/// The key of a `#[tag]` attribute, as an expression of type `&str`: the literal, or the
/// constant's path bound to a `&str` (spanned where the user wrote it, so a path that
/// names no `&str` constant is a name or type error pointing at the attribute).
pub fn key(attr: &Attribute) -> syn::Result<TokenStream> {
    attr.parse_args_with(|input: ParseStream| {
        if input.peek(LitStr) {
            Ok(input.parse::<LitStr>()?.into_token_stream())
        } else {
            let path = input.parse::<Path>()?;
            Ok(quote_spanned!(path.span()=> { let key: &str = #path; key }))
        }
    })
    .map_err(|err| {
        let span = match &attr.meta {
            Meta::List(list) if !list.tokens.is_empty() => err.span(),
            _ => attr.path().get_ident().map_or_else(Span::call_site, |ident| ident.span()),
        };
        syn::Error::new(span, FORMS)
    })
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn key_of(attr: Attribute) -> Result<String, String> {
        key(&attr).map(|tokens| tokens.to_string()).map_err(|err| err.to_string())
    }

    #[test]
    fn a_key_is_a_literal_or_the_path_of_a_constant() {
        assert_eq!(key_of(parse_quote!(#[tag("course")])), Ok("\"course\"".to_owned()));
        assert_eq!(key_of(parse_quote!(#[tag(COURSE)])), Ok("{ let key : & str = COURSE ; key }".to_owned()));
        let path = key_of(parse_quote!(#[tag(crate::events::COURSE)]));
        assert_eq!(path, Ok("{ let key : & str = crate :: events :: COURSE ; key }".to_owned()));
        for refused in
            [parse_quote!(#[tag]), parse_quote!(#[tag()]), parse_quote!(#[tag("a", "b")]), parse_quote!(#[tag(1)])]
        {
            assert_eq!(key_of(refused), Err(FORMS.to_owned()));
        }
    }
}
