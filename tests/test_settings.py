from __future__ import annotations

import pytest
from pydantic import ValidationError

from assistant.settings import Settings


def test_defaults_are_offline_and_local(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.model.startswith("local/")
    assert settings.embedding_model.startswith("local/")
    assert settings.chroma_url is None
    assert settings.resolved_store_dir == tmp_path / "store"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_STORE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ASSISTANT_CHROMA_URL", "http://127.0.0.1:8123")
    monkeypatch.setenv("ASSISTANT_TOP_K", "9")
    monkeypatch.setenv("ASSISTANT_FALLBACK_MODELS", "openai/gpt-4o-mini, ollama/llama3.2")
    settings = Settings()
    assert settings.resolved_store_dir == tmp_path / "elsewhere"
    assert settings.chroma_url_str == "http://127.0.0.1:8123"
    assert settings.top_k == 9
    assert settings.fallback_models == ["openai/gpt-4o-mini", "ollama/llama3.2"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("top_k", 0), ("top_k", 51), ("chunk_tokens", 8), ("collection", "a"), ("collection", "bad name!"), ("temperature", 3)],
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
    assert Settings(chunk_tokens=512, embedding_model="openai/text-embedding-3-small").chunk_tokens == 512


def test_every_field_is_described():
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
