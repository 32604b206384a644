"""The file manager page in a real browser (issue 17): Debian's Chromium, driven by Playwright.

One browser and one server for the module; each test works in a folder of its own and gets a
fresh browser context (no cookies or cache shared between tests). A failing test leaves a
screenshot in the pytest temporary folder (its path is printed).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from davserver.passwords import set_password
from tests.conftest import LiveServer
from tests.helpers import lockinfo, make_tree, shared_server, write_users

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from shared_server(tmp_path_factory, "ui")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:
        shots = tmp_path_factory.getbasetemp() / "ui-screenshots"
        shots.mkdir(exist_ok=True)
        target = shots / (re.sub(r"[^\w.-]", "_", request.node.name) + ".png")
        tab.screenshot(path=str(target), full_page=True)
        print(f"screenshot of the failed test: {target}")
    context.close()


@pytest.fixture
def folder(live: LiveServer, request: pytest.FixtureRequest) -> Path:
    """A folder of the shared server's root for this test alone."""
    path = live.root / request.node.name.replace("[", "_").replace("]", "")
    path.mkdir()
    return path


def open_folder(page: Page, live: LiveServer, folder: Path) -> None:
    page.goto(live.url(f"/{folder.name}/"))
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"^\d+ items?$"))


def answer_dialogs(page: Page, answers: list[str | bool]) -> list[str]:
    """Answers the page's prompts and confirmations in order; returns their messages."""
    messages: list[str] = []

    def handle(dialog: Dialog) -> None:
        messages.append(dialog.message)
        answer = answers.pop(0)
        if answer is False:
            dialog.dismiss()
        elif answer is True:
            dialog.accept()
        else:
            dialog.accept(answer)

    page.on("dialog", handle)
    return messages


def row_names(page: Page) -> list[str]:
    return page.locator("tbody td.name a").all_text_contents()


def test_the_page_lists_the_folder_and_webdav_clients_still_get_the_listing(
    page: Page, live: LiveServer, folder: Path
) -> None:
    make_tree(folder, {"b.txt": b"bb", "a.txt": b"a", "<img src=x onerror=alert(1)>.txt": b""})
    (folder / "sub").mkdir()
    answer = page.goto(live.url(f"/{folder.name}/"))
    assert answer is not None
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    expect(page.get_by_role("status")).to_have_text("4 items")
    # Folders first; the hostile name is text, not markup.
    assert row_names(page) == ["sub", "<img src=x onerror=alert(1)>.txt", "a.txt", "b.txt"]
    assert page.locator("tbody img").count() == 0
    expect(page.get_by_role("navigation", name="Breadcrumb")).to_contain_text(folder.name)
    for name in ("Upload", "New folder", "Rename", "Move", "Copy", "Delete", "Download"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Download as zip", exact=True)).to_be_visible()
    expect(page.get_by_role("checkbox", name="Select a.txt", exact=True)).to_be_visible()
    # Sorting by size, then the other way; a filter.
    page.get_by_role("button", name="Size", exact=True).click()
    assert row_names(page)[1:] == ["<img src=x onerror=alert(1)>.txt", "a.txt", "b.txt"]
    page.get_by_role("button", name="Size", exact=True).click()
    assert row_names(page)[1:] == ["b.txt", "a.txt", "<img src=x onerror=alert(1)>.txt"]
    page.get_by_role("searchbox", name="Filter").fill("b.")
    assert row_names(page) == ["b.txt"]
    # A WebDAV client (no text/html in Accept) gets the plain listing, as before.
    plain = live.request("GET", f"/{folder.name}/")
    assert "<table>" in plain.text and "app.js" not in plain.text


def test_upload_shows_progress_and_asks_before_replacing(
    page: Page, live: LiveServer, folder: Path, tmp_path: Path
) -> None:
    (folder / "keep.txt").write_bytes(b"old")
    big = os.urandom(9 * 1024 * 1024 + 5)  # three pieces
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "keep.txt").write_bytes(b"new")
    page.add_init_script(
        "window.progressSeen = [];"
        "const d = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');"
        "Object.defineProperty(HTMLProgressElement.prototype, 'value', {get: d.get,"
        " set(v) { window.progressSeen.push([this.getAttribute('aria-label'), v]);"
        " d.set.call(this, v); }});"
    )
    open_folder(page, live, folder)
    asked = answer_dialogs(page, [False, True])
    page.locator("#picker").set_input_files([str(tmp_path / "big.bin"), str(tmp_path / "keep.txt")])
    log = page.get_by_role("log")
    expect(log).to_contain_text("Uploaded big.bin (201)")
    expect(log).to_contain_text("Kept keep.txt")
    assert asked == ["Replace keep.txt?"]
    assert (folder / "big.bin").read_bytes() == big
    assert (folder / "keep.txt").read_bytes() == b"old"
    overall = page.get_by_role("progressbar", name="Overall upload")
    assert overall.evaluate("p => [p.value, p.max]") == [len(big), len(big)]
    seen: list[list[Any]] = page.evaluate("window.progressSeen")
    per_file = [v for label, v in seen if label == "Upload of big.bin"]
    assert len({v for v in per_file if 0 < v < len(big)}) >= 2  # progress between the ends
    assert per_file[-1] == len(big)

    page.locator("#picker").set_input_files([str(tmp_path / "keep.txt")])
    expect(log).to_contain_text("Uploaded keep.txt (204)")
    assert asked == ["Replace keep.txt?", "Replace keep.txt?"]
    assert (folder / "keep.txt").read_bytes() == b"new"


