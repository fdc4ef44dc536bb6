"""The built HTML book in a real browser: Debian's headless Chromium driven by selenium, the network switched off.

    make test-html        # installs chromium, chromium-driver and selenium when missing; builds both books first

For every page of _toc.yml in _build/html (the book, solutions included):
- no JavaScript console error (level SEVERE) and no request leaves the machine (every http(s) request is an error);
- every <img> loaded (naturalWidth > 0);
- math typeset by the local MathJax (_static/mathjax): mjx-container elements where the page has math, and no
  raw ``$$``, ``\\(`` or ``\\[`` left in the text outside code;
- every static player (matplotlib's to_jshtml: a ``.animation`` div with an input[type=range]) shows another
  frame when its slider moves to the end, and the first frame again when it moves back;
- every exercise is titled "Exercise C.K" from its label ex-CC-K, and every solution is a dropdown, collapsed
  until its title is clicked;
- a screenshot of the whole page in _build/screenshots/<page>.png.
For every page in _build/class/html (make book-class): no solution element, and no line of solution text that
the same page of _build/html shows.

Run from the repository root; not under tests/, so `pytest tests` does not collect it. The results per page are
written to _build/screenshots/results.md.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# The book to check: the repository, or another folder with _toc.yml, the notebooks and _build (BOOK_ROOT=...).
ROOT = Path(os.environ.get("BOOK_ROOT", REPO)).resolve()
BOOK_HTML = ROOT / "_build" / "html"
CLASS_HTML = ROOT / "_build" / "class" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# A full-page screenshot of a long chapter is cut here (pixels), so files stay a few MB at most.
MAX_SHOT_HEIGHT = 30000

sys.path.insert(0, str(REPO / "tools"))  # student_edition: the exercise convention's parser
import student_edition as se  # noqa: E402


def toc_pages() -> list[str]:
    """Every page of _toc.yml, root first, as a path without suffix (book/03_vector_quantization)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            pages.append(chapter["file"])
    return pages


PAGES = toc_pages()
RESULTS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def driver():
    for path, fix in [(CHROMIUM, "apt-get install -y chromium"), (CHROMEDRIVER, "apt-get install -y chromium-driver")]:
        if not Path(path).exists():
            pytest.fail(f"{path} is missing; `make test-html` installs it ({fix})")
    os.environ["SE_OFFLINE"] = "true"  # selenium never looks for a browser to download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vqlearn-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1000",
                 # belt and braces with the offline emulation below: nothing resolves, no proxy answers
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                 "--allow-file-access-from-files"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(60)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)
    write_results()


def write_results() -> None:
    if not RESULTS:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    columns = sorted({key for row in RESULTS.values() for key in row})
    lines = ["| page | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for page, row in RESULTS.items():
        lines.append(f"| {page} | " + " | ".join(row.get(column, "") for column in columns) + " |")
    (SHOTS / "results.md").write_text("\n".join(lines) + "\n")


def open_page(driver, html: Path) -> None:
    driver.get_log("browser")  # drop what an earlier page left
    driver.get_log("performance")
    driver.get(html.as_uri())
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const ready = () => document.readyState === 'complete';
        const wait = () => ready() ? done() : setTimeout(wait, 50);
        wait();""")


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def remote_requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")):
                urls.append(url)
    return urls


def broken_images(driver) -> tuple[int, list[str]]:
    """(number of images, sources of those that did not load), after forcing lazy images to load."""
    driver.execute_script("document.querySelectorAll('img').forEach(img => img.loading = 'eager');")
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const start = Date.now();
        const wait = () => {
            const pending = [...document.images].filter(img => !img.complete);
            if (pending.length === 0 || Date.now() - start > 20000) done(); else setTimeout(wait, 100);
        };
        wait();""")
    images = driver.execute_script(
        "return [...document.images].map(img => [img.currentSrc || img.src, img.naturalWidth]);")
    return len(images), [src[:120] for src, width in images if not width]


