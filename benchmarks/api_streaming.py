"""How a streamed chat reply ends over the HTTP API: how long until the first words, until the
model's last word, until the checked reply, and how often the checked text differs.

    python -m benchmarks.api_streaming                                  # the bundled local model
    python -m benchmarks.api_streaming --model fake/quote               # the quoting demo model
    python -m benchmarks.api_streaming --eval ../shared/eval/dev.jsonl --kinds lookup,summary --limit 10

It starts the real server (``assistant.api.create_app`` on uvicorn, loopback) over the sample
collection (ingested once into ``--data-dir``) and streams each question of the eval file
with httpx, one at a time. Per question: seconds to the first content chunk, to the last piece
the model wrote (before any appended checked text), and to the chunk with ``finish_reason``
(the checked reply); whether the checked text differs from the streamed one (whitespace
aside), and whether it was replaced wholesale (the abstracts' sentences shown instead, or a
refusal after the model wrote). The streams are ``stream_unchecked`` ones, so "first" is
when live streaming shows the first words and "checked" is when the default stream (which
waits for the check) shows its text.

Measured (local/smollm2-135m-instruct, the 30 dev questions, one run on a busy 2-core
machine, load average 6-7, so absolute seconds are inflated):

    median seconds to the first words        12.0
    median seconds to the checked reply      16.4
    median seconds of checking after the model's last word   0.62
    checked text differs from the stream   27 of 30
      of which replaced wholesale          21

Per reply, the wait for the check over the first words was 4.1 s at the median (0.2 to
23.7 s); the first words came at 70 % of the time to the checked reply. Hence the API's
default: a stream sends the checked text (assistant/api.py explains).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from assistant.api import REPLACED_NOTE, create_app  # noqa: E402
from assistant.settings import DEFAULT_LOCAL_MODEL, SAMPLE_COLLECTION, Settings  # noqa: E402
from assistant.store import PaperStore  # noqa: E402
from ingestion.pipeline import ingest_paths  # noqa: E402

DEFAULT_KINDS = "lookup,numeric,multi,unanswerable,summary,compare"


def stream_one(client: httpx.Client, question: str) -> dict[str, Any]:
    # Live: the model's words as written; "checked" is when a default (buffered) stream shows its text.
    payload = {
        "model": "paper-assistant",
        "messages": [{"role": "user", "content": question}],
        "stream": True,
        "stream_unchecked": True,
    }
    start = time.perf_counter()
    first = last_model_piece = finished = None
    pieces: list[str] = []
    extras: dict[str, Any] = {}
    error = ""
    with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        if response.status_code != 200:
            return {"error": response.read().decode()[:200], "seconds": time.perf_counter() - start}
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            now = time.perf_counter() - start
            data = json.loads(line.removeprefix("data: "))
            if "error" in data:
                error = data["error"]["message"]
                continue
            choice = data["choices"][0] if data["choices"] else {}
            content = choice.get("delta", {}).get("content")
            if content:
                first = first if first is not None else now
                if REPLACED_NOTE not in content:
                    last_model_piece = now
                    pieces.append(content)
            if choice.get("finish_reason"):
                finished = now
                extras = data
    notices = " ".join(extras.get("notices", []))
    return {
        "first": first,
        "last_piece": last_model_piece,
        "checked": finished,
        "kind": extras.get("kind", "?"),
        "changed": bool(extras.get("streamed_text_replaced")),
        "replaced": "shown instead" in notices
        or "rebuilt from the table" in notices
        or (extras.get("refused", False) and bool(pieces) and extras.get("final_text", "") != "".join(pieces)),
        "streamed_chars": len("".join(pieces)),
        "final_chars": len(extras.get("final_text", "")),
        "error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", type=Path, default=ROOT / "tests" / "data" / "dev.jsonl")
    parser.add_argument("--model", default=DEFAULT_LOCAL_MODEL)
    parser.add_argument("--kinds", default=DEFAULT_KINDS, help=f"question kinds to run (default {DEFAULT_KINDS})")
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions (0: all)")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/paper-assistant-bench-api"))
    args = parser.parse_args()

    settings = Settings(data_dir=args.data_dir, model=args.model)
    store = PaperStore(settings)
    if store.count_chunks() == 0:
        print("ingesting the sample collection ...", file=sys.stderr)
        ingest_paths([SAMPLE_COLLECTION], store=store)
    kinds = set(args.kinds.split(","))
    rows = [json.loads(line) for line in args.eval.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if row["kind"] in kinds]
    rows = rows[: args.limit] if args.limit else rows

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, store=store, token=""), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    results = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        stream_one(client, "What is aTLAS?")  # warm-up: loads the model and the embedder
        for row in rows:
            result = stream_one(client, row["question"])
            result["id"], result["set_kind"] = row["id"], row["kind"]
            results.append(result)

            def fmt(value: float | None) -> str:
                return "-" if value is None else f"{value:.1f}"

            print(
                f"{row['id']:>4} {row['kind']:<12} {result.get('kind', '?'):<13} first {fmt(result.get('first')):>5} s  "
                f"last piece {fmt(result.get('last_piece')):>5} s  checked {fmt(result.get('checked')):>5} s  "
                f"changed {'yes' if result.get('changed') else 'no ':<3}  replaced {'yes' if result.get('replaced') else 'no'}"
                + (f"  error: {result['error']}" if result.get("error") else ""),
                flush=True,
            )
    server.should_exit = True
    thread.join(10)

    done = [r for r in results if r.get("checked") is not None]
    if not done:
        return
    firsts = [r["first"] for r in done if r["first"] is not None]
    checked = [r["checked"] for r in done]
    checks = [r["checked"] - r["last_piece"] for r in done if r["last_piece"] is not None]
    print(f"\nmodel {args.model}, {len(done)} replies on {len(rows)} questions")
    print(f"median seconds to the first words      {statistics.median(firsts):6.1f}")
    print(f"median seconds to the checked reply    {statistics.median(checked):6.1f}")
    print(f"median seconds of checking after the model's last word {statistics.median(checks):6.2f}")
    print(f"checked text differs from the stream   {sum(r['changed'] for r in done)} of {len(done)}")
    print(f"  of which replaced wholesale          {sum(r['replaced'] for r in done)}")


if __name__ == "__main__":
    main()
