"""The days a chat message asks about: "last week", "between March and May 2026", "on 10 June 2025".

People read the Daily Papers every morning and ask about days: "what came out on speculative
decoding last week?", "which papers on model merging appeared between March and May?", "what's
new today about agents?". :func:`find_days` finds one such phrase in a message and returns the
inclusive range of days it names, the phrase, whether it was relative, and the message without
it (what retrieval should match: the dates are a filter, not words to look for).

Relative phrases ("today", "yesterday", "last week", "since Monday", "the last three days",
"what's new") are measured from the newest day the collection holds, never the wall clock: a
collection last updated on Friday 2026-08-21 answers "today" with that Friday, whatever day
it is read on, and the reply says how the phrase was read.

Weeks run Monday to Sunday; "early/mid/late" a month are its days 1-10, 11-20 and 21 to the end,
and of a year its first, middle and last four months; a month or day without a year is the
latest one on or before the newest day held.

**Why a grammar of our own and not a library.** Measured on the phrasings above and eight
questions without dates ("How does GPT-4 compare with Llama 3?", "Which 2 papers use LoRA?",
"top-5", "converges in 2 steps", "Which method may reduce hallucination?", "the March
benchmark", "2048 tokens", "the second stage"), newest day 2026-08-21:

* ``dateparser`` 1.5.0 (``search_dates``): import 0.19 s, first call 195 ms, then 1-4 ms; it
  returns single instants, so "March 2026" became 21 March, "last week" 14 August, "early
  2025" 21 August 2025, "between March and May 2026" three separate dates; it missed "the week
  of 2 December 2024" and "what's new", and read "may", "the March benchmark" and "2048" as
  dates (3 false positives of 8).
* ``parsedatetime`` 2.6: 0.1-3 ms, also instants only; "since Monday" and "the last three days"
  became the *next* Monday (2026-08-24), "between March and May" gave March 2027, and the same
  three false positives.

Neither names a range, and both find dates in ordinary questions, so the grammar below is
written for the phrasings people use about a feed of days. It reads the 21 dated phrasings of
``tests/test_dates.py`` as intended and finds no date in its 16 questions without one; about
0.2-0.3 ms per message (2 busy cores, ``benchmarks/dated_search.py``). On the archive's dated set
(``benchmarks/data/archive_dated.jsonl``, written from the archive alone by a separate helper, before this
code was run on it) it reads 25 of 30 ranges right (the same days held; weekends hold none). Missed, as measured
and not fitted since: "the first half of July 2024" and "the second half of May 2025" (read as the
whole month), "June or July 2025" (July only), "the last week of March 2026" (here its last seven
days, there the last Monday-to-Friday week inside the month), "early 2025" (here January to April,
there January to March).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import InvalidInput
from assistant.schema import DateRange

_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple of": 2, "few": 3,
}  # fmt: skip
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": 5}

# A month's name: full names anywhere; "may" only capitalised, since "which method may help" is no date.
_MON = (
    r"(?:january|february|march|april|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec|(?-i:May))\.?(?![a-z])"
)
_FULL_MON = r"(?:january|february|march|april|june|july|august|september|october|november|december|(?-i:May))"
_YEAR = r"(?:19|20)\d\d(?![\d-])"
_DAYNUM = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?(?![\d-])"
_FIRST_DAYNUM = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?(?!\d)"  # "10" of "10-12 August"
_DAY = (
    rf"(?:\d{{4}}-\d\d-\d\d(?!\d)"
    rf"|{_DAYNUM}(?:\s+of)?\s+{_MON}(?:,?\s+{_YEAR})?"
    rf"|{_MON}\s+{_DAYNUM}(?:,?\s+{_YEAR})?)"
)
_MONTH_YEAR = rf"(?:{_MON},?\s+(?:of\s+)?{_YEAR}|\d{{4}}-(?:0[1-9]|1[0-2])(?![\d-]))"
_NUMBER = r"(?:\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|couple of|few)"
_UNIT = r"(?:days?|weeks?|months?|years?)"
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_PART = r"(?:early|mid|middle of|late|end of|beginning of|start of)"
# A bare year after a preposition ("in 2025") when what follows cannot be a count ("in 2048 steps").
_BARE_YEAR = (
    rf"{_YEAR}(?=\s*(?:$|[?.!,;:)]|\s(?:and|or|to|about|on|in|that|which|were|was|did|do|with|regarding|for)\b))"
)

_DATE_VERBS = re.compile(
    r"\s*\b(?:(?:were|was|have been|has been|got|get|been)\s+)?"
    r"(?:listed|published|released|posted|appeared|came out|come out|coming out|showed up|out)\b"
    r"(?=[\s?.!,]*$|\s+(?:on|about|regarding|concerning|for)\b)",
    re.IGNORECASE,
)
_WHATS_NEW = re.compile(
    # "what's new in Qwen2.5?" asks what a paper adds, not for the newest day
    r"\b(?:what(?:'s|’s| is)\s+new|anything\s+new|new\s+today)\b"
    r"(?=\s*(?:$|[?.!,]|(?:about|on|regarding|for|today|this)\b|in\s+the\s+collection\b))",
    re.IGNORECASE,
)


class DatedMessage(BaseModel):
    """A message's date phrase, the days it names, and the message without it."""

    model_config = ConfigDict(frozen=True)

    days: DateRange
    phrase: str = Field(description="The words of the message that name the days, as written")
    relative: bool = Field(description="Read from the newest day held (today, last week, since Monday...)")
    message: str = Field(description="The message without the date phrase: what retrieval matches")
    newest: date = Field(description="The newest day the collection holds, the reference of relative phrases")

    @property
    def reading(self) -> str:
        """How the phrase was read, for the reply: relative phrases name the day they count from."""
        span = _span_text(self.days)
        if not self.relative:
            return f"“{self.phrase}” read as {span}"
        return f"“{self.phrase}” read as {span}, counted from the newest day held, {self.newest.isoformat()}"


