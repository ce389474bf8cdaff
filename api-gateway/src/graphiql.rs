//! GraphiQL at `GET /graphql`. When the assets were fetched at build time (`cargo xtask` does
//! it), the page and its scripts are served from this binary, so it works with no internet;
//! otherwise the page loads the same files from a CDN.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

/// The GraphiQL page.
pub async fn page() -> Html<String> {
    Html(page_html())
}

#[cfg(graphiql_assets)]
fn page_html() -> String {
    OFFLINE_PAGE.to_owned()
}

#[cfg(not(graphiql_assets))]
fn page_html() -> String {
    async_graphql::http::GraphiQLSource::build().endpoint("/graphql").title("API gateway").finish()
}

/// A page that loads everything from `/graphiql/…` on this server.
#[cfg(graphiql_assets)]
const OFFLINE_PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>API gateway · GraphiQL</title>
    <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
    <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="/graphiql/react.production.min.js"></script>
    <script src="/graphiql/react-dom.production.min.js"></script>
    <script src="/graphiql/graphiql.min.js"></script>
    <script>
      const fetcher = GraphiQL.createFetcher({ url: "/graphql" });
      ReactDOM.createRoot(document.getElementById("graphiql"))
        .render(React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true }));
    </script>
  </body>
</html>
"#;

/// `GET /graphiql/{file}`: one of the embedded assets.
pub async fn asset(Path(file): Path<String>) -> Response {
    match asset_bytes(&file) {
        Some((bytes, content_type)) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(graphiql_assets)]
fn asset_bytes(file: &str) -> Option<(&'static [u8], &'static str)> {
    const JS: &str = "text/javascript; charset=utf-8";
    Some(match file {
        "react.production.min.js" => (include_bytes!("../assets/graphiql/react.production.min.js").as_slice(), JS),
        "react-dom.production.min.js" => {
            (include_bytes!("../assets/graphiql/react-dom.production.min.js").as_slice(), JS)
        }
        "graphiql.min.js" => (include_bytes!("../assets/graphiql/graphiql.min.js").as_slice(), JS),
        "graphiql.min.css" => {
            (include_bytes!("../assets/graphiql/graphiql.min.css").as_slice(), "text/css; charset=utf-8")
        }
        _ => return None,
    })
}

#[cfg(not(graphiql_assets))]
fn asset_bytes(_file: &str) -> Option<(&'static [u8], &'static str)> {
    None
}
