"""Which papers a message means: titles, short names, acronyms and ids, tolerant to case and typos.

An :class:`AliasIndex` is mined once per collection (and cached by the papers' ids and content
hashes): full titles, the parts of a title around its colon, names the abstract introduces
("we introduce aTLAS", "... (MULTI-LANE)", "we dub 'functional Token Resonance Imaging' (fTRI)"),
initialisms of title words and rare name-shaped terms. Resolving a message is then a scan of its
token n-grams against a dict, so it costs microseconds per token whatever the collection's size.

The index is built to avoid false positives more than to find every mention: a message that names
no paper must resolve to nothing, because the caller forces resolved papers into the answer.
Generic terms (LLM, transformer, task) never become names, a term shared by a few papers is
reported as ambiguous, and one shared by more is no name at all.

Longer than most modules (about 600 lines) because mining and matching are one algorithm:
every kind of alias the index mines is matched by the same scan, and splitting them would
leave each half unreadable without the other. The word rules it uses live in
:mod:`assistant.text`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from assistant.schema import Paper
from assistant.text import (
    GENERIC_ACRONYMS,
    STOP_UNITS,
    Token,
    compact,
    content_units,
    is_acronym_shaped,
    is_name_shaped,
    normalize,
    split_sentences,
    tokenize,
    units_of,
    words,
)

MAX_OWNERS = 3
"""A name shared by more papers than this is a generic term, not a way to pick papers."""

MAX_TITLE_CANDIDATES = 5
"""An explicit name found in more titles than this is a common word ("task"), not an ambiguous name."""

_ARXIV_ID = re.compile(r"(?<![\w.])(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?![\w.])", re.IGNORECASE)
_QUOTED = re.compile(
    r"\"([^\"\n]{2,200})\"|“([^”\n]{2,200})”|‘([^’\n]{2,200})’"
    r"|(?<![\w’'])'([^'\n]{2,200})'(?!\w)"  # single quotes, but not apostrophes
)
_TITLE_SPLIT = re.compile(r"\s*(?::|\?|\s--\s|\s—\s|\s–\s)\s*")
_INTRO_SUBJECT = re.compile(r"\b(?:we|our|this (?:paper|work))\b", re.IGNORECASE)
_INTRO_VERB = re.compile(
    r"\b(?:introduc\w*|propos\w*|present\w*|dub\w*|nam(?:e|ed|es)|call(?:ed|s)?|term(?:ed|s)?|coin(?:ed|s)?|"
    r"develop\w*)\b",
    re.IGNORECASE,
)
INTRO_REACH_WORDS = 20
"""An acronym in parentheses is the paper's own name when an introducing verb comes at most this many words before."""
_INTRO_PREFIX = re.compile(
    r"\b(?:we|We)\s+(?:also\s+|then\s+|further\s+|hence\s+|therefore\s+)?(?:introduce|propose|present|name|call|dub|"
    r"term|coin|develop|design|release|build|construct|contribute)\s+(?:(?:our|the|this|these|its|their)\s+"
    r"(?:[a-z-]+\s+){0,2}?(?=[A-Z'\"‘“]|[a-z]+[A-Z])|the\s+|a\s+novel\s+|a\s+new\s+|an\s+|a\s+)?"
)
_CALLED = re.compile(r"\b(?:called|named|dubbed|termed|coined)\s+(?=[A-Z'\"‘“]|[a-z]+[A-Z])")
_OWN_NAME = re.compile(r"\b(?:[Oo]ur|the proposed|[Oo]ur proposed)\s+(?=\S*[A-Z]\S*[A-Z])")
_APPOSITION = re.compile(
    r"\b([\w^+-]+),\s+an?\s+(?:[\w-]+\s+){0,3}?(?:method|model|framework|approach|algorithm|agent|system|"
    r"technique|architecture|pipeline|network)\b"
)
_PAREN = re.compile(r"\(([^()]{1,120})\)")
_NAMING_CUE_BEFORE = frozenset(
    "compare compared comparing contrast summarize summarise summarizing summarising summary explain describe vs "
    "versus with and or between about of is".split()
)
_NAMING_CUE_AFTER = frozenset("paper papers vs versus and".split())
_CONNECTORS = frozenset("of the for and to in with on by a an".split())
_TITLE_CONNECTORS = frozenset("for via with in of by on from towards toward using to at and through across".split())


