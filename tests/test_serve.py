"""`resattn serve` in a real browser: headless Chromium (Debian's package) driven by Playwright.
Upload a real CIFAR-10 test image, compare the prediction with `resattn predict`, count the mask
pictures, switch module and channel, upload a non-image."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import assert_user_error, cli
from PIL import Image

from resattn.data import load_cifar

TAG = "attention56.cifar10"
CHROMIUM = os.environ.get("RESATTN_CHROMIUM") or shutil.which("chromium") or \
    shutil.which("chromium-browser")


def browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or CHROMIUM is None:
        why = "the browser test needs playwright (dev extra) and Chromium (apt install chromium)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "resattn", "serve", *args, "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("the server did not start within 120 s")


def upload(page, path) -> None:
    """The file a user drops on the upload zone (after clearing the previous one, as a user
    does: the zone shows the last file until then)."""
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#upload input[type=file]").set_input_files(str(path))


@pytest.mark.slow  # a server, a browser and two models
def test_explorer_in_a_real_browser(small_run, cifar10_dir, tmp_path):
    sync_playwright = browser_or_skip()
    _, test = load_cifar("cifar10", cifar10_dir, download_ok=False, progress=False)
    png = tmp_path / "test0.png"
    Image.fromarray(test.images[0].permute(1, 2, 0).numpy()).save(png)
    (tmp_path / "notes.png").write_text("not an image")
    predicted = cli("predict", TAG, str(png), "--json", "--topk", "1")
    assert predicted.returncode == 0, predicted.stderr
    expected = json.loads(predicted.stdout)["predictions"][0]["top"][0]["class"]
    port = free_port()
    server = start_server([TAG, str(small_run), "--data-dir", str(cifar10_dir)], port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.locator("#upload").wait_for(timeout=60_000)
            upload(page, png)
            top = page.locator("#top-0 .output-class")
            top.wait_for(timeout=60_000)
            assert top.inner_text().strip() == expected
            # the upload is shown, not only its file name
            page.locator("#preview img").wait_for(timeout=60_000)
            # the second model, side by side, answers for the same image
            page.locator("#top-1 .output-class").wait_for(timeout=60_000)
            # one mask picture per attention module (attention56: three)
            page.wait_for_function(
                "document.querySelectorAll('#masks-0 button img').length >= 3", timeout=60_000)
            assert page.locator("#masks-0 button img").count() == 3
            selected = page.locator("#selected-0 img")
            first = selected.get_attribute("src")
            page.locator("#module input").click()
            page.get_by_role("option", name="stage3.module1").click()
            page.wait_for_function(
                f"document.querySelector('#selected-0 img').src !== {json.dumps(first)}",
                timeout=60_000)
            second = selected.get_attribute("src")
            page.locator("#channel input").click()
            page.get_by_role("option", name="7", exact=True).click()
            page.wait_for_function(
                f"document.querySelector('#selected-0 img').src !== {json.dumps(second)}",
                timeout=60_000)
            shot = os.environ.get("RESATTN_SCREENSHOT")
            page.screenshot(path=shot or str(tmp_path / "serve.png"), full_page=True)
            # a non-image: a message on the page, and the server keeps serving
            upload(page, tmp_path / "notes.png")
            page.wait_for_function(
                "document.querySelector('#message').innerText.includes('cannot be read')",
                timeout=60_000)
            upload(page, png)
            page.wait_for_function(
                "document.querySelector('#top-0 .output-class') !== null", timeout=60_000)
            browser.close()
        assert server.poll() is None  # still serving
    finally:
        server.terminate()
        out = server.communicate(timeout=30)[0]
    assert "Traceback" not in out, out[-3000:]
    assert "notes.png refused" in out  # one log line on the server


def test_serve_with_a_bad_port_is_one_line():
    proc = cli("serve", "--port", "70000")
    assert_user_error(proc, "--port 70000 is not valid")