def math_state(driver) -> dict:
    """Wait for MathJax to finish, then count math and typeset elements and find raw TeX delimiters in the text
    outside code."""
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const start = Date.now();
        const wait = () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                MathJax.startup.promise.then(() => done(), () => done());
            } else if (Date.now() - start > 20000) { done(); } else { setTimeout(wait, 100); }
        };
        if (!document.querySelector('.math')) done(); else wait();""")
    return driver.execute_script("""
        const clone = document.body.cloneNode(true);
        clone.querySelectorAll('pre, code, script, style, mjx-container, textarea, .highlight')
             .forEach(node => node.remove());
        const text = clone.textContent;
        const raw = [];
        for (const delimiter of ['$$', '\\\\(', '\\\\)', '\\\\[', '\\\\]']) {
            const at = text.indexOf(delimiter);
            if (at >= 0) raw.push(text.slice(Math.max(0, at - 40), at + 40));
        }
        const scripts = [...document.scripts].map(s => s.src).filter(src => /mathjax/i.test(src));
        return {math: document.querySelectorAll('.math').length,
                typeset: document.querySelectorAll('mjx-container').length,
                local: window.MathJax && MathJax.version ? MathJax.version : null,
                scripts: scripts, raw: raw};""")


def check_players(driver) -> tuple[int, list[str]]:
    """Move every to_jshtml player's slider to its end and back; return (players, problems)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    problems = []
    players = driver.find_elements(By.CSS_SELECTOR, "div.animation")
    players = [player for player in players if player.find_elements(By.CSS_SELECTOR, "input[type=range]")]
    for number, player in enumerate(players, 1):
        slider = player.find_element(By.CSS_SELECTOR, "input[type=range]")
        image = player.find_element(By.CSS_SELECTOR, "img")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", slider)
        first = image.get_attribute("src")
        low, high = slider.get_attribute("min") or "0", slider.get_attribute("max")
        if first is None or int(high) <= int(low):
            problems.append(f"player {number}: no frames (min {low}, max {high})")
            continue
        slider.send_keys(Keys.END)
        moved = image.get_attribute("src")
        value = slider.get_attribute("value")
        width = driver.execute_script("return arguments[0].naturalWidth;", image)
        slider.send_keys(Keys.HOME)
        back = image.get_attribute("src")
        if value != high:
            problems.append(f"player {number}: the slider reads {value} after End, expected {high}")
        if moved == first:
            problems.append(f"player {number}: the image did not change when the slider moved to frame {high}")
        if back != first:
            problems.append(f"player {number}: back at frame {low}, the image is not the first frame's")
        if not width:
            problems.append(f"player {number}: the frame image did not load")
    return len(players), problems


def check_exercises(driver) -> tuple[int, int, list[str]]:
    """Exercise titles read "Exercise C.K" from their labels; solutions are collapsed dropdowns that open when
    their title is clicked. Returns (exercises, solutions, problems)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    problems = []
    exercises = driver.find_elements(By.CSS_SELECTOR, "div.exercise")
    for exercise in exercises:
        label = exercise.get_attribute("id")
        title = exercise.find_element(By.CSS_SELECTOR, ".admonition-title").text
        try:
            name = se.exercise_name(label)
        except ValueError as error:
            problems.append(str(error))
            continue
        if not title.startswith(f"Exercise {name}"):
            problems.append(f"exercise {label} is titled {title!r}, expected 'Exercise {name} ...'")
    solutions = driver.find_elements(By.CSS_SELECTOR, "div.solution")
    for solution in solutions:
        title = solution.find_element(By.CSS_SELECTOR, ".admonition-title")
        content = solution.find_elements(By.CSS_SELECTOR, ":scope > section, :scope > *:not(.admonition-title)")
        name = title.text.strip()
        if "dropdown" not in (solution.get_attribute("class") or ""):
            problems.append(f"{name}: not a dropdown (add :class: dropdown to its solution-start)")
        if not content:
            problems.append(f"{name}: empty solution")
            continue
        if any(element.is_displayed() for element in content):
            problems.append(f"{name}: shown before its title is clicked (expected collapsed)")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", title)
        title.click()
        try:  # togglebutton fades the content in
            WebDriverWait(driver, 5).until(lambda _: any(element.is_displayed() for element in content))
        except TimeoutException:
            problems.append(f"{name}: still hidden 5 s after a click on its title")
        title.click()  # collapse again, for the screenshot
    return len(exercises), len(solutions), problems


def screenshot(driver, name: str) -> Path:
    """The whole page (up to MAX_SHOT_HEIGHT pixels) as _build/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0);")
    width, height = driver.execute_script(
        "return [window.innerWidth, document.documentElement.scrollHeight];")
    # A viewport as tall as the page, so the page lays out once, as a reader's window would show it.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": min(height, MAX_SHOT_HEIGHT), "deviceScaleFactor": 1, "mobile": False})
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path = SHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def require(html: Path, target: str) -> None:
    if not html.exists():
        pytest.fail(f"{html.relative_to(ROOT)} is missing: run `{target}` first (make test-html does)")


