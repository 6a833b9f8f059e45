//! Issue 16: the web dashboard, in a real browser: Debian's Chromium, headless, driven through
//! Debian's chromedriver (WebDriver) by fantoccini. Sign in; watch a canary live and promote
//! it; approve as a second identity; see a bad canary roll back with its verdict; a viewer
//! sees no action buttons; a signed-out page is refused; every view at desktop and phone
//! widths, by keyboard, with readable contrast. The README's screenshots are taken here
//! (written to docs/screenshots when RUNWAY_UPDATE_SCREENSHOTS=1).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use runway_demo_app::load::Load;
use serde_json::json;

use super::harness::*;

/// One browser: its chromedriver, its own profile (cookies), and the WebDriver session.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    base: String,
}

impl Browser {
    /// A headless Chromium at `width` x `height`, for the server at `api`.
    async fn start(api: std::net::SocketAddr, width: u32, height: u32) -> Browser {
        let port = free_addr().port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("a WebDriver session of Chromium");
        client.set_window_size(width, height).await.unwrap();
        Browser {
            client,
            driver,
            _profile: profile,
            base: format!("http://{api}"),
        }
    }

    async fn open(&self, hash: &str) {
        self.client
            .goto(&format!("{}/{hash}", self.base))
            .await
            .unwrap();
    }

    /// Signs in through the form, by keyboard (the token, then Enter).
    async fn sign_in(&self, token: &str) {
        self.open("").await;
        let field = self.wait_for("#token").await;
        field
            .send_keys(&format!("{token}{}", fantoccini::key::Key::Enter))
            .await
            .unwrap();
        self.wait_for("#who:not([hidden])").await;
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }

