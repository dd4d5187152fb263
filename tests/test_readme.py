"""The README's runnable snippets (every ```python block; `python illustration` blocks need the user's files) run as
written, and print what they say they print."""

import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runnable_snippets() -> list[str]:
    readme = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", readme, re.S)


def test_every_runnable_readme_snippet_runs(tmp_path):
    snippets = runnable_snippets()
    assert snippets, "the README has no runnable snippet"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}
    outputs = []
    for index, code in enumerate(snippets):
        work = tmp_path / f"snippet{index}"
        work.mkdir()
        result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, (index, result.stderr[-3000:])
        outputs.append((work, result.stdout.splitlines()))
    work, lines = outputs[0]  # the quick start
    losses = ast.literal_eval(lines[0])
    assert losses["loss"] == round(losses["loss_alc"] + losses["loss_alm"] + losses["loss_atg"], 3) or \
        abs(losses["loss"] - (losses["loss_alc"] + losses["loss_alm"] + losses["loss_atg"])) < 2e-3
    assert any(line.startswith("zero-shot probabilities") for line in lines)
    assert any(line.startswith("LM loss") and float(line.split()[-1]) > 0 for line in lines)
    captions = [ast.literal_eval(line) for line in lines if line.startswith("[{'generated_text'")]
    assert len(captions) == 1 and len(captions[0]) == 2  # one caption per clip from the pipeline
    assert (work / "mint-stage1" / "model.safetensors").exists() and (work / "mint-stage2" / "config.json").exists()
