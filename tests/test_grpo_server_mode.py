"""GRPO's server mode and multi-process launch without vLLM or a GPU (fast): the rollout server's HTTP front (its
key, its refusal of another model's weights), the client's timeouts and keys, what travels on the wire, the
ZeRO-3 gather, the accelerate configs. The server with vLLM behind it: tests/test_grpo_rollout_server.py."""

from __future__ import annotations

import os
import socket
import stat
import sys
import threading
import time
import types
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.test_grpo import PLUGIN, grpo_argv
from vlmtune.core.distributed import deepspeed_zero_stage, gathered_parameters
from vlmtune.errors import ArgumentError, ServiceError
from vlmtune.grpo import wire
from vlmtune.grpo.rollout_client import RolloutClient, client_key
from vlmtune.grpo.rollout_server import RolloutService, handler_class, server_key

REPO = Path(__file__).resolve().parents[1]
INFO = {"protocol": wire.PROTOCOL, "model": "tiny-qwen2-vl", "model_id": "tiny-qwen2-vl", "family_id": "qwen2-vl"}


@pytest.fixture
def front():
    """The rollout server's HTTP front on 127.0.0.1 with no engine behind it (requests that reach the engine
    fail with 500): (port, key)."""
    service = RolloutService(None, "the-key", INFO, {"model.embed.weight": [4, 2]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class(service))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], "the-key"
    server.shutdown()
    server.server_close()


def test_every_request_needs_the_key(front):
    port, key = front
    for wrong in ("", "not-the-key", key + "x"):
        with pytest.raises(ServiceError, match="answered /health with 401: missing or wrong key"):
            RolloutClient("127.0.0.1", port, wrong, 5).call("GET", "/health")
    with pytest.raises(ServiceError, match="answered /generate with 401"):  # refused before the body is read
        RolloutClient("127.0.0.1", port, "", 5).call("POST", "/generate", b"{}")
    assert RolloutClient("127.0.0.1", port, key, 5).call("GET", "/health") == {"ok": True}


def test_the_client_refuses_a_server_of_another_model(front, monkeypatch):
    from vlmtune.supported_models import get_model

    port, key = front
    monkeypatch.setenv("VLMTUNE_API_KEY", key)
    assert RolloutClient.connect("127.0.0.1", port, 5, get_model("tiny-qwen2-vl")).key == key
    with pytest.raises(ServiceError) as error:
        RolloutClient.connect("127.0.0.1", port, 5, get_model("tiny-llava-1.5"))
    assert "serves tiny-qwen2-vl (qwen2-vl), this run trains tiny-llava-1.5 (llava-1.5)" in str(error.value)


def test_weights_of_another_shape_are_refused_before_the_engine_sees_them(front):
    port, key = front
    client = RolloutClient("127.0.0.1", port, key, 5)
    with pytest.raises(ServiceError, match=r"409: pushed model.embed.weight has shape \[3, 2\], the served model's"):
        client.load_weights({"model.embed.weight": torch.zeros(3, 2)})
    with pytest.raises(ServiceError, match="409: none of the 1 pushed weights is a weight of the served model"):
        client.load_weights({"other.weight": torch.zeros(4, 2)})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_no_server_ends_within_the_timeout_in_one_line(monkeypatch, tmp_path):
    from vlmtune.supported_models import get_model

    monkeypatch.setenv("VLMTUNE_API_KEY", "k")
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ServiceError) as error:
        RolloutClient.connect("127.0.0.1", port, 2, get_model("tiny-qwen2-vl"))
    assert 2 <= time.monotonic() - started < 5
    assert str(error.value).startswith(f"no rollout server answered at 127.0.0.1:{port} within 2 s")
    assert "\n" not in str(error.value)


