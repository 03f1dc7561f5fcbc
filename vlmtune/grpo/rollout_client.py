"""The trainer's side of `vlmtune rollout-server` (`vlmtune grpo --use_vllm --vllm_mode server`).

    client = RolloutClient.connect("127.0.0.1", 8010, timeout=240, entry=entry)   # waits for the server to start
    client.load_weights(policy_weights(model))      # after each optimizer step (vllm_rollouts.push_weights)
    rollouts = generate_completions_vllm(client, collator, prompts, settings, seed)   # as with colocate's engine

The same two calls as `vlmtune.grpo.vllm_rollouts.ColocatedEngine`, so the trainer has one code path. Only the
standard library and safetensors: the training process needs no vLLM. Every request has a timeout; a server that
does not answer, died, refuses the key or serves another model raises `ServiceError` with one line saying what to
do (the CLI prints it), never a hang.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

from vlmtune.errors import ServiceError
from vlmtune.grpo import wire
from vlmtune.grpo.rollout_server import KEY_VARIABLE, default_key_file
from vlmtune.serving.serve import LOOPBACK, read_secret
from vlmtune.supported_models import ModelEntry

# Between tries while the server starts (vLLM on CPU takes ~10 s in its own process, a GPU model minutes).
RETRY_SECONDS = 1.0


def client_key(host: str, port: int, api_key_file: str | None) -> str:
    """The key to send: --vllm_server_api_key_file's, else $VLMTUNE_API_KEY, else (a server on this machine) the
    one the server wrote for itself; ServiceError naming the options otherwise."""
    if api_key_file:
        return read_secret(api_key_file, "--vllm_server_api_key_file")
    if os.environ.get(KEY_VARIABLE):
        return os.environ[KEY_VARIABLE]
    path = default_key_file(port)
    if host in LOOPBACK and path.is_file():
        return read_secret(str(path), "the rollout server's key file")
    raise ServiceError(
        f"no key for the rollout server at {host}:{port}: give --vllm_server_api_key_file (the server's "
        f"--api_key_file) or ${KEY_VARIABLE}; a server on this machine writes {path}"
    )


class RolloutClient:
    """HTTP calls to one rollout server, each within `timeout` seconds."""

    def __init__(self, host: str, port: int, key: str, timeout: float):
        self.host, self.port, self.key, self.timeout = host, port, key, timeout
        self.address = f"{host}:{port}"

    @classmethod
    def connect(
        cls, host: str, port: int, timeout: float, entry: ModelEntry, api_key_file: str | None = None
    ) -> RolloutClient:
        """Wait up to `timeout` s for the server to answer, then check that it serves `entry`'s model."""
        client = cls(host, port, client_key(host, port, api_key_file), timeout)
        info = client.wait_for_server()
        if info.get("protocol") != wire.PROTOCOL:
            raise ServiceError(f"{client.address} is not a vlmtune rollout server of this version ({info})")
        if info["family_id"] != entry.family_id or (entry.is_tiny and info["model_id"] != entry.model_id):
            raise ServiceError(
                f"the rollout server at {client.address} serves {info['model']} ({info['family_id']}), this run "
                f"trains {entry.model_id} ({entry.family_id}): start `vlmtune rollout-server {entry.model_id}` "
                "(or the run's --model_local_path)"
            )
        return client

    def wait_for_server(self) -> dict:
        """/info, retried while nothing listens yet, for at most `timeout` s."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self.call("GET", "/info", timeout=max(1.0, deadline - time.monotonic()))
            except ServiceError as error:
                if not isinstance(error.__cause__, ConnectionRefusedError) or time.monotonic() >= deadline:
                    if isinstance(error.__cause__, ConnectionRefusedError):
                        raise ServiceError(
                            f"no rollout server answered at {self.address} within {self.timeout:g} s "
                            f"(--vllm_server_timeout): start one with `vlmtune rollout-server MODEL --port "
                            f"{self.port}`, or give its --vllm_server_host / --vllm_server_port"
                        ) from None
                    raise
            time.sleep(RETRY_SECONDS)

    def call(self, method: str, path: str, body: bytes | None = None, timeout: float | None = None, kind=None):
        """One request; its JSON answer, or ServiceError (its cause: the network error) in one line."""
        headers = {wire.KEY_HEADER: f"Bearer {self.key}", "Content-Type": kind or "application/json"}
        request = urllib.request.Request(f"http://{self.address}{path}", body, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except ValueError:
                pass
            if error.code == 401:
                detail += " (--vllm_server_api_key_file or $VLMTUNE_API_KEY must hold the server's key)"
            message = f"the rollout server at {self.address} answered {path} with {error.code}: {detail}"
            raise ServiceError(message) from None
        except (urllib.error.URLError, OSError) as error:  # TimeoutError and ConnectionError are OSErrors
            cause = getattr(error, "reason", error)
            if isinstance(cause, TimeoutError):
                raise ServiceError(
                    f"the rollout server at {self.address} did not answer {path} within "
                    f"{timeout or self.timeout:g} s (--vllm_server_timeout): check that it is alive"
                ) from cause
            raise ServiceError(
                f"the rollout server at {self.address} is unreachable ({cause}): it stopped or never started; "
                "restart it and continue with --resume_from_checkpoint auto"
            ) from (cause if isinstance(cause, BaseException) else error)

    def sample(self, requests: list[dict], options: dict, add_bos: bool) -> list[list[tuple[list, list]]]:
        body = {"requests": wire.encode_requests(requests), "options": options, "add_bos": add_bos}
        answer = self.call("POST", "/generate", json.dumps(body).encode())
        return [[(ids, logps) for ids, logps in per_prompt] for per_prompt in answer["completions"]]

    def load_weights(self, weights) -> None:
        self.call("POST", "/weights", wire.encode_weights(weights), kind="application/octet-stream")

    def __repr__(self) -> str:
        return f"RolloutClient({self.address})"
