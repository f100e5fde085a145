//! The `#[timeout]` attribute of gauntlet-harness; use it through `gauntlet_harness::timeout`.
//!
//! The attribute rewrites a test so its body runs on its own thread under the harness's
//! watchdog. It checks its argument at compile time (a bad duration or an unknown class is a
//! compile error pointing at the argument).
//!
//! Placement: put it *below* the test attribute (`#[test]`, `#[tokio::test]`, `#[rstest]`).
//! Below `#[tokio::test]` it receives the synchronous function tokio generates, so the runtime
//! is built and driven on the body's thread. Placed *above* an async test attribute, it moves
//! itself below that attribute and lets it expand first, with the same result.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, ItemFn, LitStr, ReturnType, Token};

/// The class names `gauntlet.toml` `[timeouts]` defines (kept in step with `budget::Class`).
const CLASSES: [&str; 3] = ["test_default", "model_loading", "gpu_initialization"];

enum Args {
    Default,
    Literal(LitStr),
    Class(LitStr),
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(Args::Default);
        }
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            if let Err(e) = humantime::parse_duration(&lit.value()) {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "invalid duration {:?}: {e}; expected a duration such as \"30s\" or \"500ms\"",
                        lit.value()
                    ),
                ));
            }
            if humantime::parse_duration(&lit.value()).is_ok_and(|d| d.is_zero()) {
                return Err(syn::Error::new(
                    lit.span(),
                    "a timeout of zero always fails; give a positive duration",
                ));
            }
            finish(input)?;
            return Ok(Args::Literal(lit));
        }
        let key: syn::Ident = input.parse()?;
        if key != "class" {
            return Err(syn::Error::new(
                key.span(),
                "expected #[timeout], #[timeout(\"45s\")] or #[timeout(class = \"model_loading\")]",
            ));
        }
        input.parse::<Token![=]>()?;
        let lit: LitStr = input.parse()?;
        if !CLASSES.contains(&lit.value().as_str()) {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "unknown timeout class {:?}; expected one of {}",
                    lit.value(),
                    CLASSES.join(", ")
                ),
            ));
        }
        finish(input)?;
        Ok(Args::Class(lit))
    }
}

fn finish(input: ParseStream<'_>) -> syn::Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(input.error("unexpected tokens after the timeout argument"))
    }
}

/// Fails the test with a diagnostic when it outlives its environment-scaled budget.
///
/// Forms: `#[timeout]` (class `test_default`), `#[timeout("45s")]` (a literal base, still
/// scaled by the environment), `#[timeout(class = "model_loading")]`.
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    let args_tokens: TokenStream2 = args.clone().into();
    let args = match syn::parse::<Args>(args) {
        Ok(args) => args,
        Err(e) => return e.to_compile_error().into(),
    };
    let function = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => {
            return syn::Error::new(e.span(), "#[timeout] goes on a test function")
                .to_compile_error()
                .into();
        }
    };
    let expanded = if function.sig.asyncness.is_some() {
        reorder_below_async_test(function, args_tokens)
    } else {
        wrap(function, &args)
    };
    expanded.unwrap_or_else(|e| e.to_compile_error()).into()
}

/// `#[timeout] #[tokio::test] async fn` → `#[tokio::test] #[timeout] async fn`, so the async
/// attribute produces a plain function first.
fn reorder_below_async_test(function: ItemFn, args: TokenStream2) -> syn::Result<TokenStream2> {
    let position = function.attrs.iter().position(is_async_test_attribute);
    let Some(position) = position else {
        return Err(syn::Error::new(
            function.sig.fn_token.span,
            "#[timeout] on an async fn needs an async test attribute such as #[tokio::test]; \
             write it as `#[tokio::test] #[gauntlet_harness::timeout(…)] async fn …`",
        ));
    };
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let (head, tail) = attrs.split_at(position + 1);
    Ok(quote! {
        #(#head)*
        #[::gauntlet_harness::timeout(#args)]
        #(#tail)*
        #vis #sig #block
    })
}

fn is_async_test_attribute(attr: &Attribute) -> bool {
    let path = attr.path();
    path.segments.len() > 1 && path.segments.last().is_some_and(|s| s.ident == "test")
}

fn wrap(function: ItemFn, args: &Args) -> syn::Result<TokenStream2> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = sig.ident.to_string();
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let none = quote!(::core::option::Option::None);
    let (class, literal) = match args {
        Args::Default => (none.clone(), none),
        Args::Literal(lit) => (none, quote!(::core::option::Option::Some(#lit))),
        Args::Class(lit) => (quote!(::core::option::Option::Some(#lit)), none),
    };
    let span = Span::call_site();
    let run = quote::quote_spanned!(span=> ::gauntlet_harness::__private::run);
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #run(
                ::gauntlet_harness::__private::Spec {
                    name: ::core::concat!(::core::module_path!(), "::", #name),
                    class: #class,
                    literal: #literal,
                    manifest_dir: ::core::option_env!("CARGO_MANIFEST_DIR"),
                },
                move || -> #output #block,
            )
        }
    })
}
