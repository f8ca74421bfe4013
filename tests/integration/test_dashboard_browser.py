"""The dashboard in a real headless browser: Playwright driving Debian's Chromium.

It opens the dashboard of a running pipeline (a test pattern on one Worker, a recorder on another)
with the URL the CLI prints, sees the Workers, the nodes and the graph, sees the live preview
change, clicks Stop, and finds the new session, with its playable video, in the archive. The page
loads nothing from another origin and logs no error. Screenshots are kept in ``test-artifacts/``.

Needs ``pip install playwright`` and ``apt-get install chromium`` (never ``playwright install``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import chimerapy as cp

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs Playwright: pip install playwright")
if not CHROMIUM.exists():
    pytest.skip("the browser test needs Debian's Chromium at /usr/bin/chromium: apt-get install chromium",
                allow_module_level=True)


@pytest.fixture
def running_pipeline(cluster):
    """A Manager and Workers w1 (a moving test pattern) and w2 (its recorder), running."""
    video = pytest.importorskip("chimerapy_nodes_video")
    manager, _ = cluster("w1", "w2")
    camera, recorder = video.TestPattern("camera", width=320, height=240, fps=15), video.VideoRecorder("recorder")
    graph = cp.Graph()
    graph.add_edge(camera, recorder)
    assert manager.commit_graph(graph, {"w1": ["camera"], "w2": ["recorder"]})
    assert manager.start()
    return manager


@pytest.fixture
def page():
    """A Chromium page that records console errors and every URL it requests."""
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            # the Manager's certificate is self-signed: trusted here as a Worker trusts it, by its pin
            tab = browser.new_page(viewport={"width": 1280, "height": 1000}, ignore_https_errors=True)
            tab.set_default_timeout(20_000)
            tab.problems, tab.requested = [], []
            tab.on("console", lambda message: message.type == "error" and tab.problems.append(message.text))
            tab.on("pageerror", lambda error: tab.problems.append(str(error)))
            tab.on("request", lambda request: tab.requested.append(request.url))
            yield tab
        finally:
            browser.close()


def test_dashboard_shows_a_running_pipeline_and_its_archive(running_pipeline, page):
    manager = running_pipeline
    expect = playwright.expect
    origin = f"https://{manager.host}:{manager.port}"

    page.goto(manager.dashboard_url())  # the URL `chimerapy run` prints: a one-time code, not the token
    assert page.url == f"{origin}/"  # the code went into a cookie, out of the address bar
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#cluster-state")).to_have_text("running")
    expect(page.locator("#session")).to_have_text(manager.session.id)
    for worker in ("w1", "w2"):
        expect(page.locator("#workers tbody")).to_contain_text(worker)
    for node, worker in (("camera", "w1"), ("recorder", "w2")):
        row = page.locator(f'#nodes tr[data-node="{node}"]')
        expect(row).to_contain_text(worker)
        expect(row).to_contain_text("running")
    expect(page.locator("#graph .graph-node")).to_have_count(2)
    expect(page.locator("#graph path.edge")).to_have_count(1)

    thumbnail = page.locator('#previews figure[data-key="camera/frame"] img')
    expect(thumbnail).to_have_attribute("src", _starts_with("data:image/jpeg;base64,"))
    first = thumbnail.get_attribute("src")
    page.wait_for_function(
        "first => document.querySelector('#previews figure[data-key=\"camera/frame\"] img').src !== first", arg=first)
    assert page.evaluate("document.querySelector('#previews img').naturalWidth") == 160
    expect(page.locator('#nodes tr[data-node="recorder"]')).to_contain_text("/s")  # stats arrived
    page.screenshot(path=str(ARTIFACTS / "dashboard-running.png"), full_page=True)

    session = manager.session.id
    page.click("#stop")
    expect(page.locator("#cluster-state")).to_have_text("stopped", timeout=60_000)
    expect(page.locator("#notice")).to_contain_text("Collected")
    entry = page.locator(f'#archive details[data-session="{session}"]')
    expect(entry).to_contain_text("complete")
    entry.locator("summary").click()
    player = entry.locator("video")
    expect(player).to_have_count(1)
    assert player.get_attribute("src") == f"/api/sessions/{session}/files/w2/recorder/video.mp4"
    player.evaluate("video => new Promise(done => video.readyState >= 1 ? done() : video.onloadedmetadata = done)")
    assert player.evaluate("video => video.duration") > 1.0  # Chromium reads the recording (range requests)
    expect(page.locator("#workers tbody")).to_contain_text(" ms")  # clock offsets, measured over the session
    expect(page.locator("#log")).to_contain_text("Worker connected")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "dashboard-stopped.png"), full_page=True)

    assert manager.state == "stopped"
    assert page.problems == [], (page.problems, page.requested)
    assert all(url.startswith((origin, "data:", "wss://" + origin[len("https://"):])) for url in page.requested), \
        page.requested


def test_login_page_refuses_a_wrong_token_and_opens_the_dashboard_with_the_right_one(make_manager, page):
    manager = make_manager(token="lab-secret")
    origin = f"https://{manager.host}:{manager.port}"
    page.goto(origin)
    assert page.url == f"{origin}/login"  # no token: sent to the login page
    page.fill("#token", "not-the-secret")
    page.click("button[type=submit]")
    playwright.expect(page.locator("#login-error")).to_contain_text("refused this token")
    page.screenshot(path=str(ARTIFACTS / "login-refused.png"))
    page.fill("#token", "lab-secret")
    page.click("button[type=submit]")
    page.wait_for_url(f"{origin}/")
    playwright.expect(page.locator("#cluster-state")).to_have_text("idle")
    playwright.expect(page.locator("#connection")).to_have_text("live")
    page.screenshot(path=str(ARTIFACTS / "dashboard-idle.png"))
    # the refused token's 401 is the only error the console saw, and no URL ever carried the token
    assert [problem for problem in page.problems if "401" not in problem] == []
    assert not any("lab-secret" in url for url in page.requested)


def _starts_with(prefix: str):
    import re

    return re.compile("^" + re.escape(prefix))
