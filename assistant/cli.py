"""`paper-assistant`: the command-line contract scripts rely on.

Exit codes: 0 ok, 2 bad input or usage, 3 a backend (store, model) unavailable.
Messages go to stderr; a traceback never reaches the user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel

from assistant.errors import EXIT_BAD_INPUT, EXIT_OK, AssistantError, InvalidInput, describe, listed_titles
from assistant.schema import IngestReport, Paper, PaperList, Problem, SearchResults
from assistant.settings import DEFAULT_LOCAL_MODEL, SAMPLE_COLLECTION, Settings, load_settings
from ingestion.errors import IngestionError
from ingestion.progress import IngestProgress

DEBUG_VARIABLE = "ASSISTANT_DEBUG"
"""Set it to see the traceback of an unexpected error (a bug) instead of its one-line summary."""


def text_argument(value: str) -> str:
    """An argument that is text: bytes the terminal's encoding cannot read are refused, not passed on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            f"{value.encode('utf-8', 'surrogateescape')[:40]!r} is not valid text (undecodable bytes); "
            "type it again, or check the terminal's encoding"
        ) from None
    return value


SHOWN_ARGUMENT_CHARS = 60


def _shown(value: str) -> str:
    """A rejected argument as a message quotes it: at most SHOWN_ARGUMENT_CHARS of it."""
    return repr(value if len(value) <= SHOWN_ARGUMENT_CHARS else value[:SHOWN_ARGUMENT_CHARS] + "…")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text_argument(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {_shown(text)}") from exc


def _count(text: str) -> int:
    try:
        return int(text_argument(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {_shown(text)}") from None


def _global_options() -> argparse.ArgumentParser:
    # SUPPRESS lets the same options stand before or after the command without one erasing the other.
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--store", type=text_argument, default=argparse.SUPPRESS, help="store folder (ASSISTANT_STORE_DIR)"
    )
    options.add_argument(
        "--chroma-url", type=text_argument, default=argparse.SUPPRESS, help="Chroma server URL (ASSISTANT_CHROMA_URL)"
    )
    options.add_argument(
        "--collection", type=text_argument, default=argparse.SUPPRESS, help="collection name (ASSISTANT_COLLECTION)"
    )
    options.add_argument(
        "--model", type=text_argument, default=argparse.SUPPRESS, help="model string (ASSISTANT_MODEL)"
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog="paper-assistant",
        description="Chat with a day's batch of paper abstracts, offline by default.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", parents=[common], help="add papers from files, folders or the HF feed")
    ingest.add_argument(
        "paths", nargs="*", type=text_argument, metavar="PATH", help="Daily Papers scrape (.txt), JSON, JSONL or CSV"
    )
    ingest.add_argument(
        "--hf-date", type=_iso_date, action="append", default=[], help="fetch HF daily papers of a date"
    )
    ingest.add_argument(
        "--hf-since",
        type=_iso_date,
        metavar="DATE",
        help="fetch every weekday from DATE to --hf-until (default today) not fetched before",
    )
    ingest.add_argument("--hf-until", type=_iso_date, metavar="DATE", help="last day for --hf-since")
    ingest.add_argument("--sample", action="store_true", help="ingest the bundled sample collection")
    ingest.add_argument(
        "--rebuild", action="store_true", help="drop the collection first (e.g. after changing embedder)"
    )
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")

    papers = commands.add_parser("papers", parents=[common], help="list the collection")
    papers.add_argument("--json", action="store_true")
    papers.add_argument(
        "--bibtex",
        nargs="*",
        type=text_argument,
        metavar="PAPER",
        help="print BibTeX for the papers named (title, part of a title, short name or id), or for all",
    )

    update = commands.add_parser(
        "update", parents=[common], help="fetch the HF daily papers of the days since the newest one held"
    )
    update.add_argument("--json", action="store_true", help="print the report as JSON")

    search = commands.add_parser("search", parents=[common], help="find papers by meaning and keywords")
    search.add_argument("query", type=text_argument)
    search.add_argument("-k", type=_count, default=5, help="number of papers (default 5)")
    search.add_argument("--since", type=_iso_date, help="published on or after")
    search.add_argument("--until", type=_iso_date, help="published on or before")
    search.add_argument("--source", type=text_argument, help="only papers read from this source")
    search.add_argument("--dense-only", action="store_true", help="skip BM25 fusion")
    search.add_argument("--json", action="store_true")

    ask = commands.add_parser("ask", parents=[common], help="ask about the papers; the answer cites them as [n]")
    ask.add_argument("question", type=text_argument)
    ask.add_argument(
        "--session",
        type=_session_name,
        metavar="NAME",
        help="continue the conversation NAME (follow-ups are understood)",
    )
    ask.add_argument("--since", type=_iso_date, help="read only papers listed on or after this day (YYYY-MM-DD)")
    ask.add_argument("--until", type=_iso_date, help="read only papers listed on or before this day (YYYY-MM-DD)")
    ask.add_argument("--json", action="store_true")

    summarize = commands.add_parser("summarize", parents=[common], help="a one-paragraph summary of one paper")
    summarize.add_argument(
        "paper", type=text_argument, metavar="PAPER", help="title, part of a title, short name (aTLAS) or paper id"
    )
    summarize.add_argument("--json", action="store_true")

    compare = commands.add_parser("compare", parents=[common], help="compare 2-4 papers in a cited table")
    compare.add_argument(
        "papers", nargs="+", type=text_argument, metavar="PAPER", help="title, part of a title, short name or paper id"
    )
    compare.add_argument("--json", action="store_true")

    digest = commands.add_parser(
        "digest", parents=[common], help="the collection's themes, each with a cited paragraph"
    )
    digest_days = digest.add_mutually_exclusive_group()
    digest_days.add_argument("--day", type=_iso_date, metavar="DAY", help="only the papers listed on DAY (YYYY-MM-DD)")
    digest_days.add_argument(
        "--week", type=_iso_date, metavar="DAY", help="only the papers listed in the week (Monday-Sunday) holding DAY"
    )
    digest.add_argument("--atom", type=text_argument, metavar="FILE", help="also write the digest as an Atom feed")
    digest.add_argument("--json", action="store_true")
    evaluation = commands.add_parser("eval", parents=[common], help="measure retrieval and answers on a JSONL set")
    evaluation.add_argument(
        "file", type=text_argument, metavar="FILE.jsonl", help="lines with kind, question, gold_titles, must_mention"
    )
    evaluation.add_argument("--retrieval-only", action="store_true", help="skip the model: recall and MRR only")
    evaluation.add_argument("-k", type=_count, default=5, help="retrieval depth for recall@k (default 5)")
    evaluation.add_argument("--json", action="store_true")

    models = commands.add_parser(
        "models", parents=[common], help="the offline models: installed, verified, how fast here"
    )
    models.add_argument("--prepare", metavar="MODEL", type=text_argument, help="join and verify MODEL's weights now")
    models.add_argument(
        "--download",
        action="store_true",
        help="with --prepare: fetch weights whose packages are missing from their official source (needs internet)",
    )
    models.add_argument("--json", action="store_true")

    app = commands.add_parser("app", parents=[common], help="open the chat app in the browser (Streamlit)")
    app.add_argument("--port", type=_port, default=8501, help="port on 127.0.0.1 (default 8501)")
    app.add_argument(
        "--address", type=text_argument, default="127.0.0.1", help="bind address; expose it only behind authentication"
    )

    serve = commands.add_parser("serve", parents=[common], help="serve an OpenAI-compatible HTTP API (any chat client)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--address",
        type=text_argument,
        default="127.0.0.1",
        help="bind address; set ASSISTANT_API_TOKEN before leaving loopback",
    )
    serve.add_argument(
        "--allowed-host",
        type=_host_name,
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients reach the API by, besides localhost and IP addresses (repeatable; "
        "ASSISTANT_ALLOWED_HOSTS); requests naming any other host are refused",
    )
    return parser


def _host_name(text: str) -> str:
    name = text_argument(text).strip().lower()
    if not name or any(part in name for part in ("/", " ", "@")):
        raise argparse.ArgumentTypeError(f"not a host name: {_shown(text)} (give a name like papers.example.org)")
    return name


def _session_name(text: str) -> str:
    if not text_argument(text).strip():
        raise argparse.ArgumentTypeError("a conversation name needs some letters (or leave --session out)")
    return text


def _port(text: str) -> int:
    port = _count(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {port}")
    return port


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command line's options over them; InvalidInput names what is wrong."""
    options = (("store", "store_dir"), ("chroma_url", "chroma_url"), ("collection", "collection"), ("model", "model"))
    return load_settings(**{field: getattr(args, option) for option, field in options if hasattr(args, option)})


def _print_json(payload: BaseModel | dict[str, Any]) -> None:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _ingest_progress_bar(label: str) -> Callable[[IngestProgress], None] | None:
    """The ingest's bar on stderr, only when stderr is a terminal: also with ``--json`` (stdout stays JSON)."""
    if not sys.stderr.isatty():
        return None

    def show(event: IngestProgress) -> None:
        width = 30
        filled = int(width * event.fraction)
        sys.stderr.write(f"\r\033[K{label} [{'#' * filled}{'.' * (width - filled)}] {event.line()}")
        if event.finished:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _open_store(settings: Settings) -> Any:
    from assistant.store import PaperStore

    return PaperStore(settings)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.hf_feed import feed_today, fetch_daily_papers
    from ingestion.pipeline import ingest_lock, ingest_papers, read_sources

    paths = list(args.paths) + ([SAMPLE_COLLECTION] if args.sample else [])
    if args.hf_until is not None and args.hf_since is None:
        raise InvalidInput("--hf-until needs --hf-since (the first day to fetch)")
    if args.hf_since is not None and args.hf_until is not None and args.hf_since > args.hf_until:
        raise InvalidInput(f"--hf-since {args.hf_since} is after --hf-until {args.hf_until}")
    if not paths and not args.hf_date and args.hf_since is None:
        raise InvalidInput("nothing to ingest: give PATH..., --sample, --hf-date YYYY-MM-DD or --hf-since YYYY-MM-DD")
    read = read_sources(paths)
    for day in args.hf_date:
        fetched = fetch_daily_papers(
            day, base_url=str(settings.ingest.hf_daily_papers_url), timeout_s=settings.ingest.http_timeout_s
        )
        read.extend(fetched)
    if (paths or args.hf_date) and not read.papers:
        raise InvalidInput("no valid paper to ingest" + _problem_lines(read.problems))
    store = _open_store(settings)
    if args.rebuild:
        store.drop()
    report = IngestReport()
    if read.papers:
        report = ingest_papers(read, store=store, progress=_ingest_progress_bar("embedding"))
        with ingest_lock(settings):
            store.record_fetched_days(day for day in args.hf_date if day < feed_today())
    if args.hf_since is not None:
        days = _fetch_days(args.hf_since, args.hf_until, store, settings)
        report = _combined(report, days) if read.papers else days
    _print_ingest_report(report, as_json=args.json)
    return EXIT_OK


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.hf_feed import feed_today, newest_held_day

    store = _open_store(settings)
    newest = newest_held_day(store)
    if newest is None:
        raise InvalidInput(
            "the collection holds no day of the daily papers yet: start with "
            "`paper-assistant ingest --hf-since YYYY-MM-DD` (the first day to fetch)"
        )
    report = _fetch_days(newest, feed_today(), store, settings)
    _print_ingest_report(report, as_json=args.json)
    return EXIT_OK


def _fetch_days(start: date, end: date | None, store: Any, settings: Settings) -> IngestReport:
    from ingestion.hf_feed import feed_today, ingest_feed_days

    return ingest_feed_days(
        start,
        end or feed_today(),
        store=store,
        base_url=str(settings.ingest.hf_daily_papers_url),
        timeout_s=settings.ingest.http_timeout_s,
        progress=_day_progress(),
        embed_progress=_ingest_progress_bar("embedding"),
    )


def _day_progress() -> Callable[[int, int, date], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, day: date) -> None:
        sys.stderr.write(f"\rfetched {day.isoformat()}: {done}/{total} days" + ("\n" if done >= total else ""))
        sys.stderr.flush()

    return show


def _combined(first: IngestReport, then: IngestReport) -> IngestReport:
    """The report of two ingests run one after the other."""
    combined = first.model_copy(deep=True)
    for name in ("papers_added", "papers_updated", "papers_unchanged", "chunks_written", "duplicates_merged"):
        setattr(combined, name, getattr(first, name) + getattr(then, name))
    for name in ("problems", "replaced", "addressed_to_model", "days_fetched", "days_skipped", "days_empty"):
        setattr(combined, name, getattr(first, name) + getattr(then, name))
    combined.total_papers = then.total_papers
    return combined


def _print_ingest_report(report: IngestReport, *, as_json: bool) -> None:
    if as_json:
        _print_json(report)
    else:
        days = ""
        if report.days_fetched or report.days_skipped:
            days = f"{len(report.days_fetched)} days fetched ({len(report.days_empty)} without papers), " + (
                f"{len(report.days_skipped)} held already; "
            )
        print(
            f"{days}{report.papers_added} added, {report.papers_updated} updated, {report.papers_unchanged} unchanged; "
            f"{report.chunks_written} chunks written; {report.total_papers} papers in the collection"
        )
    if report.problems:
        print(f"{len(report.problems)} record(s) skipped:" + _problem_lines(report.problems), file=sys.stderr)
    if report.addressed_to_model:
        print(
            f"{len(report.addressed_to_model)} abstract(s) address an AI model; kept as written, never used as evidence:"
            + f"\n  {listed_titles(report.addressed_to_model)}",
            file=sys.stderr,
        )


def _problem_lines(problems: Sequence[Problem]) -> str:
    return "".join(f"\n  {problem.line}" for problem in problems)


def cmd_papers(args: argparse.Namespace, settings: Settings) -> int:
    stats = _open_store(settings).list_papers()
    if args.bibtex is not None:
        from assistant.bibtex import papers_bibtex

        papers = [s.paper for s in stats]
        print(papers_bibtex(_named_papers(args.bibtex, papers) if args.bibtex else papers), end="")
        return EXIT_OK
    if args.json:
        _print_json(PaperList.of(stats))
        return EXIT_OK
    for s in stats:
        print(f"{s.paper.paper_id}\t{s.chunks}\t{s.paper.title}")
    print(f"{len(stats)} papers", file=sys.stderr)
    return EXIT_OK


def _named_papers(names: Sequence[str], papers: Sequence[Paper]) -> list[Paper]:
    """The paper each name stands for (an id, a title or part of one, a short name), in the order named."""
    from assistant.resolve import resolve_one

    by_id = {paper.paper_id: paper for paper in papers}
    chosen: list[Paper] = []
    for name in names:
        paper = by_id.get(name.strip())
        if paper is None:
            resolution = resolve_one(name, papers)
            if resolution.ambiguous:
                candidates = resolution.ambiguous[0].candidates
                raise InvalidInput(f"{_shown(name)} fits several papers: {listed_titles(candidates)}; say which one")
            if len(resolution.matched) != 1:
                raise InvalidInput(f"{_shown(name)} is not a paper in the collection (see `paper-assistant papers`)")
            paper = resolution.matched[0]
        if paper not in chosen:
            chosen.append(paper)
    return chosen


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.retrieval import Retriever

    if not args.query.strip():
        raise InvalidInput("the query is empty")
    if not 1 <= args.k <= 100:
        raise InvalidInput("-k must be between 1 and 100")
    retriever = Retriever(_open_store(settings), settings)
    hits = retriever.search(
        args.query,
        args.k,
        since=args.since,
        until=args.until,
        source=args.source,
        hybrid=False if args.dense_only else None,
    )
    if args.json:
        _print_json(SearchResults.of(args.query, hits))
        return EXIT_OK
    if not hits:
        print("no papers in the collection yet: run `paper-assistant ingest --sample`", file=sys.stderr)
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank}. {hit.paper.title}  [{hit.paper.paper_id}]  score {hit.score:.4f}")
    return EXIT_OK


def _assistant(settings: Settings) -> Any:
    from assistant.service import PaperAssistant

    return PaperAssistant(settings, store=_open_store(settings))


def _source_lines(sources: Sequence[Any]) -> str:
    return "\n".join(f"[{s.n}] {s.title}" + (f" <{s.link}>" if s.link else "") for s in sources)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.conversations import ChatTurn, ConversationStore

    if not args.question.strip():
        raise InvalidInput("the question is empty")
    conversations = ConversationStore.in_folder(settings.store.data_dir) if args.session is not None else None
    conversation = conversations.find_or_create(args.session) if conversations else None
    history = conversations.load(conversation.conversation_id).turns if conversations and conversation else []
    from assistant.dates import days_between

    days = days_between(args.since, args.until)
    reply = _assistant(settings).respond(args.question, history, days=days).result
    if reply.kind == "clarification":
        raise InvalidInput(reply.text)
    if conversations and conversation:
        conversations.append_turn(conversation.conversation_id, ChatTurn(role="user", content=args.question))
        conversations.append_turn(conversation.conversation_id, reply.to_chat_turn())
    cited = {citation.n for citation in reply.citations}
    if args.json:
        _print_json(
            {
                "question": args.question,
                "kind": reply.kind,
                "answer": reply.text,
                "citations": [c.model_dump() for c in reply.citations],
                "unsupported": reply.unsupported,
                "refused": reply.refused,
                "outcome": reply.outcome.value,
                "reason": reply.reason.value,
                "notices": reply.notices,
                "sources": [s.model_dump(exclude={"text"}) for s in reply.sources],
                "model": reply.model,
                "session": args.session,
            }
        )
        return EXIT_OK
    print(reply.text)
    listed = [s for s in reply.sources if s.n in cited]
    if listed:
        print("\nSources:\n" + _source_lines(listed))
    if reply.unsupported:
        print(
            "\nNot found in the sources (check before relying on it):\n"
            + "\n".join(f"- {u}" for u in reply.unsupported)
        )
    for notice in reply.notices:
        print(f"note: {notice}", file=sys.stderr)
    return EXIT_OK


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    summary = _assistant(settings).summarize(args.paper)
    if args.json:
        _print_json(summary)
        return EXIT_OK
    print(f"{summary.title} [{summary.paper_id}]\n\n{summary.summary}")
    for notice in summary.notices:
        print(f"note: {notice}", file=sys.stderr)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.features.compare import MAX_PAPERS, MIN_PAPERS, comparison_markdown

    if not MIN_PAPERS <= len(args.papers) <= MAX_PAPERS:
        raise InvalidInput(f"compare takes {MIN_PAPERS} to {MAX_PAPERS} papers, got {len(args.papers)}")
    assistant = _assistant(settings)
    papers = [assistant.paper(name) for name in args.papers]
    if len({paper.paper_id for paper in papers}) < len(papers):
        raise InvalidInput("the same paper was named twice: " + "; ".join(p.title for p in papers))
    comparison = assistant.compare([paper.paper_id for paper in papers])
    if args.json:
        _print_json(comparison)
        return EXIT_OK
    print(comparison_markdown(comparison))
    print("\n" + "\n".join(f"[{n}] {p.title} [{p.paper_id}]" for n, p in enumerate(comparison.papers, start=1)))
    for notice in comparison.notices:
        print(f"note: {notice}", file=sys.stderr)
    return EXIT_OK


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from assistant.atom import digest_atom
    from assistant.dates import days_between, span_text, week_of
    from assistant.features.digest import digest_markdown

    days = week_of(args.week) if args.week else days_between(args.day, args.day)
    assistant = _assistant(settings)
    digest = assistant.digest(days=days)
    papers = {paper.paper_id: paper for paper in assistant.papers()}
    if args.atom:
        try:
            Path(args.atom).write_text(digest_atom(digest, papers, days=days), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write the Atom feed to {args.atom}: {exc.strerror or exc}") from exc
    if args.json:
        payload = digest.model_dump(mode="json")
        payload["days"] = days.model_dump(mode="json") if days is not None else None
        _print_json(payload)
        return EXIT_OK
    if not digest.themes:
        if days is not None:
            print(f"no paper in the collection was listed {span_text(days)}", file=sys.stderr)
        else:
            print("no papers in the collection yet: run `paper-assistant ingest --sample`", file=sys.stderr)
    print(digest_markdown(digest, {paper_id: paper.title for paper_id, paper in papers.items()}))
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from assistant.evaluation import evaluate, format_report

    def show_progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\revaluating {done}/{total}" + ("\n" if done >= total else ""))
            sys.stderr.flush()

    report = evaluate(
        Path(args.file),
        assistant=None if args.retrieval_only else _assistant(settings),
        settings=settings,
        retrieval_only=args.retrieval_only,
        k=args.k,
        progress=show_progress,
    )
    if args.json:
        _print_json(report)
    else:
        print(format_report(report))
    return EXIT_OK


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.llm import LOCAL_MODELS
    from assistant.llm.local import LocalModelReport, gguf_path, local_model

    models_dir = settings.store.models_dir
    if args.prepare:
        name = args.prepare if "/" in args.prepare else f"local/{args.prepare}"
        chosen = local_model(name)
        if chosen is None:
            raise InvalidInput(f"{args.prepare!r} is not a local model: see `paper-assistant models`")
        path = gguf_path(
            chosen, models_dir, _byte_progress(f"preparing {chosen.model_string}"), allow_download=args.download
        )
        print(f"{chosen.model_string}: verified, {path}", file=sys.stderr)
    reports = [
        LocalModelReport.of(model, settings.llm, models_dir, default=DEFAULT_LOCAL_MODEL)
        for model in LOCAL_MODELS.values()
    ]
    if args.json:
        _print_json({"models": [report.model_dump(mode="json") for report in reports]})
        return EXIT_OK
    for report in reports:
        state = (
            "verified"
            if report.verified
            else "assembled"
            if report.assembled
            else "installed"
            if report.installed
            else "not installed"
        )
        speed = (
            f"reads {report.speed.read_tokens_per_s:.0f} tok/s, writes {report.speed.write_tokens_per_s:.1f} tok/s here"
            if report.speed
            else "speed not measured yet"
        )
        default = " (default)" if report.default else ""
        print(f"{report.model}{default}: {report.description}; {state}; {speed}")
        if report.install_command:
            print(f"  install: {report.install_command}")
    return EXIT_OK


def _byte_progress(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width if total == 0 else int(width * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done / 1e6:.0f}/{total / 1e6:.0f} MB")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def app_options(address: str, port: int) -> list[str]:
    """Streamlit options of `.streamlit/config.toml`, given on the command line as well: Streamlit
    reads that file from the working directory only, and the app must behave the same from anywhere
    (localhost only, no tracebacks shown, no file watcher)."""
    options = {
        "server.address": address,
        "server.port": str(port),
        "server.headless": "true",
        "server.runOnSave": "false",
        "server.fileWatcherType": "none",
        "server.maxUploadSize": "50",
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "viewer",
        "client.showErrorDetails": "type",
        "theme.base": "light",
    }
    return [part for name, value in options.items() for part in (f"--{name}", value)]


APP_STOP_GRACE_S = 10.0
"""How long Streamlit has to stop after SIGTERM before it is killed (it stops in about a second)."""


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def run_until_stopped(command: Sequence[str], env: dict[str, str]) -> int:
    """Run ``command`` as a child and wait for it; SIGTERM, SIGHUP or SIGINT to this process
    stops the child too (SIGTERM, then SIGKILL after APP_STOP_GRACE_S), so killing
    `paper-assistant app` never leaves Streamlit serving on its own."""
    import signal
    import subprocess

    stopping = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in stopping}
    process = subprocess.Popen(list(command), env=env)
    try:
        return process.wait()
    except (_Stopped, KeyboardInterrupt) as stop:
        signum = stop.signum if isinstance(stop, _Stopped) else signal.SIGINT
        for signum_ in stopping:
            signal.signal(signum_, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(APP_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print("stopped", file=sys.stderr)
        return 128 + signum
    finally:
        for signum_, handler in previous.items():
            signal.signal(signum_, handler)


def cmd_app(args: argparse.Namespace, settings: Settings) -> int:
    import os
    from pathlib import Path

    app_file = Path(__file__).resolve().parents[1] / "streamlit_app.py"
    if not app_file.is_file():
        raise InvalidInput(f"the app is not beside the package ({app_file}); install with `pip install -e .`")
    env = dict(os.environ)
    # The app builds its own Settings from the environment: pass the command-line choices on.
    for field, value in (
        ("STORE_DIR", settings.store.store_dir),
        ("CHROMA_URL", settings.store.chroma_url_str),
        ("COLLECTION", settings.store.collection),
        ("MODEL", settings.llm.model),
    ):
        if value is not None:
            env[f"ASSISTANT_{field}"] = str(value)
    command = [sys.executable, "-m", "streamlit", "run", str(app_file), *app_options(args.address, args.port)]
    print(f"Paper Assistant on http://{args.address}:{args.port} (Ctrl+C to stop)", file=sys.stderr)
    return run_until_stopped(command, env)


# --- serve: the OpenAI-compatible HTTP API (assistant/api.py) ---------------------------------
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import ipaddress
    import socket

    from assistant.api import TOKEN_ENV, serve
    from assistant.api.app import LOOPBACK_NAMES

    try:
        family = socket.AF_INET6 if ":" in args.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((args.address, args.port))
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {args.address}:{args.port} ({exc.strerror or exc}); pick another --port or --address"
        ) from exc
    try:
        loopback = args.address == "localhost" or ipaddress.ip_address(args.address).is_loopback
    except ValueError:
        loopback = False
    if not loopback and settings.server.token is None:
        print(
            f"warning: serving on {args.address} without {TOKEN_ENV}: anyone who can reach it can use it",
            file=sys.stderr,
        )
    store = _open_store(settings)
    host = f"[{args.address}]" if ":" in args.address else args.address
    print(
        f"Paper Assistant API on http://{host}:{args.port}/v1, model 'paper-assistant' (Ctrl+C to stop)",
        file=sys.stderr,
    )
    if not loopback:
        names = sorted({*settings.server.allowed_hosts, *args.allowed_host} - LOOPBACK_NAMES)
        print(
            "answering to IP addresses and localhost"
            + (f", and to {', '.join(names)}" if names else "; add the names clients use with --allowed-host NAME"),
            file=sys.stderr,
        )
    serve(settings, address=args.address, port=args.port, store=store, allowed_hosts=args.allowed_host)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "app": cmd_app,
    "models": cmd_models,
    "serve": cmd_serve,
    "eval": cmd_eval,
    "ingest": cmd_ingest,
    "papers": cmd_papers,
    "update": cmd_update,
    "search": cmd_search,
    "ask": cmd_ask,
    "summarize": cmd_summarize,
    "compare": cmd_compare,
    "digest": cmd_digest,
}


EXIT_PIPE_CLOSED = 141
"""As a shell reports a command killed by SIGPIPE (`yes | head` exits 141): the reader left early."""


def _pipe_closed() -> int:
    """The reader of stdout (`| head`) has gone: stop quietly, as Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere, not to a traceback at exit
    except (OSError, ValueError):
        pass
    return EXIT_PIPE_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code == 0 else EXIT_BAD_INPUT
    try:
        code = COMMANDS[args.command](args, settings_from(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit after main() has returned
        return code
    except BrokenPipeError:
        return _pipe_closed()
    except (AssistantError, IngestionError, ValueError) as exc:
        report = describe(exc)
        print(f"error: {report.message}", file=sys.stderr)
        return report.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A bug, not something the user did: one line, and the traceback on request.
        if os.environ.get(DEBUG_VARIABLE):
            traceback.print_exc()
        report = describe(exc)
        print(f"error: {report.message} (set {DEBUG_VARIABLE}=1 to see where)", file=sys.stderr)
        return report.exit_code
