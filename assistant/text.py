"""Words and sentences: the one home of tokenizing, stemming, stopwords, abbreviations and sentence boundaries.

Everything that reads text (name resolution, BM25, the support check, themes, chunking,
extracts) splits and normalises it here, so two parts of the project never disagree on
what a sentence, a word, a stopword or a number is.

Three word forms serve three purposes, each defined once:

* :func:`tokenize` keeps a word as written and its *unit* (``compact``: "ZIP-FIT" and
  "zipfit" meet), for names and exact vocabulary;
* :func:`stem` is the Snowball stemmer (plus acronym plurals), for BM25 and coverage;
* :func:`key_stems` cuts content words to their first :data:`STEM_CHARS` letters, for the
  support check, where "distills" and "distillation" must meet (its thresholds were
  calibrated on this form: see :mod:`assistant.support`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

from assistant.citations import MARKER

# fmt: off
# Function words: English's (and bm25s's list, which adds contraction fragments such as "don", "ll").
STOPWORDS = frozenset("""
a about above across after again against all almost also although always am among an and another any anyone
anything are aren't around as at be became because become been before being below between both but by can
cannot could couldn't did didn't do does doesn't doing don't done down during each either else enough etc
even ever every few for from further get gets given gives go had hadn't has hasn't have haven't having he her
here hers herself him himself his how however i if in into is isn't it it's its itself just least less let
like made make makes many may me might more most much must my myself neither no nor not now of off often on
once one only onto or other others otherwise our ours ourselves out over own per perhaps please quite rather
really same several shall she should shouldn't since so some something still such than that the their theirs
them themselves then there therefore these they this those though through thus to together too toward towards
under until up upon us use used uses using very via was wasn't we well were weren't what whatever when where
whereas whether which while who whom whose why will with within without would wouldn't yet you your yours
yourself yourselves
""".split()) | frozenset(STOPWORDS_EN_PLUS)

# Acronyms every machine-learning abstract uses: never the name of one paper.
GENERIC_ACRONYMS = frozenset("""
ai ml dl nlp cv llm llms lm lms plm plms mllm mllms vlm vlms lvlm lvlms gpt gpts gpt2 gpt3 gpt4 bert t5 rl rlhf
dpo ppo sft peft cot icl mtl moe vit vits dit dits cnn cnns rnn rnns gnn gnns mlp mlps lstm gan gans vae vaes
sota api apis qa gpu gpus cpu tpu nli ner asr tts ood iid kl svd pca ann knn ntk cil sae saes ema
ii iii iv vi vii viii ix xi arxiv github https http url pdf
""".split())
# fmt: on


QUESTION_WORDS = frozenset(
    """
which what how paper papers work works method methods approach does differ difference compare comparison summarize
summary tell about any anything collection there deal aim use uses using show shows can also some form part own way
ways get gets getting make makes
""".split()
)
"""Words of how people ask ("which papers ... ?"): they carry no topic, so retrieval ignores them."""

RESEARCH_WORDS = frozenset(
    """
able abstract abstracts achieve achieved achieves across additionally address allow allows also approach
approaches art author authors available based best better challenge challenges current demonstrate
demonstrated demonstrates different effective effectively efficient efficiently evaluate evaluation
evaluations existing experiment experimental experiments extensive finally first furthermore however improve
improved improvement improvements improves introduce introduced introduces key main method methods moreover
new novel paper papers present presented presents previous prior propose proposed proposes recent recently
result results second several show showed shown shows significant significantly simple source sources
specifically state strong studies study third use used uses various via way well while work works
""".split()
)
"""How papers talk about themselves ("we propose", "results show", "significantly"): no topic in them."""
ML_WORDS = frozenset(
    """
