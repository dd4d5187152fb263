#!/usr/bin/env bash
# Installs everything MINT's tests and demo need on a fresh machine of this kind (Debian, Python 3.11, root, no GPU).
set -euo pipefail
cd "$(dirname "$0")"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # espeak-ng: speech for the corpus; the soundfonts (FluidR3, csound, MuseScore, TimGM6mb): its General MIDI notes;
  # Java: PTB tokenizer and METEOR; chromium: the browser the web app's test drives through Playwright.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng timgm6mb-soundfont fluid-soundfont-gm csound-soundfont musescore-general-soundfont-small openjdk-17-jre-headless chromium >/dev/null
fi
# The CPU wheel of torch (CI machines have no GPU); an unpinned torch would pull a CUDA build of several GB.
python3 -m pip install --quiet torch==2.13.0
python3 -m pip install --quiet ".[dev,demo,app]"
# tinysoundfont renders soundfont notes; its declared pyaudio dependency does not build and is not needed.
python3 -m pip install --quiet --no-deps tinysoundfont
