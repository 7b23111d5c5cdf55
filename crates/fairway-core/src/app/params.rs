//! Query strings: every route reads its parameters through [`Params`] or refuses them all
//! with [`NoParams`], so an unknown, repeated or malformed parameter is a 400 naming it,
//! never silently ignored.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The query string decoded into `T` (whose unknown fields should be denied): a parameter
/// given twice, or one `T` refuses, is a 400 naming it.
pub(super) struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        refuse_repeated(parts.uri.query())?;
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let why = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
                Err(ApiError::bad_request(why.to_owned()))
            }
        }
    }
}

/// A route that takes no parameter: any is a 400 naming it.
pub(super) struct NoParams;

impl<S: Send + Sync> FromRequestParts<S> for NoParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match names(parts.uri.query()).into_iter().next() {
            Some(name) => Err(ApiError::bad_request(format!("{name}: unknown parameter; this route takes none"))),
            None => Ok(NoParams),
        }
    }
}

/// Refuses a query string naming one parameter twice.
pub(super) fn refuse_repeated(query: Option<&str>) -> Result<(), ApiError> {
    let names = names(query);
    for (at, name) in names.iter().enumerate() {
        if names[..at].contains(name) {
            return Err(ApiError::bad_request(format!("{name}: given twice; give it once")));
        }
    }
    Ok(())
}

/// The parameter names of a query string, decoded, in order.
fn names(query: Option<&str>) -> Vec<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    pairs.into_iter().map(|(name, _)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_unknown_parameters_are_named() {
        assert!(refuse_repeated(Some("limit=1&prefix=a")).is_ok());
        let twice = refuse_repeated(Some("limit=1&prefix=a&limit=2")).unwrap_err();
        assert_eq!(twice.to_string(), "limit: given twice; give it once");
        assert_eq!(names(Some("a=1&b&c%20d=2")), ["a", "b", "c d"]);
        assert!(names(None).is_empty());
    }
}