amount application applications code com data framework github https input inputs language large learn learned
learning learns model models network networks neural number output outputs perform performance performs
problem problems set task tasks train trained training trains
""".split()
)
"""Words every machine-learning abstract uses (model, task, training, data): too common to tell papers apart."""

_TOKEN = re.compile(r"[^\W_]+(?:(?:[-^'’/]|(?<=\d)\.(?=\d))[^\W_]+)*\+*")
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_SUFFIXES = ("-based", "-like", "-style", "-only", "-inspired", "-powered")
_ROMAN = re.compile(r"^(?=[ivxlc]+$)c{0,3}(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$", re.IGNORECASE)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


_NOT_ALNUM = re.compile(r"[\W_]+")


@lru_cache(maxsize=1 << 16)
def compact(token: str) -> str:
    """What two spellings of one name share: casefolded letters and digits ("ZIP-FIT" == "zipfit")."""
    lowered = token.casefold()
    return lowered if lowered.isalnum() else _NOT_ALNUM.sub("", lowered)


@lru_cache(maxsize=1 << 16)
def is_name_shaped(token: str) -> bool:
    """Looks like a coined name: aTLAS, LoRA, DTRN, BT^2, DeepSeek-R1, MiniWoB++; not "Multi-Task" or "Transformer"."""
    if "^" in token or token.endswith("++"):
        return True
    if token[1:].islower() and not _DIGIT.search(token):  # the common case first: "word", "Word", "multi-task"
        return False
    if token[0].isdigit():  # a quantity with its unit: 4B, 283MB, 1.65M
        return False
    letters = sum(ch.isalpha() for ch in token)
    if letters == 0 or _ROMAN.match(token):
        return False
    if letters < len(token) and any(ch.isdigit() for ch in token):
        # T5, Llama2, DeepSeek-R1 are names; "length-100" and "10-shot" are a word and a number
        return any(ch.isupper() for ch in token) or any(
            _DIGIT.search(part) and not part.isdigit() for part in _PART_BREAK.split(token)
        )
    return any(any(ch.isupper() for ch in part[1:]) for part in _PART_BREAK.split(token) if len(part) > 1)


_PART_BREAK = re.compile(r"[-/'’]")
_DIGIT = re.compile(r"\d")


def is_acronym_shaped(token: str) -> bool:
    letters = [ch for ch in token if ch.isalpha()]
    return len(letters) >= 3 and sum(ch.isupper() for ch in letters) >= len(letters) - 1


class Token(NamedTuple):
    """A word as written (``text``), its compacted form (``unit``) and where it is in the text."""

    text: str
    unit: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Word tokens; hyphenated compounds stay whole, "DTRN's" and "aTLAS-based" are read as the name."""
    tokens = []
    for match in _TOKEN.finditer(text):
        surface = _surface(match.group())
        unit = compact(surface)
        if unit:
            start = match.start()
            tokens.append(Token(surface, unit, start, start + len(surface)))
    return tokens


def words(text: str) -> list[str]:
    """The surfaces :func:`tokenize` would give, without positions: the fast path for whole abstracts."""
    return [_surface(word) for word in _TOKEN.findall(text)]


def _surface(word: str) -> str:
    if "'" in word or "’" in word:
        word = _POSSESSIVE.sub("", word)
    if "-" in word:
        lowered = word.casefold()
        for suffix in _SUFFIXES:
            if lowered.endswith(suffix) and is_name_shaped(word[: -len(suffix)]):
                return word[: -len(suffix)]
    return word


def units_of(text: str) -> list[str]:
    return [token.unit for token in tokenize(normalize(text))]


def content_units(units: Iterable[str]) -> list[str]:
    return [unit for unit in units if unit not in STOP_UNITS]


STOP_UNITS = frozenset(compact(word) for word in STOPWORDS)


# --- sentences --------------------------------------------------------------------------------------
ABBREVIATIONS = frozenset(
    """
al approx ca cf ch dr e.g eg eq eqs fig figs i.e ie incl mr mrs ms no nos pp prof ref refs resp sec secs sect st
tab vol vs viz
""".split()
)
"""A period after one of these does not end a sentence ("et al. show", "Fig. 3", "cf. Sec. 2")."""
_LONGEST_ABBREVIATION = 12  # characters looked at before a period, opening brackets included
_OPENERS = "([\"'“‘"
_CLOSERS = "\"')]»”’"
# Sentence punctuation, closing quotes or brackets, citation markers that follow it ("works. [2] Next"),
# and the whitespace after; or a blank line. Starting with one character class lets the regex engine
# skip straight to candidates (5x faster on abstracts).
_BOUNDARY = re.compile(
    r"[.!?…\n](?:(?<=[.!?…])[.!?…]*[" + re.escape(_CLOSERS) + r"]*(?:[ \t]*" + MARKER.pattern + r")*(?:\s+|\Z)"
    r"|(?<=\n)[^\S\n]*\n\s*)",
    re.IGNORECASE,
)
_NEXT_WORD = re.compile(r"\S+")
_TRAILING = ".,;:!?)]\"'”’"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence in ``text``, without surrounding whitespace.

    A sentence ends at . ! ? … (with closing quotes, brackets and citation markers after it)
    or a blank line. It does not end before a lower-case word ("e.g. the", "Yahoo! is"), unless
    that word is a coined name ("aTLAS"), nor after an abbreviation ("et al.", "e.g."). A single
    capital before a full stop ends the sentence: in abstracts it is a variable ("of size N.")
    far more often than an initial.
    """
    spans: list[tuple[int, int]] = []
    start, text_end = strip_span(text, 0, len(text))
    for match in _BOUNDARY.finditer(text, start, text_end):
        next_start = match.end()
        punctuation = match.group().rstrip()
        if not punctuation:  # a blank line
            end = strip_span(text, start, match.start())[1]
        elif _continues(text, next_start) or (punctuation[0] == "." and _is_abbreviation(text, match.start())):
            continue
        else:
            end = match.start() + len(punctuation)
        if end > start:
            spans.append((start, end))
        start = next_start
    if text_end > start:
        spans.append((start, text_end))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, each exactly as it appears there."""
    return [text[start:end] for start, end in sentence_spans(text)]


def _continues(text: str, position: int) -> bool:
    """The text after a full stop starts in lower case, and not with a coined name: the sentence goes on."""
    if position >= len(text) or not text[position].islower():
        return False
    word = _NEXT_WORD.match(text, position)
    return not (word and is_name_shaped(word.group().strip(_TRAILING)))


