"""What the GRPO rollout server and its client exchange over HTTP (vlmtune.grpo.rollout_server, .rollout_client).

    body = encode_requests(requests)        # vLLM prompt dicts (text + PIL media) -> JSON-able dicts
    requests = decode_requests(body)        # and back, pixel for pixel (PNG)
    data = encode_weights(weights)          # name -> tensor -> safetensors bytes (the weight push)
    weights = decode_weights(data)

The weights travel as one safetensors file in the request body: on CPU there is no NCCL, and one format for every
device keeps the trainer's code path one (vLLM's NCCL weight-transfer engine is the faster GPU path; docs/grpo.md).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

KEY_HEADER = "Authorization"
PROTOCOL = 1


def encode_image(image) -> str:
    """A PIL image or an HxWx3 uint8 array (a video frame) as base64 PNG (lossless: the server sees these pixels)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_image(text: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    image.load()
    return image


def media_lists(data: dict) -> tuple[list, list]:
    """(images, videos as frame lists) of a vLLM `multi_modal_data` dict (one item is given bare, several as a
    list: `vlmtune.serving.vllm_backend.multi_modal_data`)."""
    image, video = data.get("image"), data.get("video")
    images = [] if image is None else image if isinstance(image, list) else [image]
    videos = [] if video is None else video if isinstance(video[0], list) else [video]
    return images, videos


def encode_requests(requests: list[dict]) -> list[dict]:
    encoded = []
    for request in requests:
        images, videos = media_lists(request.get("multi_modal_data", {}))
        encoded.append(
            {
                "prompt": request["prompt"],
                "images": [encode_image(image) for image in images],
                "videos": [[encode_image(frame) for frame in frames] for frames in videos],
            }
        )
    return encoded


def decode_requests(encoded: list[dict]) -> list[dict]:
    from vlmtune.serving.vllm_backend import multi_modal_data

    requests = []
    for item in encoded:
        images = [decode_image(text) for text in item["images"]]
        videos = [[decode_image(text) for text in frames] for frames in item["videos"]]
        data = multi_modal_data(images, videos)
        requests.append({"prompt": item["prompt"], "multi_modal_data": data} if data else {"prompt": item["prompt"]})
    return requests


def encode_weights(weights: dict[str, torch.Tensor]) -> bytes:
    """safetensors bytes of the weights; a tensor that shares storage with another (tied embeddings) is copied,
    since safetensors stores each storage once."""
    from safetensors.torch import save

    seen: set[int] = set()
    plain = {}
    for name, tensor in weights.items():
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        plain[name] = tensor.clone() if pointer in seen else tensor
        seen.add(pointer)
    return save(plain)


def decode_weights(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(data)
