//! Macros of Fairway. Generated code names only `::fairway::…`, so users need no other
//! dependency.

use proc_macro::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr, parse_macro_input};

/// Derives `fairway::Event` for a struct with named fields.
///
/// - `#[event(name = "CourseDefined")]` sets the stable event type name (default: the
///   struct's name). Two event types with one name are refused when the app starts.
/// - `#[tag("course")]` on a field tags the event with `course:<field value>` (the field
///   must implement `Display`; `Option` fields add the tag only when `Some`).
///
/// The payload is the struct encoded with MessagePack maps (`rmp_serde::to_vec_named`), so
/// fields may be added (with `#[serde(default)]`), removed or renamed (`#[serde(alias)]`)
/// without migrating stored events. The struct must derive `Serialize` and `Deserialize`.
#[proc_macro_derive(Event, attributes(event, tag))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand_event(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand_event(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let ident = &input.ident;
    let mut name = ident.to_string();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                name = meta.value()?.parse::<LitStr>()?.value();
                Ok(())
            } else {
                Err(meta.error("expected `name = \"...\"`"))
            }
        })?;
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(ident, "#[derive(Event)] supports structs"));
    };
    let mut tags = Vec::new();
    if let Fields::Named(fields) = &data.fields {
        for field in &fields.named {
            for attr in field.attrs.iter().filter(|a| a.path().is_ident("tag")) {
                let key: LitStr = attr.parse_args()?;
                let field_ident = field.ident.as_ref().expect("named field");
                let is_option = matches!(&field.ty, syn::Type::Path(p)
                    if p.path.segments.last().is_some_and(|s| s.ident == "Option"));
                tags.push(if is_option {
                    quote! {
                        if let ::std::option::Option::Some(value) = &self.#field_ident {
                            tags.push(::fairway::dcb::Tag::new(#key, value)?);
                        }
                    }
                } else {
                    quote! { tags.push(::fairway::dcb::Tag::new(#key, &self.#field_ident)?); }
                });
            }
        }
    }
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::fairway::Event for #ident #type_generics #where_clause {
            const NAME: &'static str = #name;

            fn tags(&self) -> ::std::result::Result<::std::vec::Vec<::fairway::dcb::Tag>, ::fairway::dcb::InvalidInput> {
                let mut tags = ::std::vec::Vec::new();
                #(#tags)*
                ::std::result::Result::Ok(tags)
            }
        }

        ::fairway::inventory::submit! {
            ::fairway::EventType { name: #name, rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ident)) }
        }
    })
}

/// Registers a command slice: put it on `impl fairway::Command for MyCommand`. The command
/// type must implement `serde::Deserialize` (it is the HTTP body of `POST /commands/<NAME>`).
///
/// `#[command(snapshots)]` folds from decision-model snapshots; the command must then also
/// implement `fairway::SnapshotModel`.
#[proc_macro_attribute]
pub fn command(args: TokenStream, item: TokenStream) -> TokenStream {
    let snapshots = match args.to_string().as_str() {
        "" => false,
        "snapshots" => true,
        other => {
            let message = format!("unknown option `{other}`: expected `#[command]` or `#[command(snapshots)]`");
            return syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error().into();
        }
    };
    register(item, |ty| {
        let handler = if snapshots {
            quote! { ::fairway::registry::command_handler_with_snapshots::<#ty> }
        } else {
            quote! { ::fairway::registry::command_handler::<#ty> }
        };
        quote! {
            ::fairway::inventory::submit! {
                ::fairway::registry::CommandSlice {
                    rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ty)),
                    name: <#ty as ::fairway::Command>::NAME,
                    handler: #handler,
                }
            }
        }
    })
}

/// Registers a view slice: put it on `impl fairway::View for MyView`. The view type must
/// implement `Default` (the runtime builds it).
#[proc_macro_attribute]
pub fn view(_args: TokenStream, item: TokenStream) -> TokenStream {
    register(item, |ty| {
        quote! {
            ::fairway::inventory::submit! {
                ::fairway::registry::ViewSlice {
                    rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ty)),
                    name: <#ty as ::fairway::View>::NAME,
                    version: <#ty as ::fairway::View>::VERSION,
                    start: ::fairway::registry::view_starter::<#ty>,
                }
            }
        }
    })
}

/// Registers an automation slice: put it on `impl fairway::Automation for MyAutomation`. The
/// automation type must implement `Default` (the runtime builds it); outside services come
/// from `AutomationContext::dependency`.
#[proc_macro_attribute]
pub fn automation(_args: TokenStream, item: TokenStream) -> TokenStream {
    register(item, |ty| {
        quote! {
            ::fairway::inventory::submit! {
                ::fairway::registry::AutomationSlice {
                    rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ty)),
                    name: <#ty as ::fairway::Automation>::NAME,
                    start: ::fairway::registry::automation_starter::<#ty>,
                }
            }
        }
    })
}

fn register(item: TokenStream, submit: impl Fn(&syn::Type) -> proc_macro2::TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as syn::ItemImpl);
    if input.trait_.is_none() {
        return syn::Error::new_spanned(&input.self_ty, "put this attribute on the trait impl of the slice")
            .to_compile_error()
            .into();
    }
    let registration = submit(&input.self_ty);
    quote! { #input #registration }.into()
}
