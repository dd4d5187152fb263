"""Helpers the tests share: tiny models, synthetic clips and datasets, fixture releases."""

import os


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
