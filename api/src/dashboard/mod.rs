//! The dashboard at `/`: one HTML page, a script and a stylesheet compiled into the binary.
//! The charts are hand-drawn SVG; the page loads nothing from the internet (the
//! Content-Security-Policy forbids it), so it works offline and inside a VPC.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("index.html");
const DASHBOARD_JS: &str = include_str!("dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard.css");

/// Same-origin only: scripts, styles, data and images from this server.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset_response(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

pub async fn page() -> Response {
    asset_response("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    match file.as_str() {
        "dashboard.js" => Ok(asset_response(
            "text/javascript; charset=utf-8",
            DASHBOARD_JS,
        )),
        "dashboard.css" => Ok(asset_response("text/css; charset=utf-8", DASHBOARD_CSS)),
        _ => Err(ApiError::NotFound(format!(
            "no asset {}",
            crate::error::echo(&file)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_references_only_embedded_assets() {
        // The SVG namespace URI is an identifier, not a download.
        let js = DASHBOARD_JS.replace("http://www.w3.org/2000/svg", "");
        for needle in ["http://", "https://", "//cdn", "@import", "url("] {
            assert!(!INDEX_HTML.contains(needle), "index.html mentions {needle}");
            assert!(!js.contains(needle), "dashboard.js mentions {needle}");
            assert!(
                !DASHBOARD_CSS.contains(needle),
                "dashboard.css mentions {needle}"
            );
        }
        assert!(INDEX_HTML.contains("/assets/dashboard.js"));
        assert!(INDEX_HTML.contains("/assets/dashboard.css"));
    }
}