def test_an_upload_cut_off_resumes_where_it_stopped(
    page: Page, live: LiveServer, folder: Path, tmp_path: Path
) -> None:
    data = os.urandom(10 * 1024 * 1024)
    (tmp_path / "cut.bin").write_bytes(data)
    open_folder(page, live, folder)
    cuts: list[str] = []

    def cut_second_piece(route: Any) -> None:
        ranges = route.request.headers.get("content-range", "")
        if ranges.startswith("bytes 4194304-") and not cuts:
            cuts.append(ranges)
            route.abort()
        else:
            route.continue_()

    page.route(re.compile(r".*/cut\.bin$"), cut_second_piece)
    page.locator("#picker").set_input_files([str(tmp_path / "cut.bin")])
    resume = page.get_by_role("button", name="Resume cut.bin")
    expect(resume).to_be_visible()
    assert cuts
    assert (folder / "cut.bin").stat().st_size == 4 * 1024 * 1024  # the first piece stayed
    resume.click()
    expect(page.get_by_role("log")).to_contain_text("Uploaded cut.bin (204)")
    assert (folder / "cut.bin").read_bytes() == data


def test_a_folder_upload_and_drag_and_drop(
    page: Page, live: LiveServer, folder: Path, tmp_path: Path
) -> None:
    make_tree(tmp_path / "pics", {"a.png": b"A", "deep/b.png": b"B"})
    open_folder(page, live, folder)
    page.locator("#folder-picker").set_input_files(str(tmp_path / "pics"))
    expect(page.get_by_role("log")).to_contain_text("Uploaded pics/deep/b.png")
    assert (folder / "pics" / "a.png").read_bytes() == b"A"
    assert (folder / "pics" / "deep" / "b.png").read_bytes() == b"B"
    page.evaluate(
        """() => {
        const data = new DataTransfer();
        data.items.add(new File(["dropped"], "dropped.txt", {type: "text/plain"}));
        document.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }"""
    )
    expect(page.get_by_role("log")).to_contain_text("Uploaded dropped.txt (201)")
    assert (folder / "dropped.txt").read_bytes() == b"dropped"
    expect(page.get_by_role("link", name="dropped.txt")).to_be_visible()
    # A folder dropped from the desktop: only a real drag (here through the DevTools
    # protocol) carries its entries; a DataTransfer made by a script cannot.
    make_tree(tmp_path / "album", {"c.txt": b"C", "inner/d.txt": b"D"})
    data = {"items": [], "files": [str(tmp_path / "album")], "dragOperationsMask": 1}
    devtools = page.context.new_cdp_session(page)
    for kind in ("dragEnter", "dragOver", "drop"):
        devtools.send("Input.dispatchDragEvent", {"type": kind, "x": 40, "y": 40, "data": data})
    expect(page.get_by_role("log")).to_contain_text("Uploaded album/inner/d.txt (201)")
    expect(page.get_by_role("log")).to_contain_text("Uploaded album/c.txt (201)")
    assert (folder / "album" / "c.txt").read_bytes() == b"C"
    assert (folder / "album" / "inner" / "d.txt").read_bytes() == b"D"


