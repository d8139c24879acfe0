"""Token counting with tiktoken's cl100k_base, loaded offline from litellm's bundled copy."""

from __future__ import annotations

from functools import lru_cache

import tiktoken

import assistant  # noqa: F401  (sets TIKTOKEN_CACHE_DIR before tiktoken loads an encoding)

ENCODING_NAME = "cl100k_base"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))
