//! GraphiQL at `GET /graphql`. When the assets were fetched at build time (`cargo xtask` does
//! it), the page and its scripts are served from this binary, so it works with no internet;
//! otherwise the page loads the same files from a CDN.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

/// The GraphiQL page.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Where the page loads GraphiQL and React from: this server when the files are embedded,
/// otherwise a CDN serving the same pinned versions.
#[cfg(graphiql_assets)]
macro_rules! asset_url {
    ($file:literal) => {
        concat!("/graphiql/", $file)
    };
}
#[cfg(not(graphiql_assets))]
macro_rules! asset_url {
    ("react.production.min.js") => {
        "https://unpkg.com/react@18.3.1/umd/react.production.min.js"
    };
    ("react-dom.production.min.js") => {
        "https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"
    };
    ("graphiql.min.js") => {
        "https://unpkg.com/graphiql@3.8.3/graphiql.min.js"
    };
    ("graphiql.min.css") => {
        "https://unpkg.com/graphiql@3.8.3/graphiql.min.css"
    };
}

/// The operations in the editor when GraphiQL opens (a literal, so the page is one constant).
macro_rules! example {
    () => {
        r#"# Run an operation with the play button (it asks which one).
# Reading the catalog needs no token.
query Products {
  products(page: 1, limit: 10) {
    id
    name
    price
    stock
    category
  }
}

# Log in as the admin `cargo xtask start` creates, then put the token in the Headers
# tab as {"Authorization": "Bearer <token>"} to create products or place orders.
mutation Login {
  login(email: "admin@example.com", password: "admin-password") {
    token
    expiresAt
  }
}
"#
    };
}

/// What the editor holds when GraphiQL opens: operations that run as they are, so a newcomer
/// sees data at the first click instead of GraphiQL's generic welcome text.
pub const EXAMPLE_OPERATIONS: &str = example!();

/// The page, with the example operations in the editor and subscriptions over `/graphql/ws`.
const PAGE: &str = concat!(
    r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>API gateway · GraphiQL</title>
    <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
    <link rel="stylesheet" href=""#,
    asset_url!("graphiql.min.css"),
    r#"">
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script type="text/plain" id="example">"#,
    // Plain text inside a script element the browser does not run: it needs no escaping as
    // long as it never contains `</script`.
    example!(),
    r#"</script>
    <script src=""#,
    asset_url!("react.production.min.js"),
    r#""></script>
    <script src=""#,
    asset_url!("react-dom.production.min.js"),
    r#""></script>
    <script src=""#,
    asset_url!("graphiql.min.js"),
    r#""></script>
    <script>
      const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
      const fetcher = GraphiQL.createFetcher({
        url: "/graphql",
        subscriptionUrl: `${wsScheme}//${location.host}/graphql/ws`,
      });
      const defaultQuery = document.getElementById("example").textContent;
      ReactDOM.createRoot(document.getElementById("graphiql"))
        .render(React.createElement(GraphiQL, { fetcher, defaultQuery, defaultEditorToolsVisibility: true }));
    </script>
  </body>
</html>
"#
);

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