class AmbiguousMention(BaseModel):
    """A name in the message that fits several papers: the user should say which one."""

    mention: str
    candidates: list[Paper]


class Resolution(BaseModel):
    """The papers a message names: matched ones in order of mention, ambiguous and unknown names."""

    matched: list[Paper] = Field(default_factory=list)
    ambiguous: list[AmbiguousMention] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list, description="Names that look like paper names but fit none")


# --- tokens -----------------------------------------------------------------------------------
# --- the index ----------------------------------------------------------------------------------
class AliasKind(IntEnum):
    """How a name was found; the stronger kind wins when two kinds claim one key for different papers."""

    TERM = 1  # a rare name-shaped word of the title or abstract (LoRA, MiniWoB++)
    INITIALISM = 2  # initials of title words (DTRN, PRD): only matched when written as an acronym
    NAME = 3  # a name the paper gives itself (aTLAS, TRAD, MULTI-LANE, Synapse)
    PHRASE = 4  # several words naming the paper: title head or tail, an acronym's expansion
    TITLE = 5


@dataclass(frozen=True)
class Alias:
    """One way to name papers: ``key`` is the compacted spelling that message n-grams are looked up by."""

    key: str
    kind: AliasKind
    owners: tuple[int, ...]
    surface: str
    token_count: int


@dataclass(frozen=True)
class _Mention:
    """A place in the message that names ``owners`` (indices into the index's papers)."""

    surface: str
    start: int
    owners: tuple[int, ...]


