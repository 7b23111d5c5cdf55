//! Strict parsing of attribute arguments: every argument must be one the attribute knows,
//! given once, in its expected form; anything else is a compile error spanned on the
//! offending tokens that names the arguments the attribute accepts.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Error, Meta, Token};

/// The flags (bare identifiers such as `snapshots`) an attribute accepts.
pub struct Flags {
    /// The attribute's name, as written after `#` (`command`, `view`, ...).
    pub attribute: &'static str,
    /// The flags it accepts; empty when it takes no arguments.
    pub allowed: &'static [&'static str],
}

impl Flags {
    /// Parses `args` (what stands between the attribute's parentheses) and returns, for each
    /// allowed flag in order, whether it was given.
    pub fn parse(&self, args: TokenStream) -> syn::Result<Vec<bool>> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args).map_err(|err| {
            Error::new(
                err.span(),
                format!("cannot read the arguments of #[{}]; {}", self.attribute, self.allowed_text()),
            )
        })?;
        let mut given = vec![false; self.allowed.len()];
        for meta in metas {
            let name = path_text(meta.path());
            let Some(index) = self.allowed.iter().position(|allowed| *allowed == name) else {
                return Err(Error::new_spanned(
                    meta.path(),
                    format!("unknown argument `{name}` for #[{}]; {}", self.attribute, self.allowed_text()),
                ));
            };
            if !matches!(meta, Meta::Path(_)) {
                return Err(Error::new_spanned(
                    &meta,
                    format!(
                        "argument `{name}` of #[{}] takes no value: write `#[{}({name})]`",
                        self.attribute, self.attribute
                    ),
                ));
            }
            if given[index] {
                return Err(Error::new_spanned(
                    &meta,
                    format!("duplicate argument `{name}` for #[{}]", self.attribute),
                ));
            }
            given[index] = true;
        }
        Ok(given)
    }

    /// The sentence naming what the attribute accepts.
    fn allowed_text(&self) -> String {
        if self.allowed.is_empty() {
            format!("#[{}] takes no arguments", self.attribute)
        } else {
            let names: Vec<String> = self.allowed.iter().map(|name| format!("`{name}`")).collect();
            format!("allowed: {}", names.join(", "))
        }
    }
}

/// A path as the user wrote it, without the spaces `to_string` puts around `::`.
pub fn path_text(path: &syn::Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}
