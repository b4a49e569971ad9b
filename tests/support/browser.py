"""Headless Chromium (Debian's `chromium` + `chromium-driver`, installed by `.ci/run`) driven by
selenium, against the app served by uvicorn on 127.0.0.1 in a thread.

The browser cannot reach any other host: `--host-resolver-rules` maps every name except
127.0.0.1 to "not found", and `requested_urls()` reads every request the page made from
Chromium's performance log, so a test asserts that none left for another host (a bank's network
has no CDN). Without Chromium the browser tests skip, unless RECKAI_REQUIRE_ALL_SERVICES=1
(CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("RECKAI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RECKAI_CHROMEDRIVER", "/usr/bin/chromedriver")


def require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if not missing:
        return
    reason = f"headless browser not installed ({', '.join(missing)}): apt-get install chromium chromium-driver"
    if os.environ.get("RECKAI_REQUIRE_ALL_SERVICES") == "1":
        pytest.fail(f"{reason} (RECKAI_REQUIRE_ALL_SERVICES=1)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app on http://127.0.0.1:<free port> until the block ends."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-default-apps", "--disable-sync", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the pages asked for since the last call (Chromium's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(str(message["params"]["request"]["url"]))
    return urls


def foreign_requests(urls: list[str], base_url: str) -> list[str]:
    """The URLs that did not go to the app itself (data: and about: URLs never leave the browser)."""
    own = urlsplit(base_url).netloc
    return [url for url in urls
            if urlsplit(url).scheme not in ("data", "about", "blob") and urlsplit(url).netloc != own]
