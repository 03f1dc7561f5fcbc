"""Nobody gets in where they don't belong: the web UI's token, password, Origin and Host checks (against the real
page served on a free port of 127.0.0.1), its refusals at start (beyond loopback without a secret, a password on
the command line), files confined to the workspace root, and `vlmtune serve`'s API key (off its command line)."""

from __future__ import annotations

import base64
import html
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.test_export_serve import default_lora, digits  # noqa: F401  (fixtures, for the vllm test)
from vlmtune.apps.webui import forms, workspace
from vlmtune.errors import ArgumentError

TOKEN = "the-right-token-0123456789"
PASSWORD = "the-right-password"
# Routes of every kind gradio serves: the page, its config, the API, the queue, uploads, files, static assets,
# and a path that does not exist (the guard answers before gradio's router).
ROUTES = [
    ("GET", "/"),
    ("GET", "/config"),
    ("GET", "/gradio_api/info"),
    ("GET", "/gradio_api/queue/data?session_hash=x"),
    ("POST", "/gradio_api/queue/join"),
    ("POST", "/gradio_api/upload"),
    ("GET", "/gradio_api/file=/etc/passwd"),
    ("GET", "/theme.css"),
    ("GET", "/no/such/page"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, method: str = "GET", headers: dict | None = None, data: bytes | None = None):
    """(status, headers, body) of one request (no redirects followed, a 4xx is an answer too)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


@pytest.fixture(scope="module")
def page_root(tmp_path_factory) -> str:
    return os.path.realpath(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def page(page_root):
    """The real page (`build_app`, mounted behind the guard as `vlmtune webui` mounts it) served by uvicorn on a
    free port of 127.0.0.1 in this process, with TOKEN and the workspace root `page_root`; its base URL."""
    pytest.importorskip("gradio")
    import uvicorn

    from vlmtune.apps.webui import Access, web_app
    from vlmtune.apps.webui.app import CSS, build_app

    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workspace, "ROOT", page_root)
        app = web_app(build_app(), "127.0.0.1", port, Access(TOKEN, None), CSS)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(600):
            if server.started:
                break
            assert thread.is_alive(), "the server ended before it started"
            time.sleep(0.1)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def test_without_the_right_token_every_route_is_refused(page):
    for method, path in ROUTES:
        data = b"" if method == "POST" else None
        assert call(page + path, method, data=data)[0] == 401, path
        sep = "&" if "?" in path else "?"
        assert call(f"{page}{path}{sep}token=wrong", method, data=data)[0] == 401, path
        assert call(page + path, method, {"Cookie": f"vlmtune_webui_{page.rsplit(':', 1)[1]}=wrong"}, data)[0] == 401
        assert call(page + path, method, {"Authorization": "token wrong"}, data)[0] == 401, path
    status, _, body = call(page + "/")
    assert (
        body == "vlmtune web UI: not authorized: open the URL that `vlmtune webui` printed (it carries ?token=...)\n"
    )


def test_the_token_in_the_url_opens_the_page_and_its_cookie_carries_the_rest(page):
    status, headers, body = call(f"{page}/?token={TOKEN}")
    assert status == 200 and "<html" in body.lower()
    cookie = headers["Set-Cookie"]
    port = page.rsplit(":", 1)[1]
    assert cookie == f"vlmtune_webui_{port}={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
    assert call(f"{page}/config", headers={"Cookie": cookie.split(";")[0]})[0] == 200
    assert call(f"{page}/gradio_api/info", headers={"Authorization": f"token {TOKEN}"})[0] == 200


def test_the_pages_api_works_through_the_queue_with_the_token_and_refuses_files_outside_the_root(page, page_root):
    from gradio_client import Client

    client = Client(page + "/", headers={"Authorization": f"Bearer {TOKEN}"}, verbose=False)
    assert client.predict("tiny-qwen2-vl", api_name="/model_summary").startswith("**tiny-qwen2-vl**: family")
    refused = client.predict("tiny-qwen2-vl", "/etc/passwd", None, None, 2048, api_name="/validate_report")
    assert refused == (
        f"vlmtune validate: error: --data_path /etc/passwd is outside the web UI's workspace {page_root} "
        "(vlmtune webui --root)"
    )


def test_a_request_from_another_site_is_refused_even_with_the_cookie(page):
    cookie = {"Cookie": f"vlmtune_webui_{page.rsplit(':', 1)[1]}={TOKEN}"}
    own = page.removeprefix("http://")
    evil = "http://evil.example"
    assert call(page + "/", headers={**cookie, "Origin": f"http://{own}"})[0] == 200
    # A form post or an upload needs no CORS preflight: the server itself must refuse it.
    upload = b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.py"\r\n\r\nprint(1)\r\n--b--\r\n'
    form = {**cookie, "Content-Type": "multipart/form-data; boundary=b"}
    status, _, body = call(page + "/gradio_api/upload", "POST", {**form, "Origin": evil}, upload)
    assert (status, body) == (
        403,
        f"vlmtune web UI: refused: cross-site request refused: '{evil}' is not this page ({own})\n",
    )
    assert call(page + "/gradio_api/upload", "POST", {**form, "Referer": f"{evil}/x"}, upload)[0] == 403
    assert call(page + "/gradio_api/queue/join", "POST", {**cookie, "Origin": "null"}, b"{}")[0] == 403
    preflight = {"Origin": evil, "Access-Control-Request-Method": "POST"}
    assert call(page + "/gradio_api/queue/join", "OPTIONS", preflight)[0] == 403
    assert call(page + "/config", headers={**cookie, "Origin": evil})[0] == 403
    assert call(page + "/gradio_api/upload", "POST", {**form, "Origin": f"http://{own}"}, upload)[0] == 200


def test_a_name_pointed_at_this_machine_is_refused(page):
    """DNS rebinding: a page of evil.example whose name resolves to 127.0.0.1 sends Host: evil.example."""
    port = page.rsplit(":", 1)[1]
    status, _, body = call(f"{page}/?token={TOKEN}", headers={"Host": f"evil.example:{port}"})
    assert status == 403 and "is not this machine" in body


# --- The guard's other modes, on a one-route app ------------------------------------------------------------------


def guarded(token=TOKEN, password=None, loopback=True):
    """A one-route app (an HTTP page and a websocket) behind the guard, as a TestClient."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.testclient import TestClient

    from vlmtune.apps.webui.guard import Guard

    async def hello(websocket):
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    routes = [Route("/", lambda request: PlainTextResponse("page")), WebSocketRoute("/ws", hello)]
    guard = Middleware(Guard, token=token, password=password, port=7860, loopback=loopback)
    return TestClient(Starlette(routes=routes, middleware=[guard]), base_url="http://127.0.0.1:7860")


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_password_lets_a_browser_in_without_the_token():
    client = guarded(password=PASSWORD)
    refused = client.get("/", headers=basic("me", "wrong"))
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith('Basic realm="vlmtune webui"')
    assert client.get("/", headers=basic("anyone", PASSWORD)).text == "page"
    assert client.get("/", headers={"Authorization": f"token {TOKEN}"}).text == "page"
    assert guarded(token=None, password=PASSWORD).get("/").status_code == 401  # password only: still asked for


def test_websockets_need_the_token_too():
    from starlette.websockets import WebSocketDisconnect

    client, host = guarded(), {"host": "127.0.0.1:7860"}  # the test client's own is "testserver"
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/ws", headers=host) as socket_:
            socket_.receive_text()
    assert refused.value.code == 1008 and refused.value.reason.startswith("open the URL that `vlmtune webui` printed")
    with client.websocket_connect(f"/ws?token={TOKEN}", headers=host) as socket_:
        assert socket_.receive_text() == "hello"


def test_no_token_opens_the_page_on_loopback_but_still_checks_origin_and_host():
    client = guarded(token=None)
    assert client.get("/").text == "page"
    assert client.get("/", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/", headers={"Host": "evil.example:7860"}).status_code == 403
    # Beyond loopback (a token is required there) any Host is fine: the UI is reached by its address or name.
    assert guarded(loopback=False).get(f"/?token={TOKEN}", headers={"Host": "gpu-box:7860"}).text == "page"


# --- vlmtune webui: refusals at start, the printed URL ------------------------------------------------------------


@pytest.fixture
def no_secrets(monkeypatch):
    for name in ("VLMTUNE_WEBUI_TOKEN", "VLMTUNE_WEBUI_PASSWORD", "VLMTUNE_API_KEY", "VLLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def launches(monkeypatch, tmp_path, no_secrets):
    """What `vlmtune webui` would serve, recorded instead of served: [(app, host, port)]; the page is a small
    one, the folder the test's."""
    import gradio as gr
    import uvicorn

    from vlmtune.apps.webui import app as webui_app

    monkeypatch.chdir(tmp_path)  # main changes into --root: back afterwards
    monkeypatch.setattr(workspace, "ROOT", None)
    monkeypatch.setattr(webui_app, "build_app", lambda python: gr.Blocks())
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kwargs: served.append((app, host, port)))
    return served


def cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    from vlmtune.apps.cli import main

    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_beyond_loopback_without_a_secret_and_a_password_on_the_command_line_are_refused(launches, capsys):
    code, _, err = cli(capsys, ["webui", "--host", "0.0.0.0", "--no_token"])
    assert (code, err.count("\n")) == (2, 1) and err.startswith("vlmtune webui: error: --host 0.0.0.0 --no_token: ")
    code, _, err = cli(capsys, ["webui", "--auth", "me:secret"])
    assert (code, err.count("\n")) == (2, 1) and "--password_file FILE" in err and "VLMTUNE_WEBUI_PASSWORD" in err
    assert launches == []


def test_webui_prints_the_url_with_a_new_token_and_serves_it_behind_the_guard(launches, capsys, tmp_path):
    from starlette.testclient import TestClient

    tokens = []
    for _ in range(2):
        code, out, _ = cli(capsys, ["webui", "--port", "7861", "--root", str(tmp_path)])
        line = out.strip().splitlines()[-1]
        assert code == 0 and line.startswith("vlmtune web UI: http://127.0.0.1:7861/?token=")
        tokens.append(line.split("token=")[1].split()[0])
    assert tokens[0] != tokens[1] and min(map(len, tokens)) >= 40  # secrets.token_urlsafe(32): 43 characters
    app, host, port = launches[-1]
    assert (host, port, workspace.ROOT) == ("127.0.0.1", 7861, os.path.realpath(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:7861") as client:
        assert client.get("/config").status_code == 401
        assert client.get(f"/config?token={tokens[-1]}").status_code == 200


def test_webui_takes_its_token_and_password_from_the_environment_or_a_private_file(launches, capsys, monkeypatch):
    from vlmtune.apps.webui import Access, access, build_parser

    monkeypatch.setenv("VLMTUNE_WEBUI_TOKEN", TOKEN)
    monkeypatch.setenv("VLMTUNE_WEBUI_PASSWORD", PASSWORD)
    assert access(build_parser().parse_args(["--host", "0.0.0.0"])) == Access(TOKEN, PASSWORD)
    code, out, _ = cli(capsys, ["webui", "--port", "7862"])
    assert code == 0 and f"http://127.0.0.1:7862/?token={TOKEN} " in out
    secret = os.path.abspath("token")
    with open(secret, "w") as file:
        file.write("from-a-file-0123456789\n")
    os.chmod(secret, 0o644)
    code, _, err = cli(capsys, ["webui", "--token_file", secret])
    assert (code, err) == (
        2,
        f"vlmtune webui: error: --token_file {secret}: other users can read it; chmod 600 {secret}\n",
    )
    os.chmod(secret, 0o600)
    assert access(build_parser().parse_args(["--token_file", secret])).token == "from-a-file-0123456789"
    monkeypatch.setenv("VLMTUNE_WEBUI_TOKEN", "short; x")  # guessable, and it would break the cookie
    with pytest.raises(ArgumentError, match="must be 16 or more letters, digits, - _ . ~; make one: python -c"):
        access(build_parser().parse_args([]))
    monkeypatch.delenv("VLMTUNE_WEBUI_TOKEN")
    assert access(build_parser().parse_args(["--no_token"])) == Access(None, PASSWORD)


# --- Files confined to the workspace root ---------------------------------------------------------------------


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A workspace root with a data file and an output folder in it, a symlink inside that leaves it, and a
    folder outside it; the current folder is the root (as `vlmtune webui` makes it)."""
    inside, outside = tmp_path / "root", tmp_path / "outside"
    (inside / "out").mkdir(parents=True)
    outside.mkdir()
    (inside / "train.json").write_text("[]")
    (outside / "train.json").write_text("[]")
    (inside / "escape").symlink_to(outside)
    monkeypatch.chdir(inside)
    monkeypatch.setattr(workspace, "ROOT", str(inside))
    return inside


def outside_line(value: str, what: str, root) -> str:
    real = os.path.realpath(value)
    shown = value if real == os.path.abspath(value) else f"{value} (-> {real})"
    return f"{what} {shown} is outside the web UI's workspace {root} (vlmtune webui --root)"


def test_paths_are_confined_to_the_root_dotdot_and_symlinks_included(root):
    assert workspace.inside("train.json") == "train.json"
    assert workspace.inside(str(root / "out" / "new")) == str(root / "out" / "new")  # a folder to be made
    for path in ("../outside/train.json", str(root.parent / "outside"), "escape/train.json", "/etc/passwd"):
        with pytest.raises(ArgumentError) as error:
            workspace.inside(path, "--data_path")
        assert str(error.value) == outside_line(path, "--data_path", root)
    assert str(error.value).startswith("--data_path /etc/passwd is outside")
    with pytest.raises(ArgumentError, match=r"escape/train.json \(-> .*/outside/train.json\) is outside"):
        workspace.inside("escape/train.json", "--data_path")


def test_train_and_grpo_refuse_files_outside_the_root_before_anything_runs(root):
    from vlmtune.apps.webui.train_tab import GRPO, TRAIN, refresh, start, stop

    values, _ = forms.values_from_words({"model_id": "tiny-qwen2-vl", "data_path": "train.json"}, forms.ALL_FIELDS)
    for changes, extra, line in [
        ({"data_path": "../outside/train.json"}, "", outside_line("../outside/train.json", "--data_path", root)),
        ({"output_dir": "escape/run"}, "", outside_line("escape/run", "--output_dir", root)),
        ({"output_dir": "out"}, "--image_folder /etc", outside_line("/etc", "--image_folder", root)),
    ]:
        message = start(TRAIN, False, *({**values, **changes}[name] for name in forms.ALL_FIELDS), extra)
        assert message == f"**Not started:** vlmtune train: error: {line}"
    assert not (root / "out" / "webui_run.json").exists() and not (root.parent / "outside" / "run").exists()
    grpo, _ = forms.values_from_words(
        {"model_id": "tiny-qwen2-vl", "data_path": "train.json"}, forms.GRPO_FIELDS, "grpo"
    )
    plugin = str(root.parent / "outside" / "rewards.py")
    (root.parent / "outside" / "rewards.py").write_text("def mine(prompts, completions, **kw):\n    return []\n")
    message = start(GRPO, False, *(grpo[name] for name in forms.GRPO_FIELDS), f"--reward_plugin {plugin}")
    assert message.endswith(outside_line(plugin, "--reward_plugin", root))
    refused = html.escape(outside_line("../outside", "--output_dir", root))
    assert refresh("../outside")[0] == f'<span id="run-state" data-state="refused">{refused}</span>'
    assert stop("escape") == f"**Not stopped:** {outside_line('escape', '--output_dir', root)}"


def test_data_model_chat_merge_compose_and_serve_refuse_files_outside_the_root(root):
    from vlmtune.apps.webui.app import compose_model, merge, output_model_id, preview_html, validate_report
    from vlmtune.apps.webui.chat_tab import load
    from vlmtune.apps.webui.serve_tab import export_for_serving, start_server, stop_server

    outside = str(root.parent / "outside")
    data = f"{outside}/train.json"
    assert validate_report("tiny-qwen2-vl", data, None, None, 2048) == (
        f"vlmtune validate: error: {outside_line(data, '--data_path', root)}"
    )
    assert validate_report("tiny-qwen2-vl", "train.json", None, "escape", 2048).endswith(
        outside_line("escape", "--image_folder", root)
    )
    assert html.escape(outside_line(data, "--data_path", root)) in preview_html("tiny-qwen2-vl", data, "", 2048, 1)
    assert output_model_id(outside) == (None, outside_line(outside, "--model_local_path", root))
    assert load(outside, "cpu") == f"**Not loaded:** {outside_line(outside, 'folder', root)}"
    assert load("escape", "cpu") == f"**Not loaded:** {outside_line('escape', 'folder', root)}"
    assert merge(outside, "merged", "auto") == f"vlmtune merge: error: {outside_line(outside, 'folder', root)}"
    assert merge("out", "escape/merged", "auto").endswith(outside_line("escape/merged", "folder", root))
    values, _ = forms.values_from_words({}, forms.COMPOSE_FIELDS, "compose")
    values.update(vision="tiny-siglip", llm=outside, output_dir="made")
    log, _ = compose_model(*(values[name] for name in forms.COMPOSE_FIELDS))
    assert log == f"vlmtune compose: error: {outside_line(outside, '--llm', root)}"
    values.update(llm="tiny-qwen3", output_dir="../made")
    assert compose_model(*(values[name] for name in forms.COMPOSE_FIELDS))[0].endswith(
        outside_line("../made", "--output_dir", root)
    )
    assert not (root / "made").exists() and not (root.parent / "made").exists()
    assert export_for_serving("out", outside + "/export")[0] == (
        f"vlmtune export: error: {outside_line(outside + '/export', 'folder', root)}"
    )
    assert stop_server(outside) == f"**Not stopped:** {outside_line(outside, 'folder', root)}"
    served = root / "served"
    served.mkdir()
    (served / "config.json").write_text("{}")
    (served / "vlmtune_args.yaml").write_text("ModelArguments:\n  model_id: tiny-qwen2-vl\n")
    key = root.parent / "outside" / "key"
    key.write_text("k\n")
    key.chmod(0o600)
    serve_values, _ = forms.values_from_words({"output": str(served)}, forms.SERVE_FIELDS, "serve")
    serve_values["api_key_file"] = str(key)
    message = start_server(*(serve_values[name] for name in forms.SERVE_FIELDS))
    assert message == f"**Not started:** vlmtune serve: error: {outside_line(str(key), '--api_key_file', root)}"
    assert not (served / "webui_serve").exists()


def test_uploads_land_under_the_root(root, tmp_path):
    from vlmtune.apps.webui.app import uploaded_data

    (tmp_path / "cache").mkdir()  # gradio's upload cache, outside the root
    (tmp_path / "cache" / "train.json").write_text("[]")
    path = uploaded_data([str(tmp_path / "cache" / "train.json")])
    assert os.path.commonpath([path, str(root / "webui_uploads")]) == str(root / "webui_uploads")
    assert json.loads(open(path).read()) == []


# --- vlmtune serve: an API key beyond loopback, never on the command line -----------------------------------------


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder `vlmtune serve` takes (a full model's config and the run's model id; vLLM is not started), in
    the workspace root; vLLM's in-process settings that serve sets are undone afterwards."""
    monkeypatch.setattr(workspace, "ROOT", str(tmp_path))
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    monkeypatch.setenv("VLLM_HOST_IP", "127.0.0.1")
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "vlmtune_args.yaml").write_text("ModelArguments:\n  model_id: tiny-qwen2-vl\n")
    return folder


def test_serve_beyond_loopback_without_a_key_is_refused_in_the_cli_and_the_tab(served, no_secrets, capsys):
    from vlmtune.apps.webui.serve_tab import start_server

    code, _, err = cli(capsys, ["serve", str(served), "--host", "0.0.0.0"])
    assert (code, err.count("\n")) == (2, 1)
    assert err.startswith("vlmtune serve: error: --host 0.0.0.0 without an API key: ") and "--api_key_file" in err
    values, _ = forms.values_from_words({"output": str(served), "host": "0.0.0.0"}, forms.SERVE_FIELDS, "serve")
    assert start_server(*(values[name] for name in forms.SERVE_FIELDS)) == f"**Not started:** {err.strip()}"
    assert not (served / "webui_serve").exists()


def test_serve_hands_the_key_to_vllm_in_its_environment_never_on_its_command_line(
    served, no_secrets, capsys, monkeypatch, tmp_path
):
    from vlmtune.serving import serve

    key = tmp_path / "key"
    key.write_text("sk-the-key\n")
    key.chmod(0o600)
    started = []
    monkeypatch.setattr(serve, "import_vllm", lambda: None)  # vLLM is not needed to build its command line
    monkeypatch.setattr(os, "execve", lambda path, argv, env: started.append((argv, env)))
    code, out, _ = cli(capsys, ["serve", str(served), "--host", "0.0.0.0", "--api_key_file", str(key)])
    argv, env = started[-1]
    assert code in (0, None) and out.endswith("as 'vlmtune', requests need the API key\n")
    assert env["VLLM_API_KEY"] == "sk-the-key" and not any("sk-the-key" in word for word in argv)
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"] and "--api-key" not in argv
    monkeypatch.setenv("VLMTUNE_API_KEY", "sk-from-env")
    cli(capsys, ["serve", str(served), "--host", "0.0.0.0"])
    assert started[-1][1]["VLLM_API_KEY"] == "sk-from-env" and "sk-from-env" not in " ".join(started[-1][0])
    key.chmod(0o644)
    code, _, err = cli(capsys, ["serve", str(served), "--api_key_file", str(key)])
    assert (code, err) == (
        2,
        f"vlmtune serve: error: --api_key_file {key}: other users can read it; chmod 600 {key}\n",
    )


@pytest.mark.vllm
def test_a_served_model_with_a_key_refuses_a_request_without_it(tmp_path, tmp_path_factory, no_secrets, request):
    """make test-vllm: the Serve tab starts vLLM with a key; /v1 answers only requests that carry it."""
    from tests.test_webui import serve_values, wait_for_server
    from vlmtune.apps.webui import runs
    from vlmtune.apps.webui.serve_tab import server_folder, start_server
    from vlmtune.serving.export import export_for_vllm
    from vlmtune.serving.vllm_backend import VLLM_VENV

    python = f"{os.environ.get('VLLM_VENV', VLLM_VENV)}/bin/python"
    if not os.path.isfile(python):
        pytest.skip(f"no {python} (scripts/setup_vllm_venv.sh)")
    served, _ = export_for_vllm(request.getfixturevalue("default_lora"), tmp_path / "served")
    key = tmp_path / "key"
    key.write_text("sk-the-key\n")
    key.chmod(0o600)
    port = free_port()
    values = serve_values(served, port=port, api_key_file=str(key))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workspace, "ROOT", str(tmp_path_factory.getbasetemp()))
        assert start_server(*values, python=python).startswith("Started `vlmtune serve ")
        try:
            state, url, tail = wait_for_server(served, seconds=600)  # the tab polls /v1/models with the key
            assert url == f"http://127.0.0.1:{port}/v1", f"{state}\n{tail}"
            assert call(f"{url}/models")[0] == 401
            assert call(f"{url}/models", headers={"Authorization": "Bearer wrong"})[0] == 401
            assert call(f"{url}/models", headers={"Authorization": "Bearer sk-the-key"})[0] == 200
        finally:
            runs.stop_run(server_folder(str(served)))
