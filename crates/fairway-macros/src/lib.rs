//! Macros of Fairway. Generated code names only `::fairway::…`, so users need no other
//! dependency.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::dbg_macro, clippy::todo, clippy::unimplemented)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod args;
mod event_set;
mod slices;
mod tag;

use args::Flags;
use proc_macro::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, LitStr, parse_macro_input};

/// Declares every slice of a folder as a public module: `fairway::slices!();` in
/// `src/slices/mod.rs` includes each `src/slices/<name>.rs` and each `src/slices/<name>/`
/// folder holding a `mod.rs` (`fairway::slices!("src/other")` lists another folder,
/// relative to the package). Adding a slice is adding a file; nothing lists slices by hand.
///
/// Nothing is ever skipped silently, so each of these is a compile error naming the file:
/// a file or folder whose name is not a snake_case module name, a folder without `mod.rs`,
/// and a package whose build script does not make Cargo watch the folder (without it, a
/// file added after a build would not be compiled until another file changed). The build
/// script `fairway new` writes (`build.rs`, beside `Cargo.toml`):
///
/// ```ignore
/// fn main() {
///     println!("cargo:rerun-if-changed=src/slices");
///     println!("cargo:rustc-env=FAIRWAY_SLICES_WATCHED=src/slices");
/// }
/// ```
#[proc_macro]
pub fn slices(input: TokenStream) -> TokenStream {
    match slices::expand(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Derives `fairway::Event` for a struct with named fields.
///
/// - `#[event(name = "CourseDefined")]` sets the stable event type name (default: the
///   struct's name). Two event types with one name are refused when the app starts.
/// - `#[tag("course")]` on a field tags the event with `course:<field value>` (the field
///   must implement `Display`; `Option` fields add the tag only when `Some`).
/// - `#[tag(COURSE)]` does the same with the key a `&str` constant holds (any path:
///   `#[tag(crate::events::COURSE)]`). Name a key that way when commands and views use it
///   too, so it is written once: `pub const COURSE: &str = "course";` beside the events,
///   `id.tag(COURSE)` in queries, `tx.tag(COURSE)` in views. A path that names no `&str`
///   constant is a compile error at the attribute.
///
/// ```ignore
/// /// Tag key of a course's events: `course:<course_id>`.
/// pub const COURSE: &str = "course";
///
/// #[derive(Serialize, Deserialize, Event)]
/// pub struct CourseDefined {
///     #[tag(COURSE)]
///     pub course_id: Id,
///     pub capacity: u32,
/// }
///
/// // A command's boundary and a view's document key, with the same constant:
/// let boundary = CourseDefined::tagged([course_id.tag(COURSE)]);
/// let document = tx.tag(COURSE);
/// ```
///
/// The payload is the struct encoded with MessagePack maps (`rmp_serde::to_vec_named`), so
/// fields may be added (with `#[serde(default)]`), removed or renamed (`#[serde(alias)]`)
/// without migrating stored events. The struct must derive `Serialize` and `Deserialize`.
///
/// Any other argument, a duplicate `name`, or either attribute in the other's place is a
/// compile error.
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
    let name = event_name(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(ident, "#[derive(Event)] supports structs"));
    };
    let mut tags = Vec::new();
    for field in &data.fields {
        if let Some(attr) = field.attrs.iter().find(|a| a.path().is_ident("event")) {
            return Err(syn::Error::new_spanned(attr, "#[event] goes on the event struct, not on a field"));
        }
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("tag")) {
            let key = tag::key(attr)?;
            let Some(field_ident) = field.ident.as_ref() else {
                return Err(syn::Error::new_spanned(
                    attr,
                    "#[tag] needs a named field (`struct E { #[tag(\"key\")] id: Id }`)",
                ));
            };
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

        ::fairway::__private::inventory::submit! {
            ::fairway::EventType { name: #name, rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ident)) }
        }
    })
}

/// The event type name: the `name` of `#[event(name = "...")]`, or the struct's name.
fn event_name(input: &DeriveInput) -> syn::Result<String> {
    const ALLOWED: &str = "allowed: `name = \"...\"`";
    let mut name: Option<LitStr> = None;
    if let Some(attr) = input.attrs.iter().find(|a| a.path().is_ident("tag")) {
        return Err(syn::Error::new_spanned(attr, "#[tag] goes on a field of the event struct, not on the struct"));
    }
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        if !matches!(attr.meta, syn::Meta::List(_)) {
            return Err(syn::Error::new_spanned(attr, format!("#[event] needs arguments; {ALLOWED}")));
        }
        attr.parse_nested_meta(|meta| {
            let argument = args::path_text(&meta.path);
            if argument != "name" {
                return Err(meta.error(format!("unknown argument `{argument}` for #[event]; {ALLOWED}")));
            }
            if !meta.input.peek(syn::Token![=]) {
                return Err(
                    meta.error("argument `name` of #[event] needs a value: `#[event(name = \"CourseDefined\")]`")
                );
            }
            let value: LitStr = meta.value()?.parse()?;
            if name.is_some() {
                return Err(syn::Error::new_spanned(&meta.path, "duplicate argument `name` for #[event]"));
            }
            name = Some(value);
            Ok(())
        })?;
    }
    Ok(name.map_or_else(|| input.ident.to_string(), |name| name.value()))
}

