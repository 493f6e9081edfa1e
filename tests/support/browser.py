"""Real-browser tests: pytest-playwright's fixtures (`browser`, `page`, …) driving Debian's
chromium (`make test-deps` installs it; Playwright never downloads a browser of its own),
headless, against pytest-django's `live_server` (same process: the `settings` fixture and
time-machine reach it).

A pytest plugin (tests/conftest.py loads it). Screenshots go under test-artifacts/<test>/
(`screenshot(page, name)`), kept after the run for a person to look at.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Playwright's synchronous API keeps an event loop in this thread from the first browser
    # on, for the rest of the session: Django would take every later database call of the
    # worker for one made from async code. The calls stay synchronous; the guard is lifted.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Debian's chromium is missing: run `make test-deps` (apt-get install chromium)"
    return {**browser_type_launch_args, "executable_path": chromium, "headless": True,
            "args": ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]}


@pytest.fixture
def browser_server(live_server):
    """The live server's URL, for a test that drives a browser."""
    return live_server.url


@pytest.fixture
def screenshot(request):
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