class AliasIndex:
    """Every way the collection's papers can be named, mined once per collection."""

    _cache: ClassVar[dict[str, AliasIndex]] = {}
    _cache_lock = threading.Lock()
    _CACHE_SIZE = 4

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.papers = list(papers)
        self.ids: dict[str, int] = {}
        self.aliases: dict[str, Alias] = {}
        self._max_tokens = 1
        abstracts = [words(normalize(paper.abstract)) for paper in self.papers]
        self._title_units = [units_of(paper.title) for paper in self.papers]
        documents = [
            [unit for unit in [*title, *(compact(word) for word in abstract)] if unit]
            for title, abstract in zip(self._title_units, abstracts, strict=True)
        ]
        # Padded with spaces so that a phrase is found as whole words: f" {phrase} " in document
        self._documents = [f" {' '.join(units)} " for units in documents]
        self._vocabulary = frozenset(unit for units in documents for unit in units) | STOP_UNITS
        self._document_frequency = Counter(unit for units in documents for unit in set(units))
        # Words the collection writes in lower case are ordinary words: "muscle" is not MUSCLE.
        lowercase = {word for abstract in abstracts for word in abstract if word.islower()}
        self._ordinary = frozenset(compact(word) for word in lowercase)
        self._abstract_words = abstracts
        self._title_postings: dict[str, set[int]] = defaultdict(set)
        for index, units in enumerate(self._title_units):
            for unit in content_units(units):
                self._title_postings[unit].add(index)
        self._collect()
        self._title_strings = [f" {' '.join(units)} " for units in self._title_units]
        self._colon_heads = [
            [token.unit for token in tokenize(paper.title.split(":", 1)[0])] if ":" in paper.title else []
            for paper in self.papers
        ]
        self._by_length: dict[int, list[str]] = defaultdict(list)
        for unit in sorted({unit for alias in self.aliases.values() for unit in units_of(alias.surface)}):
            self._by_length[len(unit)].append(unit)
        self._corrections: dict[str, str] = {}
        # Whole-string fuzzy matching is for names and titles, not for weak terms or initialisms.
        self._fuzzy_keys = [key for key, a in self.aliases.items() if a.kind >= AliasKind.NAME and len(key) >= 5]
        self._fuzzy_choices = [" ".join(units_of(self.aliases[key].surface)) for key in self._fuzzy_keys]

    @classmethod
    def build(cls, papers: Sequence[Paper]) -> AliasIndex:
        """The index of ``papers``, reused while the same papers (by id and content hash) are passed."""
        digest = hashlib.sha256()
        for paper in papers:
            digest.update(f"{paper.paper_id}\x1f{paper.content_hash}\x1e".encode())
        key = digest.hexdigest()
        with cls._cache_lock:
            cached = cls._cache.get(key)
        if cached is not None:
            return cached
        index = cls(papers)
        with cls._cache_lock:
            if len(cls._cache) >= cls._CACHE_SIZE:
                cls._cache.pop(next(iter(cls._cache)))
            cls._cache[key] = index
        return index

    # --- mining -----------------------------------------------------------------------------
    def _collect(self) -> None:
        found: dict[str, dict[AliasKind, set[int]]] = defaultdict(lambda: defaultdict(set))
        surfaces: dict[str, tuple[str, int]] = {}

        def add(surface: str, kind: AliasKind, owner: int) -> None:
            surface = surface.strip(" .,;:'\"‘’“”")
            units = units_of(surface)
            key = "".join(units)
            if len(key) < 2 or not content_units(units):
                return
            if kind < AliasKind.PHRASE and (key in GENERIC_ACRONYMS or key.rstrip("s") in GENERIC_ACRONYMS):
                return
            found[key][kind].add(owner)
            surfaces.setdefault(key, (surface, len(units)))

        for index, paper in enumerate(self.papers):
            self._register_ids(paper, index)
            for surface, kind in self._title_aliases(paper.title):
                add(surface, kind, index)
            for surface, kind in self._abstract_aliases(paper, self._abstract_words[index]):
                add(surface, kind, index)

        for key, by_kind in found.items():
            kind = max(by_kind)
            owners = by_kind[kind]
            if kind < AliasKind.PHRASE and len(owners) > MAX_OWNERS:
                continue
            if kind <= AliasKind.INITIALISM and not self._rare_enough(key, owners, kind):
                continue
            surface, token_count = surfaces[key]
            self.aliases[key] = Alias(key, kind, tuple(sorted(owners)), surface, token_count)
            # A one-token name may be typed as several ("ZIP FIT", "BT 2"): scan a little longer spans.
            self._max_tokens = max(self._max_tokens, token_count + 2)

    def _rare_enough(self, key: str, owners: set[int], kind: AliasKind) -> bool:
        """A weak name is one only while few papers use the word; an initialism must be nobody else's acronym."""
        users = self._document_frequency.get(key, 0)
        if kind == AliasKind.INITIALISM:
            return users == sum(f" {key} " in self._documents[owner] for owner in owners)
        return users <= MAX_OWNERS

    def _register_ids(self, paper: Paper, index: int) -> None:
        for identifier in (paper.paper_id, paper.arxiv_id):
            if identifier:
                self.ids[identifier.casefold()] = index
                self.ids[compact(identifier)] = index

    def _title_aliases(self, title: str) -> Iterator[tuple[str, AliasKind]]:
        title = normalize(title).strip()
        yield title, AliasKind.TITLE
        parts = [part for part in _TITLE_SPLIT.split(title) if part]
        if len(parts) > 1:
            head, tail = parts[0], " ".join(parts[1:])
            head_tokens = tokenize(head)
            if len(head_tokens) == 1:
                if head_tokens[0].unit not in STOP_UNITS:
                    yield head, AliasKind.NAME
            elif len(content_units(t.unit for t in head_tokens)) >= 2:
                yield head, AliasKind.PHRASE
            if len(content_units(units_of(tail))) >= 3:
                yield tail, AliasKind.PHRASE
        for token in tokenize(title):
            if _coined(token.text) and len(token.unit) >= 3:
                yield token.text, AliasKind.TERM
        if len(tokenize(parts[0])) > 1:
            for initialism in _initialisms(parts[0]):
                yield initialism, AliasKind.INITIALISM

    def _abstract_aliases(self, paper: Paper, surfaces: list[str]) -> Iterator[tuple[str, AliasKind]]:
        abstract = normalize(paper.abstract)
        for sentence in split_sentences(abstract):
            for pattern in (_INTRO_PREFIX, _CALLED, _OWN_NAME):
                for match in pattern.finditer(sentence):
                    name = _leading_name(sentence[match.end() : match.end() + 160])
                    if name:
                        yield name, AliasKind.PHRASE if len(tokenize(name)) > 1 else AliasKind.NAME
            for match in _APPOSITION.finditer(sentence):
                # "Mind2Web, a real-world benchmark" also fits: only a word no other paper uses is a name.
                name = match.group(1)
                if is_name_shaped(name) and self._document_frequency.get(compact(name), 0) == 1:
                    yield name, AliasKind.NAME
            for match in _PAREN.finditer(sentence):
                yield from _parenthetical_aliases(sentence, match)
        # A coined word the abstract keeps repeating and no other paper uses is most likely its subject.
        counts = Counter(word for word in surfaces if len(word) >= 3 and _coined(word) and len(compact(word)) >= 3)
        for surface, count in counts.items():
            if count >= 2 and self._document_frequency.get(compact(surface), 0) == 1:
                yield surface, AliasKind.TERM

    # --- resolving --------------------------------------------------------------------------
    def resolve(self, text: str) -> Resolution:
        """The papers a free-text message names (quoted or not)."""
        text = normalize(text)
        mentions: list[_Mention] = []
        unresolved_quotes: list[tuple[int, int, str]] = []
        masked = list(text)
        for match in _QUOTED.finditer(text):
            quoted = next(group for group in match.groups() if group is not None).strip()
            owners = self._explicit_owners(quoted, acronyms_only=True)
            if owners:
                mentions.append(_Mention(quoted, match.start(), owners))
                masked[match.start() : match.end()] = " " * (match.end() - match.start())
            else:  # a quoted sentence may still name a paper inside it
                unresolved_quotes.append((match.start(), match.end(), quoted))
        unquoted = "".join(masked)
        for match in _ARXIV_ID.finditer(unquoted):
            owner = self.ids.get(match.group(1).casefold())
            if owner is not None:
                mentions.append(_Mention(match.group(), match.start(), (owner,)))
        tokens = [token for token in tokenize(unquoted) if not _ARXIV_ID.fullmatch(token.text)]
        units = self._corrected([token.unit for token in tokens])
        scanned, covered = self._scan(tokens, units)
        mentions.extend(scanned)
        mentions.extend(self._partial_titles(tokens, units, covered))
        unknown = self._unknown_names(tokens, units, covered)
        for start, end, quoted in unresolved_quotes:
            if _looks_like_name(quoted) and not any(start <= mention.start < end for mention in mentions):
                unknown = [(position, name) for position, name in unknown if not start <= position < end]
                unknown.append((start, quoted))
        return self._assemble(mentions, unknown)

    def resolve_one(self, name: str) -> Resolution:
        """The paper an explicit command argument names; any part of a title counts, ambiguity is listed."""
        name = normalize(name).strip().strip("\"'“”‘’").strip()
        if not name:
            return Resolution()
        owners = self._explicit_owners(name, acronyms_only=False)
        if owners:
            return self._assemble([_Mention(name, 0, owners)], [])
        in_text = self.resolve(name)
        if in_text.matched or in_text.ambiguous:
            return in_text
        return Resolution(unknown=[name])

    def _explicit_owners(self, name: str, *, acronyms_only: bool) -> tuple[int, ...]:
        """Papers a name given on its own refers to: by id, alias, words of a title, or fuzzily.

        ``acronyms_only``: an initialism of title words counts only when written as an acronym (PRD, not "prd").
        """
        identifier = self.ids.get(name.casefold())
        if identifier is None:
            arxiv = _ARXIV_ID.fullmatch(name.strip())
            identifier = self.ids.get(arxiv.group(1).casefold()) if arxiv else None
        if identifier is None:
            identifier = self.ids.get(compact(name)) if len(compact(name)) >= 8 else None
        if identifier is not None:
            return (identifier,)
        units = self._corrected([token.unit for token in tokenize(name)])
        if not units:
            return ()
        alias = self.aliases.get("".join(units))
        if alias is not None and (alias.kind != AliasKind.INITIALISM or not acronyms_only or is_acronym_shaped(name)):
            return self._with_spelled_apart(name, alias.owners)
        if not content_units(units):
            # Only common words: it names a paper only as the whole part of a title before its colon ("Less is more").
            return tuple(i for i, head in enumerate(self._colon_heads) if head == units)
        if "".join(units).removesuffix("s") in GENERIC_ACRONYMS:
            return ()
        in_titles = self._titles_containing(units)
        if len(in_titles) > MAX_TITLE_CANDIDATES:
            return ()  # "task", "transformer": a common word, not a way to pick a paper
        return self._with_spelled_apart(name, in_titles) or self._fuzzy_owners(" ".join(units))

    def _with_spelled_apart(self, name: str, owners: tuple[int, ...]) -> tuple[int, ...]:
        """``owners``, unless other titles spell the hyphenated ``name`` apart: then it is a term several
        titles use, not a way to pick one paper. 'long-context' is the "Long-Context" of one title and the
        "Long Context" of another; held-out h42 ("tasks lumped together as 'long-context'") was read
        from the first paper alone, and the second was the answer."""
        if "-" not in name:
            return owners
        parts = [token.unit for part in name.split("-") for token in tokenize(part)]
        if len(parts) < 2 or not content_units(parts):
            return owners
        apart = self._titles_containing(parts)
        return owners if set(apart) <= set(owners) else ()

    def _titles_containing(self, units: list[str]) -> tuple[int, ...]:
        """Titles that contain the words ``units`` in a row; the last word may differ by a plural s."""
        last = units[-1]
        variants = {last, last[:-1] if last.endswith("s") else f"{last}s"}
        phrases = [f" {' '.join([*units[:-1], variant])} " for variant in variants]
        return tuple(i for i, title in enumerate(self._title_strings) if any(p in title for p in phrases))

    def _fuzzy_owners(self, query: str) -> tuple[int, ...]:
        if len(query) < 5:
            return ()
        found = process.extract(query, self._fuzzy_choices, scorer=fuzz.ratio, score_cutoff=88, limit=5)
        if not found:
            return ()
        best = found[0][1]
        owners: list[int] = []
        for _, score, position in found:
            if score >= best - 3:
                owners.extend(o for o in self.aliases[self._fuzzy_keys[position]].owners if o not in owners)
        return tuple(owners)

    def _corrected(self, units: list[str]) -> list[str]:
        """Units with typos fixed: a word the collection never uses, one or two edits from a word of a name."""
        return [self._correction(unit) for unit in units]

    def _correction(self, unit: str) -> str:
        if unit in self._vocabulary or len(unit) < 5 or unit.isdigit():
            return unit
        cached = self._corrections.get(unit)
        if cached is None:
            allowed = 1 if len(unit) <= 8 else 2
            lengths = range(len(unit) - allowed, len(unit) + allowed + 1)
            choices = [word for length in lengths for word in self._by_length.get(length, ())]
            best = process.extractOne(unit, choices, scorer=OSA.distance, score_cutoff=allowed)
            cached = best[0] if best else unit
            if len(self._corrections) < 10_000:
                self._corrections[unit] = cached
        return cached

    def _scan(self, tokens: list[Token], units: list[str]) -> tuple[list[_Mention], set[int]]:
        """Longest alias match at each position, left to right; returns the mentions and covered token positions."""
        mentions: list[_Mention] = []
        covered: set[int] = set()
        position = 0
        while position < len(tokens):
            for length in range(min(self._max_tokens, len(tokens) - position), 0, -1):
                span = tokens[position : position + length]
                alias = self.aliases.get("".join(units[position : position + length]))
                if alias is not None and _acceptable(alias, span, self._ordinary):
                    surface = span[0].text if length == 1 else " ".join(token.text for token in span)
                    mentions.append(_Mention(surface, span[0].start, alias.owners))
                    covered.update(range(position, position + length))
                    position += length
                    break
            else:
                position += 1
        return mentions, covered

    def _partial_titles(self, tokens: list[Token], all_units: list[str], covered: set[int]) -> list[_Mention]:
        """Runs of three or more title words, written unquoted, that only a few papers' texts contain."""
        free = [(i, token) for i, token in enumerate(tokens) if i not in covered]
        units = [all_units[i] for i, _ in free]
        shared: Counter[int] = Counter()
        for unit in set(content_units(units)):
            for title in self._title_postings.get(unit, ()):
                shared[title] += 1
        mentions = []
        seen_runs: set[str] = set()
        for title, count in shared.items():
            if count < 3:
                continue
            for start, end in _common_runs(units, self._title_units[title]):
                run = " ".join(units[start:end])
                if run in seen_runs or len(content_units(units[start:end])) < 3:
                    continue
                seen_runs.add(run)
                in_titles = tuple(i for i, text in enumerate(self._title_strings) if f" {run} " in text)
                in_texts = sum(f" {run} " in document for document in self._documents)
                if in_titles and len(in_titles) <= MAX_OWNERS and in_texts <= MAX_OWNERS:
                    surface = " ".join(token.text for _, token in free[start:end])
                    mentions.append(_Mention(surface, free[start][1].start, in_titles))
        return mentions

    def _unknown_names(self, tokens: list[Token], units: list[str], covered: set[int]) -> list[tuple[int, str]]:
        """Coined-looking words the collection has never seen, placed where a paper's name would be."""
        unknown = []
        for position, token in enumerate(tokens):
            if position in covered or not is_name_shaped(token.text) or token.unit in self._vocabulary:
                continue
            if token.unit in GENERIC_ACRONYMS or re.sub(r"\d+$", "", token.unit) in GENERIC_ACRONYMS:
                continue
            if units[position] != token.unit:  # a typo of a known name, not a new one
                continue
            before = tokens[position - 1].unit if position > 0 else ""
            after = tokens[position + 1].unit if position + 1 < len(tokens) else ""
            if before in _NAMING_CUE_BEFORE or after in _NAMING_CUE_AFTER or len(tokens) == 1:
                unknown.append((token.start, token.text))
        return unknown

    def _assemble(self, mentions: list[_Mention], unknown: list[tuple[int, str]]) -> Resolution:
        mentions.sort(key=lambda mention: mention.start)
        matched: list[int] = []
        for mention in mentions:
            if len(mention.owners) == 1 and mention.owners[0] not in matched:
                matched.append(mention.owners[0])
        ambiguous: list[AmbiguousMention] = []
        seen: set[tuple[int, ...]] = set()
        for mention in mentions:
            # A vaguer mention of papers already named ("both have LoRA in the name") refers to them.
            if len(mention.owners) < 2 or set(mention.owners) & set(matched) or mention.owners in seen:
                continue
            seen.add(mention.owners)
            candidates = [self.papers[i] for i in mention.owners]
            ambiguous.append(AmbiguousMention(mention=mention.surface, candidates=candidates))
        return Resolution(
            matched=[self.papers[i] for i in matched],
            ambiguous=ambiguous,
            unknown=list(dict.fromkeys(name for _, name in sorted(unknown))),
        )