/// Derives `fairway::EventSet` for an enum whose variants each wrap one event type: the
/// events a slice reads, decoded into one value to `match` on.
///
/// ```ignore
/// #[derive(EventSet)]
/// enum Seats {
///     Defined(CourseDefined),
///     Subscribed(StudentSubscribed),
/// }
/// ```
///
/// The set's `TYPES` are the variants' event names, in order; decoding looks at the stored
/// type name first and decodes only a type of the set. Anything but tuple variants of one
/// field, or one event type in two variants, is a compile error.
#[proc_macro_derive(EventSet)]
pub fn derive_event_set(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match event_set::expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Registers a command slice: put it on `impl fairway::Command for MyCommand`. The command
/// type must implement `serde::Deserialize` (it is the HTTP body of `POST /commands/<NAME>`).
/// Without `const NAME`, the command is named after its type in kebab-case
/// (`SubscribeStudent` → `subscribe-student`).
///
/// `#[command(snapshots)]` folds from decision-model snapshots; the command must then also
/// implement `fairway::SnapshotModel`. Any other argument is a compile error.
#[proc_macro_attribute]
pub fn command(args: TokenStream, item: TokenStream) -> TokenStream {
    const FLAGS: Flags = Flags { attribute: "command", allowed: &["snapshots"] };
    let snapshots = match FLAGS.parse(args.into()) {
        Ok(given) => given[0],
        Err(err) => return refused(err, item),
    };
    let mut input = parse_macro_input!(item as syn::ItemImpl);
    name_by_default(&mut input);
    if snapshots {
        // The command folds from snapshots wherever it runs: the runner asks the command.
        input.items.push(syn::parse_quote! {
            fn snapshot_codec() -> ::std::option::Option<::fairway::__private::SnapshotCodec<Self>> {
                ::std::option::Option::Some(::fairway::__private::SnapshotCodec::of())
            }
        });
    }
    register(input, |ty| {
        quote! {
            ::fairway::__private::inventory::submit! {
                ::fairway::__private::CommandSlice {
                    rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ty)),
                    name: <#ty as ::fairway::Command>::NAME,
                    handler: ::fairway::__private::command_handler::<#ty>,
                }
            }
        }
    })
}

/// Registers a view slice: put it on `impl fairway::View for MyView`. The view type must
/// implement `Default` (the runtime builds it). Without `const NAME`, the view is named after
/// its type in kebab-case. `#[view]` takes no arguments.
#[proc_macro_attribute]
pub fn view(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Err(err) = (Flags { attribute: "view", allowed: &[] }).parse(args.into()) {
        return refused(err, item);
    }
    let mut input = parse_macro_input!(item as syn::ItemImpl);
    name_by_default(&mut input);
    register(input, |ty| {
        quote! {
            ::fairway::__private::inventory::submit! {
                ::fairway::__private::ViewSlice {
                    rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ty)),
                    name: <#ty as ::fairway::View>::NAME,
                    version: <#ty as ::fairway::View>::VERSION,
                    start: ::fairway::__private::view_starter::<#ty>,
                }
            }
        }
    })
}

/// Registers an automation slice: put it on `impl fairway::Automation for MyAutomation`. The
/// automation type must implement `Default` (the runtime builds it); outside services come
/// from `AutomationContext::dependency`. Without `const NAME`, the automation is named after
/// its type in kebab-case. `#[automation]` takes no arguments.
#[proc_macro_attribute]
pub fn automation(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Err(err) = (Flags { attribute: "automation", allowed: &[] }).parse(args.into()) {
        return refused(err, item);
    }
    let mut input = parse_macro_input!(item as syn::ItemImpl);
    name_by_default(&mut input);
    register(input, |ty| {
        quote! {
            ::fairway::__private::inventory::submit! {
                ::fairway::__private::AutomationSlice {
                    rust_type: ::std::concat!(::std::module_path!(), "::", ::std::stringify!(#ty)),
                    name: <#ty as ::fairway::Automation>::NAME,
                    start: ::fairway::__private::automation_starter::<#ty>,
                }
            }
        }
    })
}

/// Gives the slice its `NAME` when the impl leaves it out: the type's name in kebab-case
/// (`JoinWaitingList` → `"join-waiting-list"`), as `#[derive(Event)]` names an event after
/// its type. An impl with macro-made items is left as written (one of them may be `NAME`).
fn name_by_default(input: &mut syn::ItemImpl) {
    // An item made by a macro may be the `NAME`: leave such impls as written.
    let named = input.items.iter().any(|item| match item {
        syn::ImplItem::Const(constant) => constant.ident == "NAME",
        syn::ImplItem::Macro(_) => true,
        _ => false,
    });
    let syn::Type::Path(path) = input.self_ty.as_ref() else { return };
    let Some(last) = path.path.segments.last() else { return };
    if !named {
        let name = heck::ToKebabCase::to_kebab_case(last.ident.to_string().as_str());
        input.items.insert(0, syn::parse_quote! { const NAME: &'static str = #name; });
    }
}

/// The error of refused attribute arguments, followed by the item unchanged (so the error
/// is not buried under errors about the missing item).
fn refused(err: syn::Error, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let error = err.to_compile_error();
    quote! { #error #item }.into()
}

fn register(input: syn::ItemImpl, submit: impl Fn(&syn::Type) -> proc_macro2::TokenStream) -> TokenStream {
    if input.trait_.is_none() {
        return syn::Error::new_spanned(&input.self_ty, "put this attribute on the trait impl of the slice")
            .to_compile_error()
            .into();
    }
    let registration = submit(&input.self_ty);
    quote! { #input #registration }.into()
}
