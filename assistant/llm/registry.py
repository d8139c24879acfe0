"""What a model string means: one lookup for the CLI, the app, the HTTP API and the tests.

Every kind of model is a :class:`ModelEntry` in one ordered registry, the bundled ones
included, in the manner of simonw/llm's plugins: ``fake``, ``fake/quote`` and ``fake/silent``
(scripted stand-ins; the silent one measures the extractive fallbacks alone), ``local/NAME``
(GGUF models run in-process) and, last, any string litellm can place (``openai/gpt-4o-mini``,
``ollama/llama3.2``, ``openai/NAME`` at ``ASSISTANT_API_BASE``).
:func:`entry_for` finds the first entry that claims a string; :func:`build_backend` builds
it; :func:`describe_requirements` says what it still needs. A test or an embedding program
serves a model with a backend of its own through :func:`inject`, which puts an entry first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from assistant.llm.fake import FakeLLM, QuotingFakeLLM
from assistant.llm.litellm_backend import LiteLLMBackend, litellm_requirements
from assistant.llm.local import LOCAL_PROVIDER, local_model, local_model_missing
from assistant.llm.protocol import LLMBackend
from assistant.settings import Settings


class ModelEntry(Protocol):
    """One kind of model: which strings it claims, how it is built, what it needs."""

    def claims(self, model: str) -> bool: ...

    def build(self, model: str, settings: Settings) -> LLMBackend: ...

    def requirements(self, model: str, settings: Settings) -> str | None:
        """What is missing to use ``model`` (a key, a package, a server), None when nothing is."""
        ...


@dataclass(frozen=True)
class FakeModels:
    """``NAME`` and ``NAME/...`` served by a scripted fake (a new one per build)."""

    name: str
    factory: Callable[[str, Settings], FakeLLM]

    def claims(self, model: str) -> bool:
        return model == self.name or model.startswith(f"{self.name}/")

    def build(self, model: str, settings: Settings) -> LLMBackend:
        return self.factory(model, settings)

    def requirements(self, model: str, settings: Settings) -> str | None:
        return None


class LocalModels:
    """``local/NAME``: a GGUF model of :data:`~assistant.llm.local.LOCAL_MODELS`, through litellm's ``local`` provider."""

    def claims(self, model: str) -> bool:
        return model.partition("/")[0] == LOCAL_PROVIDER

    def build(self, model: str, settings: Settings) -> LLMBackend:
        local_model(model)  # an unknown name fails here, with the names that exist
        return LiteLLMBackend.from_settings(settings, model=model)

    def requirements(self, model: str, settings: Settings) -> str | None:
        from assistant.errors import LLMError

        try:
            found = local_model(model)
        except LLMError as exc:
            return str(exc)
        return local_model_missing(found, settings.store.models_dir) if found is not None else None


class LiteLLMModels:
    """Any other string, as litellm reads it; one it cannot place fails when planned, with examples."""

    def claims(self, model: str) -> bool:
        return True

    def build(self, model: str, settings: Settings) -> LLMBackend:
        return LiteLLMBackend.from_settings(settings, model=model)

    def requirements(self, model: str, settings: Settings) -> str | None:
        return litellm_requirements(model, settings.llm, settings.store.models_dir)


@dataclass(frozen=True)
class InjectedModel:
    """One exact model string served by a backend built elsewhere (a test's FakeLLM, an embedding program's)."""

    name: str
    backend: LLMBackend

    def claims(self, model: str) -> bool:
        return model == self.name

    def build(self, model: str, settings: Settings) -> LLMBackend:
        return self.backend

    def requirements(self, model: str, settings: Settings) -> str | None:
        return None


def _fake(model: str, settings: Settings) -> FakeLLM:
    return FakeLLM(model=model, window=settings.llm.context_window or FakeLLM().context_window())


def _quoting_fake(model: str, settings: Settings) -> FakeLLM:
    return QuotingFakeLLM(model=model)


def _silent_fake(model: str, settings: Settings) -> FakeLLM:
    """A model that writes nothing: every reply is the extractive fallback, measured on its own."""
    silent = _fake(model, settings)
    silent.default_reply = ""
    return silent


_lock = threading.Lock()
_entries: list[ModelEntry] = [
    FakeModels("fake/quote", _quoting_fake),
    FakeModels("fake/silent", _silent_fake),
    FakeModels("fake", _fake),
    LocalModels(),
    LiteLLMModels(),
]


def register(entry: ModelEntry, *, first: bool = False) -> None:
    """Add a kind of model; ``first`` lets it claim strings before the bundled entries do."""
    with _lock:
        if first:
            _entries.insert(0, entry)
        else:
            _entries.insert(len(_entries) - 1, entry)  # the litellm catch-all stays last


def inject(model: str, backend: LLMBackend | None) -> None:
    """Serve ``model`` with ``backend`` in this process from now on; None stops it."""
    with _lock:
        _entries[:] = [e for e in _entries if not (isinstance(e, InjectedModel) and e.name == model)]
        if backend is not None:
            _entries.insert(0, InjectedModel(model, backend))


def entry_for(model: str) -> ModelEntry:
    """The first registered entry that claims ``model``."""
    with _lock:
        return next(entry for entry in _entries if entry.claims(model))


def build_backend(settings: Settings) -> LLMBackend:
    """The backend for ``settings.llm.model``."""
    return entry_for(settings.llm.model).build(settings.llm.model, settings)


def describe_requirements(model: str, settings: Settings) -> str | None:
    """What choosing ``model`` needs that is missing (a key, a package, a server); None if nothing.

    Meant for a model picker: it reads the environment and probes only servers on this
    machine, and never calls a model.
    """
    return entry_for(model).requirements(model, settings)
