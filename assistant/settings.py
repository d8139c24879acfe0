"""One validated settings object for the whole project, in sections, read from ``ASSISTANT_*``.

:class:`Settings` holds one section per concern: where things live (:class:`StoreSettings`),
how papers are chunked and embedded (:class:`IngestSettings`), how they are ranked
(:class:`RetrievalSettings`), how many an answer reads and when it declines (:class:`AnswerSettings`),
which language model writes and how (:class:`LLMSettings`),
where prompts come from (:class:`PromptSettings`) and who may use the HTTP API
(:class:`ServerSettings`). Each section reads its own
environment variables with the one prefix ``ASSISTANT_``, so the variables are flat
(``ASSISTANT_MODEL``, ``ASSISTANT_TOP_K``) while the code reads ``settings.llm.model``.

Settings are read once, at the edges (the CLI, the app, the HTTP API, the evaluation);
everything below takes them, or the collaborators built from them, as arguments.
For the same reason as the variables, flat keywords are accepted where settings are
made in code: ``Settings(model="fake", top_k=3)`` puts each value in its section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_data_dir
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from assistant.errors import InvalidInput

SAMPLE_COLLECTION = Path(__file__).parent / "data" / "daily_papers_aug19.txt"
LOCAL_EMBEDDER = "local/all-MiniLM-L6-v2"
LOCAL_EMBEDDER_MAX_CHUNK_TOKENS = 210
# Chosen by measurement (README, "Models"): the 1.5B writes the answers itself (1 in 13 replaced
# by abstract extracts on the dev set, against 4 in 5 for SmolLM2-135M) at ~9 s per lookup.
DEFAULT_LOCAL_MODEL = "local/qwen2.5-coder-1.5b-instruct"
ENV_PREFIX = "ASSISTANT_"


def default_data_dir() -> Path:
    return Path(user_data_dir("paper-assistant", appauthor=False))


class _Section(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=None, extra="forbid", validate_default=True, frozen=True
    )


class StoreSettings(_Section):
    """Where the collection, conversations and caches live."""

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Per-user folder for conversations, caches, model files and (by default) the store.",
    )
    store_dir: Path | None = Field(
        default=None,
        description="Folder of the embedded Chroma store; defaults to DATA_DIR/store. Ignored when CHROMA_URL is set.",
    )
    chroma_url: AnyHttpUrl | None = Field(
        default=None,
        description="Address of a Chroma server (e.g. http://127.0.0.1:8000); when set it replaces the embedded store.",
    )
    collection: str = Field(
        default="papers",
        min_length=3,
        max_length=63,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$",
        description="Chroma collection holding the papers' chunks.",
    )

    @property
    def resolved_store_dir(self) -> Path:
        return self.store_dir if self.store_dir is not None else self.data_dir / "store"

    @property
    def chroma_url_str(self) -> str | None:
        return str(self.chroma_url).rstrip("/") if self.chroma_url is not None else None

    @property
    def models_dir(self) -> Path:
        """Where local model files are assembled and verified."""
        return self.data_dir / "models"


class IngestSettings(_Section):
    """How abstracts are read, chunked and embedded."""

    embedding_model: str = Field(
        default=LOCAL_EMBEDDER,
        min_length=1,
        description=f"'{LOCAL_EMBEDDER}' (bundled, offline) or any litellm embedding model, e.g. 'openai/text-embedding-3-small'.",
    )
    embedding_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Texts embedded per forward pass or API call; unset: the embedder's own (16 for the local model, 64 per API call).",
    )
    embedding_threads: int = Field(
        default=0, ge=0, le=256, description="onnxruntime intra-op threads for the local embedder; 0 uses every core."
    )
    chunk_tokens: int = Field(default=200, ge=32, le=2048, description="Target chunk length in tokens (cl100k_base).")
    chunk_overlap_tokens: int = Field(
        default=40, ge=0, le=512, description="Tokens shared by consecutive chunks of one abstract."
    )
    hf_daily_papers_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://huggingface.co/api/daily_papers"),
        description="Hugging Face daily papers API, queried as URL?date=YYYY-MM-DD by `ingest --hf-date`.",
    )
    http_timeout_s: float = Field(default=30.0, gt=0, le=600, description="Timeout for fetching a daily papers feed.")

    @model_validator(mode="after")
    def _chunks_fit_the_local_embedder(self) -> IngestSettings:
        # MiniLM reads 256 WordPiece tokens; 210 cl100k tokens plus the title stay within that.
        if self.embedding_model == LOCAL_EMBEDDER and self.chunk_tokens > LOCAL_EMBEDDER_MAX_CHUNK_TOKENS:
            raise ValueError(
                f"ASSISTANT_CHUNK_TOKENS ({self.chunk_tokens}) is more than the local embedder reads "
                f"({LOCAL_EMBEDDER_MAX_CHUNK_TOKENS}); lower it or choose another ASSISTANT_EMBEDDING_MODEL"
            )
        return self

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> IngestSettings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"ASSISTANT_CHUNK_OVERLAP_TOKENS ({self.chunk_overlap_tokens}) must be smaller than "
                f"ASSISTANT_CHUNK_TOKENS ({self.chunk_tokens})"
            )
        return self


class RetrievalSettings(_Section):
    """How papers are ranked for a query: dense search fused with BM25."""

    hybrid: bool = Field(default=True, description="Fuse BM25 with dense retrieval (reciprocal rank fusion).")
    rrf_k: int = Field(default=5, ge=1, le=1000, description="Constant of reciprocal rank fusion.")
    dense_weight: float = Field(default=1.0, ge=0.0, le=10.0, description="Weight of the dense ranking in the fusion.")
    bm25_weight: float = Field(default=1.0, ge=0.0, le=10.0, description="Weight of the BM25 ranking in the fusion.")
    fusion_depth: int = Field(
        default=100,
        ge=10,
        le=5000,
        description="Chunks taken from each of the dense and BM25 lists before fusing them (at least 20 per paper asked for).",
    )


class AnswerSettings(_Section):
    """How many papers a question reads, when it is declined, and how a reply is judged.

    Each cutoff is recomputed from the labelled evaluation sets by ``benchmarks/calibrate.py``,
    which prints the value it would choose beside the one here:

    - ``min_relevance`` 0.20: over the dev and held-out questions (95), answerable ones had a best
      similarity as low as 0.30 and unanswerable ones from 0.23 to 0.49, so it is a floor.
    - ``clear_lead`` 0.15 and ``clear_coverage`` 0.6: over the one-paper questions of the dev and
      first held-out sets, no unanswerable question came within 0.09 of either lead or 0.40
      coverage; restated answerable ones did (lead 0.20; coverage 0.75).
    - ``restated_share``, ``evidence_margin``, ``listed_evidence_margin``, ``sentence_answers``:
      the calibration script prints how each splits answerable from unanswerable questions.
    """

    top_k: int = Field(default=6, ge=1, le=50, description="Papers retrieved per question.")
    min_relevance: float = Field(
        default=0.20,
        ge=0.0,
        le=1.0,
        description="Cosine similarity below which the best hit is far from the question: the assistant says the collection does not cover it without asking the model.",
    )
    min_relevance_uncovered: float = Field(
        default=0.42,
        ge=0.0,
        le=1.0,
        description="The same bar when a word that carries the question appears in no abstract: a looser match than this is not answered.",
    )
    sentence_answers: float = Field(
        default=0.55,
        ge=0.0,
        le=1.0,
        description="A paper's best sentence this relevant answers a loosely matched question whose key word no abstract has.",
    )
    evidence_margin: float = Field(
        default=0.15,
        ge=0.0,
        le=1.0,
        description="A paper whose best sentence is this much less relevant than the best paper's is left out of an answer.",
    )
    listed_evidence_margin: float = Field(
        default=0.20,
        ge=0.0,
        le=1.0,
        description="The same for a 'which papers' question, where the model itself says which of them answer.",
    )
    restated_share: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="A claim whose key terms are at least this share the question's own restates the question.",
    )
    clear_lead: float = Field(
        default=0.15,
        ge=0.0,
        le=1.0,
        description="A 'which paper' reply that only restates the question still names the one paper read when it is this much more similar to the question than any other paper.",
    )
    clear_coverage: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="... or when its title and abstract hold this share of the question's key terms.",
    )
    planner: Literal["rules", "model"] = Field(
        default="rules",
        description="Who reads a message's route and shape: the rules (free) or the model (one short call; fake models always use the rules).",
    )


class LLMSettings(_Section):
    """Which language model writes, where it is served, and how it is called."""

    model: str = Field(
        default=DEFAULT_LOCAL_MODEL,
        min_length=1,
        description="Any litellm model string (openai/gpt-4o-mini, anthropic/..., ollama/llama3.2, openai/NAME with API_BASE) or a bundled local model (local/NAME).",
    )
    api_base: AnyHttpUrl | None = Field(default=None, description="Base URL for an OpenAI-compatible or Ollama server.")
    fallback_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated models tried in order when MODEL fails."
    )
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Seconds before a model call is abandoned: a read that waits this long, or a whole reply (plus 1 s).",
    )
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries on rate limits and transient errors.")
    temperature: float = Field(default=0.1, ge=0.0, le=2.0, description="Sampling temperature.")
    max_answer_tokens: int = Field(default=400, ge=16, le=16384, description="Tokens reserved for the model's reply.")
    context_window: int | None = Field(
        default=None,
        ge=512,
        le=2_000_000,
        description="Context window in tokens for models litellm does not know; known models use litellm's figure.",
    )
    local_context_tokens: int = Field(
        default=4096, ge=512, le=32768, description="Context size a bundled local model is loaded with."
    )
    local_threads: int = Field(default=0, ge=0, le=256, description="Threads for a local model; 0 uses every core.")

    @field_validator("fallback_models", mode="before")
    @classmethod
    def _split_fallbacks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def api_base_str(self) -> str | None:
        return str(self.api_base).rstrip("/") if self.api_base is not None else None


class PromptSettings(_Section):
    """Where the prompt files are read from."""

    prompts_dir: Path | None = Field(
        default=None, description="A folder of prompt files (NAME.toml) used instead of the bundled ones."
    )


class ServerSettings(_Section):
    """Who may use ``paper-assistant serve``: the bearer token, and the names it answers to."""

    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token every API request but /healthz must send; unset: no token (fine on loopback only).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated host names the API answers to besides loopback names, IP addresses and the "
        "bound address (a request whose Host header is another name is refused: DNS rebinding). '*' allows any.",
    )

    @field_validator("api_token")
    @classmethod
    def _a_real_token(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty or blank token used to be accepted: it turned authentication on and no client
        # could ever match it, so every request was 401 with no word at start-up.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("the token is empty or only spaces: unset it to serve without one, or set a real token")
        if value is not None and value.get_secret_value() != value.get_secret_value().strip():
            raise ValueError("the token starts or ends with spaces (clients cannot send those): remove them")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @property
    def token(self) -> str | None:
        return self.api_token.get_secret_value() if self.api_token is not None else None


_SECTIONS: dict[str, type[_Section]] = {
    "store": StoreSettings,
    "ingest": IngestSettings,
    "retrieval": RetrievalSettings,
    "answer": AnswerSettings,
    "llm": LLMSettings,
    "prompts": PromptSettings,
    "server": ServerSettings,
}
SECTION_OF: dict[str, str] = {field: name for name, section in _SECTIONS.items() for field in section.model_fields}
"""Each flat setting name (the environment variable without its prefix) and the section that holds it."""


class Settings(BaseModel):
    """Every setting of the project, one section per concern; see the module docstring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: StoreSettings = Field(default_factory=StoreSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="before")
    @classmethod
    def _route_flat_values(cls, values: Any) -> Any:
        """``Settings(model="fake")`` reads like ``ASSISTANT_MODEL=fake``: each flat value goes to its section.

        Every section is completed from the environment: a value given in code wins over its
        variable, a variable over the default.
        """
        if not isinstance(values, dict):
            return values
        sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, value in values.items():
            if key in _SECTIONS:
                given = value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else dict(value)
                sections[key].update(given)
            elif key in SECTION_OF:
                sections[SECTION_OF[key]][key] = value
            else:
                raise ValueError(f"unknown setting {key!r}")
        return {name: {**EnvSettingsSource(_SECTIONS[name])(), **given} for name, given in sections.items()}

    def replace(self, **flat: Any) -> Settings:
        """A copy with some values changed (flat names, as :class:`Settings` takes them), validated."""
        current = {name: getattr(self, name).model_dump() for name in _SECTIONS}
        for key, value in flat.items():
            if key not in SECTION_OF:
                raise ValueError(f"unknown setting {key!r}")
            current[SECTION_OF[key]][key] = value
        return Settings(**current)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``overrides``; an invalid value is :class:`InvalidInput` naming its variable."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise InvalidInput(f"invalid setting: {describe_invalid(exc)}") from None


def describe_invalid(exc: ValidationError) -> str:
    """A validation failure as ``ASSISTANT_NAME: what is wrong``, one per problem."""
    problems = []
    for error in exc.errors():
        names = [str(part) for part in error["loc"] if str(part) not in _SECTIONS]
        name = f"{ENV_PREFIX}{'_'.join(names).upper()}" if names else "settings"
        problems.append(f"{name}: {error['msg']}")
    return "; ".join(problems)