# --- mining helpers -------------------------------------------------------------------------------
def _leading_name(text: str) -> str | None:
    """The name at the start of ``text``: a quoted phrase, a coined word, or a run of Capitalised words."""
    text = text.lstrip()
    quoted = re.match(r"[\"'‘“]([^\"'’”]{2,80})[\"'’”]", text)
    if quoted:
        return quoted.group(1)
    run: list[Token] = []
    for token in tokenize(text):
        gap = text[run[-1].end : token.start] if run else text[: token.start]
        if gap.strip() or len(run) >= 8:
            break
        capitalised = token.text[0].isupper() or is_name_shaped(token.text)
        if not (capitalised or (run and token.unit in _CONNECTORS)):
            break
        run.append(token)
    while run and run[-1].unit in _CONNECTORS:
        run.pop()
    if not run or (len(run) == 1 and run[0].unit in STOP_UNITS):
        return None
    return text[run[0].start : run[-1].end]


def _parenthetical_aliases(sentence: str, match: re.Match[str]) -> Iterator[tuple[str, AliasKind]]:
    """``expansion (ACRONYM)`` and ``ACRONYM (expansion)`` right after the paper says it introduces them."""
    before = sentence[: match.start()].rstrip()
    if not before or not (before[-1].isalnum() or before[-1] in "'’\"”+"):
        return  # "(1)", "observations: (O1)": an enumeration, not a name
    reach = " ".join(before.split()[-INTRO_REACH_WORDS:])
    if not (_INTRO_VERB.search(reach) and _INTRO_SUBJECT.search(before)):
        return
    inner = match.group(1).strip()
    inner_tokens = tokenize(inner)
    if len(inner_tokens) == 1 and inner_tokens[0].text == inner and _coined(inner):
        yield inner, AliasKind.NAME
        expansion = _expansion(inner, " ".join(before.rstrip("'\"’”").split()[-(len(inner) + 6) :]))
        if expansion and len(content_units(units_of(expansion))) >= 2:
            yield expansion, AliasKind.PHRASE
        return
    preceding = tokenize(before)
    if 2 <= len(inner_tokens) <= 12 and preceding and _coined(preceding[-1].text):
        acronym = preceding[-1].text
        if before.endswith(acronym) and _expansion(acronym, inner) == inner:
            yield acronym, AliasKind.NAME
            yield inner, AliasKind.PHRASE


