"""The Gradio layout: Generate and Edit tabs over one `Engine`, plus two plain API endpoints.

Every event that touches the model shares one concurrency group of size 1, so requests queue instead of
overlapping. User mistakes become `gr.Error` / `gr.Warning` toasts with the one-line `DreamLiteError`
message; unexpected failures are logged here and shown as one line too, never as a traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
import uuid

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from ..errors import DreamLiteError  # noqa: E402
from .engine import MAX_IMAGES, Engine, fit_source  # noqa: E402

log = logging.getLogger("dreamlite.app")

MODEL_GROUP = "model"  # concurrency id shared by every event that uses the pipeline

GENERATE_EXAMPLES = [
    "a photo of a red circle",
    "a photo of two stars",
    "a photo of a blue square and a yellow triangle",
    "a photo of a star left of a circle",
    "a photo of three green crosses",
]
# (scene objects, instruction); scenes are rendered at the model's resolution when the app starts.
EDIT_EXAMPLES = [
    ("two", "make the red circle green"),
    ("two", "remove the blue square"),
    ("two", "change the background to sky"),
    ("one", "add a yellow star"),
]


def _user_errors(fn):
    """DreamLiteError -> gr.Error with its message; anything else -> a logged one-line error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DreamLiteError as e:
            raise gr.Error(str(e), title="Cannot do that") from None
        except Exception as e:  # a bug: keep the traceback in the server log, not in the page
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None

    return wrapper


def load_upload(payload) -> tuple[Image.Image, str]:
    """Decode an uploaded file payload; errors name the file as the user knows it, not Gradio's temp path."""
    from ..image_io import load_image

    path = payload["path"] if isinstance(payload, dict) else os.fspath(payload)
    name = (payload.get("orig_name") if isinstance(payload, dict) else None) or os.path.basename(path)
    try:
        return load_image(path), name
    except DreamLiteError as e:
        raise DreamLiteError(str(e).replace(path, name)) from None


def _progress_callback(progress: gr.Progress):
    return lambda done, total: progress((done, total), desc="sampling", unit="steps")


class VersionStore:
    """PNG files for every image the app shows, in one private temp folder (Gradio serves files from there)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dreamlite-app-")

    def save(self, image: Image.Image, stem: str) -> str:
        path = os.path.join(self.dir, f"{stem}-{uuid.uuid4().hex[:8]}.png")
        image.save(path)
        return path

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def render_edit_examples(store: VersionStore, size: int) -> list[list[str]]:
    """Example sources from the Shapes world, so no image files ship and they match the model's resolution."""
    from ..world.render import render
    from ..world.scene import Obj, Scene

    s = float(size)
    scenes = {
        "two": Scene(size, "white", (Obj("circle", "red", 0.3 * s, 0.5 * s, 0.3 * s),
                                     Obj("square", "blue", 0.72 * s, 0.5 * s, 0.28 * s))),
        "one": Scene(size, "beige", (Obj("triangle", "purple", 0.35 * s, 0.4 * s, 0.35 * s),)),
    }
    paths = {k: store.save(Image.fromarray(render(v)), f"example-{k}") for k, v in scenes.items()}
    return [[paths[k], instruction] for k, instruction in EDIT_EXAMPLES]


# ------------------------------------------------------------------------------------------- edit sessions
# A session is {"versions": [{"path", "label", "parent"}], "current": index}. Versions are never dropped:
# editing an earlier version appends a new branch, so every result stays downloadable.

def _session_outputs(session):
    """(source, history, session, download) for a session (None clears them)."""
    if not session:
        return None, [], None, gr.DownloadButton(value=None, interactive=False)
    current = session["versions"][session["current"]]
    history = [(v["path"], v["label"]) for v in session["versions"]]
    return (current["path"], gr.Gallery(value=history, selected_index=session["current"]), session,
            gr.DownloadButton(value=current["path"], interactive=True))


