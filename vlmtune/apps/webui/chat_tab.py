"""The Chat tab: load an output (adapter, merged or full model, or a registered id) and talk to it.

Loading and generation are `vlmtune chat`'s: `vlmtune.core.outputs.load_for_inference` and
`vlmtune.core.inference.generate_replies`; a question is checked against what the family accepts, as chat does.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from vlmtune.datasets import ASSISTANT, IMAGE_PLACEHOLDER, USER, VIDEO_PLACEHOLDER, Sample, Turn

_loaded: dict = {}  # the one model this server holds: {"source", "model", "collator", "family"}
_lock = threading.Lock()  # one generation at a time (a model is not safe to share across threads)


def load(source: str, device: str) -> str:
    from vlmtune.apps.webui import workspace
    from vlmtune.core.outputs import load_for_inference
    from vlmtune.errors import ArgumentError

    if not source:
        return "Enter an output folder or a registered model id."
    try:
        if workspace.looks_like_path(source):  # a folder, not a registered id: one under the workspace root
            workspace.inside(source, "folder")
    except ArgumentError as error:
        return f"**Not loaded:** {error}"
    with _lock:
        try:
            model, processor, entry = load_for_inference(source)
        except Exception as error:  # the one-line errors of vlmtune chat (ArgumentError, unknown id ...)
            _loaded.clear()
            return f"**Not loaded:** {error}"
        model.to(device or "cpu")
        _loaded.update(source=source, model=model, collator=entry.family.collator(processor, entry.family.reply_end))
        _loaded["family"] = entry.family
    kind = "adapter" if (Path(source) / "adapter_config.json").is_file() else "model"
    return f"Loaded {kind} `{source}` ({entry.model_id}, family {entry.family_id}) on {device or 'cpu'}."


def user_turn(prompt: str, image: str | None, video: str | None) -> dict:
    """A question as the page keeps it: {"role", "text" (media placeholders in front), "images", "videos"}."""
    media = ([IMAGE_PLACEHOLDER] if image else []) + ([VIDEO_PLACEHOLDER] if video else [])
    text = "".join(f"{placeholder}\n" for placeholder in media) + prompt
    return {"role": USER, "text": text, "images": [image] if image else [], "videos": [video] if video else []}


def conversation_sample(history: list[dict]) -> Sample:
    """The conversation so far (ending with the new question) and an empty reply slot, as one sample."""
    return Sample(
        [Turn(turn["role"], turn["text"]) for turn in history] + [Turn(ASSISTANT, "")],
        images=[path for turn in history for path in turn["images"]],
        videos=[path for turn in history for path in turn["videos"]],
        source="web UI",
    )


def reply(prompt, image, video, decoding, temperature, top_p, max_new_tokens, chat, turns):
    """Answer the question; the chat shows it, or the one-line reason it cannot be asked."""
    from vlmtune.core.inference import generate_replies
    from vlmtune.data.checks import check_family
    from vlmtune.errors import BadSample, DataError

    if not _loaded:
        return chat + [{"role": "assistant", "content": "Load a model first."}], turns, prompt
    history = [*turns, user_turn(prompt, image, video)]
    sample = conversation_sample(history)
    try:
        check_family(sample, _loaded["family"])
    except (DataError, BadSample) as error:
        return chat + [{"role": "assistant", "content": f"error: {error}"}], turns, prompt
    sampling = {"temperature": temperature, "top_p": top_p} if decoding == "sampled" else None
    with _lock:
        answer = generate_replies(
            _loaded["model"], _loaded["collator"], [sample], int(max_new_tokens), 1, sampling=sampling
        )[0]
    media = [f"[{kind}: {Path(path).name}]" for kind, path in (("image", image), ("video", video)) if path]
    shown = " ".join([*media, prompt])
    said = answer or "(an empty reply: the model ended its turn at once)"
    chat = chat + [{"role": "user", "content": shown}, {"role": "assistant", "content": said}]
    turns = [*history, {"role": ASSISTANT, "text": answer, "images": [], "videos": []}]
    return chat, turns, ""


def chat_tab(fields: dict) -> None:
    with gr.Row():
        source = gr.Textbox(
            label="output folder or model id",
            info="A vlmtune train output (LoRA adapter or full model), a merged folder, or a registered id.",
            scale=3,
        )
        device = gr.Textbox(value="cpu", label="device", info="cpu, cuda, cuda:1, mps ...", scale=1)
        load_button = gr.Button("Load", scale=1, elem_id="load")
    loaded = gr.Markdown(elem_id="loaded")
    chat = gr.Chatbot(label="chat", height=300, elem_id="chat")
    turns = gr.State([])
    with gr.Row():
        image = gr.Image(type="filepath", label="image", height=160, elem_id="chat-image")
        video = gr.Video(label="video", height=160)
        with gr.Column():
            decoding = gr.Radio(["greedy", "sampled"], value="greedy", label="decoding")
            temperature = gr.Slider(0.05, 2.0, value=0.7, label="temperature (sampled)")
            top_p = gr.Slider(0.05, 1.0, value=0.9, label="top_p (sampled)")
            max_new_tokens = gr.Number(value=64, precision=0, label="max_new_tokens", minimum=1)
    prompt = gr.Textbox(label="question", placeholder="Which digit is shown in the image?", elem_id="question")
    with gr.Row():
        send = gr.Button("Send", variant="primary", elem_id="send")
        clear = gr.Button("New conversation")

    fields["output_dir"].change(lambda folder: folder, fields["output_dir"], source)
    load_button.click(load, [source, device], loaded)
    inputs = [prompt, image, video, decoding, temperature, top_p, max_new_tokens, chat, turns]
    send.click(reply, inputs, [chat, turns, prompt])
    prompt.submit(reply, inputs, [chat, turns, prompt])
    clear.click(lambda: ([], []), None, [chat, turns])