def _span_text(days: DateRange) -> str:
    if days.start == days.end:
        return days.start.isoformat()
    start = "the first day held" if days.start == date.min else days.start.isoformat()
    end = "the newest day held" if days.end == date.max else days.end.isoformat()
    return f"{start} to {end}"


def span_text(days: DateRange) -> str:
    """ "2024-12-02 to 2024-12-06", or one day: how a reply names a range (open ends in words)."""
    return _span_text(days)


def between_text(days: DateRange) -> str:
    """ "between 2024-12-02 and 2024-12-06", "on 2025-06-10", "since 2026-03-01", "up to 2025-01-31"."""
    if days.start == days.end:
        return f"on {days.start.isoformat()}"
    if days.start == date.min:
        return f"up to {days.end.isoformat()}"
    if days.end == date.max:
        return f"since {days.start.isoformat()}"
    return f"between {days.start.isoformat()} and {days.end.isoformat()}"


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _month_number(word: str) -> int:
    return _MONTHS[word.lower().rstrip(".")]


def _latest_year(month: int, day: int, newest: date) -> int:
    """The year of the latest (month, day) on or before ``newest``."""
    return newest.year if (month, day) <= (newest.month, newest.day) else newest.year - 1


def _parse_day(text: str, newest: date) -> date | None:
    """A day written as 2025-06-10, 10 June 2025, 10th of June, June 10, 2025 ... (year: latest one)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    year_match = re.search(rf"{_YEAR}$", text)
    month_match = re.search(_MON, text, re.IGNORECASE)
    day_match = re.search(
        r"(?<![\d])(\d{1,2})(?:st|nd|rd|th)?(?![\d])", text[: year_match.start()] if year_match else text
    )
    if month_match is None or day_match is None:
        return None
    month, day = _month_number(month_match.group(0)), int(day_match.group(1))
    year = int(year_match.group(0)) if year_match else _latest_year(month, day, newest)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _parse_month(text: str, newest: date) -> tuple[int, int] | None:
    """(year, month) of "March 2026", "Mar, 2026", "2026-03", or "March" (the latest March held)."""
    text = text.strip()
    iso = re.fullmatch(r"(\d{4})-(\d\d)", text)
    if iso:
        return int(iso.group(1)), int(iso.group(2))
    month_match = re.search(_MON, text, re.IGNORECASE)
    if month_match is None:
        return None
    month = _month_number(month_match.group(0))
    year_match = re.search(_YEAR, text)
    year = int(year_match.group(0)) if year_match else (newest.year if month <= newest.month else newest.year - 1)
    return year, month


def _month_range(text: str, newest: date) -> DateRange | None:
    parsed = _parse_month(text, newest)
    if parsed is None:
        return None
    year, month = parsed
    return DateRange(start=date(year, month, 1), end=_month_end(year, month))


def week_of(day: date) -> DateRange:
    """The week (Monday to Sunday) that holds ``day``: ``digest --week``, "the week of 2 December"."""
    monday = day - timedelta(days=day.weekday())
    return DateRange(start=monday, end=monday + timedelta(days=6))


def days_between(since: date | None, until: date | None) -> DateRange | None:
    """The range of ``--since/--until`` (or the API's ``date_range``): either end may be open; None for neither."""
    if since is None and until is None:
        return None
    start, end = since or date.min, until or date.max
    if start > end:
        raise InvalidInput(f"the range starts after it ends: {start.isoformat()} is after {end.isoformat()}")
    return DateRange(start=start, end=end)


def _count(word: str) -> int:
    word = re.sub(r"\s+", " ", word.lower())
    return int(word) if word.isdigit() else _NUMBERS[word]


def _ago(n: int, unit: str, newest: date) -> date:
    unit = unit.lower().rstrip("s")
    if unit == "day":
        return newest - timedelta(days=n)
    if unit == "week":
        return newest - timedelta(weeks=n)
    months = newest.year * 12 + newest.month - 1 - (n if unit == "month" else 12 * n)
    year, month = divmod(months, 12)
    return date(year, month + 1, min(newest.day, calendar.monthrange(year, month + 1)[1]))


def _latest_weekday(name: str, newest: date, *, strictly_before: bool = False) -> date:
    back = (newest.weekday() - _WEEKDAYS[name.lower()]) % 7
    if strictly_before and back == 0:
        back = 7
    return newest - timedelta(days=back)


def _part_of(part: str, start: date, end: date) -> DateRange:
    """Early, mid or late in a month (days 1-10, 11-20, 21-end) or a year (four months each)."""
    part = part.lower()
    if start.month == end.month:  # a month
        if part in ("early", "beginning of", "start of"):
            return DateRange(start=start, end=start.replace(day=10))
        if part in ("mid", "middle of"):
            return DateRange(start=start.replace(day=11), end=start.replace(day=20))
        return DateRange(start=start.replace(day=21), end=end)
    year = start.year
    if part in ("early", "beginning of", "start of"):
        return DateRange(start=date(year, 1, 1), end=date(year, 4, 30))
    if part in ("mid", "middle of"):
        return DateRange(start=date(year, 5, 1), end=date(year, 8, 31))
    return DateRange(start=date(year, 9, 1), end=date(year, 12, 31))


Reader = Callable[[re.Match[str], date], DateRange | None]
"""Turns a phrase's match into its days, given the newest day held (None: not a date after all)."""


def _two_days(m: re.Match[str], newest: date) -> DateRange | None:
    first, second = _parse_day(m.group("a"), newest), _parse_day(m.group("b"), newest)
    if first is None or second is None:
        return None
    if first > second and not re.search(_YEAR, m.group("a")):  # "from December 20 to January 5, 2026"
        first = first.replace(year=second.year - 1)
    return DateRange(start=min(first, second), end=max(first, second)) if first <= second else None


def _days_of_month(m: re.Match[str], newest: date) -> DateRange | None:
    """ "between 10 and 12 August 2026", "August 10-12, 2026": two days of one month."""
    month_text = m.group("m") + (m.groupdict().get("y") or "")
    first = _parse_day(f"{m.group('a')} {month_text}", newest)
    second = _parse_day(f"{m.group('b')} {month_text}", newest)
    if first is None or second is None or first > second:
        return None
    return DateRange(start=first, end=second)


def _two_months(m: re.Match[str], newest: date) -> DateRange | None:
    first_text, second_text = m.group("a"), m.group("b")
    second = _parse_month(second_text, newest)
    if second is None:
        return None
    if not re.search(_YEAR, first_text):  # "between March and May 2026": the first month takes the year
        first_month = _month_number(re.search(_MON, first_text, re.IGNORECASE).group(0))  # type: ignore[union-attr]
        first = (second[0] if first_month <= second[1] else second[0] - 1, first_month)
    else:
        parsed = _parse_month(first_text, newest)
        if parsed is None:
            return None
        first = parsed
    if first > second:
        return None
    return DateRange(start=date(first[0], first[1], 1), end=_month_end(*second))


def _two_years(m: re.Match[str], newest: date) -> DateRange | None:
    first, second = int(m.group("a")), int(m.group("b"))
    return DateRange(start=date(first, 1, 1), end=date(second, 12, 31)) if first <= second else None


def _one_day(m: re.Match[str], newest: date) -> DateRange | None:
    day = _parse_day(m.group("a"), newest)
    return DateRange(start=day, end=day) if day else None


def _week_containing(m: re.Match[str], newest: date) -> DateRange | None:
    day = _parse_day(m.group("a"), newest)
    return week_of(day) if day else None


def _nth_week(m: re.Match[str], newest: date) -> DateRange | None:
    month = _month_range(m.group("a"), newest)
    if month is None:
        return None
    nth = _ORDINALS[m.group("n").lower()]
    if nth == 5:  # "the last week of March": its last seven days
        return DateRange(start=month.end - timedelta(days=6), end=month.end)
    start = month.start + timedelta(days=7 * (nth - 1))
    return DateRange(start=start, end=min(start + timedelta(days=6), month.end))


def _since_day(m: re.Match[str], newest: date) -> DateRange | None:
    day = _parse_day(m.group("a"), newest)
    return DateRange(start=day, end=max(day, newest)) if day else None


def _since_month(m: re.Match[str], newest: date) -> DateRange | None:
    month = _month_range(m.group("a"), newest)
    return DateRange(start=month.start, end=max(month.end, newest)) if month else None


def _before_day(m: re.Match[str], newest: date) -> DateRange | None:
    day = _parse_day(m.group("a"), newest)
    if day is None:
        return None
    inclusive = m.group("w").lower() in ("until", "till", "up to", "through")
    return DateRange(start=date.min, end=day if inclusive else day - timedelta(days=1))


def _quarter(m: re.Match[str], newest: date) -> DateRange | None:
    n = int(m.group("q")) if m.group("q") else _ORDINALS[m.group("n").lower()]
    if not 1 <= n <= 4:
        return None
    year = int(m.group("y"))
    return DateRange(start=date(year, 3 * n - 2, 1), end=_month_end(year, 3 * n))


def _part_month(m: re.Match[str], newest: date) -> DateRange | None:
    month = _month_range(m.group("a"), newest)
    return _part_of(m.group("p"), month.start, month.end) if month else None


def _part_year(m: re.Match[str], newest: date) -> DateRange | None:
    year = int(m.group("y"))
    return _part_of(m.group("p"), date(year, 1, 1), date(year, 12, 31))


def _whole_month(m: re.Match[str], newest: date) -> DateRange | None:
    return _month_range(m.group("a"), newest)


def _whole_year(m: re.Match[str], newest: date) -> DateRange | None:
    year = int(m.group("y"))
    return DateRange(start=date(year, 1, 1), end=date(year, 12, 31))


def _today(m: re.Match[str], newest: date) -> DateRange | None:
    return DateRange(start=newest, end=newest)


def _yesterday(m: re.Match[str], newest: date) -> DateRange | None:
    day = newest - timedelta(days=1)
    return DateRange(start=day, end=day)


def _this_unit(m: re.Match[str], newest: date) -> DateRange | None:
    unit = m.group("u").lower()
    if unit == "week":
        return DateRange(start=week_of(newest).start, end=newest)
    if unit == "month":
        return DateRange(start=newest.replace(day=1), end=newest)
    return DateRange(start=date(newest.year, 1, 1), end=newest)


def _last_unit(m: re.Match[str], newest: date) -> DateRange | None:
    unit = m.group("u").lower()
    if unit == "week":
        return week_of(newest - timedelta(days=7))
    if unit == "month":
        end = newest.replace(day=1) - timedelta(days=1)
        return DateRange(start=end.replace(day=1), end=end)
    return DateRange(start=date(newest.year - 1, 1, 1), end=date(newest.year - 1, 12, 31))


def _last_n(m: re.Match[str], newest: date) -> DateRange | None:
    n = _count(m.group("n"))
    if n < 1:
        return None
    start = _ago(n, m.group("u"), newest) + timedelta(days=1)
    return DateRange(start=start, end=newest)


def _ago_day(m: re.Match[str], newest: date) -> DateRange | None:
    day = _ago(_count(m.group("n")), m.group("u"), newest)
    return DateRange(start=day, end=day)


def _since_weekday(m: re.Match[str], newest: date) -> DateRange | None:
    strictly = bool(m.group("last"))
    return DateRange(start=_latest_weekday(m.group("d"), newest, strictly_before=strictly), end=newest)


def _on_weekday(m: re.Match[str], newest: date) -> DateRange | None:
    day = _latest_weekday(m.group("d"), newest, strictly_before=bool(m.group("last")))
    return DateRange(start=day, end=day)


_B = r"(?<![\w-])"
_E = r"(?![\w-])"
# (pattern, reader, relative). The longest phrase found wins; among equals, the earliest listed here.
_PHRASES: list[tuple[str, Reader, bool]] = [
    (rf"{_B}(?:between|from)\s+(?P<a>{_DAY})\s+(?:and|to|until|till|through)\s+(?P<b>{_DAY}){_E}", _two_days, False),
    (rf"{_B}(?P<a>\d{{4}}-\d\d-\d\d)\s*(?:to|until|through|–|—|-|\.\.)\s*(?P<b>\d{{4}}-\d\d-\d\d){_E}", _two_days, False),
    (
        rf"{_B}(?:(?:between|from)\s+)?(?P<a>{_FIRST_DAYNUM})\s*(?:and|to|until|through|–|—|-)\s*(?P<b>{_DAYNUM})(?:\s+of)?\s+"
        rf"(?P<m>{_MON}(?:,?\s+{_YEAR})?){_E}",
        _days_of_month,
        False,
    ),
    (
        rf"{_B}(?:(?:between|from)\s+)?(?P<m>{_MON})\s+(?P<a>{_FIRST_DAYNUM})\s*(?:and|to|until|through|–|—|-)\s*"
        rf"(?P<b>{_DAYNUM})(?P<y>,?\s+{_YEAR})?{_E}",
        _days_of_month,
        False,
    ),
    (
        rf"{_B}(?:between|from)\s+(?P<a>{_MON}(?:,?\s+{_YEAR})?)\s+(?:and|to|until|till|through)\s+"
        rf"(?P<b>{_MONTH_YEAR}|{_FULL_MON}){_E}",
        _two_months,
        False,
    ),
    (rf"{_B}(?:between|from)\s+(?P<a>{_YEAR})\s+(?:and|to|until|till|through)\s+(?P<b>{_YEAR}){_E}", _two_years, False),
    (rf"{_B}(?:in\s+|during\s+)?(?:the\s+)?week\s+(?:of|starting|beginning)\s+(?:on\s+)?(?P<a>{_DAY}){_E}", _week_containing, False),
    (
        rf"{_B}(?:in\s+|during\s+)?(?:the\s+)?(?P<n>first|1st|second|2nd|third|3rd|fourth|4th|last)\s+week\s+of\s+"
        rf"(?P<a>{_MONTH_YEAR}|{_MON}){_E}",
        _nth_week,
        False,
    ),
    (rf"{_B}(?:since|from|after)\s+(?P<a>{_DAY}){_E}", _since_day, False),
    (rf"{_B}(?:since|from)\s+(?P<a>{_MONTH_YEAR}|{_FULL_MON}){_E}", _since_month, False),
    (rf"{_B}(?P<w>before|until|till|up to|through)\s+(?P<a>{_DAY}){_E}", _before_day, False),
    (rf"{_B}(?:on\s+|of\s+|for\s+)?(?P<a>{_DAY}){_E}", _one_day, False),
    (
        rf"{_B}(?:in\s+|during\s+)?(?:the\s+)?(?:q(?P<q>[1-4])|(?P<n>first|second|third|fourth)\s+quarter)"
        rf"(?:\s+of)?\s+(?P<y>{_YEAR}){_E}",
        _quarter,
        False,
    ),
    (rf"{_B}(?:in\s+|during\s+)?(?:the\s+)?(?P<p>{_PART})[\s-]+(?P<a>{_MONTH_YEAR}|{_FULL_MON}){_E}", _part_month, False),
    (rf"{_B}(?:in\s+|during\s+)?(?:the\s+)?(?P<p>{_PART})[\s-]+(?P<y>{_YEAR}){_E}", _part_year, False),
    (rf"{_B}(?:in\s+|during\s+|throughout\s+|of\s+|for\s+)?(?P<a>{_MONTH_YEAR}){_E}", _whole_month, False),
    (rf"{_B}(?:in|during|throughout)\s+(?P<a>{_FULL_MON}){_E}", _whole_month, False),
    (rf"{_B}(?:in|during|throughout|from)\s+(?P<y>{_BARE_YEAR})", _whole_year, False),
    (rf"{_B}(?:from\s+|on\s+|for\s+)?today(?:'s|’s)?{_E}", _today, True),
    (rf"{_B}(?:from\s+|on\s+|for\s+)?yesterday(?:'s|’s)?{_E}", _yesterday, True),
    (rf"{_B}(?:from\s+|in\s+|during\s+|for\s+)?this\s+(?P<u>week|month|year)(?:'s|’s)?{_E}", _this_unit, True),
    (rf"{_B}(?:from\s+|in\s+|during\s+|for\s+)?(?:last|the\s+previous|previous|past)\s+(?P<u>week|month|year)(?:'s|’s)?{_E}", _last_unit, True),
    (
        rf"{_B}(?:in\s+|from\s+|during\s+|over\s+|for\s+|within\s+)?(?:the\s+)?(?:last|past|previous)\s+"
        rf"(?P<n>{_NUMBER})\s+(?P<u>{_UNIT}){_E}",
        _last_n,
        True,
    ),
    (rf"{_B}(?P<n>{_NUMBER})\s+(?P<u>{_UNIT})\s+ago{_E}", _ago_day, True),
    (rf"{_B}since\s+(?P<last>last\s+)?(?P<d>{_WEEKDAY}){_E}", _since_weekday, True),
    (rf"{_B}(?:on\s+)?(?P<last>last\s+)?(?P<d>{_WEEKDAY})(?:'s|’s)?{_E}", _on_weekday, True),
]  # fmt: skip
_COMPILED = [(re.compile(pattern, re.IGNORECASE), reader, relative) for pattern, reader, relative in _PHRASES]


def _without(message: str, start: int, end: int) -> str:
    rest = f"{message[:start].rstrip()} {message[end:].lstrip()}".strip().lstrip(",;: ")
    rest = _DATE_VERBS.sub("", rest)
    rest = re.sub(r"\s+([?.!,;:])", r"\1", rest)
    rest = re.sub(r"\s{2,}", " ", rest).strip()
    return rest if re.search(r"\w", rest) else ""


def find_days(message: str, newest: date) -> DatedMessage | None:
    """The days ``message`` asks about, read relative to ``newest`` (the newest day held), or None.

    One phrase per message: the longest found (so "between March and May 2026" wins over "May
    2026"). "What's new" with no other date means the newest day. A phrase that names no real day
    ("30 February") is no date.
    """
    candidates = sorted(
        ((match, reader, relative) for pattern, reader, relative in _COMPILED for match in pattern.finditer(message)),
        key=lambda found: found[0].start() - found[0].end(),  # longest first; stable: earlier patterns first
    )
    best: tuple[int, int, DateRange, bool] | None = None
    rejected: list[tuple[int, int]] = []  # "30 February 2026" is no date, and neither is its "February 2026"
    for match, reader, relative in candidates:
        if any(start <= match.start() and match.end() <= end for start, end in rejected):
            continue
        try:
            days = reader(match, newest)
        except (ValueError, KeyError, OverflowError):
            days = None
        if days is None:
            rejected.append((match.start(), match.end()))
            continue
        best = (match.start(), match.end(), days, relative)
        break
    if best is not None:
        start, end, days, relative = best
        rest = _without(message, start, end)
        rest = _WHATS_NEW.sub("what", rest) if _WHATS_NEW.search(rest) else rest
        phrase = message[start:end].strip()
        return DatedMessage(days=days, phrase=phrase, relative=relative, message=rest, newest=newest)
    new = _WHATS_NEW.search(message)
    if new is None:
        return None
    rest = _without(message, new.start(), new.end())
    rest = f"what {rest}" if rest else ""
    return DatedMessage(
        days=DateRange(start=newest, end=newest), phrase=new.group(0), relative=True, message=rest, newest=newest
    )
