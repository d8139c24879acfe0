"""Helpers shared by the LLM backend tests (plain functions, imported by the test modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.llm.local import LOCAL_MODELS, gguf_path, local_model_missing
from assistant.settings import Settings, StoreSettings

SMOLLM2 = LOCAL_MODELS["smollm2-135m-instruct"]
GEMMA3 = LOCAL_MODELS["gemma3-270m"]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings isolated from the user's folders, with small, quick defaults for tests."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "max_retries": 0,
        "timeout_s": 300.0,
        "max_answer_tokens": 24,
        "temperature": 0.0,
        "local_context_tokens": 2048,
        "fallback_models": [],
    }
    values.update(overrides)
    return Settings(**values)


def local_model_unavailable() -> str | None:
    """Why the bundled local model cannot run here, or None when it can."""
    return local_model_missing(SMOLLM2, StoreSettings().models_dir)


def smollm2_gguf(data_dir: Path) -> Path:
    return gguf_path(SMOLLM2, data_dir / "models")