def build_app(engine: Engine) -> gr.Blocks:
    """The Blocks app; launch it with `launch(demo, ...)` so analytics stay off and the host is loopback."""
    store = VersionStore()
    info = engine.info()
    edit_examples = render_edit_examples(store, info.resolution)

    def start_session(image: Image.Image, label: str):
        image = fit_source(image, engine.max_side)
        path = store.save(image, "v0")
        return {"versions": [{"path": path, "label": f"v0 · {label}", "parent": None}], "current": 0}

    # ---------------------------------------------------------------- handlers
    @_user_errors
    def on_model_change(model):
        m = engine.info(model)
        base = m.mode == "base"
        return (m.markdown(), gr.Slider(value=m.steps), gr.Slider(value=m.guidance, visible=base),
                gr.Slider(value=m.steps), gr.Slider(value=m.guidance, visible=base),
                gr.Slider(value=m.image_guidance, visible=base),
                gr.Number(value=m.resolution), gr.Number(value=m.resolution))

    @_user_errors
    def generate(model, prompt, width, height, steps, guidance, seed, randomize_seed, num_images,
                 progress=gr.Progress()):  # noqa: B008 (how Gradio injects its progress bar)
        """Generate images from a prompt; returns the gallery (image + "seed N" caption) and a status line."""
        t0 = time.perf_counter()
        calls = engine.encoder_calls
        results = engine.generate(prompt, model=model, width=width, height=height, steps=steps, guidance=guidance,
                                  seed=seed, randomize_seed=randomize_seed, num_images=num_images,
                                  progress=_progress_callback(progress))
        items = [(store.save(im, f"seed{s}"), f"seed {s}") for im, s in results]
        cached = "from the cache" if engine.encoder_calls == calls else "encoded"
        status = (f"{len(items)} image(s) in {time.perf_counter() - t0:.1f} s · seeds "
                  f"{', '.join(str(s) for _, s in results)} · prompt embedding {cached}")
        return items, status

    @_user_errors
    def on_upload(payload):
        """Raw upload payload (preprocess=False): we decode it ourselves so a bad file gives a clear message."""
        if not payload:
            return _session_outputs(None)
        try:
            image, name = load_upload(payload)
            session = start_session(image, f"uploaded {name}")
        except DreamLiteError as e:
            gr.Warning(f"Cannot use this upload: {e}", title="Unreadable image")
            return _session_outputs(None)
        return _session_outputs(session)

    @_user_errors
    def on_example(source_path, instruction):
        with Image.open(source_path) as im:
            session = start_session(im.convert("RGB"), "example")
        return _session_outputs(session)

    def on_gallery_select(evt: gr.SelectData):
        return evt.index

    @_user_errors
    def send_to_edit(gallery_items, selected):
        if not gallery_items:
            raise DreamLiteError("generate an image first, then pick it in the gallery")
        index = selected if selected is not None and selected < len(gallery_items) else 0
        path, caption = gallery_items[index]
        with Image.open(path) as im:
            session = start_session(im.convert("RGB"), f"generated ({caption})")
        return (*_session_outputs(session), gr.Tabs(selected="edit"))

    @_user_errors
    def edit_in_session(model, instruction, steps, guidance, image_guidance, strength, keep_outside, seed, randomize_seed,
                        keep_editing, session, progress=gr.Progress()):  # noqa: B008 (how Gradio injects its progress bar)
        if not session:
            raise DreamLiteError("there is no image to edit: upload one, or pick one from the Generate tab")
        current = session["current"]
        with Image.open(session["versions"][current]["path"]) as im:
            source = im.convert("RGB")
        result, used_seed = engine.edit(source, instruction, model=model, steps=steps, guidance=guidance,
                                        image_guidance=image_guidance, strength=strength, keep_outside=keep_outside,
                                        seed=seed, randomize_seed=randomize_seed, progress=_progress_callback(progress))
        n = len(session["versions"])
        path = store.save(result, f"v{n}")
        versions = session["versions"] + [{"path": path, "label": f"v{n} · {instruction.strip()} (from v{current}, "
                                                                   f"seed {used_seed})", "parent": current}]
        session = {"versions": versions, "current": n if keep_editing else current}
        return (*_session_outputs(session), path)

    def on_history_select(session, evt: gr.SelectData):
        if not session:
            return _session_outputs(None)
        session = {**session, "current": int(evt.index)}
        return _session_outputs(session)

    @_user_errors
    def step_back(session):
        if not session:
            raise DreamLiteError("there is no edit history yet")
        current = session["versions"][session["current"]]
        if current["parent"] is None:
            gr.Info("This is the original image: there is no earlier version.")
            return _session_outputs(session)
        return _session_outputs({**session, "current": current["parent"]})

    @_user_errors
    def api_edit(model, source, instruction, steps, guidance, image_guidance, strength, seed, randomize_seed,
                 keep_outside=False, progress=gr.Progress()):  # noqa: B008 (how Gradio injects its progress bar)
        """Edit one image (API): source is a file payload, decoded here so a bad file gives a clear error."""
        if not source:
            raise DreamLiteError("give a source image to edit")
        image, _ = load_upload(source)
        result, _ = engine.edit(image, instruction, model=model, steps=steps, guidance=guidance,
                                image_guidance=image_guidance, strength=strength, keep_outside=keep_outside, seed=seed,
                                randomize_seed=randomize_seed, progress=_progress_callback(progress))
        return store.save(result, "api-edit")

    # ---------------------------------------------------------------- layout
    base = info.mode == "base"
    with gr.Blocks(title="DreamLite", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown("## DreamLite · generate and edit images on your own machine")
        with gr.Row(equal_height=True):
            model = gr.Dropdown(engine.choices(), value=engine.default, label="Model", allow_custom_value=True,
                                info="a shipped model, or type the path of a local model folder", scale=2)
            model_info = gr.Markdown(info.markdown(), elem_id="model-info")
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column():
                        prompt = gr.Textbox(label="Prompt", placeholder="a photo of a red circle", lines=2,
                                            elem_id="prompt")
                        with gr.Row():
                            width = gr.Number(info.resolution, label="Width", precision=0, step=16, elem_id="width")
                            height = gr.Number(info.resolution, label="Height", precision=0, step=16, elem_id="height")
                        steps = gr.Slider(1, 100, value=info.steps, step=1, label="Steps", elem_id="gen-steps")
                        guidance = gr.Slider(0, 15, value=info.guidance, step=0.5, label="Guidance", visible=base)
                        with gr.Row():
                            seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                            randomize = gr.Checkbox(False, label="Random seed")
                        num_images = gr.Slider(1, MAX_IMAGES, value=1, step=1, label="Images")
                        generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                        gr.Examples([[p] for p in GENERATE_EXAMPLES], inputs=[prompt], label="Examples")
                    with gr.Column():
                        gallery = gr.Gallery(label="Results", columns=2, format="png", buttons=["download", "fullscreen"], interactive=False,
                                             elem_id="gallery")
                        status = gr.Markdown(elem_id="status", label="status")
                        to_edit_btn = gr.Button("Edit the selected image", elem_id="to-edit-btn")
            with gr.Tab("Edit", id="edit"):
                with gr.Row():
                    with gr.Column():
                        source = gr.Image(label="Source: upload or drop an image (shows the version being edited)",
                                          type="filepath", sources=["upload", "clipboard"], elem_id="source")
                        instruction = gr.Textbox(label="Instruction", placeholder="make the red circle green",
                                                 elem_id="instruction")
                        with gr.Row():
                            edit_steps = gr.Slider(1, 100, value=info.steps, step=1, label="Steps", elem_id="edit-steps")
                            edit_guidance = gr.Slider(0, 15, value=info.guidance, step=0.5, label="Text guidance", visible=base)
                            image_guidance = gr.Slider(0, 10, value=info.image_guidance, step=0.25, label="Image guidance",
                                                       visible=base)
                        strength = gr.Slider(0.05, 1, value=1, step=0.05, elem_id="edit-strength",
                                             label="Strength (1: from pure noise; lower keeps more of the source)")
                        keep_outside = gr.Checkbox(False, elem_id="keep-outside",
                                                   label="Keep the source outside the edited region (the model "
                                                         "estimates the region; slower)")
                        with gr.Row():
                            edit_seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                            edit_randomize = gr.Checkbox(False, label="Random seed")
                            keep_editing = gr.Checkbox(True, label="Keep editing (the result becomes the next source)")
                        edit_btn = gr.Button("Edit", variant="primary", elem_id="edit-btn")
                    with gr.Column():
                        result = gr.Image(label="Latest result", type="filepath", interactive=False, format="png",
                                          buttons=["download", "fullscreen"], elem_id="result")
                        history = gr.Gallery(label="History: click a version to continue from it", columns=4,
                                             height=240, object_fit="contain", allow_preview=False, format="png", elem_id="history")
                        with gr.Row():
                            back_btn = gr.Button("Step back", elem_id="back-btn")
                            download = gr.DownloadButton("Download this version", interactive=False,
                                                         elem_id="download-btn")
                session = gr.State(None)
                # One click on an example loads it as a fresh history, ready to edit.
                gr.Examples(edit_examples, inputs=[source, instruction], outputs=[source, history, session, download],
                            fn=on_example, run_on_click=True, cache_examples=False, label="Examples",
                            api_visibility="private")

        selected = gr.State(None)
        api_source = gr.Image(type="filepath", visible=False, label="source")
        api_result = gr.Image(type="filepath", visible=False, format="png", label="edited")
        api_btn = gr.Button(visible=False)

        # ---------------------------------------------------------------- events
        session_outputs = [source, history, session, download]
        model_group = dict(concurrency_id=MODEL_GROUP, concurrency_limit=1)
        model.change(on_model_change, [model],
                     [model_info, steps, guidance, edit_steps, edit_guidance, image_guidance, width, height],
                     api_visibility="private", **model_group)
        gen_inputs = [model, prompt, width, height, steps, guidance, seed, randomize, num_images]
        generate_btn.click(generate, gen_inputs, [gallery, status], api_name="generate", **model_group)
        prompt.submit(generate, gen_inputs, [gallery, status], api_visibility="private", **model_group)
        gallery.select(on_gallery_select, None, [selected], api_visibility="private")
        to_edit_btn.click(send_to_edit, [gallery, selected], [*session_outputs, tabs], api_visibility="private")
        source.upload(on_upload, [source], session_outputs, preprocess=False, api_visibility="private")
        source.clear(lambda: _session_outputs(None), None, session_outputs, api_visibility="private")
        edit_inputs = [model, instruction, edit_steps, edit_guidance, image_guidance, strength, keep_outside, edit_seed,
                       edit_randomize, keep_editing, session]
        edit_btn.click(edit_in_session, edit_inputs, [*session_outputs, result], api_visibility="private", **model_group)
        instruction.submit(edit_in_session, edit_inputs, [*session_outputs, result], api_visibility="private", **model_group)
        history.select(on_history_select, [session], session_outputs, api_visibility="private")
        back_btn.click(step_back, [session], session_outputs, api_visibility="private")
        api_btn.click(api_edit, [model, api_source, instruction, edit_steps, edit_guidance, image_guidance, strength,
                                 edit_seed, edit_randomize, keep_outside], [api_result], api_name="edit", preprocess=False, **model_group)
    demo.version_store = store
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, block: bool = True) -> str:
    """Queue (one sampling job at a time, others wait), no analytics, no share link, errors as one line."""
    demo.queue(default_concurrency_limit=1, max_size=64)
    try:
        demo.launch(server_name=host, server_port=port, share=False, show_error=False, ssr_mode=False,
                    prevent_thread_lock=not block, quiet=not block, footer_links=["api", "gradio"],
                    allowed_paths=[demo.version_store.dir])
    except OSError as e:  # port taken, host not resolvable
        if port and "empty port" in str(e):
            raise DreamLiteError(f"port {port} on {host} is already in use: pass another --port") from None
        raise DreamLiteError(f"cannot start the web server on {host}:{port or 'auto'}: {str(e).splitlines()[0]}") from None
    finally:
        if block:
            demo.version_store.cleanup()
    return demo.local_url
