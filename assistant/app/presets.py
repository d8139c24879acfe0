"""The sidebar's model picker: presets, what a choice means as settings, and what it still needs."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from assistant.errors import InvalidInput, LLMError
from assistant.llm import LOCAL_MODELS, describe_requirements, local_model
from assistant.settings import DEFAULT_LOCAL_MODEL, Settings, describe_invalid


@dataclass(frozen=True)
class ModelPreset:
    """One entry of the model picker; ``model`` is empty when the user types the model string."""

    label: str
    model: str = ""
    needs_api_base: bool = False
    placeholder: str = ""


OPENAI_COMPATIBLE = "OpenAI-compatible server (llama.cpp, vLLM, LM Studio…)"
ANY_LITELLM = "Any litellm model string"

MODEL_PRESETS: tuple[ModelPreset, ...] = (
    *(
        ModelPreset(
            # "SmolLM2-135M-Instruct (Q4_1, ~100 MB), chat-tuned" -> "Offline: SmolLM2-135M-Instruct"
            f"Offline{' (default)' if spec.model_string == DEFAULT_LOCAL_MODEL else ''}: {spec.description.split(' (')[0]}",
            spec.model_string,
        )
        for spec in sorted(LOCAL_MODELS.values(), key=lambda spec: spec.model_string != DEFAULT_LOCAL_MODEL)
    ),
    ModelPreset("OpenAI: gpt-4o-mini", "openai/gpt-4o-mini"),
    ModelPreset("Anthropic: claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest"),
    ModelPreset("Ollama: llama3.2", "ollama/llama3.2"),
    ModelPreset(
        OPENAI_COMPATIBLE, needs_api_base=True, placeholder="name of the served model, e.g. qwen2.5-7b-instruct"
    ),
    ModelPreset(ANY_LITELLM, placeholder="e.g. groq/llama-3.1-8b-instant or gemini/gemini-2.0-flash"),
)
PRESET_LABELS = [preset.label for preset in MODEL_PRESETS]


def preset_named(label: str) -> ModelPreset:
    return MODEL_PRESETS[PRESET_LABELS.index(label)]


@dataclass(frozen=True)
class PickerDefaults:
    """What the model picker shows before the user touches it: the configured model."""

    label: str
    typed_model: str
    api_base: str


def picker_defaults(settings: Settings) -> PickerDefaults:
    """The preset that matches ``settings.llm.model`` (and API base), else a typed model string."""
    api_base = settings.llm.api_base_str or ""
    if api_base and settings.llm.model.startswith("openai/"):
        return PickerDefaults(OPENAI_COMPATIBLE, settings.llm.model.removeprefix("openai/"), api_base)
    for preset in MODEL_PRESETS:
        if preset.model and preset.model == settings.llm.model:
            return PickerDefaults(preset.label, "", api_base)
    return PickerDefaults(ANY_LITELLM, settings.llm.model, api_base)


@dataclass(frozen=True)
class ModelChoice:
    model: str
    api_base: str | None = None


def model_choice(label: str, typed_model: str = "", api_base: str = "") -> ModelChoice:
    """The model string (and server) a picker state stands for; ValueError says what is missing."""
    preset = preset_named(label)
    if preset.model:
        return ModelChoice(preset.model)
    typed = typed_model.strip()
    if not typed:
        raise ValueError(f"Type a model name for “{label}” ({preset.placeholder}).")
    if preset.needs_api_base:
        if not api_base.strip():
            raise ValueError("Give the server's base URL, e.g. http://127.0.0.1:8080/v1.")
        # litellm reaches OpenAI-compatible servers through its openai provider.
        model = typed if typed.startswith("openai/") else f"openai/{typed}"
        return ModelChoice(model, api_base.strip())
    return ModelChoice(typed)


def session_settings(base: Settings, choice: ModelChoice, top_k: int) -> Settings:
    """``base`` with the picked model and retrieval depth, validated (InvalidInput names what is wrong)."""
    values: dict[str, object] = {"model": choice.model, "top_k": top_k}
    if choice.api_base is not None or choice.model != base.llm.model:
        # A server address belongs to the model it was configured for.
        values["api_base"] = choice.api_base
    try:
        return base.replace(**values)
    except ValidationError as exc:
        raise InvalidInput(f"These settings are not valid: {describe_invalid(exc)}") from None


def model_note(settings: Settings) -> str:
    """What the picker says of the chosen model; for a local one, how long people wait for it."""
    model = settings.llm.model
    try:
        spec = local_model(model)
    except LLMError:  # an unknown local model: model_requirements says so
        spec = None
    if spec is None:
        return f"Answers come from {model}."
    return f"Answers come from {model}, here on the computer: {spec.typical_wait}."


def model_requirements(settings: Settings) -> str | None:
    """What the chosen model needs that is missing (a key, a package, a server), for the picker."""
    return describe_requirements(settings.llm.model, settings)
