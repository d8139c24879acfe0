"""Language models: one protocol, one registry, and the kinds of model the project ships.

Import from here; the modules inside are the registry's entries and their machinery.
"""

from assistant.llm.calls import provider_of
from assistant.llm.fake import FakeLLM, QuotingFakeLLM
from assistant.llm.local import LOCAL_MODELS, LocalModel, SpeedLog, local_model
from assistant.llm.protocol import Completion, JsonSchema, LLMBackend
from assistant.llm.registry import build_backend, describe_requirements, entry_for, inject, register

__all__ = [
    "LOCAL_MODELS",
    "Completion",
    "FakeLLM",
    "JsonSchema",
    "LLMBackend",
    "LocalModel",
    "QuotingFakeLLM",
    "SpeedLog",
    "build_backend",
    "describe_requirements",
    "entry_for",
    "inject",
    "local_model",
    "provider_of",
    "register",
]