def test_a_server_that_does_not_answer_in_time_ends_in_one_line():
    """A socket that accepts but never answers (a hung server): the request's own timeout ends the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = RolloutClient("127.0.0.1", silent.getsockname()[1], "k", 1)
        started = time.monotonic()
        with pytest.raises(ServiceError, match="did not answer /generate within 1 s"):
            client.sample([{"prompt": "hi"}], {}, True)
        assert time.monotonic() - started < 3


def test_a_server_makes_its_own_key_and_a_local_trainer_finds_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("VLMTUNE_API_KEY", raising=False)
    with pytest.raises(ServiceError, match="no key for the rollout server at 127.0.0.1:8123"):
        client_key("127.0.0.1", 8123, None)
    key, source = server_key(None, 8123)
    assert len(key) >= 40 and Path(source) == tmp_path / ".cache/vlmtune/rollout-server/8123.key"
    assert stat.S_IMODE(os.stat(source).st_mode) == 0o600
    assert client_key("127.0.0.1", 8123, None) == key
    with pytest.raises(ServiceError, match="no key"):  # another machine's trainer must be given the key
        client_key("10.0.0.1", 8123, None)
    monkeypatch.setenv("VLMTUNE_API_KEY", "from-env")
    assert server_key(None, 8123) == ("from-env", "$VLMTUNE_API_KEY")
    assert client_key("10.0.0.1", 8123, None) == "from-env"


def test_requests_and_weights_travel_unchanged():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8))
    frames = [Image.new("RGB", (4, 4), (i, 0, 0)) for i in range(3)]
    requests = [
        {"prompt": "a", "multi_modal_data": {"image": image}},
        {"prompt": "b", "multi_modal_data": {"image": [image, image], "video": frames}},
        {"prompt": "c"},
    ]
    decoded = wire.decode_requests(wire.encode_requests(requests))
    assert [r["prompt"] for r in decoded] == ["a", "b", "c"] and "multi_modal_data" not in decoded[2]
    assert np.array_equal(np.asarray(decoded[0]["multi_modal_data"]["image"]), np.asarray(image))
    assert len(decoded[1]["multi_modal_data"]["image"]) == 2
    assert [np.asarray(f).tolist() for f in decoded[1]["multi_modal_data"]["video"]] == [
        np.asarray(f).tolist() for f in frames
    ]
    tied = torch.randn(5, 3)
    weights = {"embed.weight": tied, "lm_head.weight": tied, "norm.weight": torch.ones(3, dtype=torch.bfloat16)}
    back = wire.decode_weights(wire.encode_weights(weights))  # tied tensors share storage: copied, not refused
    assert set(back) == set(weights) and all(torch.equal(back[n], weights[n]) for n in weights)
    assert back["norm.weight"].dtype == torch.bfloat16


def test_zero3_gathers_every_parameter_and_nothing_else_does(monkeypatch):
    calls = []

    class GatheredParameters:
        def __init__(self, params, modifier_rank):
            calls.append((params, modifier_rank))

        def __enter__(self):
            calls.append("entered")

        def __exit__(self, *exc):
            calls.append("left")

    model = torch.nn.Linear(2, 2)
    fake = types.SimpleNamespace(zero=types.SimpleNamespace(GatheredParameters=GatheredParameters))
    monkeypatch.setitem(sys.modules, "deepspeed", fake)
    for deepspeed in (None, {"zero_optimization": {"stage": 2}}):
        with gathered_parameters(model, types.SimpleNamespace(deepspeed=deepspeed)):
            pass
    assert calls == []
    with gathered_parameters(model, types.SimpleNamespace(deepspeed={"zero_optimization": {"stage": 3}})):
        assert calls[-1] == "entered"
    assert calls[0][0] == list(model.parameters()) and calls[0][1] is None and calls[-1] == "left"


def test_zero3_from_accelerate_launch_is_seen(monkeypatch):
    args = types.SimpleNamespace(deepspeed=None)
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert deepspeed_zero_stage(args) is None
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(REPO / "configs/deepspeed_zero3.json"))
    assert deepspeed_zero_stage(args) == 3
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert deepspeed_zero_stage(args) == 2


def test_the_accelerate_configs_parse_and_name_files_that_exist():
    from accelerate.commands.config.config_args import ClusterConfig

    paths = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))
    assert {p.name for p in paths} >= {"1x8_ddp.yaml", "1x8_zero3.yaml", "2x8_zero3.yaml", "1x7_server.yaml"}
    docs = (REPO / "docs" / "grpo.md").read_text()
    for path in paths:
        config = ClusterConfig.from_yaml_file(str(path))
        raw = yaml.safe_load(path.read_text())
        assert f"configs/accelerate/{path.name}" in docs, f"docs/grpo.md does not show {path.name}"
        assert config.num_processes % config.num_machines == 0
        per_machine = config.num_processes // config.num_machines
        if raw.get("gpu_ids", "all") != "all":
            gpus = str(raw["gpu_ids"]).split(",")
            assert len(gpus) == per_machine, path.name
        if "server" in path.name:  # GPU 0 is the rollout server's
            assert "0" not in str(raw["gpu_ids"]).split(",") and per_machine == 7
        if config.distributed_type.value == "DEEPSPEED":
            ds = REPO / config.deepspeed_config["deepspeed_config_file"]
            assert ds.is_file(), f"{path.name} names {ds}, which does not exist"
            assert "zero3" in path.name and '"stage": 3' in ds.read_text()


def test_server_mode_needs_no_vllm_here_and_takes_several_processes(tmp_path):
    from vlmtune.grpo.arguments import parse_grpo_args
    from vlmtune.grpo.run import check_vllm
    from vlmtune.supported_models import get_model

    (tmp_path / "rewards.py").write_text(PLUGIN)
    model_args, _, training_args, grpo_args = parse_grpo_args(
        grpo_argv(tmp_path, "--use_vllm", "true", "--vllm_mode", "server")
    )
    several = types.SimpleNamespace(world_size=2)
    check_vllm(get_model("tiny-qwen2-vl"), model_args, several, grpo_args.vllm_mode)  # no vLLM needed here
    with pytest.raises(ArgumentError, match="vlmtune rollout-server MODEL"):
        check_vllm(get_model("tiny-qwen2-vl"), model_args, several, "colocate")  # or: vLLM is not importable


def test_a_bad_vllm_mode_is_one_line(tmp_path, capsys):
    from vlmtune.apps import cli

    (tmp_path / "rewards.py").write_text(PLUGIN)
    assert cli.main(["grpo", *grpo_argv(tmp_path, "--use_vllm", "true", "--vllm_mode", "remote")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "vlmtune grpo: error: --vllm_mode must be one of colocate, server, got 'remote'"
    )


def test_rollout_server_help_and_its_refusals(capsys):
    from vlmtune.apps import cli

    with pytest.raises(SystemExit):
        cli.main(["rollout-server", "--help"])
    assert "Closed by default" in capsys.readouterr().out
    assert cli.main(["rollout-server", "tiny-llama-3.2-vision"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "vlmtune rollout-server: error: vLLM does not implement llama-3.2-vision (docs/serving.md)"
    )


def test_the_weight_push_gathers_on_every_process_and_sends_from_the_first(monkeypatch):
    """GRPOTrainer.push_weights under ZeRO-3 (a stand-in `deepspeed`; DeepSpeed is not installed here): every
    process enters the gather (a collective), only the first sends the weights, all meet at the barrier."""
    from vlmtune.core.outputs import load_for_inference
    from vlmtune.grpo.trainer import GRPOTrainer

    events = []

    class GatheredParameters:
        def __init__(self, params, modifier_rank):
            events.append(("gather", len(params), modifier_rank))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            events.append("released")

    model, _, _ = load_for_inference("tiny-qwen2-vl")  # before the stand-in: loading asks whether DeepSpeed exists
    stand_in = types.SimpleNamespace(zero=types.SimpleNamespace(GatheredParameters=GatheredParameters))
    monkeypatch.setitem(sys.modules, "deepspeed", stand_in)

    class Engine:
        def load_weights(self, weights):
            events.append(("push", len(weights)))

    for main in (True, False):
        events.clear()
        accelerator = types.SimpleNamespace(
            unwrap_model=lambda m: m, is_main_process=main, wait_for_everyone=lambda: events.append("barrier")
        )
        trainer = types.SimpleNamespace(
            model=model,
            llm=Engine(),
            accelerator=accelerator,
            args=types.SimpleNamespace(deepspeed={"zero_optimization": {"stage": 3}}),
            state=types.SimpleNamespace(global_step=4),
            pushed_step=None,
        )
        GRPOTrainer.push_weights(trainer)
        parameters = len(list(model.parameters()))
        pushed = [("push", len(model.state_dict()))] if main else []
        assert events == [("gather", parameters, None), *pushed, "released", "barrier"]
        assert trainer.pushed_step == 4