    /// Waits until `script` (a JavaScript expression) is true on the page.
    async fn wait_until(&self, what: &str, script: &str, within: Duration) {
        let started = Instant::now();
        loop {
            let value = self
                .client
                .execute(&format!("return !!({script});"), vec![])
                .await
                .unwrap();
            if value == json!(true) {
                return;
            }
            if started.elapsed() > within {
                let page = self
                    .js("return (document.querySelector('#view') || document.body).innerText.slice(0, 3000);")
                    .await;
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first `css` on the page, once there is one (read in the page: a view
    /// that redraws live replaces its elements, so a handle could go stale).
    async fn text_of(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector('{}'); return e ? e.innerText : null;",
            css.replace('\'', "\\'")
        );
        let started = Instant::now();
        loop {
            if let Some(text) = self.js(&script).await.as_str() {
                return text.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no `{css}` on the page"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Presses and releases `key` on whatever has the focus.
    async fn key(&self, key: fantoccini::key::Key) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let press = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key.into() })
            .then(KeyAction::Up { value: key.into() });
        self.client.perform_actions(press).await.unwrap();
    }

    async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Presses the button of `action`, then the dialog's confirm (with `reason` typed in),
    /// by keyboard: Enter on the button; in the dialog, the reason where it asks for one,
    /// Tab to Confirm, Enter.
    async fn press(&self, action: &str, reason: Option<&str>) {
        let button = format!("button[data-action=\"{action}\"]");
        // A live page may render its buttons anew between the focus and the key (a journal
        // entry arrived): then the key reached the old one, and the button is pressed again.
        for _ in 0..5 {
            self.wait_for(&button).await;
            self.js(&format!(
                "document.querySelector('{}').focus();",
                button.replace('\'', "\\'")
            ))
            .await;
            self.key(fantoccini::key::Key::Enter).await;
            let opened = Instant::now();
            while self.count("dialog[open]").await == 0 && opened.elapsed() < Duration::from_secs(3)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if self.count("dialog[open]").await > 0 {
                break;
            }
        }
        self.wait_for("dialog[open]").await;
        if let Some(reason) = reason {
            // The dialog opens with the focus in its reason.
            self.wait_until(
                "the reason to have the focus",
                "document.activeElement.id === 'confirm-reason'",
                Duration::from_secs(5),
            )
            .await;
            self.client
                .active_element()
                .await
                .unwrap()
                .send_keys(reason)
                .await
                .unwrap();
            self.key(fantoccini::key::Key::Tab).await;
            self.key(fantoccini::key::Key::Tab).await;
        }
        self.wait_until(
            "Confirm to have the focus",
            "document.activeElement.id === 'confirm-ok'",
            Duration::from_secs(5),
        )
        .await;
        self.key(fantoccini::key::Key::Enter).await;
        self.wait_until(
            "the dialog to close",
            "!document.querySelector('dialog[open]')",
            Duration::from_secs(5),
        )
        .await;
    }

    /// Saves a screenshot as `name`.png in target/screenshots (and docs/screenshots when
    /// RUNWAY_UPDATE_SCREENSHOTS=1).
    async fn screenshot(&self, name: &str) {
        // The picture of the view, not of where the keyboard was.
        self.js("document.activeElement && document.activeElement.blur();")
            .await;
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut dirs = vec![root.join("target/screenshots")];
        if std::env::var_os("RUNWAY_UPDATE_SCREENSHOTS").is_some() {
            dirs.push(root.join("docs/screenshots"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        }
    }

    /// No element's text is below WCAG AA contrast against what is behind it (4.5:1, or 3:1
    /// for large text), and nothing is wider than the window.
    async fn check_readable(&self, view: &str) {
        let found = self.js(CONTRAST).await;
        assert_eq!(
            found["low"],
            json!([]),
            "{view}: text below WCAG AA contrast: {found}"
        );
        assert!(found["checked"].as_u64().unwrap() > 0, "{view}: no text");
        let (scroll, inner) = (
            self.js("return document.documentElement.scrollWidth;")
                .await,
            self.js("return window.innerWidth;").await,
        );
        assert!(
            scroll.as_u64().unwrap() <= inner.as_u64().unwrap(),
            "{view}: the page is wider ({scroll}px) than the window ({inner}px)"
        );
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The contrast of every visible text against its background, as WCAG 2 computes it.
const CONTRAST: &str = r#"
function rgb(text) {
  const m = text.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const [r, g, b, a] = m[1].split(",").map((x) => parseFloat(x));
  return { r, g, b, a: a === undefined ? 1 : a };
}
function luminance({ r, g, b }) {
  const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}
function background(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.9) return c;
  }
  return { r: 255, g: 255, b: 255, a: 1 };
}
const low = [];
let checked = 0;
for (const el of document.querySelectorAll("body *")) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || !el.getClientRects().length) continue;
  const style = getComputedStyle(el);
  if (style.visibility === "hidden" || el.closest("[hidden], .skip, svg")) continue;
  const fg = rgb(style.color), bg = background(el);
  const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
  const large = size >= 24 || (bold && size >= 18.66);
  checked++;
  if (ratio < (large ? 3 : 4.5)) low.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
}
return { checked, low };
"#;

fn chromedriver() -> PathBuf {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromedriver is not installed: scripts/test installs chromium-driver")
}

fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .iter()
        .find(|p| Path::new(p).exists())
        .expect("chromium is not installed: scripts/test installs it")
        .to_string()
}

/// Creates token `name` with `role`; its secret.
async fn token(h: &Harness, name: &str, role: &str) -> String {
    let out = h.runway(&["tokens", "create", name, "--role", role]).await;
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn api_of(h: &Harness) -> std::net::SocketAddr {
    h.server_file()["api"].as_str().unwrap().parse().unwrap()
}

const ANALYSIS: &str = "interval = \"500ms\"\nfailure_limit = 2\nmin_requests = 10\n\
     inconclusive_limit = 4\nmax_intervals = 120\n";

/// Starts `runway deploy VERSION` with `file` as the identity of `token`, in the background.
fn deploy_as(
    h: &Harness,
    token: &str,
    file: &Path,
    args: &[&str],
) -> tokio::task::JoinHandle<std::process::Output> {
    let mut cmd = Command::new(RUNWAY);
    cmd.arg("-f")
        .arg(file)
        .arg("deploy")
        .args(args)
        .env("RUNWAY_STATE_DIR", h.state_path())
        .env("RUNWAY_TOKEN", token);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployer_watches_a_canary_live_and_promotes_it_and_a_viewer_sees_no_buttons() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let dee = token(&h, "dee", "deployer").await;
    let vic = token(&h, "vic", "viewer").await;
    let load = Load::start(h.listen, "/", 4, 200);
    // A manual step, a hook and a preflight check: all shown on the deployment's page.
    let app = App::default().strategy(&format!(
        "[strategy]\nkind = \"canary\"\nsteps = [{{ weight = 20, pause = \"manual\" }}, {{ weight = 100 }}]\n\n[analysis]\n{ANALYSIS}\n\
         [[hooks.run]]\nat = \"pre-deploy\"\ncommand = [\"echo\", \"warming caches\"]\n\n\
         [[checks]]\nname = \"the root exists\"\nkind = \"file\"\npath = \"/\"\nphases = [\"preflight\"]\n"
    ));
    let file = h.write("canary.toml", &app);
    let deploying = deploy_as(&h, &dee, &file, &["v2", "--reason", "new model"]);

    // Tall enough that the screenshot holds the charts and the verdicts.
    let browser = Browser::start(api_of(&h), 1280, 1900).await;
    browser.sign_in(&dee).await;
    assert_eq!(browser.text_of("#identity").await, "dee (deployer)");
    // The services view shows the deployment under way; its link leads to the live view.
    browser
        .wait_until(
            "the deployment under way",
            "document.querySelector('a[href=\"#/deployments/2\"]')",
            Duration::from_secs(30),
        )
        .await;
    browser.check_readable("services").await;
    browser.open("#/deployments/2").await;
    browser.wait_for("strong[data-weight=\"20\"]").await;
    // Live: judged intervals and traffic samples arrive on the stream without a reload.
    let entries = browser.count(".timeline li").await;
    browser
        .wait_until(
            "new journal entries",
            &format!("document.querySelectorAll('.timeline li').length > {entries}"),
            Duration::from_secs(20),
        )
        .await;
    browser
        .wait_until(
            "charts of canary and stable with a threshold",
            "document.querySelectorAll('svg.chart path.canary').length >= 3 \
             && document.querySelectorAll('svg.chart path.stable').length >= 3 \
             && document.querySelector('svg.chart .threshold') \
             && document.querySelector('td.verdict-pass') \
             && document.querySelector('figure[data-points]').dataset.points >= 16",
            Duration::from_secs(30),
        )
        .await;
    browser.check_readable("live canary").await;
    let page = browser.text_of("#view").await;
    assert!(
        page.contains("echo warming caches") && page.contains("the root exists"),
        "the hook run and the check result are on the page:\n{page}"
    );
    browser.screenshot("canary").await;

    // Promote: confirmed, done, and the page follows the rollout to its end.
    browser.press("promote", None).await;
    browser
        .wait_until(
            "the deployment's success",
            "document.querySelector('#view h1 .badge.ok')",
            Duration::from_secs(60),
        )
        .await;
    let out = deploying.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let detail = h.client().deployment(2.into()).await.unwrap();
    assert!(
        detail.journal.iter().any(|e| e.event == "commanded"
            && e.detail["command"] == "promote"
            && e.detail["by"] == "dee"),
        "the promote is journaled as dee's"
    );
    load.stop().await;
    browser.close().await;

    // A viewer reads everything and is offered no action.
    let viewer = Browser::start(api_of(&h), 1280, 1000).await;
    viewer.sign_in(&vic).await;
    for view in [
        "#/services",
        "#/deployments/2",
        "#/history",
        "#/approvals",
        "#/incidents",
    ] {
        viewer.open(view).await;
        viewer.wait_for("#view h1").await;
        assert_eq!(viewer.count("button[data-action]").await, 0, "{view}");
    }
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_approves_in_the_browser_and_a_bad_canary_rolls_back_with_its_verdict() {
    let h = Harness::start().await;
    // Deploys need one approval; the first, the admin's, is of a type that needs none.
    const POLICY: &str = "\n[types.standard]\napprovals = 1\n\n[types.initial]\n";
    let first = h.dir.path().join("first.toml");
    std::fs::write(&first, format!("{}{POLICY}", h.config(&App::default()))).unwrap();
    let out = h
        .runway(&[
            "-f",
            first.to_str().unwrap(),
            "deploy",
            "v1",
            "--type",
            "initial",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let dee = token(&h, "dee", "deployer").await;
    let ada = token(&h, "ada", "approver").await;
    let load = Load::start(h.listen, "/", 4, 200);
    // v2 answers 30% of requests with errors.
    let app = App::default().args(&["--error-rate", "0.3"]).strategy(&format!(
        "[strategy]\nkind = \"canary\"\nsteps = [{{ weight = 20, pause = \"30s\" }}, {{ weight = 100 }}]\n\n[analysis]\n{ANALYSIS}"
    ));
    let file = h.dir.path().join("approved.toml");
    std::fs::write(&file, format!("{}{POLICY}", h.config(&app))).unwrap();
    let deploying = deploy_as(&h, &dee, &file, &["v2", "--reason", "risky change"]);
    let started = Instant::now();
    while h.client().approvals(None).await.unwrap().is_empty() {
        if deploying.is_finished() || started.elapsed() > Duration::from_secs(20) {
            panic!("no approval asked: {}", text(&deploying.await.unwrap()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The requester, a deployer, cannot approve: no button.
    let requester = Browser::start(api_of(&h), 1280, 900).await;
    requester.sign_in(&dee).await;
    requester.open("#/approvals").await;
    requester.wait_for("tr[data-deployment=\"2\"]").await;
    assert_eq!(requester.count("button[data-action=\"approve\"]").await, 0);
    assert_eq!(requester.count("button[data-action=\"reject\"]").await, 1);
    requester.close().await;

    // The approver approves exactly what is shown.
    let browser = Browser::start(api_of(&h), 1280, 1900).await;
    browser.sign_in(&ada).await;
    browser.open("#/approvals").await;
    browser.wait_for("tr[data-deployment=\"2\"]").await;
    browser.check_readable("approvals").await;
    browser.screenshot("approvals").await;
    browser.press("approve", None).await;
    browser
        .wait_until(
            "the approval to take",
            "!document.querySelector('tr[data-deployment=\"2\"]')",
            Duration::from_secs(20),
        )
        .await;

    // The bad canary is judged and rolled back; the page shows the verdict and its numbers.
    browser.open("#/deployments/2").await;
    browser
        .wait_until(
            "the rollback",
            "document.querySelector('#view h1 .badge.bad') \
             && document.querySelector('#view h1').textContent.includes('rolled back')",
            Duration::from_secs(90),
        )
        .await;
    browser.wait_for("tr[data-decision=\"rollback\"]").await;
    let failed = browser.text_of("td.verdict-fail").await;
    assert_eq!(failed, "fail");
    let verdicts = browser.text_of("section[aria-label=\"Verdicts\"]").await;
    assert!(
        verdicts.contains("error_rate") && verdicts.contains("> 0.05"),
        "the verdict shows its numbers: {verdicts}"
    );
    browser.check_readable("rolled back canary").await;
    browser.screenshot("rollback").await;

    // The rollback opened an incident: acknowledged, then resolved with a note, by keyboard.
    browser.open("#/incidents").await;
    browser.press("acknowledge", None).await;
    browser
        .wait_until(
            "the acknowledgement",
            "document.querySelector('#view').textContent.includes('acknowledged by ada')",
            Duration::from_secs(10),
        )
        .await;
    browser.check_readable("incidents").await;
    browser
        .press("resolve", Some("v3 fixes the error path"))
        .await;
    browser
        .wait_until(
            "the resolution",
            "document.querySelector('#view').textContent.includes('resolved by ada')",
            Duration::from_secs(10),
        )
        .await;
    let incidents = h
        .client()
        .get::<serde_json::Value>("/v1/incidents")
        .await
        .unwrap();
    assert_eq!(
        incidents[0]["resolution"], "v3 fixes the error path",
        "{incidents}"
    );
    // The CLI left the deployment waiting for its approval; the record has the outcome.
    let out = deploying.await.unwrap();
    assert!(
        text(&out).contains("waits for 1 approval"),
        "{}",
        text(&out)
    );
    let history = h.history().await;
    assert_eq!(history[0]["status"], "rolled_back");
    let detail = h.client().deployment(2.into()).await.unwrap();
    assert!(
        detail
            .journal
            .iter()
            .any(|e| e.event == "approved" && e.detail["by"] == "ada"),
        "approved by ada"
    );
    load.stop().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_is_refused_and_every_view_reads_at_phone_width_by_keyboard() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    assert!(h.deploy("v2", &App::default()).await.status.success());
    let admin = h.server_file()["token"].as_str().unwrap().to_string();

    // Signed out: the sign-in form, and the API refuses the page.
    let browser = Browser::start(api_of(&h), 390, 844).await;
    browser.open("").await;
    browser.wait_for("#sign-in:not([hidden])").await;
    let refused = browser
        .client
        .execute_async(
            "const done = arguments[0]; fetch('/v1/status').then((r) => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(refused, json!(401));
    assert_eq!(browser.count("#nav:not([hidden])").await, 0);
    // A wrong token is refused with a message, and the field keeps the focus.
    browser
        .wait_for("#token")
        .await
        .send_keys(&format!("rwy_wrong{}", fantoccini::key::Key::Enter))
        .await
        .unwrap();
    browser
        .wait_until(
            "the refusal",
            "document.querySelector('#sign-in-error').textContent.includes('unknown or revoked')",
            Duration::from_secs(10),
        )
        .await;
    browser.check_readable("sign-in").await;
    browser.screenshot("sign-in-phone").await;

    // By keyboard: the token and Enter, then Tab reaches the views' links.
    browser
        .js("document.querySelector('#token').value = '';")
        .await;
    browser.sign_in(&admin).await;
    browser.js("document.activeElement.blur();").await;
    let mut reached = Vec::new();
    for _ in 0..12 {
        browser.key(fantoccini::key::Key::Tab).await;
        let now = browser
            .js("const e = document.activeElement; return [e.tagName, e.textContent.trim(), getComputedStyle(e).outlineStyle];")
            .await;
        reached.push(now);
    }
    let links: Vec<&serde_json::Value> = reached.iter().filter(|r| r[0] == "A").collect();
    assert!(
        links.iter().any(|r| r[1] == "History"),
        "Tab does not reach the views: {reached:?}"
    );
    assert!(
        links.iter().all(|r| r[2] != "none"),
        "a focused link shows no outline: {reached:?}"
    );
    // Enter on a focused link opens its view.
    browser
        .js("document.querySelector('nav a[href=\"#/history\"]').focus();")
        .await;
    browser.key(fantoccini::key::Key::Enter).await;
    browser
        .wait_until(
            "the history view",
            "location.hash === '#/history' && document.querySelector('#view h1').textContent === 'History'",
            Duration::from_secs(10),
        )
        .await;

    // Every view, at phone width, then at desktop width.
    for (width, height) in [(390, 844), (1280, 900)] {
        browser.client.set_window_size(width, height).await.unwrap();
        for view in [
            "#/services",
            "#/deployments/1",
            "#/history",
            "#/approvals",
            "#/incidents",
            "#/audit",
            "#/dora",
            "#/checks",
            "#/flags",
        ] {
            browser.open(view).await;
            browser
                .wait_until(
                    view,
                    "document.querySelector('#view h1')",
                    Duration::from_secs(20),
                )
                .await;
            browser
                .check_readable(&format!("{view} at {width}px"))
                .await;
            if width == 390 && view == "#/services" {
                browser.screenshot("services-phone").await;
            }
            if width == 1280 {
                let name = view.trim_start_matches("#/").replace("/1", "");
                if ["services", "history", "audit", "dora"].contains(&name.as_str()) {
                    browser.screenshot(&name).await;
                }
            }
        }
    }
    // History's filters: kept in the address, applied by the server, chosen in a select.
    browser.open("#/history?status=failed").await;
    browser
        .wait_until(
            "the filtered history",
            "document.querySelector('[data-shown=\"0\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser.open("#/history?status=succeeded&service=web").await;
    browser
        .wait_until(
            "the filtered history",
            "document.querySelector('[data-shown=\"2\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser
        .js("const s = document.querySelector('#filter-kind'); s.value = 'rollback'; s.dispatchEvent(new Event('change'));")
        .await;
    browser
        .wait_until(
            "the kind filter",
            "location.hash.includes('kind=rollback') && document.querySelector('[data-shown=\"0\"]')",
            Duration::from_secs(10),
        )
        .await;
    // An admin rolls the serving release back, with a reason, by keyboard.
    browser.open("#/deployments/2").await;
    browser.press("roll back", Some("practice run")).await;
    let started = Instant::now();
    loop {
        let history = h.history().await;
        if history[0]["kind"] == "rollback" && history[0]["status"] == "succeeded" {
            assert_eq!(history[0]["request_reason"], "practice run", "{history:?}");
            assert_eq!(history[0]["version"], "v1");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no rollback: {history:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Signing out ends the session: the page asks for a token again and the API refuses.
    browser.wait_for("#sign-out").await.click().await.unwrap();
    browser.wait_for("#sign-in:not([hidden])").await;
    let refused = browser
        .client
        .execute_async(
            "const done = arguments[0]; fetch('/v1/whoami').then((r) => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(refused, json!(401));
    browser.close().await;
}
