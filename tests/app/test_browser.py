"""The app launched on tiny models and driven like a user: Playwright in headless Chromium (Debian's `chromium`,
never `playwright install`) uploads WAV files and runs each tab; `gradio_client` calls the same app's API. What the
page shows must equal what the package's pipelines and retrieval index give for the same clips.

With `MINT_SCREENSHOT=path` the captioning tab's screenshot is also copied to `path` (docs/images/app.png is one)."""

import os
import re
import shutil
import socket

import pytest

from mint.app import build_app
from mint.evaluation.retrieval_index import MintRetrievalIndex
from modeling_mint import MintForPreTraining
from pipelines_mint import MintAudioToTextPipeline, MintCheckpoint, MintZeroShotAudioClassificationPipeline
from processing_mint import MintProcessor
from tests.utils.tiny import WORDS


CHROMIUM = shutil.which("chromium")
# Chromium offline: no sandbox (root in a container), no GPU, and none of its background calls to the internet.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
# CI installs chromium (install.sh): there a missing browser is a failure, not a skip.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="Debian's chromium is not installed (install.sh installs it)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def url(stage2_folder, stage1_folder):
    blocks = build_app(stage2_folder, stage1=stage1_folder, generate_kwargs=WORDS)
    _, local_url, _ = blocks.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    yield local_url
    blocks.close()


@pytest.fixture(scope="module")
def expected(stage2_folder, stage1_folder, clip_folder):
    """What the package gives for the clips, without the app."""
    def loaded(folder, cls):
        return cls(model=MintCheckpoint.from_pretrained(folder), processor=MintProcessor.from_pretrained(folder),
                   device="cpu")

    captioner = loaded(stage2_folder, MintAudioToTextPipeline)
    classifier = loaded(stage1_folder, MintZeroShotAudioClassificationPipeline)
    tone, chirp = (os.path.join(clip_folder, name) for name in ("tone.wav", "chirp.flac"))
    index = MintRetrievalIndex(MintForPreTraining.from_pretrained(stage1_folder),
                               MintProcessor.from_pretrained(stage1_folder))
    files = sorted(os.path.join(parent, name) for parent, _, names in os.walk(clip_folder) for name in names
                   if not name.endswith(".txt"))
    index.add(files, ids=[os.path.relpath(f, clip_folder) for f in files], progress=False)
    return {"caption": captioner(tone, **WORDS)["generated_text"],
            "instruction": captioner(chirp, prompt="this is a sound of", **WORDS)["generated_text"],
            "scores": classifier(chirp, candidate_labels=["dog", "cat", "piano"], scoring="embedding"),
            "hits": index.search("a dog barks", top_k=3)}


