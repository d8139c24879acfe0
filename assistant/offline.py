"""Environment defaults that keep the project offline.

They must be applied before tiktoken or litellm is imported anywhere, which is why
``assistant/__init__`` calls :func:`apply_offline_defaults` first thing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def bundled_tiktoken_dir() -> Path | None:
    """Where litellm's wheel keeps its copies of the cl100k_base/o200k_base encodings."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return candidate if candidate.is_dir() else None


def apply_offline_defaults() -> None:
    """Set offline defaults, never overriding what the user set themselves."""
    # litellm otherwise fetches its model cost map at import and retries for seconds.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # tiktoken otherwise downloads its encodings at first use.
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = bundled_tiktoken_dir()
        if bundled is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    # Hugging Face libraries must never reach for the hub: all weights come from packages.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Spinning OpenMP workers starve llama.cpp on a busy 2-core machine (about 5x slower decoding).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Chroma's anonymous telemetry would try the network on every client start.
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
