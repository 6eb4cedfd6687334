//! Errors of the web pages and how they are shown: a page in the request's language with the
//! right status. Details of internal failures go to the log, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postamt_delivery::DeliveryError;
use postamt_store::StoreError;

use crate::ctx::LANG;
use crate::i18n::Lang;
use crate::layout;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    /// Signed in, but not allowed (e.g. an administration page without the admin role).
    #[error("forbidden")]
    Forbidden,
    /// A form without the right CSRF token (expired page, or a forged request).
    #[error("the form's security token is missing or wrong")]
    Csrf,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("too many requests")]
    TooManyRequests,
    /// Credentials over plain http from elsewhere than loopback.
    #[error("credentials are only accepted over https")]
    Insecure,
    /// The authentication back end could not answer (store down); try again.
    #[error("temporary failure: {0}")]
    Temporary(String),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("delivery failed: {0}")]
    Delivery(#[from] DeliveryError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound | WebError::Store(StoreError::NotFound { .. }) => StatusCode::NOT_FOUND,
            WebError::Forbidden | WebError::Csrf | WebError::Insecure => StatusCode::FORBIDDEN,
            WebError::BadRequest(_)
            | WebError::Store(StoreError::Invalid { .. } | StoreError::UnknownDomain(_)) => {
                StatusCode::BAD_REQUEST
            }
            WebError::Store(StoreError::AlreadyExists { .. }) => StatusCode::CONFLICT,
            WebError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            WebError::Temporary(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(_) | WebError::Delivery(_) | WebError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// What the user is told, in their language.
    pub fn message(&self, lang: Lang) -> String {
        let t = lang.texts();
        match self {
            WebError::NotFound | WebError::Store(StoreError::NotFound { .. }) => t.err_not_found.into(),
            WebError::Forbidden => t.err_forbidden.into(),
            WebError::Csrf => t.err_csrf.into(),
            WebError::BadRequest(detail) => detail.clone(),
            WebError::Store(
                e @ (StoreError::Invalid { .. }
                | StoreError::UnknownDomain(_)
                | StoreError::AlreadyExists { .. }),
            ) => e.to_string(),
            WebError::TooManyRequests => t.err_too_many.into(),
            WebError::Insecure => t.err_insecure.into(),
            WebError::Temporary(_) => t.err_temporary.into(),
            WebError::Store(_) | WebError::Delivery(_) | WebError::Internal(_) => t.err_internal.into(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "web request failed");
        }
        let lang = LANG.try_with(|l| *l).unwrap_or(Lang::En);
        (status, layout::error_page(lang, status, &self.message(lang))).into_response()
    }
}
