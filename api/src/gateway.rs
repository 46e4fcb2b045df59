//! What API Gateway puts between a caller and the routes: the stage's name in front of every
//! path, which the routes do not have, and the header that carries the API key.

use axum::extract::Request;

/// The header carrying the API key (the one API Gateway's usage plans use).
pub const API_KEY_HEADER: &str = "x-api-key";

/// The path prefix a request came in under and the routes do not have (`/prod` behind API
/// Gateway's `prod` stage): the dashboard's page resolves its links under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePrefix(pub String);

/// Behind API Gateway with a named stage (`/prod`), `lambda_http` puts the stage in front of
/// the path; routes do not have it. Requests without a Lambda context pass unchanged.
pub(crate) async fn strip_stage(mut request: Request) -> Request {
    use lambda_http::request::RequestContext;
    let stage = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        _ => None,
    };
    let Some(prefix) = stage.filter(|s| s != "$default").map(|s| format!("/{s}")) else {
        return request;
    };
    let uri = request.uri();
    if let Some(rest) = uri
        .path()
        .strip_prefix(&prefix)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    {
        let rest = if rest.is_empty() { "/" } else { rest };
        let target = match uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        if let Ok(new) = target.parse() {
            *request.uri_mut() = new;
            request.extensions_mut().insert(StagePrefix(prefix));
        }
    }
    request
}