@pytest.mark.parametrize("page", PAGES)
def test_book_page(driver, page):
    html = BOOK_HTML / f"{page}.html"
    require(html, "make book")
    name = Path(page).name
    open_page(driver, html)
    problems = []
    images, broken = broken_images(driver)
    problems += [f"image did not load: {src}" for src in broken]
    math = math_state(driver)
    if math["math"] and not math["typeset"]:
        problems.append(f"{math['math']} math elements but nothing typeset by MathJax")
    if math["math"] and not all("/_static/mathjax/" in src for src in math["scripts"]):
        problems.append(f"MathJax not loaded from _static/mathjax: {math['scripts']}")
    problems += [f"raw TeX left in the text: ...{text!r}..." for text in math["raw"]]
    players, player_problems = check_players(driver)
    problems += player_problems
    exercises, solutions, exercise_problems = check_exercises(driver)
    problems += exercise_problems
    errors = console_errors(driver)
    problems += [f"console error: {message[:300]}" for message in errors]
    remote = remote_requests(driver)
    problems += [f"request to the network: {url[:200]}" for url in remote]
    shot = screenshot(driver, name)
    RESULTS[name] = {
        "console errors": str(len(errors)), "network requests": str(len(remote)),
        "images loaded": f"{images - len(broken)}/{images}",
        "math (typeset)": f"{math['math']} ({math['typeset']})" if math["math"] else "none",
        "players ok": f"{players - len({p.split(':')[0] for p in player_problems})}/{players}",
        "exercises, solutions": f"{exercises}, {solutions}", "screenshot": shot.name,
        "result": "FAIL" if problems else "pass",
    }
    assert not problems, f"{html.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def cell_text(cell) -> str:
    """A cell's source and the text of its stored outputs (a chapter may print vqlearn's own code, which a
    solution can repeat)."""
    texts = [se._source(cell)]
    for output in cell.get("outputs", []):
        texts.append(output.get("text", "") if isinstance(output.get("text", ""), str) else "".join(output["text"]))
        for mime in ("text/plain", "text/html", "text/markdown"):
            value = output.get("data", {}).get(mime, "")
            texts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(texts)


def solution_lines(page: str) -> list[str]:
    """Lines of the page's solutions that a reader would see: code lines and markdown sentences of >= 20
    characters, leaving out those that also appear outside the solutions (in a cell or its output)."""
    notebook = ROOT / f"{page}.ipynb"
    if not notebook.exists():
        return []
    nb = nbformat.read(notebook, as_version=4)
    _, solutions = se.find_exercises(nb, notebook)
    inside = {id(cell) for solution in solutions for cell in solution.cells}
    outside = "\n".join(cell_text(cell) for cell in nb.cells if id(cell) not in inside)
    lines = []
    for solution in solutions:
        for cell in solution.cells:
            source = se._source(cell)
            if cell.cell_type == "code":
                pieces = [line.strip() for line in source.splitlines()]
            else:
                pieces = [piece.strip() for piece in re.split(r"(?<=[.!?:])\s+|\n", source)
                          if not re.search(r"[`*_$\[\]{}<>\\]", piece)]
            lines += [piece for piece in pieces if len(piece) >= 20 and piece not in outside]
    return lines


@pytest.mark.parametrize("page", PAGES)
def test_class_page(driver, page):
    """The class build has the exercises but no solution: no solution element, and no solution line that the
    same page of the full build shows."""
    from selenium.webdriver.common.by import By

    html, full = CLASS_HTML / f"{page}.html", BOOK_HTML / f"{page}.html"
    require(full, "make book")
    require(html, "make book-class")
    open_page(driver, full)
    full_text = driver.execute_script("return document.body.textContent;")
    full_exercises = len(driver.find_elements(By.CSS_SELECTOR, "div.exercise"))
    shown = [line for line in solution_lines(page) if line in full_text]
    driver.get_log("browser")
    open_page(driver, html)
    text = driver.execute_script("return document.body.textContent;")
    problems = []
    elements = driver.find_elements(By.CSS_SELECTOR, "div.solution, .solution-start, .solution-end")
    if elements:
        problems.append(f"{len(elements)} solution elements in the class page")
    leaked = [line for line in shown if line in text]
    problems += [f"solution text in the class page: {line[:120]!r}" for line in leaked]
    exercises = len(driver.find_elements(By.CSS_SELECTOR, "div.exercise"))
    if exercises != full_exercises:
        problems.append(f"{exercises} exercises in the class page, {full_exercises} in the book's")
    if solution_lines(page) and not shown:
        problems.append("none of the solution's lines were found in the book's page, so the check is empty")
    problems += [f"console error: {message[:300]}" for message in console_errors(driver)]
    if (CLASS_HTML / "_sources").exists():
        problems.append("the class build copies the source notebooks (_sources), solutions included")
    row = RESULTS.setdefault(Path(page).name, {})
    row["class: solution lines checked"] = str(len(shown))
    row["class: result"] = "FAIL" if problems else "pass"
    assert not problems, f"{html.relative_to(ROOT)}:\n  " + "\n  ".join(problems)