def test_new_folder_rename_and_move(page: Page, live: LiveServer, folder: Path) -> None:
    make_tree(folder, {"old.txt": b"o", "m1.txt": b"1", "m2.txt": b"2"})
    open_folder(page, live, folder)
    answer_dialogs(page, ["target", "new name.txt"])
    page.get_by_role("button", name="New folder", exact=True).click()
    expect(page.get_by_role("link", name="target")).to_be_visible()
    assert (folder / "target").is_dir()

    page.get_by_role("checkbox", name="Select old.txt").check()
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.get_by_role("link", name="new name.txt")).to_be_visible()
    assert (folder / "new name.txt").read_bytes() == b"o"
    assert not (folder / "old.txt").exists()

    page.get_by_role("checkbox", name="Select m1.txt").check()
    page.get_by_role("checkbox", name="Select m2.txt").check()
    page.get_by_role("button", name="Move", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="target").click()
    expect(dialog).to_contain_text(f"/{folder.name}/target")
    dialog.get_by_role("button", name="Here").click()
    expect(page.get_by_role("log")).to_contain_text("move m2.txt: 201")
    assert (folder / "target" / "m1.txt").read_bytes() == b"1"
    assert (folder / "target" / "m2.txt").read_bytes() == b"2"
    assert row_names(page) == ["target", "new name.txt"]

    page.get_by_role("checkbox", name="Select new name.txt").check()
    page.get_by_role("button", name="Copy", exact=True).click()
    dialog.get_by_role("button", name="target").click()
    expect(dialog).to_contain_text(f"/{folder.name}/target")
    dialog.get_by_role("button", name="Here").click()
    expect(page.get_by_role("log")).to_contain_text("copy new name.txt: 201")
    assert (folder / "target" / "new name.txt").read_bytes() == b"o"
    assert (folder / "new name.txt").read_bytes() == b"o"


def test_deleting_a_selection_is_one_batch_and_a_locked_file_shows_its_423(
    page: Page, live: LiveServer, folder: Path
) -> None:
    make_tree(folder, {"a.txt": b"a", "b.txt": b"b", "locked.txt": b"l", "c.txt": b"c"})
    answer = live.request("LOCK", f"/{folder.name}/locked.txt", data=lockinfo())
    assert answer.status_code == 200
    open_folder(page, live, folder)
    batches: list[str] = []
    page.on("request", lambda r: batches.append(r.method) if r.method == "POST" else None)
    answer_dialogs(page, [True])
    page.get_by_role("checkbox", name="Select a.txt").click()
    page.get_by_role("checkbox", name="Select locked.txt").click(modifiers=["Shift"])  # a range
    expect(page.get_by_role("checkbox", name="Select b.txt")).to_be_checked()
    page.get_by_role("button", name="Delete", exact=True).click()
    log = page.get_by_role("log")
    expect(log).to_contain_text("delete locked.txt: 423 Locked: ")
    expect(log).to_contain_text("delete a.txt: 204")
    expect(log).to_contain_text("delete b.txt: 204")
    expect(log).to_contain_text("delete c.txt: 204")
    assert batches == ["POST"]
    assert sorted(p.name for p in folder.iterdir()) == ["locked.txt"]
    expect(page.get_by_role("link", name="locked.txt")).to_be_visible()
    assert row_names(page) == ["locked.txt"]


def test_download_of_a_file_and_of_a_selection_as_zip(
    page: Page, live: LiveServer, folder: Path
) -> None:
    make_tree(folder, {"one.txt": b"1", "two/three.txt": b"3", "four.txt": b"4"})
    open_folder(page, live, folder)
    page.get_by_role("checkbox", name="Select one.txt").check()
    with page.expect_download() as single:
        page.get_by_role("button", name="Download", exact=True).click()
    assert Path(single.value.path()).read_bytes() == b"1"
    page.get_by_role("checkbox", name="Select two").check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as zip").click()
    assert download.value.suggested_filename == f"{folder.name}.zip"
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert sorted(archive.namelist()) == ["one.txt", "two/", "two/three.txt"]
    assert archive.read("two/three.txt") == b"3"


