"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

No browser download and no new dependency: Debian's ``chromium`` package and the standard library.
The pipe carries NUL-terminated JSON messages: commands on the browser's fd 3, replies and events
on its fd 4.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

WIDTH, HEIGHT = 1280, 900
# The longest full-page screenshot; longer pages are cut there (the checks still see the whole page).
MAX_SCREENSHOT_HEIGHT = 8_000
# What each page reports about itself, evaluated once it has loaded.
PAGE_FACTS = """JSON.stringify({
  images: [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0})),
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  tables: [...document.querySelectorAll('table')].map(t => Math.ceil(t.getBoundingClientRect().right)),
  svgs: document.querySelectorAll('svg').length,
  tokens: document.querySelectorAll('.tokens .t').length,
  brokenTokens: [...document.querySelectorAll('.tokens .t')].filter(t => t.getClientRects().length > 1).length,
  banners: [...document.querySelectorAll('.banner')].map(b => b.textContent),
})"""


def chromium_binary() -> str | None:
    """The installed Chromium, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageCheck:
    """What one page showed: its console errors, facts measured in the page, and a screenshot file."""

    url: str
    errors: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    screenshot: Path | None = None


class Chromium:
    """One headless browser; :meth:`check` loads a page at 1280 px wide and reports on it."""

    def __init__(self, binary: str, timeout: float = 30.0):
        """Start the browser (with a throw-away profile)."""
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()
        # The browser reads commands on fd 3 and writes on fd 4; fds are numbered in the child before exec.
        def remap():
            moved = [os.dup(to_browser_read), os.dup(from_browser_write)]
            os.dup2(moved[0], 3)
            os.dup2(moved[1], 4)

        arguments = [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                     "--hide-scrollbars", "--mute-audio", f"--user-data-dir={self.profile}",
                     f"--window-size={WIDTH},{HEIGHT}", "about:blank"]
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=remap,
                                        pass_fds=(3, 4))  # kept open past the close of the child's other fds
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        try:
            self.send("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("no message from chromium in time")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed its pipe (exit status {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Run one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._write, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self._events[index]
                    return
            self._events.append(self._message(deadline))

    def check(self, path: Path, screenshot: Path) -> PageCheck:
        """Load ``path`` in a fresh tab 1280 px wide; collect console errors, page facts and a full-page screenshot."""
        url = path.resolve().as_uri()
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session)
        self.send("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=HEIGHT, deviceScaleFactor=1,
                  mobile=False)
        self._events.clear()
        self.send("Page.navigate", session, url=url)
        self._wait_for("Page.loadEventFired", session)
        result = self.send("Runtime.evaluate", session, expression=PAGE_FACTS, returnByValue=True)
        check = PageCheck(url, facts=json.loads(result["result"]["value"]))
        height = self.send("Page.getLayoutMetrics", session)["cssContentSize"]["height"]
        self.send("Emulation.setDeviceMetricsOverride", session, width=WIDTH,
                  height=int(min(max(height, HEIGHT), MAX_SCREENSHOT_HEIGHT)), deviceScaleFactor=1, mobile=False)
        image = self.send("Page.captureScreenshot", session, format="png")["data"]
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(image))
        check.screenshot = screenshot
        check.errors = [_describe(event) for event in self._events
                        if event.get("sessionId") == session and _is_error(event)]
        self.send("Target.closeTarget", targetId=target)
        self._events.clear()
        return check


def _is_error(event: dict) -> bool:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        return True
    if method == "Runtime.consoleAPICalled":
        return params.get("type") in ("error", "assert")
    if method == "Log.entryAdded":
        return params.get("entry", {}).get("level") == "error"
    return False


def _describe(event: dict) -> str:
    params = event.get("params", {})
    if "entry" in params:
        return f"{params['entry'].get('source')}: {params['entry'].get('text')} ({params['entry'].get('url', '')})"
    if "exceptionDetails" in params:
        return f"exception: {params['exceptionDetails'].get('text')}"
    return f"console.{params.get('type')}: {[arg.get('value') for arg in params.get('args', [])]}"
