"""Progress of an ingest, as one small event the command line and the app both render.

The pipeline calls its ``progress`` callback with an :class:`IngestProgress` once before the
first chunk is embedded, after every slice of chunks it embeds (about every 3 s on 2 cores)
and after every group it writes, so a 10,000-paper ingest of ~10 min is not silent.
The rates and the time left are computed from the event itself: whoever renders it needs no
clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field


class IngestProgress(BaseModel):
    """Where an ingest stands: papers and chunks written so far, chunks embedded, out of how many.

    ``papers_done`` and ``chunks_written`` count what is committed to the store (what a kill
    keeps); ``chunks_embedded`` runs ahead of them within a group and drives the fraction, the
    rate and the time left, so they move between writes.
    """

    papers_done: int = Field(ge=0, description="Papers whose every chunk has been embedded and written.")
    papers_total: int = Field(ge=0, description="Papers to embed in this ingest (unchanged ones are not counted).")
    chunks_written: int = Field(ge=0, description="Chunks written to the store.")
    chunks_embedded: int = Field(ge=0, description="Chunks embedded (written, or waiting for the rest of their group).")
    chunks_total: int = Field(ge=0)
    elapsed_s: float = Field(ge=0.0, description="Seconds since embedding started.")

    @property
    def fraction(self) -> float:
        """Share of the work done, by chunks embedded (what costs the time); 1.0 when there is nothing to do."""
        return min(1.0, self.chunks_embedded / self.chunks_total) if self.chunks_total else 1.0

    @property
    def finished(self) -> bool:
        return self.chunks_written >= self.chunks_total and self.papers_done >= self.papers_total

    @property
    def papers_per_s(self) -> float | None:
        """Papers' worth of work per second so far (papers in all x fraction / seconds); None before any."""
        if not self.chunks_embedded or self.elapsed_s <= 0:
            return None
        return self.papers_total * self.fraction / self.elapsed_s

    @property
    def seconds_left(self) -> float | None:
        """Time left at the rate so far; None before the first chunk is embedded."""
        if self.finished:
            return 0.0
        if not self.chunks_embedded or self.elapsed_s <= 0:
            return None
        return self.elapsed_s * (1.0 - self.fraction) / self.fraction

    def line(self) -> str:
        """One line for a person: ``1,234/9,872 papers, 2345/18789 chunks, 21.3 papers/s, 6 min 40 s left``.

        The counts are what is written; chunk counts carry no thousands separator (scripts read them).
        """
        parts = [
            f"{self.papers_done:,}/{self.papers_total:,} papers",
            f"{self.chunks_written}/{self.chunks_total} chunks",
        ]
        rate = self.papers_per_s
        if rate is not None:
            parts.append(f"{rate:.1f} papers/s")
        left = self.seconds_left
        if self.finished:
            parts.append(f"done in {duration(self.elapsed_s)}")
        elif left is not None:
            parts.append(f"{duration(left)} left")
        return ", ".join(parts)


def duration(seconds: float) -> str:
    """``42 s``, ``6 min 40 s``, ``1 h 02 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


ProgressCallback = Callable[[IngestProgress], None]
"""Called with where the ingest stands: once at the start, then after every embedded slice."""