def test_editing_a_text_file_that_changed_meanwhile_is_a_conflict(
    page: Page, live: LiveServer, folder: Path
) -> None:
    (folder / "notes.txt").write_bytes(b"first")
    open_folder(page, live, folder)
    page.get_by_role("checkbox", name="Select notes.txt").check()
    page.get_by_role("button", name="Edit", exact=True).click()
    text = page.get_by_role("textbox", name="Text of notes.txt")
    expect(text).to_have_value("first")
    live.request("PUT", f"/{folder.name}/notes.txt", data=b"someone else")
    text.fill("mine")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("log")).to_contain_text("412 conflict")
    assert (folder / "notes.txt").read_bytes() == b"someone else"
    page.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(text).to_have_value("someone else")
    text.fill("merged")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("log")).to_contain_text("Save notes.txt: 204")
    assert (folder / "notes.txt").read_bytes() == b"merged"


def test_keyboard_alone_selects_opens_and_acts(page: Page, live: LiveServer, folder: Path) -> None:
    make_tree(folder, {"inner/x.txt": b"x", "k.txt": b"k"})
    open_folder(page, live, folder)

    def tab_to(matches: Callable[[dict[str, str]], bool], key: str = "Tab") -> None:
        for _ in range(40):
            page.keyboard.press(key)
            focused = page.evaluate(
                "() => ({label: document.activeElement.getAttribute('aria-label') || '',"
                " text: document.activeElement.textContent})"
            )
            if matches(focused):
                return
        raise AssertionError("never reached by Tab")

    assert row_names(page) == ["inner", "k.txt"]
    tab_to(lambda f: f["label"] == "Filter")
    page.keyboard.type("k.")
    assert row_names(page) == ["k.txt"]
    tab_to(lambda f: f["label"] == "Select k.txt")
    page.keyboard.press("Space")
    expect(page.get_by_role("checkbox", name="Select k.txt")).to_be_checked()
    tab_to(lambda f: f["text"] == "Download", "Shift+Tab")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert Path(download.value.path()).read_bytes() == b"k"
    tab_to(lambda f: f["label"] == "Filter")
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    tab_to(lambda f: f["text"] == "inner")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/inner/$"))
    expect(page.get_by_role("link", name="x.txt")).to_be_visible()


def test_a_hostile_html_file_cannot_touch_the_page_or_its_cookies(
    page: Page, live: LiveServer, folder: Path
) -> None:
    (folder / "victim.txt").write_bytes(b"v")
    hostile = (
        "<html><head><title>harmless</title></head><body><script>"
        "document.title = 'ran:' + document.cookie;"
        f"fetch('/{folder.name}/victim.txt', {{method: 'DELETE'}});"
        "</script></body></html>"
    )
    (folder / "evil.html").write_text(hostile)
    open_folder(page, live, folder)
    page.context.add_cookies([{"name": "session", "value": "secret", "url": live.base}])
    with page.expect_navigation():
        page.get_by_role("link", name="evil.html").click()
    assert page.title() == "harmless"  # the script never ran
    # The document is in an opaque origin: even a script there could not read ours.
    assert page.evaluate("() => self.origin") == "null"
    assert (folder / "victim.txt").exists()