def _is_abbreviation(text: str, period: int) -> bool:
    words = text[max(0, period - _LONGEST_ABBREVIATION) : period].split()
    word = words[-1].lstrip(_OPENERS) if words else ""
    if word.casefold() in ABBREVIATIONS:  # "et al.", "Fig. 3"
        return True
    # "e.g", "i.e", "U.S", "w.r.t": one- or two-letter parts joined by periods; "github.com" ends a sentence.
    parts = word.split(".")
    return len(parts) > 1 and all(part.isalpha() and len(part) <= 2 for part in parts)


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` moved inwards past whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)])\s+")
"""A list item's marker at the start of a line ("- ", "* ", "2. ", "3) ")."""
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+|\s+(?=--\s|—\s)")
LONG_SENTENCE_WORDS = 22
"""Sentences this long are also read clause by clause."""
CLAUSE_MIN_WORDS = 6


def clauses(sentence: str) -> list[str]:
    """Parts of a long sentence, so that a short claim can be compared with the part it restates."""
    if len(sentence.split()) < LONG_SENTENCE_WORDS:
        return []
    parts: list[str] = []
    for piece in _CLAUSE_BREAK.split(sentence):
        if parts and len(parts[-1].split()) < CLAUSE_MIN_WORDS:
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    if len(parts) > 1 and len(parts[-1].split()) < CLAUSE_MIN_WORDS:
        parts[-2:] = [f"{parts[-2]} {parts[-1]}"]
    return parts if len(parts) > 1 else []


# --- stems ------------------------------------------------------------------------------------------
_stemmer = Stemmer.Stemmer("english")
_VOWELS = frozenset("aeiouy")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball stem of a lower-case word; acronym plurals lose their s (LLMs, GNNs); numbers stay."""
    if any(ch.isdigit() for ch in word):
        return word
    if len(word) > 3 and word.endswith("s") and not _VOWELS.intersection(word[:-1]):
        return word[:-1]
    return _stemmer.stemWord(word)


def singular(word: str) -> str:
    """A plural's singular by its last letter ("models" -> "model"; "class", "corpus", "analysis" stay)."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


STEM_CHARS = 6
""":func:`key_stems` compares words by their first letters, so inflections ("distills", "distillation") meet."""


# --- numbers, names and key terms ----------------------------------------------------------------
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)


_NUMBER = re.compile(r"(?<![\w^@./])(\d+(?:,\d{3})*(?:\.\d+)?)(?:\s?%|\s?percent\b|[A-Za-z]{1,3}\b|×)?(?![\w^])")
_ENUMERATION = re.compile(r"\(\s*(?:\d|[ivx]+|[a-h])\s*\)")
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000"}


def without_urls(text: str) -> str:
    """Links carry digits and odd tokens that are neither quantities nor names."""
    return _URL.sub(" ", text)


def numbers_in(text: str) -> set[str]:
    """Quantities in ``text`` as canonical strings; digits inside names (T5, GPT-4, BT^2, pass@1) are not quantities."""
    found = set()
    without_enumerations = _ENUMERATION.sub(" ", without_urls(text))
    for match in _NUMBER.finditer(without_enumerations):
        if without_enumerations[match.start() - 1 : match.start()] == "-":
            # "length-100" and "10.2%-14.3%" are quantities, "GPT-4" and "Llama-2" are names
            word_before = without_enumerations[: match.start() - 1].rsplit(None, 1)[-1:] or [""]
            if any(ch.isupper() for ch in word_before[0]):
                continue
        found.add(_canonical_number(match.group(1)))
    return found


def _canonical_number(raw: str) -> str:
    """One spelling per value: "14,848" -> "14848", "16.590" -> "16.59", "007.0" -> "7"."""
    whole, _, fraction = raw.replace(",", "").partition(".")
    whole, fraction = whole.lstrip("0") or "0", fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def names_in(text: str) -> set[str]:
    """Coined names and acronyms (aTLAS, ZIP-FIT, DTRN) except the generic ones (LLM, NLP)."""
    return {
        token.unit
        for token in tokenize(without_urls(text))
        if is_name_shaped(token.text)
        and token.unit not in GENERIC_ACRONYMS
        and token.unit.rstrip("s") not in GENERIC_ACRONYMS
    }


def key_stems(text: str) -> set[str]:
    """Content words of ``text``, cut to their first letters so that inflected forms meet."""
    stems = set()
    for token in tokenize(without_urls(text)):
        word = token.text.casefold()
        if (
            word in STOPWORDS
            or word in RESEARCH_WORDS
            or word in ML_WORDS
            or token.unit.isdigit()
            or len(token.unit) < 3
        ):
            continue
        stems.add(token.unit[:STEM_CHARS])
    return stems


def word_count(text: str) -> int:
    return len(text.split())


TITLE_HEAD_WORDS = 6


def title_head(title: str) -> str:
    """How people name a paper: the part before a colon ("ZIP-FIT: ..."), else its first six words."""
    head = title.split(":", 1)[0].strip()
    if head != title.strip() and word_count(head) <= TITLE_HEAD_WORDS:
        return head
    return " ".join(title.split()[:TITLE_HEAD_WORDS])