def _coined(token: str) -> bool:
    """A name-shaped word with at least two letters that is not a generic acronym."""
    return (
        is_name_shaped(token)
        and sum(ch.isalpha() for ch in token) >= 2
        and compact(token) not in GENERIC_ACRONYMS
        and compact(token).rstrip("s") not in GENERIC_ACRONYMS
    )


def _expansion(acronym: str, text: str) -> str | None:
    """The shortest tail of ``text`` whose letters spell ``acronym`` in order from a word start (Schwartz-Hearst)."""
    letters = [ch.casefold() for ch in acronym if ch.isalnum()]
    if not letters or not text:
        return None
    position = len(text) - 1
    for index in range(len(letters) - 1, -1, -1):
        while position >= 0 and (
            text[position].casefold() != letters[index]
            or (index == 0 and position > 0 and text[position - 1].isalnum())  # the first letter starts a word
        ):
            position -= 1
        if position < 0:
            return None
        position -= 1
    found = text[text.rfind(" ", 0, position + 1) + 1 :].strip()
    return found if len(found.split()) <= len(letters) + 5 else None


def _initialisms(head: str) -> set[str]:
    """Acronyms of a title's leading phrase: word initials, hyphen parts' initials, or one word left out (DTRN)."""
    phrase = re.split(rf"\s+(?:{'|'.join(_TITLE_CONNECTORS)})\s+", head, maxsplit=1, flags=re.IGNORECASE)[0]
    title_words = [token.text for token in tokenize(phrase) if token.unit not in STOP_UNITS]
    if not 2 <= len(title_words) <= 6:
        return set()
    firsts = [word[0] for word in title_words]
    parts = [part[0] for word in title_words for part in re.split(r"[-/]", word) if part]
    initialisms = {"".join(firsts), "".join(parts)}
    for left_out in range(1, len(title_words)):
        initialisms.add("".join(firsts[:left_out] + firsts[left_out + 1 :]))
    return {initialism.upper() for initialism in initialisms if len(initialism) >= 3 and initialism.isalpha()}


