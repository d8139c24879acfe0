from __future__ import annotations

import pytest
from pydantic import ValidationError

from assistant.settings import Settings


def test_defaults_are_offline_and_local(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.llm.model.startswith("local/")
    assert settings.ingest.embedding_model.startswith("local/")
    assert settings.store.chroma_url is None
    assert settings.store.resolved_store_dir == tmp_path / "store"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_STORE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ASSISTANT_CHROMA_URL", "http://127.0.0.1:8123")
    monkeypatch.setenv("ASSISTANT_TOP_K", "9")
    monkeypatch.setenv("ASSISTANT_FALLBACK_MODELS", "openai/gpt-4o-mini, ollama/llama3.2")
    settings = Settings()
    assert settings.store.resolved_store_dir == tmp_path / "elsewhere"
    assert settings.store.chroma_url_str == "http://127.0.0.1:8123"
    assert settings.answer.top_k == 9
    assert settings.llm.fallback_models == ["openai/gpt-4o-mini", "ollama/llama3.2"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("top_k", 0),
        ("top_k", 51),
        ("chunk_tokens", 8),
        ("collection", "a"),
        ("collection", "bad name!"),
        ("temperature", 3),
    ],
)
def test_out_of_bounds_values_are_rejected(field, value):
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_overlap_must_be_smaller_than_chunk():
    with pytest.raises(ValidationError, match="ASSISTANT_CHUNK_OVERLAP_TOKENS"):
        Settings(chunk_tokens=64, chunk_overlap_tokens=64)


def test_chunks_longer_than_the_local_embedder_reads_are_rejected():
    with pytest.raises(ValidationError, match="local embedder"):
        Settings(chunk_tokens=512)
    assert Settings(chunk_tokens=512, embedding_model="openai/text-embedding-3-small").ingest.chunk_tokens == 512


def test_every_field_is_described():
    for section_name, section in Settings.model_fields.items():
        assert section.annotation is not None and section.annotation.__doc__, f"section {section_name} has no docstring"
        for name, field in section.annotation.model_fields.items():
            assert field.description, f"Settings.{section_name}.{name} has no description"


def test_flat_values_go_to_their_section_and_the_environment_fills_the_rest(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_TOP_K", "4")
    settings = Settings(model="fake", data_dir=tmp_path)
    assert (settings.llm.model, settings.store.data_dir, settings.answer.top_k) == ("fake", tmp_path, 4)
    changed = settings.replace(top_k=2, temperature=0.0)
    assert (changed.answer.top_k, changed.llm.temperature, changed.llm.model) == (2, 0.0, "fake")
    with pytest.raises(ValueError, match="unknown setting 'nonsense'"):
        Settings(nonsense=1)


def test_an_invalid_value_names_its_environment_variable(monkeypatch):
    from assistant.errors import InvalidInput
    from assistant.settings import load_settings

    with pytest.raises(InvalidInput, match="ASSISTANT_TEMPERATURE"):
        load_settings(temperature=5)
    monkeypatch.setenv("ASSISTANT_TOP_K", "many")
    with pytest.raises(InvalidInput, match="ASSISTANT_TOP_K"):
        load_settings()
