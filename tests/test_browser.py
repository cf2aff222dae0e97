"""The HTML player in a real browser: headless Chromium opens it from disk (file://, no network),
the arrow keys step through the frames. Talks to Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages ending in a NUL byte on file descriptors 3 and 4), with
the standard library only. Skipped unless `chromium` is on PATH (as .ci/run looks for it)."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from tinygrad_edu.teach.pictures import animate

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


def _onto_3_and_4(read_end, write_end):
    """In the child: the pipe ends become fds 3 and 4 (copied first, in case they already are 3 or 4);
    os.pipe's own fds are not inheritable, so exec closes them and only 3 and 4 stay."""
    r, w = os.dup(read_end), os.dup(write_end)
    os.dup2(r, 3)
    os.dup2(w, 4)


class DevTools:
    """A minimal DevTools protocol client over --remote-debugging-pipe."""

    def __init__(self):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self._profile = tempfile.TemporaryDirectory()
        # the browser reads commands on its fd 3 and writes replies on its fd 4
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={self._profile.name}", "--remote-debugging-pipe", "--window-size=1000,800",
             "about:blank"],
            close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _onto_3_and_4(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._id = b"", 0

    def send(self, method, session=None, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(method)

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()


def evaluate(dt, session, expression):
    return dt.send("Runtime.evaluate", session, expression=expression, returnByValue=True)["result"].get("value")


def press(dt, session, key, code):
    for kind in ("keyDown", "keyUp"):
        dt.send("Input.dispatchKeyEvent", session, type=kind, key=key, code=code, windowsVirtualKeyCode=
                {"ArrowRight": 39, "ArrowLeft": 37}[key])


def wait_for(dt, session, expression, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = evaluate(dt, session, expression)
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(expression)


def test_the_player_steps_with_the_arrow_keys(tmp_path):
    anim = animate("conv2d", input=(1, 1, 4, 4), weight=(1, 1, 3, 3))      # 4 frames
    page = anim.save(tmp_path / "player.html")
    dt = DevTools()
    try:
        target = dt.send("Target.createTarget", url=page.resolve().as_uri() + "#frame=2")["targetId"]
        session = dt.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        root = "document.querySelector('.tge-player')"
        wait_for(dt, session, f"document.readyState === 'complete' && {root} !== null")
        counter = "document.querySelector('[id$=\"-counter\"]').textContent"
        assert evaluate(dt, session, counter) == "2 / 4"                     # #frame=2 opens frame 2
        src = evaluate(dt, session, "document.querySelector('img').src")
        assert src.startswith("data:image/png;base64,")
        assert evaluate(dt, session, "document.querySelector('img').complete && "
                                     "document.querySelector('img').naturalWidth") > 100
        press(dt, session, "ArrowRight", "ArrowRight")
        assert wait_for(dt, session, f"{counter} === '3 / 4' && {root}.dataset.frame")  == "3"
        assert evaluate(dt, session, "document.querySelector('img').src") != src
        press(dt, session, "ArrowLeft", "ArrowLeft")
        press(dt, session, "ArrowLeft", "ArrowLeft")
        assert wait_for(dt, session, f"{counter} === '1 / 4' && {root}.dataset.frame") == "1"
        evaluate(dt, session, "document.querySelector('[id$=\"-next\"]').click()")
        assert evaluate(dt, session, counter) == "2 / 4"
    finally:
        dt.close()
