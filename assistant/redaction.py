"""Secrets masked before any text is logged, shown, stored or sent back.

One redactor for every place a secret could leak: model errors and replies (providers and
local servers echo keys), stored conversations (users paste keys into the chat), HTTP API
responses. It masks

* the values of environment variables whose names say they are secret (``OPENAI_API_KEY``,
  ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``...; not ``TIKTOKEN_CACHE_DIR``), when at least
  :data:`MIN_SECRET_CHARS` long, so a key is masked whatever its shape;
* bearer credentials, and the shapes of the keys litellm users are likely to paste when the
  key is not in this process's environment (OpenAI, Anthropic, Hugging Face, Groq, GitHub,
  Google, AWS).
"""

from __future__ import annotations

import os
import re
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 6
_SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$|SECRET|API_KEY", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[^\s\"',}]+", re.IGNORECASE)
_KEY_SHAPES = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{20,}|gsk_[A-Za-z0-9]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{30,}|AKIA[0-9A-Z]{16})"
)


def redact_secrets(text: str) -> str:
    """``text`` with API keys, tokens and bearer credentials masked as :data:`REDACTED`."""
    for name, value in os.environ.items():
        if len(value) >= MIN_SECRET_CHARS and _SECRET_ENV_NAME.search(name):
            text = text.replace(value, REDACTED)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _KEY_SHAPES.sub(REDACTED, text)


def redact_json(value: Any) -> Any:
    """Every string inside a JSON-like value redacted."""
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_json(item) for key, item in value.items()}
    return value
