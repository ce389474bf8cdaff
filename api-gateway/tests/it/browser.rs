//! GraphiQL in a real browser: headless Chromium loads the page from the gateway, which opens
//! with the example operations; a query is typed into the editor and run, and the result pane
//! shows data from the services.

use std::time::{Duration, Instant};

use headless_chrome::{Browser, LaunchOptions, protocol::cdp::Input::DispatchKeyEvent};

use crate::helpers::{GatewayClient as _, spawn_system};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_typed_into_graphiql_returns_data() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (`cargo xtask test` does)"
    );
    let system = spawn_system().await;
    let admin = system.admin_token().await;
    system.product(&admin, "Browser Test Lamp", 12.5, 3).await;
    let page = system.url("/graphql");

    let result = tokio::task::spawn_blocking(move || run_query_in_graphiql(&page, "{ products { name price } }"))
        .await
        .expect("join");
    let text = result.expect("GraphiQL ran the query");
    assert!(text.contains("Browser Test Lamp") && text.contains("12.5"), "result pane: {text}");
}

/// Opens GraphiQL at `url`, replaces the editor's content by typing `query`, runs it, and
/// returns the result pane's text once it shows a response.
fn run_query_in_graphiql(url: &str, query: &str) -> anyhow::Result<String> {
    let options = LaunchOptions::default_builder()
        .path(Some(CHROMIUM.into()))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .args(
            [
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ]
            .iter()
            .map(std::ffi::OsStr::new)
            .collect(),
        )
        .build()?;
    let browser = Browser::new(options)?;
    let tab = browser.new_tab()?;
    tab.set_default_timeout(Duration::from_secs(30));
    tab.navigate_to(url)?.wait_until_navigated()?;

    let editor = tab.wait_for_element(".graphiql-query-editor .CodeMirror")?;
    let example = editor_text(&tab)?;
    anyhow::ensure!(
        example.trim() == api_gateway::graphiql::EXAMPLE_OPERATIONS.trim(),
        "GraphiQL opens with the example operations, not {example:?}"
    );
    editor.click()?;
    select_all_and_delete(&tab)?;
    tab.type_str(query)?;
    let typed = editor_text(&tab)?;
    anyhow::ensure!(typed.trim() == query, "the editor holds {typed:?}");

    tab.wait_for_element(".graphiql-execute-button")?.click()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = tab
            .evaluate("(document.querySelector('.result-window') || {}).innerText || ''", false)?
            .value
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        if text.contains("\"data\"") || text.contains("\"errors\"") {
            return Ok(text);
        }
        anyhow::ensure!(Instant::now() < deadline, "no result after 20 s; the pane shows {text:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Ctrl+A, Backspace: clears GraphiQL's default content the way a person would.
fn select_all_and_delete(tab: &headless_chrome::Tab) -> anyhow::Result<()> {
    let key = |kind, key: &str, code: &str, key_code, modifiers| DispatchKeyEvent {
        Type: kind,
        modifiers: Some(modifiers),
        timestamp: None,
        text: None,
        unmodified_text: None,
        key_identifier: None,
        code: Some(code.to_owned()),
        key: Some(key.to_owned()),
        windows_virtual_key_code: Some(key_code),
        native_virtual_key_code: Some(key_code),
        auto_repeat: None,
        is_keypad: None,
        is_system_key: None,
        location: None,
        commands: None,
    };
    use headless_chrome::protocol::cdp::Input::DispatchKeyEventTypeOption::{KeyDown, KeyUp};
    const CTRL: u32 = 2;
    tab.call_method(key(KeyDown, "a", "KeyA", 65, CTRL))?;
    tab.call_method(key(KeyUp, "a", "KeyA", 65, CTRL))?;
    tab.call_method(key(KeyDown, "Backspace", "Backspace", 8, 0))?;
    tab.call_method(key(KeyUp, "Backspace", "Backspace", 8, 0))?;
    Ok(())
}

/// What GraphiQL's query editor holds.
fn editor_text(tab: &headless_chrome::Tab) -> anyhow::Result<String> {
    Ok(tab
        .evaluate("document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()", false)?
        .value
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default())
}
