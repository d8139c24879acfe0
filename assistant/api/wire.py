"""OpenAI's wire format: the bodies of requests and replies, its error format, and SSE framing.

Kept apart from the routes so that what a client sees is defined in one place: the response
models (also what ``/openapi.json`` publishes), :func:`error_content` (any failure as OpenAI's
``{"error": {...}}`` with the status :func:`assistant.errors.describe` gives) and :func:`sse`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.errors import LLMError, describe
from assistant.redaction import redact_secrets
from assistant.schema import Comparison, DateRange
from assistant.service import Reply

MODEL_ID = "paper-assistant"
VARIANT_SEPARATOR = ":"
TOKEN_ENV = "ASSISTANT_API_TOKEN"


# --- errors in OpenAI's format ----------------------------------------------------------------
class ApiError(Exception):
    """A failure of the HTTP layer itself (unknown model, bad token, bad upload)."""

    def __init__(
        self, status: int, message: str, *, code: str, type_: str | None = None, param: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.type = type_ or error_type(status)
        self.param = param
        self.extra = extra


def error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status < 500:
        return "invalid_request_error"
    return "server_error"


def _snake(name: str) -> str:
    """``StoreUnavailable`` -> ``store_unavailable``, ``LLMError`` -> ``llm_error``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def error_body(message: str, *, type_: str, code: str | None, param: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": redact_secrets(message), "type": type_, "code": code, "param": param, **extra}}


def error_content(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """HTTP status and OpenAI error body for any exception; the message is the CLI's, secrets masked."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(str(exc), type_=exc.type, code=exc.code, param=exc.param, **exc.extra)
    report = describe(exc)
    code = "internal" if report.kind == "internal" else _snake(report.error_type)
    if isinstance(exc, LLMError) and exc.kind == "unknown_model":
        code = "model_not_found"
    return report.http_status, error_body(report.message, type_=error_type(report.http_status), code=code)


def error_response(exc: BaseException, headers: Mapping[str, str] | None = None) -> JSONResponse:
    status, body = error_content(exc)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _location(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts)


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    shown = [f"{_location(e.get('loc', ())) or 'request'}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    param = _location(errors[0].get("loc", ())) if errors else None
    return "invalid request: " + "; ".join(shown) + more, param or None


# --- request and response bodies --------------------------------------------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if part.type == "text" and part.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class DateRangeIn(BaseModel):
    """Days to read (``Paper.day``: the day a paper was listed), inclusive; either end may be left out."""

    model_config = ConfigDict(extra="forbid")
    start: date | None = Field(default=None, description="First day (YYYY-MM-DD); none: from the first day held")
    end: date | None = Field(default=None, description="Last day (YYYY-MM-DD); none: to the newest day held")

    @model_validator(mode="after")
    def _ordered(self) -> DateRangeIn:
        if self.start is None and self.end is None:
            raise ValueError("give start, end or both (YYYY-MM-DD)")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"the range starts after it ends: {self.start} is after {self.end}")
        return self

    @property
    def days(self) -> DateRange:
        return DateRange(start=self.start or date.min, end=self.end or date.max)


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request; sampling options are accepted and left to the assistant's settings."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(description=f"'{MODEL_ID}' or '{MODEL_ID}{VARIANT_SEPARATOR}MODEL' (see GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation; the last message is the question")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is generated")
    temperature: float | None = Field(default=None, description="Accepted, not used: ASSISTANT_TEMPERATURE decides")
    max_tokens: int | None = Field(default=None, description="Accepted, not used: ASSISTANT_MAX_ANSWER_TOKENS decides")
    stream_unchecked: bool = Field(
        default=False,
        description="Streamed only: send the model's words as it writes them, before the support check; the last "
        "chunk's final_text is then the checked reply, also appended to the content when it differs",
    )
    date_range: DateRangeIn | None = Field(
        default=None,
        description="Read only papers listed in these days; a date phrase in the question ('last week') wins over it",
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = MODEL_ID


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class CitationOut(BaseModel):
    n: int
    paper_id: str
    title: str
    url: str | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class UsageOut(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    """OpenAI's ``chat.completion`` plus the assistant's extras (streamed: on the last chunk)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: UsageOut
    system_fingerprint: str | None = None
    kind: str = Field(description="answer, comparison, summary, clarification or refusal")
    citations: list[CitationOut] = Field(description="What the [n] markers in the text point to")
    unsupported: list[str] = Field(description="Sentences the support check could not ground in the cited abstracts")
    refused: bool = Field(description="The collection does not cover the question")
    outcome: str = Field(
        default="answer",
        description="What the user got: answer, answer_under_title, one_line_per_paper, abstract_sentences, decline or question_back",
    )
    reason: str = Field(
        default="grounded", description="Why, as a code (assistant.outcomes.Reason; README, 'Outcomes')"
    )
    notices: list[str]
    answered_by: str = Field(description="The model that wrote the reply (a fallback, if the first failed)")
    comparison: dict[str, Any] | None = Field(
        default=None, description="For comparisons: the table (Comparison) as JSON"
    )


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    papers: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in (
        (400, "Bad request (also what a request that fails validation gets)"),
        (401, f"Missing or wrong bearer token ({TOKEN_ENV} is set)"),
        (404, "Unknown model or paper"),
        (503, "The model or the store is unavailable"),
    )
}


def sse(data: Mapping[str, Any] | str) -> str:
    """One server-sent event as OpenAI frames it: ``data: {json}`` and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n"


def usage_out(reply: Reply) -> dict[str, int]:
    prompt, completion = reply.usage.prompt_tokens, reply.usage.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def extras(reply: Reply) -> dict[str, Any]:
    """The assistant's fields beside OpenAI's."""
    return {
        "kind": reply.kind,
        "citations": [citation.model_dump(mode="json") for citation in reply.citations],
        "unsupported": list(reply.unsupported),
        "refused": reply.refused,
        "outcome": reply.outcome.value,
        "reason": reply.reason.value,
        "notices": list(reply.notices),
        "answered_by": reply.model,
        "comparison": reply.result.model_dump(mode="json") if isinstance(reply.result, Comparison) else None,
    }
