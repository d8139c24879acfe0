"""Markdown files to download: a comparison, a digest."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.features.compare import short_title, table_markdown
from assistant.features.digest import digest_markdown
from assistant.schema import Comparison, Digest, Paper, Source


def _sources_markdown(sources: Sequence[Source]) -> str:
    lines = [f"{s.n}. [{s.title}]({s.link})" if s.link else f"{s.n}. {s.title}" for s in sources]
    return "\n".join(["## Sources", "", *lines])


def comparison_export(comparison: Comparison, sources: Sequence[Source]) -> str:
    """A comparison as a Markdown file: the cited table, the narrative, notes and the sources."""
    title = " vs ".join(short_title(paper.title) for paper in comparison.papers)
    parts = [f"# Comparison: {title}", table_markdown(comparison.papers, comparison.aspects), comparison.narrative]
    if comparison.unsupported:
        parts.append("Not supported by the abstracts: " + " ".join(comparison.unsupported))
    parts += [f"_{notice}_" for notice in comparison.notices]
    parts.append(_sources_markdown(sources))
    return "\n\n".join(parts) + "\n"


def digest_export(digest: Digest, papers: Sequence[Paper]) -> str:
    """A digest as a Markdown file: one section per theme, its cited paragraph and its papers."""
    by_id = {paper.paper_id: paper for paper in papers}
    titles = {
        paper_id: f"[{paper.title}]({paper.link})" if paper.link else paper.title for paper_id, paper in by_id.items()
    }
    count = sum(len(theme.paper_ids) for theme in digest.themes)
    header = f"# Digest of {count} papers in {len(digest.themes)} themes"
    return f"{header}\n\n{digest_markdown(digest, titles)}\n"


def theme_sources(paper_ids: Sequence[str], papers: Sequence[Paper]) -> list[Source]:
    """A theme's papers numbered as its paragraph cites them."""
    by_id = {paper.paper_id: paper for paper in papers}
    return [
        Source(n=n, paper_id=pid, title=by_id[pid].title, text=by_id[pid].abstract, link=by_id[pid].link)
        for n, pid in enumerate(paper_ids, start=1)
        if pid in by_id
    ]


_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def download_name(title: str, suffix: str = ".md") -> str:
    """A portable file name for an export."""
    stem = _FILE_NAME_UNSAFE.sub("-", title).strip("-.")[:60] or "export"
    return f"{stem}{suffix}"