@pytest.fixture(scope="module")
def page(url):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: CI must run the browser test (install.sh installs Debian's chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the first plot and the first search load matplotlib and embed the clips
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        yield page
        browser.close()


def upload(page, tab: str, path: str) -> None:
    """Uploads `path` through the tab's file input (clearing a clip given before) and waits for the upload request to
    finish."""
    clear = page.locator(f"#{tab}-audio").get_by_role("button", name="Clear")
    if clear.count():
        clear.click()
    with page.expect_response(lambda r: r.request.method == "POST" and "/gradio_api/upload" in r.url):
        page.locator(f"#{tab}-audio input[type=file]").set_input_files(path)


@pytest.mark.slow
def test_each_tab_in_the_browser(page, expected, clip_folder, bad_clips, tmp_path):
    from playwright.sync_api import expect

    # Captioning and instructions: the default instruction is the captioning prompt.
    upload(page, "caption", os.path.join(clip_folder, "tone.wav"))
    expect(page.locator("#caption-waveform img")).to_be_visible()  # the waveform and spectrogram of the upload
    page.get_by_role("button", name="Generate").click()
    answer = page.locator("#caption-answer textarea, #caption-answer input").first
    expect(answer).to_have_value(expected["caption"])
    screenshot = tmp_path / "app.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("MINT_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["MINT_SCREENSHOT"])
    upload(page, "caption", os.path.join(clip_folder, "chirp.flac"))
    page.get_by_label("Instruction").fill("this is a sound of")
    page.get_by_role("button", name="Generate").click()
    expect(answer).to_have_value(expected["instruction"])

    # A silent clip: the package's message in the page as soon as it is uploaded and again on Generate (one message
    # each, hence `.first`), the answer left as it was.
    upload(page, "caption", os.path.join(bad_clips, "silent.wav"))
    expect(page.get_by_text("is silent (every sample is zero)").first).to_be_visible()
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_text("is silent (every sample is zero)").first).to_be_visible()
    expect(answer).to_have_value(expected["instruction"])

    # Zero-shot classification by the stage-1 embeddings: the bars show the pipeline's scores, best first.
    page.get_by_role("tab", name="Zero-shot classification").click()
    upload(page, "classify", os.path.join(clip_folder, "chirp.flac"))
    page.get_by_label("Candidate labels").fill("dog, cat\npiano")
    page.get_by_label("embedding similarity (stage 1)").check()
    page.get_by_role("button", name="Classify").click()
    scores = page.locator("#classify-scores")
    first = expected["scores"][0]
    expect(scores).to_contain_text(f"{round(100 * first['score'])}%")
    shown = re.findall(r"(dog|cat|piano)\s+(\d+)%", scores.inner_text())
    assert shown == [(e["label"], str(round(100 * e["score"]))) for e in expected["scores"]]

    # Retrieval over a folder: the index's ranking, each result playable.
    page.get_by_role("tab", name="Retrieval").click()
    page.get_by_label("Text query").fill("a dog barks")
    page.get_by_label("Folder of clips (on the machine running the app)").fill(clip_folder)
    page.get_by_role("button", name="Search").click()
    results = page.locator("#retrieve-results")
    expect(results).to_contain_text(expected["hits"][2]["id"])
    cells = results.inner_text().split("score", 1)[1].split()  # the table's cells after its header, row by row
    rows = [cells[i : i + 3] for i in range(0, len(cells), 3)]
    assert [row[:2] for row in rows] == [[str(rank), hit["id"]] for rank, hit in enumerate(expected["hits"], 1)]
    assert [float(row[2]) for row in rows] == [round(hit["score"], 4) for hit in expected["hits"]]
    tab = page.locator("#retrieve-tab")
    for rank, hit in enumerate(expected["hits"], 1):  # a player per result, labelled with its rank and clip
        expect(tab.get_by_text(f"{rank}. {hit['id']}", exact=True)).to_be_visible()
        expect(tab.locator(f"a[href$='/{rank}-{os.path.basename(hit['id'])}']")).to_have_count(1)


def test_the_api(url, expected, clip_folder, bad_clips):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False)
    tone, chirp = (handle_file(os.path.join(clip_folder, name)) for name in ("tone.wav", "chirp.flac"))
    assert client.predict(tone, "Generate audio caption:", api_name="/caption") == expected["caption"]
    assert client.predict(chirp, "this is a sound of", api_name="/caption") == expected["instruction"]
    label = client.predict(chirp, "dog, cat, piano", "embedding", api_name="/classify")
    assert [(c["label"], c["confidence"]) for c in label["confidences"]] == \
        [(e["label"], e["score"]) for e in expected["scores"]]
    table, *players = client.predict("a dog barks", clip_folder, None, 3, api_name="/retrieve")
    assert [row[1] for row in table["data"]] == [hit["id"] for hit in expected["hits"]]
    assert [(p["label"], os.path.basename(p["value"])) for p in players[:3]] == \
        [(f"{rank}. {hit['id']}", f"{rank}-{os.path.basename(hit['id'])}")
         for rank, hit in enumerate(expected["hits"], 1)]
    assert [p["visible"] for p in players] == [True, True, True, False, False]
    # (inputs, api, words of the error the API answers with)
    for inputs, api, words in [
        ((handle_file(os.path.join(bad_clips, "nan.wav")), "x"), "/caption", "contains NaN or infinite samples"),
        ((tone, "dog, dog", "llm"), "/classify", "repeated labels, 'dog' at positions [0, 1]"),
        ((tone, "dog", "ranking"), "/classify", "'ranking' (type: <class 'str'>) is not in the list of choices"),
        (("a dog", os.path.join(clip_folder, "more", "none"), None, 3), "/retrieve", "is not a folder"),
    ]:
        with pytest.raises(AppError, match=re.escape(words)):
            client.predict(*inputs, api_name=api)
