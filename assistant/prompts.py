"""Prompts as data: TOML files in the top-level ``prompts`` package, rendered to messages.

Each file ``prompts/NAME.toml`` holds ``name`` (= NAME), ``version``, ``description``,
``system``, ``user`` and ``placeholders``: the ``str.format`` fields that ``system`` and
``user`` use, declared so that a template and its callers cannot drift apart silently.

Retrieved text reaches a prompt only through :func:`fence_sources`, which wraps every
source in ``<source>`` tags that the source's own text cannot close.
"""

from __future__ import annotations

import html
import re
import string
import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assistant.schema import Message

PROMPT_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
_PROMPT_NAME = re.compile(PROMPT_NAME_PATTERN)
# Anything that could read as a source tag, opening or closing, however spaced or cased.
_SOURCE_TAG = re.compile(r"<(\s*/?\s*source)", re.IGNORECASE)


class PromptError(ValueError):
    """A prompt file is invalid, missing, or was rendered with the wrong values."""


def template_fields(template: str) -> set[str]:
    """The ``str.format`` field names a template uses, nested format specs included.

    Only plain identifiers are allowed: positional (``{}``, ``{0}``), attribute and index
    fields (``{a.b}``, ``{a[0]}``) would make the declared placeholder list ambiguous.
    """
    fields: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PromptError(f"malformed template ({exc}); write literal braces as '{{{{' and '}}}}'") from exc
    for _literal, field_name, format_spec, _conversion in parsed:
        if field_name is None:
            continue
        if not field_name.isidentifier():
            raise PromptError(
                f"placeholder {{{field_name}}} is not a plain name; use named placeholders like {{question}}"
            )
        fields.add(field_name)
        if format_spec:
            fields |= template_fields(format_spec)
    return fields


class Prompt(BaseModel):
    """One versioned prompt template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=PROMPT_NAME_PATTERN)
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    system: str = ""
    user: str = Field(min_length=1)
    placeholders: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _declared_placeholders_match_used(self) -> Prompt:
        declared = set(self.placeholders)
        if len(declared) != len(self.placeholders):
            raise ValueError(f"placeholders lists a name twice: {list(self.placeholders)}")
        used = template_fields(self.system) | template_fields(self.user)
        undeclared = sorted(used - declared)
        unused = sorted(declared - used)
        problems = []
        if undeclared:
            problems.append(f"used but not declared in placeholders: {undeclared}")
        if unused:
            problems.append(f"declared in placeholders but not used: {unused}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def render(self, **values: object) -> list[Message]:
        """The system (when the template has one) and user messages with ``values`` filled in.

        Values are inserted verbatim and never re-parsed, so braces inside an abstract are safe.
        """
        declared = set(self.placeholders)
        missing = sorted(declared - values.keys())
        extra = sorted(values.keys() - declared)
        if missing or extra:
            details = []
            if missing:
                details.append(f"missing {missing}")
            if extra:
                details.append(f"unexpected {extra}")
            raise PromptError(f"prompt '{self.name}' v{self.version} takes {sorted(declared)}: " + ", ".join(details))
        messages = []
        if self.system.strip():
            messages.append(Message(role="system", content=self.system.format_map(values)))
        messages.append(Message(role="user", content=self.user.format_map(values)))
        return messages


def default_prompts_dir() -> Path:
    import prompts

    return Path(prompts.__file__).resolve().parent


def _resolve_dir(directory: Path | str | None) -> Path:
    return Path(directory) if directory is not None else default_prompts_dir()


@lru_cache(maxsize=128)
def _parse_prompt_file(path: Path, modified_ns: int) -> Prompt:
    """Parse one file; keyed on its mtime so an edited file is read again."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"{path}: not valid TOML: {exc}") from exc
    try:
        prompt = Prompt.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}" for error in exc.errors()
        )
        raise PromptError(f"{path}: {problems}") from exc
    if prompt.name != path.stem:
        raise PromptError(f"{path}: name '{prompt.name}' must match the file name '{path.stem}'")
    return prompt


def load_prompt(name: str, *, directory: Path | str | None = None) -> Prompt:
    """The prompt ``NAME`` from ``directory/NAME.toml`` (default: the ``prompts`` package)."""
    if not _PROMPT_NAME.match(name):
        raise PromptError(f"invalid prompt name {name!r}: use lowercase letters, digits and underscores")
    path = _resolve_dir(directory) / f"{name}.toml"
    try:
        modified_ns = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise PromptError(f"no prompt named '{name}' (looked for {path})") from None
    return _parse_prompt_file(path, modified_ns)


def load_all(*, directory: Path | str | None = None) -> dict[str, Prompt]:
    """Every prompt in ``directory``, validated; one error lists every invalid file."""
    folder = _resolve_dir(directory)
    prompts: dict[str, Prompt] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.toml")):
        try:
            prompts[path.stem] = load_prompt(path.stem, directory=folder)
        except PromptError as exc:
            problems.append(str(exc))
    if problems:
        raise PromptError(f"{len(problems)} invalid prompt file(s):\n" + "\n".join(problems))
    return prompts


def fence_sources(sources: list[tuple[int, str, str]]) -> str:
    """Numbered sources ``(n, title, text)`` fenced as data the model can cite as ``[n]``.

    Each becomes ``<source n="1" title="...">text</source>``. Source text is untrusted: any
    ``<source`` or ``</source`` inside it is escaped to ``&lt;...`` so that it can neither
    close its fence nor open a fake one, and titles are attribute-escaped on one line.
    An apostrophe is left as it is: the attribute is in double quotes, and a model copies
    ``&#x27;`` from the prompt into its answer, where the support check no longer matches it.
    """
    blocks = []
    for n, title, text in sources:
        if n < 1:
            raise ValueError(f"source numbers start at 1, got {n}")
        safe_title = html.escape(" ".join(title.split()), quote=False).replace('"', "&quot;")
        safe_text = _SOURCE_TAG.sub(r"&lt;\1", text.strip())
        blocks.append(f'<source n="{n}" title="{safe_title}">\n{safe_text}\n</source>')
    return "\n\n".join(blocks)
