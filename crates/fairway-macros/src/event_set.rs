//! `#[derive(EventSet)]`: an enum whose variants each wrap one event type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

/// Expands the derive, or explains what the enum must look like.
pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    const SHAPE: &str = "#[derive(EventSet)] needs an enum whose variants each wrap one event type: \
                         `enum Course { Defined(CourseDefined), Renamed(CourseRenamed) }`";
    let ident = &input.ident;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(ident, SHAPE));
    };
    if data.variants.is_empty() {
        return Err(syn::Error::new_spanned(ident, SHAPE));
    }
    let mut types: Vec<&syn::Type> = Vec::new();
    let mut arms = Vec::new();
    for variant in &data.variants {
        let Fields::Unnamed(fields) = &variant.fields else {
            return Err(syn::Error::new_spanned(variant, SHAPE));
        };
        let Some(field) = fields.unnamed.first().filter(|_| fields.unnamed.len() == 1) else {
            return Err(syn::Error::new_spanned(variant, SHAPE));
        };
        let ty = &field.ty;
        let text = quote!(#ty).to_string();
        if types.iter().any(|seen| quote!(#seen).to_string() == text) {
            return Err(syn::Error::new_spanned(ty, format!("event type `{text}` is twice in the set")));
        }
        types.push(ty);
        let name = &variant.ident;
        arms.push(quote! {
            if event.event_type == <#ty as ::fairway::Event>::NAME {
                return ::std::option::Option::Some(
                    <#ty as ::fairway::Event>::from_payload(&event.payload).map(#ident::#name),
                );
            }
        });
    }
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::fairway::EventSet for #ident #type_generics #where_clause {
            const TYPES: &'static [&'static str] = &[#(<#types as ::fairway::Event>::NAME),*];

            fn decode(
                event: &::fairway::dcb::RawEvent,
            ) -> ::std::option::Option<::std::result::Result<Self, ::fairway::EventError>> {
                #(#arms)*
                ::std::option::Option::None
            }
        }
    })
}