# --- matching helpers -----------------------------------------------------------------------------
def _acceptable(alias: Alias, span: list[Token], ordinary: frozenset[str]) -> bool:
    """Whether a span of free text really uses ``alias`` rather than ordinary words that spell it."""
    if span[0].unit in STOP_UNITS and alias.kind < AliasKind.PHRASE:
        return False
    if len(span) > 1 and span[-1].unit in STOP_UNITS:
        return False
    lowercase = all(token.text.islower() or not any(ch.isalpha() for ch in token.text) for token in span)
    if alias.kind == AliasKind.INITIALISM:
        return len(span) == 1 and is_acronym_shaped(span[0].text)
    if alias.kind in (AliasKind.NAME, AliasKind.TERM) and alias.token_count == 1 and lowercase:
        # "zip fit" or "muscle" in lower case are words; "zipfit" and "atlas" are still names.
        return len(span) == 1 and alias.key not in ordinary and alias.key not in STOP_UNITS
    return True


def _common_runs(units: list[str], title: list[str]) -> list[tuple[int, int]]:
    """Maximal runs of ``units`` (as [start, end) positions) that occur contiguously in ``title``, stopwords trimmed."""
    runs = []
    for i, unit in enumerate(units):
        for j, title_unit in enumerate(title):
            if unit != title_unit or (i > 0 and j > 0 and units[i - 1] == title[j - 1]):
                continue  # not where a maximal run starts
            end = i
            while end < len(units) and j + end - i < len(title) and units[end] == title[j + end - i]:
                end += 1
            start = i
            while start < end and units[start] in STOP_UNITS:
                start += 1
            while end > start and units[end - 1] in STOP_UNITS:
                end -= 1
            if end > start:
                runs.append((start, end))
    return runs


def _looks_like_name(quoted: str) -> bool:
    """A quoted phrase the user probably meant as a paper's name: a coined word or Title Case words."""
    tokens = tokenize(quoted)
    if not tokens or len(tokens) > 25:
        return False
    if any(is_name_shaped(token.text) for token in tokens):
        return True
    content = [token for token in tokens if token.unit not in STOP_UNITS]
    return bool(content) and all(token.text[0].isupper() for token in content)


def resolve_papers(text: str, papers: Sequence[Paper]) -> Resolution:
    """The papers a user's message names, in order of mention, with ambiguous and unknown names."""
    if not papers or not text.strip():
        return Resolution()
    return AliasIndex.build(papers).resolve(text)


def resolve_one(name: str, papers: Sequence[Paper]) -> Resolution:
    """The paper an explicit argument (``summarize DTRN``) names; title fragments and typos allowed."""
    if not papers:
        return Resolution(unknown=[name.strip()] if name.strip() else [])
    return AliasIndex.build(papers).resolve_one(name)
