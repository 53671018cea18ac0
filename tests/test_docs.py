"""The documentation sites build with `mkdocs build --strict` and offline, their generated pages follow
the code, and a reader in a browser finds in them what they look for.

The template's own site (mkdocs.yml here) and one rendered project's are each built once per session,
the project under a name other than the default so that nothing in its site holds by accident. A
project's own `tests/test_docs.py` builds its site again in each task's suite (test_projects.py)."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from scripts.docs_hooks import asked, files_added

from .conftest import ROOT, Renders, run

pytestmark = pytest.mark.xdist_group("docs")  # one worker builds each site once
PROJECT = {"project_name": "Reef Watch Docs", "task": "detection"}
PACKAGE = "reef_watch_docs"
CHROMIUM = shutil.which("chromium")
"""The system's Chromium (Debian's package, as `make test` installs it), else Playwright's own browser."""
EXTERNAL = re.compile(r"""<(?:script|img|link|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")
"""A page element the browser would fetch from elsewhere (links to other sites are fine)."""


def build(source: Path, site: Path) -> Path:
    run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=source, timeout=600)
    return site


def assert_offline(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 5, pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not EXTERNAL.search(html), f"{page} loads {EXTERNAL.search(html)}"
        assert "fonts.googleapis" not in html, page
        assert "fonts.gstatic" not in html, page


@pytest.fixture(scope="session")
def template_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(ROOT, tmp_path_factory.mktemp("template-site"))


@pytest.fixture(scope="session")
def project_site(rendered: Renders, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(rendered(**PROJECT), tmp_path_factory.mktemp("project-site"))


def test_the_template_site_has_a_page_per_question_with_the_files_of_each_answer(template_site: Path) -> None:
    assert_offline(template_site)
    assert (template_site / "design" / "index.html").is_file()
    for name in asked():
        assert (template_site / "questions" / name / "index.html").is_file(), name
    task_page = (template_site / "questions" / "task" / "index.html").read_text(encoding="utf-8")
    row = task_page.split("<code>detection</code>", 1)[1].split("</tr>", 1)[0]
    assert "<code>src/&lt;package&gt;/models/detector.py</code>" in row
    assert "models/segmenter.py" not in row
    assert files_added("logger", "mlflow") == ["src/<package>/loggers.py", "tests/test_logger.py"]


def test_the_project_site_loads_nothing_from_the_network(project_site: Path) -> None:
    assert_offline(project_site)
    api = (project_site / "reference" / "inference" / "index.html").read_text(encoding="utf-8")
    assert "load_model" in api, "mkdocstrings documented inference.py"


def test_the_reference_follows_the_code_without_a_docs_edit(rendered: Renders, tmp_path: Path) -> None:
    """A key added to the config model and an option added to the parser are in the next build."""
    project = shutil.copytree(rendered(**PROJECT), tmp_path / "project")
    config = project / "src" / PACKAGE / "config.py"
    last_trainer_key = "    check_val_every_n_epoch: Annotated[int, Field(ge=1)] = 1\n"
    added_key = '    drift_probe: Annotated[int, Field(ge=3)] = 7\n    """Added after the site was written."""\n'
    config.write_text(config.read_text().replace(last_trainer_key, last_trainer_key + added_key, 1))
    cli = project / "src" / PACKAGE / "cli.py"
    config_option = '            help="YAML config file (repeatable)",\n        )\n'
    added_option = '        command.add_argument("--drift-probe", metavar="N", help="added later")\n'
    cli.write_text(cli.read_text().replace(config_option, config_option + added_option, 1))
    site = build(project, tmp_path / "site")
    reference = (site / "reference" / "config" / "index.html").read_text(encoding="utf-8")
    row = reference.split("<code>trainer.drift_probe</code>", 1)[1].split("</tr>", 1)[0]
    assert "int (≥ 3)" in row, row
    assert "<code>7</code>" in row, row
    assert "Added after the site was written." in row, row
    commands = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    # every command that reads the config has it (`serve` takes the config with the model's file)
    assert commands.count("<code>--drift-probe</code>") == commands.count('<h2 id="') - 1


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line per request on the test's output."""


@pytest.fixture(scope="session")
def served(project_site: Path) -> Iterator[str]:
    """The site over HTTP, as a reader gets it: its search runs in a web worker, which file:// forbids."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=project_site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_reader_sees_a_config_key_with_its_default_and_finds_it_by_search(served: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(served + "reference/config/")
        row = page.locator("tr").filter(has=page.get_by_text("trainer.max_epochs", exact=True))
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(2)).to_have_text("15")  # detection's default recipe
        search = page.locator("input.md-search__input")
        search.click()
        search.press_sequentially("max_epochs")  # typed: the search answers key strokes
        found = page.locator('a.md-search-result__link[href$="reference/config/#trainer"]')
        expect(found).to_contain_text("max_epochs")
        browser.close()
