# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The web app's page: a Gradio Blocks layout with one tab per use of the model, wired to [`MintApp`]'s methods.

    from mint.app import build_app
    build_app("mint-demo/stage2", stage1="mint-demo/stage1").launch()

Uploads are `gr.Audio(type="filepath")`, so Gradio hands over the file as it came and the package's own reader
decodes it (WAV, FLAC and OGG need no ffmpeg). A refused input shows the package's message in the page
(`gr.Error`), never a traceback. Each button is also an API endpoint (`/caption`, `/classify`, `/retrieve`) for
`gradio_client`.
"""

import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import gradio as gr

from mint.app.callbacks import AUDIO_EXTENSIONS, SCORING_NAMES, MintApp
from pipelines_mint import CAPTION_PROMPT


# The most results the retrieval tab plays; the number shown is chosen up to it.
MAX_RESULTS = 5


def shown_in_page(callback: Callable) -> Callable:
    """`callback` with the errors of bad input (`ValueError`, `TypeError`, `OSError`) raised as `gr.Error`, which the
    page shows with the message alone."""

    @functools.wraps(callback)
    def run(*args):
        try:
            return callback(*args)
        except (ValueError, TypeError, OSError) as error:
            raise gr.Error(str(error), print_exception=False) from None

    return run


def _audio_input(tab: str) -> tuple[gr.Audio, gr.Plot]:
    """An upload (or recording) and the waveform and spectrogram of what was given."""
    audio = gr.Audio(type="filepath", sources=["upload", "microphone"], label="Audio clip", elem_id=f"{tab}-audio")
    plot = gr.Plot(label="Waveform and log-mel spectrogram", elem_id=f"{tab}-waveform")
    return audio, plot


def build_app(model: str, stage1: str | None = None, device: str = "cpu",
              generate_kwargs: dict[str, Any] | None = None, title: str = "MINT") -> gr.Blocks:
    """
    The app for the MINT model `model` (a folder or Hub repo id; see [`MintApp`] for `stage1`, `device` and
    `generate_kwargs`). Tabs: captioning and instructions (a stage-2 model), zero-shot classification (the scoring
    modes the models support), retrieval (a stage-1 model). Returns the `gr.Blocks`; call `.launch()` on it (theme and
    css go to `launch` in Gradio 6).
    """
    app = MintApp(model, stage1=stage1, device=device, generate_kwargs=generate_kwargs)
    played = tempfile.mkdtemp(prefix="mint-app-")  # copies of the retrieved clips, which Gradio may serve

    def retrieve(query, folder, uploads, top_k):
        hits = app.retrieve(query, folder, uploads, top_k)
        table = [[rank, hit["name"], round(hit["score"], 4)] for rank, hit in enumerate(hits, 1)]
        players = []
        for rank in range(MAX_RESULTS):
            if rank < len(hits):
                copy = os.path.join(played, f"{rank + 1}-{os.path.basename(hits[rank]['path'])}")
                shutil.copyfile(hits[rank]["path"], copy)
                players.append(gr.Audio(value=copy, label=f"{rank + 1}. {hits[rank]['name']}", visible=True))
            else:
                players.append(gr.Audio(value=None, visible=False))
        return [table, *players]

    with gr.Blocks(title=title) as blocks:
        gr.Markdown(f"# {title}\n{app.description()}")
        if app.can_caption:
            with gr.Tab("Captioning and instructions", id="caption", elem_id="caption-tab"):
                audio, plot = _audio_input("caption")
                instruction = gr.Textbox(value=CAPTION_PROMPT, label="Instruction",
                                         info="The paper's captioning prompt; ask anything the model was tuned on.")
                button = gr.Button("Generate", variant="primary")
                answer = gr.Textbox(label="Answer", interactive=False, elem_id="caption-answer")
                audio.change(shown_in_page(app.waveform), audio, plot, api_name=False)
                button.click(shown_in_page(app.caption), [audio, instruction], answer, api_name="caption")
        with gr.Tab("Zero-shot classification", id="classify", elem_id="classify-tab"):
            audio, plot = _audio_input("classify")
            labels = gr.Textbox(label="Candidate labels", lines=3, placeholder="dog, cat, piano",
                                info="Separated by commas or new lines.")
            scoring = gr.Radio([(SCORING_NAMES[mode], mode) for mode in app.scoring_modes],
                               value=app.scoring_modes[0], label="Scoring")
            button = gr.Button("Classify", variant="primary")
            scores = gr.Label(label="Scores", num_top_classes=10, elem_id="classify-scores")
            audio.change(shown_in_page(app.waveform), audio, plot, api_name=False)
            button.click(shown_in_page(app.classify), [audio, labels, scoring], scores, api_name="classify")
        if app.can_retrieve:
            with gr.Tab("Retrieval", id="retrieve", elem_id="retrieve-tab"):
                query = gr.Textbox(label="Text query", placeholder="a dog barks")
                with gr.Row():
                    folder = gr.Textbox(label="Folder of clips (on the machine running the app)")
                    uploads = gr.File(label="...or upload clips", file_count="multiple", type="filepath",
                                      file_types=list(AUDIO_EXTENSIONS))
                top_k = gr.Slider(1, MAX_RESULTS, value=3, step=1, label="Results")
                button = gr.Button("Search", variant="primary")
                table = gr.Dataframe(headers=["rank", "clip", "score"], label="Best matches", interactive=False,
                                     elem_id="retrieve-results")
                players = [gr.Audio(visible=False, interactive=False) for _ in range(MAX_RESULTS)]
                button.click(shown_in_page(retrieve), [query, folder, uploads, top_k], [table, *players],
                             api_name="retrieve")
    return blocks


__all__ = ["MAX_RESULTS", "build_app", "shown_in_page"]
