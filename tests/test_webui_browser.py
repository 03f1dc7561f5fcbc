"""The web UI driven in headless Chromium as a user would: the URL `vlmtune webui` printed (with its token; the
page refuses itself without it), model, data preview, a short run, a GRPO form refused before launch, chat with
the run's output, then Start in the Serve tab, which in a Python without vLLM shows serve's one-line error.

Needs Debian's chromium (`apt-get install chromium`; `make test` installs it when missing) and playwright's
Python package; skipped without them. Takes a screenshot of each tab; with VLMTUNE_UPDATE_SCREENSHOTS=1 they
replace the ones docs/webui.md shows (docs/images/webui-<tab>.png), otherwise they go to a temporary folder, so a test
run never changes the checkout.

    python -m pytest -q -m browser tests/test_webui_browser.py
    VLMTUNE_UPDATE_SCREENSHOTS=1 python -m pytest -q -m browser tests/test_webui_browser.py   # refresh docs/webui.md's
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import digit_png

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
README_SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "images"
SCREENSHOTS = (
    README_SCREENSHOTS
    if os.environ.get("VLMTUNE_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "vlmtune-webui-screenshots"
)
QUESTION = "Which digit is shown in the image?"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no {CHROMIUM} (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digits_file(folder: Path) -> Path:
    records = []
    for digit in range(6):
        name = digit_png(folder, f"d{digit}.png", digit)
        turns = [{"from": "human", "value": f"<image>\n{QUESTION}"}, {"from": "gpt", "value": str(digit)}]
        records.append({"image": Path(name).name, "conversations": turns})
    path = folder / "digits.json"
    path.write_text(json.dumps(records))
    return path


def printed_url(log_file: Path) -> str | None:
    """The URL `vlmtune webui` printed (with its token), once it has."""
    for line in log_file.read_text().splitlines():
        if line.startswith("vlmtune web UI: "):
            return line.split()[3]
    return None


@pytest.fixture
def webui(tmp_path):
    """`vlmtune webui` on a free port of 127.0.0.1 with the test's folder as its root, as a subprocess in its own
    process group; the URL it printed, which carries its token."""
    port = free_port()
    log = open(tmp_path / "webui.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "vlmtune", "webui", "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    try:
        for _ in range(240):
            url = printed_url(tmp_path / "webui.log")
            try:
                if url:
                    urllib.request.urlopen(url, timeout=2)
                    break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "webui.log").read_text()
            time.sleep(0.5)
        assert url and url.startswith(f"http://127.0.0.1:{port}/?token="), (tmp_path / "webui.log").read_text()
        with pytest.raises(urllib.error.HTTPError, match="401"):  # the page without its token
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def kill_run(output_dir: Path) -> None:
    """The training run the page started, if it still runs (a failed test must not leave it behind)."""
    run_file = output_dir / "webui_run.json"
    if run_file.is_file():
        try:
            os.killpg(json.loads(run_file.read_text())["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass


def field(page, name: str):
    """The input of a generated form field (text, number or dropdown)."""
    return page.locator(f"#field-{name}").locator("input, textarea").first


def shoot(page, tab: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"webui-{tab}.png"
    page.screenshot(path=str(path), full_page=True)
    Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)  # small enough to commit


def test_train_and_chat_through_the_page(webui, tmp_path, capsys):
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev.txt)")
    from playwright.sync_api import expect, sync_playwright

    data_path = digits_file(tmp_path)
    output_dir = tmp_path / "run"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})  # one cookie jar for its pages
            page = context.new_page()
            page.goto(webui)

            # Model: pick the tiny Qwen2-VL; the page says what its family accepts.
            field(page, "model_id").click()
            # Over 100 registered ids: the dropdown lists the first 100 (gradio's limit); typing filters, as a
            # user looking for one id does.
            field(page, "model_id").press_sequentially("tiny-qwen2-vl")
            page.get_by_role("option", name="tiny-qwen2-vl", exact=True).click()
            expect(page.locator("#model-summary")).to_contain_text("family qwen2-vl")
            shoot(page, "model")

            # Data: validate, then preview with the trained spans highlighted.
            page.get_by_role("tab", name="Data").click()
            field(page, "data_path").fill(str(data_path))
            page.get_by_role("button", name="Validate (vlmtune validate)").click()
            expect(page.locator("#validate-report textarea")).to_have_value(
                f"$ vlmtune validate --data_path {data_path} --model_max_length 2048 --model_id tiny-qwen2-vl\n"
                f"{data_path}: 6 sample(s) checked: 6 ok, 0 with errors, 0 warning(s)\n(exit status 0)"
            )
            page.get_by_role("button", name="Preview (vlmtune preview)").click()
            trained = page.locator("#preview mark.trained")
            expect(trained).to_have_count(3, timeout=60_000)
            assert [trained.nth(i).inner_text() for i in range(3)] == ["0<|im_end|>", "1<|im_end|>", "2<|im_end|>"]
            shoot(page, "data")

            # Train: a short full finetune, watched until its loss curve is complete.
            page.get_by_role("tab", name="Train").click()
            field(page, "output_dir").fill(str(output_dir))
            field(page, "llm_mode").click()
            page.get_by_role("option", name="full", exact=True).click()
            field(page, "max_steps").fill("24")
            field(page, "logging_steps").fill("1")
            field(page, "learning_rate").fill("0.02")
            field(page, "per_device_train_batch_size").fill("3")
            page.locator("#start").click()
            expect(page.locator("#start-message")).to_contain_text("Started")
            # The browser goes away mid-run; the run goes on, and a new page shows it again (the token's cookie
            # opens it without the token in the URL).
            page.close()
            page = context.new_page()
            page.goto(webui.split("?")[0])
            page.get_by_role("tab", name="Train").click()
            expect(field(page, "output_dir")).to_have_value(str(output_dir))
            expect(field(page, "max_steps")).to_have_value("24")
            expect(page.locator("#run-state")).to_have_attribute("data-state", "finished", timeout=240_000)
            expect(page.locator("#run-progress")).to_contain_text("step 24/24")
            log = (output_dir / "webui_run.log").read_text()
            logged = [ast.literal_eval(line.strip()) for line in re.split("[\r\n]", log) if "'loss'" in line]
            assert len(logged) == 24
            # The finished curve: one point per logged loss (Vega labels its marks), the last one the last loss.
            points = page.locator('#loss-curve [aria-roledescription="point"]')
            expect(points).to_have_count(24)
            last = f"epoch: 12; value: {float(logged[-1]['loss']):g}; series: loss"
            expect(points.last).to_have_attribute("aria-label", last)
            page.get_by_role("button", name="YAML (vlmtune train --config) and shell command").click()
            expect(page.locator("#shell-command")).to_contain_text("--max_steps 24")
            shoot(page, "train")

            # GRPO: the same run tab over `vlmtune grpo`'s form; a bad value is refused with the CLI's line.
            page.get_by_role("tab", name="GRPO").click()
            expect(field(page, "grpo_reward_funcs")).to_have_value("format accuracy")  # GRPOArguments' default
            field(page, "grpo_data_path").fill(str(data_path))
            field(page, "grpo_output_dir").fill(str(tmp_path / "grpo"))
            field(page, "grpo_loss_type").fill("ppo")
            page.locator("#grpo_start").click()
            expect(page.locator("#grpo_start-message")).to_have_text(
                "Not started: vlmtune grpo: error: --loss_type must be one of grpo, dr_grpo, dapo, bnpo, cispo, sapo, "
                "got 'ppo'"
            )
            assert not (tmp_path / "grpo").exists()
            shoot(page, "grpo")

            # Chat: the run's output answers about a digit image, as `vlmtune chat` does.
            page.get_by_role("tab", name="Chat").click()
            page.locator("#load").click()
            expect(page.locator("#loaded")).to_contain_text("Loaded model", timeout=60_000)
            image = tmp_path / "d3.png"
            page.locator("#chat-image input[type=file]").set_input_files(str(image))
            page.locator("#question textarea").fill(QUESTION)
            page.locator("#send").click()
            bot = page.locator("#chat .message.bot, #chat [data-testid=bot]")
            expect(bot.first).to_be_visible(timeout=60_000)
            shoot(page, "chat")
            page.get_by_role("tab", name="Merge").click()
            shoot(page, "merge")
            shown = bot.first.inner_text().strip()

            # Serve: the run's output (a full model); without vLLM in this Python, serve's one-line error shows.
            if importlib.util.find_spec("vllm") is None:
                page.get_by_role("tab", name="Serve").click()
                field(page, "serve_output").fill(str(output_dir))
                page.locator("#serve-start").click()
                expect(page.locator("#serve-start-message")).to_contain_text(
                    f"Started vlmtune serve {output_dir}",
                    timeout=60_000,  # serve's checks, on busy cores
                )
                expect(page.locator("#serve-state")).to_have_attribute("data-state", "failed", timeout=120_000)
                expect(page.locator("#serve-state")).to_contain_text(
                    "failed (exit status 2): vlmtune serve: error: vLLM is not importable from this Python."
                )
                shoot(page, "serve")
        finally:
            browser.close()
            kill_run(output_dir)

    from vlmtune.apps.cli import main as cli_main

    capsys.readouterr()
    assert (
        cli_main(["chat", str(output_dir), "--image", str(image), "--prompt", QUESTION, "--max_new_tokens", "64"]) == 0
    )
    reply = capsys.readouterr().out.strip()
    assert reply and shown == reply
