"""Page load times of the app at 10,000 papers, in Chromium: Papers, Daily papers, Collection.

    python -m benchmarks.app_pages                                  # builds or reuses /work/stores/app-10k
    python -m benchmarks.app_pages --store DIR --rounds 5
    python -m benchmarks.app_pages --app-dir /tmp/old-checkout      # the same store, another checkout's app

Builds (or reuses) a store of the Daily Papers archive with each paper's listing day
(``benchmarks/library.py``), starts ``streamlit run`` on it with the deterministic ``fake`` model,
and drives Debian's Chromium with Playwright. Each page is opened by its URL once (the first
load: the store's rows, the map's clustering and the BM25 index are built then) and then
``--rounds`` more times; a load ends when the page's own content is drawn (the map: its canvas)
and Streamlit's running indicator is gone. Seconds are printed, never asserted; the target is
≤ 2 s for the Papers page and the map after the first load.

``--app-dir`` runs another checkout's ``streamlit_app.py`` (a ``git worktree`` of an older commit)
against the same store, so old and new are timed on one machine in one sitting; pages that
checkout does not have are skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.library import ARCHIVE, archive_papers, build_store  # noqa: E402
from benchmarks.synthetic import format_table, machine_line  # noqa: E402
from tests.conftest import free_port, wait_for_port  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
DEFAULT_STORE = Path("/work/stores/app-10k")
STARTUP_TIMEOUT_S = 180
LOAD_TIMEOUT_MS = 600_000
TARGET_S = 2.0


@dataclass(frozen=True)
class PageSpec:
    name: str
    path: str  # Streamlit's URL path: the page file's name
    ready: str  # a CSS selector present once the page's content is drawn


PAGES = [
    # A reload of the empty chat: what any page costs (Streamlit's boot in the browser, the session's start).
    PageSpec("Chat, empty (the baseline)", "chat", '[data-testid="stChatInputTextArea"]'),
    PageSpec("Papers", "papers", '[data-testid="stExpander"]'),
    PageSpec("Daily papers", "day", '[data-testid="stExpander"]'),
    PageSpec("Collection (with the map)", "collection", '[data-testid="stVegaLiteChart"] canvas'),
]


def start_app(app_dir: Path, store: Path, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ASSISTANT_")}
    env |= {"ASSISTANT_STORE_DIR": str(store), "ASSISTANT_DATA_DIR": str(data_dir), "ASSISTANT_MODEL": "fake"}
    env["PYTHONPATH"] = str(app_dir)
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = (data_dir / "streamlit.log").open("wb")
    process = subprocess.Popen(command, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, STARTUP_TIMEOUT_S, process)
    return process, f"http://127.0.0.1:{port}"


def has_page(app_dir: Path, spec: PageSpec) -> bool:
    return (app_dir / "app_pages" / f"{spec.path}.py").is_file()


def time_pages(app_dir: Path, store: Path, rounds: int) -> list[tuple[str, float, list[float]]]:
    from playwright.sync_api import sync_playwright

    results: list[tuple[str, float, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="app-pages-") as folder:
        process, url = start_app(app_dir, store, Path(folder))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
                for spec in PAGES:
                    if not has_page(app_dir, spec):
                        continue
                    seconds = []
                    for _ in range(rounds + 1):
                        started = time.perf_counter()
                        page.goto(f"{url}/{spec.path}")
                        page.locator(spec.ready).first.wait_for(timeout=LOAD_TIMEOUT_MS)
                        page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=LOAD_TIMEOUT_MS)
                        seconds.append(time.perf_counter() - started)
                    results.append((spec.name, seconds[0], seconds[1:]))
                    print(f"  {spec.name}: first {seconds[0]:.1f} s, then {', '.join(f'{s:.2f}' for s in seconds[1:])}")
                    if spec.path == "papers":
                        results.extend(papers_interactions(page, rounds))
                browser.close()
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
    return results


FIRST_PAPER = '[data-testid="stExpander"] summary'
COUNT = '[data-testid="stMain"] [data-testid="stCaptionContainer"]'  # "N of M papers", the page's first caption


def _changed(page: Page, action: Callable[[], None], selector: str) -> float:
    """Seconds from ``action`` until the first ``selector`` element reads otherwise and the run is over."""
    before = page.locator(selector).first.inner_text()
    started = time.perf_counter()
    action()
    page.wait_for_function(
        "([selector, before]) => document.querySelector(selector)?.innerText !== before",
        arg=[selector, before],
        timeout=LOAD_TIMEOUT_MS,
    )
    page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=LOAD_TIMEOUT_MS)
    return time.perf_counter() - started


def papers_interactions(page: Page, rounds: int) -> list[tuple[str, float, list[float]]]:
    """On the open Papers page, without reloading: the next page, and a search typed and cleared."""
    step = page.get_by_test_id("stNumberInputStepUp").first
    pages = [_changed(page, step.click, FIRST_PAPER) for _ in range(rounds + 1)]
    box = page.get_by_role("textbox", name="Search")

    def search(words: str) -> Callable[[], None]:
        return lambda: (box.fill(words), box.press("Enter"))  # type: ignore[func-returns-value]

    searches = []
    for _ in range(rounds + 1):
        searches.append(_changed(page, search("diffusion"), COUNT))
        _changed(page, search(""), COUNT)
    print(f"  Papers, next page: {', '.join(f'{s:.2f}' for s in pages)}")
    print(f"  Papers, search 'diffusion': {', '.join(f'{s:.2f}' for s in searches)}")
    return [("Papers: next page (no reload)", pages[0], pages[1:]), ("Papers: a search", searches[0], searches[1:])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="store folder (built when missing)")
    parser.add_argument("--papers", type=int, default=None, help="the first N papers of the archive (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="loads per page after the first")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app is timed")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`)")
        return 2
    if not (args.store / "chroma.sqlite3").exists():
        if not ARCHIVE.is_file():
            print(f"{ARCHIVE} is missing: set ASSISTANT_DAILY_ARCHIVE to the archive's papers.jsonl")
            return 2
        build_store(args.store, archive_papers(ARCHIVE, args.papers))
    print(machine_line())
    print(f"app: {args.app_dir}, store: {args.store}")
    results = time_pages(args.app_dir.resolve(), args.store.resolve(), args.rounds)
    rows = [
        (name, f"{first:.1f}", f"{statistics.median(later):.2f}", f"{max(later):.2f}") for name, first, later in results
    ]
    print(format_table(["page", "first load s", "later loads s (median)", "later loads s (max)"], rows))
    print(f"target: Papers and the map <= {TARGET_S:.0f} s after the first load")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
