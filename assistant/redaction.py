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

A bearer credential is what looks like one after "Bearer ": a run of the characters tokens
are made of (RFC 6750's token68), at least :data:`MIN_BEARER_CHARS` long, with a digit or a
symbol in it or else at least :data:`LETTERS_ONLY_BEARER_CHARS` long. The word after "bearer"
in an instruction ("missing or wrong bearer token: send 'Authorization: Bearer <token>'") is
not one, so the API's own 401 message stays readable; a token of this process's
environment (``ASSISTANT_API_TOKEN``) is masked whatever its shape.

:class:`StreamRedactor` masks a reply while it streams: a key can straddle two pieces, so
the tail that could still become one (the last word, a "Bearer " waiting for its credential,
the start of a secret's value) is held back until the next piece shows what it is.
"""

from __future__ import annotations

import os
import re
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 6
_SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$|SECRET|API_KEY", re.IGNORECASE)
MIN_BEARER_CHARS = 8
LETTERS_ONLY_BEARER_CHARS = 20
"""A credential of letters only must be this long: English words after "bearer" are shorter."""
_TOKEN68 = r"[A-Za-z0-9\-._~+/]"
_BEARER = re.compile(
    rf"(Bearer\s+)(?:(?={_TOKEN68}*[0-9\-._~+/]){_TOKEN68}{{{MIN_BEARER_CHARS},}}|[A-Za-z]{{{LETTERS_ONLY_BEARER_CHARS},}})=*"
    rf"(?!{_TOKEN68})",
    re.IGNORECASE,
)
_KEY_SHAPES = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{20,}|gsk_[A-Za-z0-9]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{30,}|AKIA[0-9A-Z]{16})"
)


def _secret_values() -> list[str]:
    """The values of this process's secret environment variables, longest first."""
    values = {
        value for name, value in os.environ.items() if len(value) >= MIN_SECRET_CHARS and _SECRET_ENV_NAME.search(name)
    }
    return sorted(values, key=len, reverse=True)


def redact_secrets(text: str) -> str:
    """``text`` with API keys, tokens and bearer credentials masked as :data:`REDACTED`."""
    for value in _secret_values():
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


MAX_HELD_CHARS = 512
"""The longest tail a stream holds back: longer than any key shape above (OpenAI project keys
are about 170 characters), so a flood without spaces still streams."""
_TRAILING_WORD = re.compile(r"(?:Bearer\s+)?\S*\Z|Bearer\s*\Z", re.IGNORECASE)


class StreamRedactor:
    """Masks secrets in a text that arrives in pieces: ``feed`` each piece, ``flush`` at the end.

    What ``feed`` returns is safe to show: every secret that could end inside it already
    has. The held-back tail is the last word (a key has no spaces), with a "Bearer " before
    it, and the longest end of the text that begins a secret's value.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._secrets = _secret_values()

    def _held(self, text: str) -> int:
        found = _TRAILING_WORD.search(text)
        held = len(found.group(0)) if found else 0
        for value in self._secrets:
            for size in range(min(len(value) - 1, len(text)), held, -1):
                if text.endswith(value[:size]):
                    held = size
                    break
        return min(held, MAX_HELD_CHARS)

    def feed(self, piece: str) -> str:
        """The part of the text so far that can be shown now, masked."""
        text = self._pending + piece
        held = self._held(text)
        ready, self._pending = text[: len(text) - held], text[len(text) - held :]
        return redact_secrets(ready)

    def flush(self) -> str:
        """The held-back tail, masked: the text has ended."""
        rest, self._pending = self._pending, ""
        return redact_secrets(rest)
