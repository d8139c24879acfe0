"""The assistant as models: ``paper-assistant`` and the variants ``paper-assistant:MODEL``.

A variant pins the underlying LLM to the configured model, one of its fallbacks or an
installed bundled local model; one :class:`PaperAssistant` per variant is built on first use
and kept, all sharing one store and retriever, so a local model stays loaded.
"""

from __future__ import annotations

import threading
import time

from assistant.api.wire import MODEL_ID, VARIANT_SEPARATOR, ApiError
from assistant.errors import LLMError
from assistant.llm import LOCAL_MODELS, describe_requirements, provider_of
from assistant.retrieval import Retriever
from assistant.service import PaperAssistant
from assistant.settings import Settings
from assistant.store import PaperStore


def allowed_models(settings: Settings) -> list[str]:
    """Model strings a variant may pin: the configured one, its fallbacks, installed local models."""
    models = [settings.llm.model, *settings.llm.fallback_models]
    models += [m.model_string for m in LOCAL_MODELS.values() if describe_requirements(m.model_string, settings) is None]
    return list(dict.fromkeys(models))


def _variant_settings(settings: Settings, model: str) -> Settings:
    """``settings`` answering with ``model`` alone (no fallbacks: the client pinned it)."""
    api_base = settings.llm.api_base
    if api_base is not None and model != settings.llm.model:
        # ASSISTANT_API_BASE is the configured model's server; it serves only models of its provider.
        try:
            same_provider = provider_of(model) == provider_of(settings.llm.model)
        except LLMError:
            same_provider = False
        api_base = api_base if same_provider else None
    return settings.replace(model=model, fallback_models=[], api_base=api_base)


class Assistants:
    """One PaperAssistant per model variant, built on first use and kept; all share one store."""

    def __init__(self, settings: Settings, store: PaperStore, retriever: Retriever) -> None:
        self.settings = settings
        self.store = store
        self.retriever = retriever
        self._built: dict[str, PaperAssistant] = {}
        self._lock = threading.Lock()
        self.created = int(time.time())

        self.allowed = allowed_models(settings)  # installed local models do not change while serving

    def model_ids(self) -> list[str]:
        return [MODEL_ID, *(f"{MODEL_ID}{VARIANT_SEPARATOR}{model}" for model in self.allowed)]

    def check(self, requested: str) -> str:
        """The variant key of a requested model id; ApiError 404 for an unknown one."""
        if requested == MODEL_ID:
            return ""
        prefix = MODEL_ID + VARIANT_SEPARATOR
        if requested.startswith(prefix) and requested[len(prefix) :] in self.allowed:
            return requested[len(prefix) :]
        raise ApiError(
            404,
            f"the model {requested!r} does not exist here: use {MODEL_ID!r} or one of {', '.join(self.model_ids()[1:])} "
            f"(GET /v1/models lists them; a variant must be ASSISTANT_MODEL, one of ASSISTANT_FALLBACK_MODELS "
            "or an installed bundled local model)",
            code="model_not_found",
            param="model",
        )

    def get(self, key: str) -> PaperAssistant:
        """The assistant for a variant key ("" for the configured model with its fallbacks)."""
        with self._lock:
            assistant = self._built.get(key)
            if assistant is None:
                settings = self.settings if not key else _variant_settings(self.settings, key)
                assistant = PaperAssistant(settings, store=self.store, retriever=self.retriever)
                self._built[key] = assistant
            return assistant

    def any(self) -> PaperAssistant:
        return self.get("")
