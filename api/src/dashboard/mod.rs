//! The dashboard at `/`: one HTML page, a script and a stylesheet compiled into the binary.
//! The charts are hand-drawn SVG; the page loads nothing from the internet (the
//! Content-Security-Policy forbids it), so it works offline and inside a VPC. Every URL in
//! the page and the script is relative to the page's `<base>`: `/` locally, `/<stage>/` behind
//! API Gateway, so the same files work at both.

use axum::Extension;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::gateway::StagePrefix;

const INDEX_HTML: &str = include_str!("index.html");
const DASHBOARD_JS: &str = include_str!("dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard.css");

/// Same-origin only: scripts, styles, data and images from this server.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The page's `<base>` as written in `index.html`, replaced by the stage's.
const BASE: &str = "<base href=\"/\">";

fn asset_response(content_type: &'static str, body: impl IntoResponse) -> Response {
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

/// `GET /`: the dashboard page, its `<base>` set to the API Gateway stage when there is one
/// (a stage name with other characters than letters, digits, `_` and `-` is ignored).
pub async fn page(stage: Option<Extension<StagePrefix>>) -> Response {
    let html = match stage {
        // Stage names are letters, digits and `_`: anything else is left out of the page.
        Some(Extension(StagePrefix(prefix)))
            if prefix.len() > 1
                && prefix[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            INDEX_HTML.replace(BASE, &format!("<base href=\"{prefix}/\">"))
        }
        _ => INDEX_HTML.to_string(),
    };
    asset_response("text/html; charset=utf-8", html)
}

/// `GET /assets/{file}`: `dashboard.js` or `dashboard.css`; any other name is a 404.
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
        // Relative to the page's base, which the server sets.
        assert!(INDEX_HTML.contains(BASE));
        assert!(INDEX_HTML.contains("src=\"assets/dashboard.js\""));
        assert!(INDEX_HTML.contains("href=\"assets/dashboard.css\""));
        assert!(!INDEX_HTML.contains("=\"/assets"), "an absolute asset URL");
        assert!(!js.contains("api(\"/"), "an absolute API URL in the script");
    }
}