def test_a_read_only_share_shows_no_write_controls(
    browser: Browser, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(readonly=True)
    (server.root / "r.txt").write_bytes(b"r")
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(server.url("/"))
        expect(tab.get_by_role("link", name="r.txt")).to_be_visible()
        expect(tab.get_by_role("button", name="Download as zip")).to_be_visible()
        for name in ("Upload", "New folder", "Rename", "Move", "Copy", "Delete"):
            assert tab.get_by_role("button", name=name, exact=True).count() == 0
    finally:
        context.close()


def test_search_below_the_folder_and_its_bound(
    page: Page, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(max_propfind_resources=6)
    make_tree(server.root, {"a/report.txt": b"1", "a/b/report-2.txt": b"2", "a/other.txt": b"3"})
    page.goto(server.url("/a/"))
    expect(page.get_by_role("status")).to_have_text("3 items")
    search = page.get_by_role("searchbox", name="Search below this folder")
    search.fill("report")
    search.press("Enter")
    expect(page.get_by_role("status")).to_have_text("2 found below this folder")
    assert sorted(row_names(page)) == ["b/report-2.txt", "report.txt"]
    make_tree(server.root, {f"a/b/more{i}.txt": b"" for i in range(4)})
    search.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Too many files below this folder")


def test_login_by_the_browser_and_a_read_only_path_shows_its_403(
    browser: Browser, make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    users = write_users(tmp_path / "users", {"ann": "secret"})
    server = make_server(htpasswd=users, access=(("/", "*", "write"), ("/ro", "ann", "read")))
    make_tree(server.root, {"ro/fixed.txt": b"f", "w.txt": b"w"})
    # Without credentials the page is not served: the 401's challenge makes a browser ask.
    answer = server.request("GET", "/", headers={"Accept": "text/html"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    context = browser.new_context(http_credentials={"username": "ann", "password": "secret"})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        tab = context.new_page()
        tab.goto(server.url("/"))
        expect(tab.get_by_role("link", name="w.txt")).to_be_visible()
        tab.get_by_role("checkbox", name="Select w.txt").check()
        tab.get_by_role("button", name="Move", exact=True).click()
        dialog = tab.get_by_role("dialog")
        dialog.get_by_role("button", name="ro").click()
        expect(dialog).to_contain_text("/ro")
        dialog.get_by_role("button", name="Here").click()
        expect(tab.get_by_role("log")).to_contain_text("move w.txt: 403 Forbidden")
        assert (server.root / "w.txt").exists()
        # Where ann may only read, the page offers no write controls.
        tab.goto(server.url("/ro/"))
        expect(tab.get_by_role("link", name="fixed.txt")).to_be_visible()
        assert tab.get_by_role("button", name="Delete", exact=True).count() == 0
    finally:
        context.close()


def test_the_page_works_under_a_path_prefix(
    browser: Browser, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(prefix="/dav", prefix_mode="keep")
    make_tree(server.root, {"sub/in.txt": b"i"})
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        tab = context.new_page()
        tab.goto(server.url("/dav/sub/"))
        expect(tab.get_by_role("link", name="in.txt")).to_have_attribute("href", "/dav/sub/in.txt")
        crumbs = tab.get_by_role("navigation", name="Breadcrumb").get_by_role("link")
        assert crumbs.all_text_contents() == ["Home", "sub"]
        assert crumbs.first.get_attribute("href") == "/dav/"
        tab.on("dialog", lambda dialog: dialog.accept("made"))
        tab.get_by_role("button", name="New folder").click()
        expect(tab.get_by_role("link", name="made")).to_be_visible()
        assert (server.root / "sub" / "made").is_dir()
    finally:
        context.close()


def test_a_folder_of_ten_thousand_files_draws_only_the_rows_on_screen(
    page: Page, live: LiveServer, folder: Path
) -> None:
    for index in range(10_000):
        (folder / f"f{index:05}.txt").write_bytes(b"")
    page.set_viewport_size({"width": 1000, "height": 800})
    page.goto(live.url(f"/{folder.name}/"))
    expect(page.get_by_role("status")).to_have_text("10000 items")
    expect(page.get_by_role("table")).to_have_attribute("aria-rowcount", "10001")
    expect(page.get_by_role("link", name="f00000.txt")).to_be_visible()
    assert page.locator("tbody tr:not(.spacer)").count() < 300
    page.keyboard.press("End")
    expect(page.get_by_role("link", name="f09999.txt")).to_be_visible()
    expect(page.get_by_role("row", name="f09999.txt")).to_have_attribute("aria-rowindex", "10001")
    page.get_by_role("checkbox", name="Select f09998.txt").check()
    expect(page.get_by_role("button", name="Download", exact=True)).to_be_enabled()


def test_a_phone_sized_screen_needs_no_sideways_scrolling(
    page: Page, live: LiveServer, folder: Path
) -> None:
    (folder / ("a rather long file name that goes on and on " * 3 + ".txt")).write_bytes(b"")
    page.set_viewport_size({"width": 375, "height": 700})
    open_folder(page, live, folder)
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.get_by_role("columnheader", name="Modified")).to_be_hidden()


def test_digest_login_by_the_browser(
    browser: Browser, make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    htpasswd, digest = tmp_path / "users", tmp_path / "users.digest"
    set_password(str(htpasswd), "dora", "pass word", str(digest), "davserver")
    server = make_server(htpasswd=str(htpasswd), digest_file=str(digest), basic="never")
    (server.root / "d.txt").write_bytes(b"d")
    context = browser.new_context(http_credentials={"username": "dora", "password": "pass word"})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        tab = context.new_page()
        tab.goto(server.url("/"))
        expect(tab.get_by_role("link", name="d.txt")).to_be_visible()  # PROPFIND, logged in
        tab.on("dialog", lambda dialog: dialog.accept("by digest"))
        tab.get_by_role("button", name="New folder").click()
        expect(tab.get_by_role("log")).to_contain_text("New folder by digest: 201")
        assert (server.root / "by digest").is_dir()
    finally:
        context.close()
