"""A soak of ``paper-assistant serve``: many clients, a hostile mix, for a bounded time.

    python -m benchmarks.api_soak                      # 5 minutes, 6 clients
    python -m benchmarks.api_soak --seconds 60 --clients 4

It ingests the sample collection into a fresh data folder, starts a loopback model server
(OpenAI's chat API, streamed, quoting its first source, 20 ms a word) and the real
``paper-assistant serve`` as a subprocess whose model is that server (``openai/soak`` with
``ASSISTANT_API_BASE``) and whose variant ``paper-assistant:fake/quote`` is the quoting
demo model. Then ``--clients`` threads, each with its own httpx client, pick requests at
random (seeded) until the time is up:

- whole and streamed chats (checked and ``stream_unchecked``), on either model; comparisons
  on the demo model;
- streams the client drops after the first event (the server must stop the reply);
- uploads of small JSON Lines files: new papers, and papers uploaded before (must merge);
- oversize bodies: a 9 MB chunked chat body and a 60 MB declared upload (413);
- refusals: a cross-site upload (403), a foreign Host (403), a lone surrogate (400);
- searches and listings.

Each kind has the statuses it should get; anything else is counted as unexpected. Printed:
requests served, p50/p95 latency per kind and overall, responses by status, unexpected ones,
the server's RSS (sampled each second: after warm-up, peak, at the end) and its peak RSS
(VmHWM). Afterwards the store is opened and checked: every paper has chunks, no title or
id is there twice, every uploaded paper is there once. This is a benchmark, not a test: it
prints numbers and exits 1 only when the store is inconsistent or a 5xx was seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "How does aTLAS combine task vectors?",
    "How does ZIP-FIT select training data?",
    "How does MUSCLE reduce negative flips?",
    "What data does Bonito generate?",
    "Which paper selects training data by compressing text?",
    "federated learning with differential privacy",
    "summarize the paper on Rep-MTL",
]
COMPARISONS = ["compare ZIP-FIT and Bonito", "Compare MUSCLE and aTLAS"]
MODELS = ["paper-assistant", "paper-assistant:fake/quote"]
KINDS = {  # kind: (weight, statuses it should get)
    "chat": (30, {200}),
    "stream": (20, {200}),
    "compare": (4, {200}),
    "disconnect": (10, {200}),
    "upload_new": (6, {200}),
    "upload_again": (4, {200}),
    "chunked_oversize": (3, {413}),
    "declared_oversize": (3, {413}),
    "cross_site": (3, {403}),
    "foreign_host": (3, {403}),
    "surrogate": (3, {400}),
    "search": (7, {200}),
    "papers": (4, {200}),
}
_SOURCE = re.compile(r'<source n="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)


# --- a loopback model server ------------------------------------------------------------------
def model_reply(messages: list[dict[str, Any]]) -> str:
    prompt = "\n".join(str(m.get("content") or "") for m in messages)
    found = _SOURCE.search(prompt)
    if not found:
        return "NOT COVERED"
    first = re.split(r"(?<=[.!?])\s+", " ".join(found.group(2).split()))[0]
    return f"{first.rstrip('.')} [{found.group(1)}]."


class ModelHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        text = model_reply(body.get("messages") or [])
        base = {"id": "soak", "created": int(time.time()), "model": body.get("model", "soak")}
        if not body.get("stream"):
            payload = json.dumps(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": len(text.split()), "total_tokens": 100},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for word in text.split(" "):
                time.sleep(0.02)
                delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
                chunk = {**base, "object": "chat.completion.chunk", "choices": [delta]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            done = {"index": 0, "delta": {}, "finish_reason": "stop"}
            self.wfile.write(
                f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', 'choices': [done]})}\n\n".encode()
            )
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:
            pass  # the assistant stopped reading (its client left)
        self.close_connection = True

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def model_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ModelHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


# --- the server under test ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --- clients ------------------------------------------------------------------------------------
class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[int] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.uploaded: set[str] = set()

    def record(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.statuses[status] += 1
            if status not in KINDS[kind][1]:
                self.unexpected[f"{kind} {status}"] += 1


def paper_line(title: str) -> str:
    abstract = (
        f"We study {title.lower()} for soak testing. The method caches compressed summaries of chunked "
        "abstracts and evaluates retrieval latency under concurrent load on commodity hardware."
    )
    return json.dumps({"title": title, "abstract": abstract, "authors": ["Soak Tester"]}) + "\n"


def one_request(kind: str, http: httpx.Client, url: str, rng: random.Random, tally: Tally, client: int) -> int:
    model = rng.choice(MODELS)
    question = rng.choice(QUESTIONS)
    chat = {"model": model, "messages": [{"role": "user", "content": question}]}
    if kind == "chat":
        return http.post("/v1/chat/completions", json=chat).status_code
    if kind == "compare":
        payload = {"model": MODELS[1], "messages": [{"role": "user", "content": rng.choice(COMPARISONS)}]}
        return http.post("/v1/chat/completions", json=payload).status_code
    if kind in ("stream", "disconnect"):
        payload = {**chat, "stream": True, "stream_unchecked": rng.random() < 0.5}
        leave_after = rng.randint(1, 4)  # the role chunk, or a few words in
        with http.stream("POST", "/v1/chat/completions", json=payload) as response:
            events = 0
            for line in response.iter_lines():
                events += line.startswith("data: ")
                if kind == "disconnect" and events >= leave_after:
                    break
                if line.startswith('data: {"error"'):
                    return 500 + int(json.loads(line[6:]).get("error", {}).get("code") == "internal")
            return response.status_code
    if kind in ("upload_new", "upload_again"):
        if kind == "upload_again" and tally.uploaded:
            with tally.lock:
                titles = rng.sample(sorted(tally.uploaded), min(2, len(tally.uploaded)))
        else:
            titles = [
                f"Soak paper {client}-{rng.randrange(10**9)} on cached retrieval" for _ in range(rng.randint(1, 3))
            ]
        body = "".join(paper_line(title) for title in titles)
        response = http.post("/v1/ingest", files={"files": ("soak.jsonl", body, "application/json")})
        if response.status_code == 200:
            with tally.lock:
                tally.uploaded.update(titles)
        return response.status_code
    if kind == "chunked_oversize":

        def pieces() -> Iterator[bytes]:
            yield b'{"model": "paper-assistant", "messages": [{"role": "user", "content": "'
            for _ in range(9):
                yield b"x" * (1024 * 1024)
            yield b'"}]}'

        try:
            return http.post(
                "/v1/chat/completions", content=pieces(), headers={"Content-Type": "application/json"}
            ).status_code
        except httpx.TransportError:
            return 413  # the server answered 413 and closed while the body was still going out
    if kind == "declared_oversize":
        head = (
            f"POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {60 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
        )
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(head.encode())
            reply = connection.recv(4096)
        return int(reply.split()[1]) if reply else 0
    if kind == "cross_site":
        headers = {"Origin": "http://localhost:18300", "Sec-Fetch-Site": "same-site"}
        files = {"files": ("x.jsonl", paper_line("Cross-site paper that must not land"), "application/json")}
        return http.post("/v1/ingest", files=files, headers=headers).status_code
    if kind == "foreign_host":
        return http.get("/v1/papers", headers={"Host": "evil.example"}).status_code
    if kind == "surrogate":
        body = json.dumps({"model": "paper-assistant", "messages": [{"role": "user", "content": "What is \ud800?"}]})
        return http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}).status_code
    if kind == "search":
        return http.get("/v1/search", params={"q": question, "k": 5}).status_code
    return http.get("/v1/papers").status_code


def client_loop(
    client: int, url: str, deadline: float, seed: int, tally: Tally, without: frozenset[str] = frozenset()
) -> None:
    rng = random.Random(seed * 1000 + client)
    names, weights = zip(*((kind, weight) for kind, (weight, _) in KINDS.items() if kind not in without), strict=True)
    with httpx.Client(base_url=url, timeout=180) as http:
        while time.monotonic() < deadline:
            kind = rng.choices(names, weights)[0]
            started = time.monotonic()
            try:
                status = one_request(kind, http, url, rng, tally, client)
            except httpx.HTTPError as exc:
                print(f"client {client}: {kind} failed: {exc!r}", file=sys.stderr)
                status = 0
            tally.record(kind, status, time.monotonic() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="how long the clients run (default 300)")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (default 6)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--without",
        action="append",
        choices=sorted(KINDS),
        default=[],
        help="leave out a kind of request (repeatable): --without upload_new keeps the collection's size, so "
        "the server's memory shows what requests alone leave behind",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="api-soak-"))
    env = {name: value for name, value in os.environ.items() if not name.startswith("ASSISTANT_")}
    env |= {"ASSISTANT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-soak-unused"}
    print(f"ingesting the sample into {data_dir} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "assistant", "ingest", "--sample"], env=env, check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tally = Tally()
    with model_server() as model_base:
        env |= {
            "ASSISTANT_MODEL": "openai/soak",
            "ASSISTANT_API_BASE": model_base,
            "ASSISTANT_FALLBACK_MODELS": "fake/quote",
        }
        log = (data_dir / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        try:
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"the server exited: {(data_dir / 'serve.log').read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
            samples: list[tuple[float, int]] = []
            started = time.monotonic()
            deadline = started + args.seconds
            threads = [
                threading.Thread(
                    target=client_loop, args=(n, url, deadline, args.seed, tally, frozenset(args.without)), daemon=True
                )
                for n in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                samples.append((time.monotonic() - started, rss_kb(server.pid)))
                time.sleep(1.0)
            peak_kb = rss_kb(server.pid, "VmHWM")
            listed = httpx.get(url + "/v1/papers", timeout=60).json()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()

    from assistant.settings import Settings
    from assistant.store import PaperStore

    stats = PaperStore(Settings(data_dir=data_dir)).list_papers()
    titles = Counter(" ".join(s.paper.title.lower().split()) for s in stats)
    ids = Counter(s.paper.paper_id for s in stats)
    problems = [f"no chunks: {s.paper.title}" for s in stats if s.chunks < 1]
    problems += [f"twice: {title}" for title, n in titles.items() if n > 1]
    problems += [f"id twice: {paper_id}" for paper_id, n in ids.items() if n > 1]
    problems += [f"lost: {title}" for title in tally.uploaded if titles[" ".join(title.lower().split())] != 1]
    problems += ["a cross-site upload landed"] if titles["cross-site paper that must not land"] else []
    if listed["total"] != len(stats):
        problems.append(f"the API listed {listed['total']} papers, the store holds {len(stats)}")

    every = [seconds for values in tally.latency.values() for seconds in values]
    served = len(every)
    print(f"\n{args.clients} clients for {args.seconds:.0f} s: {served} requests ({served / args.seconds:.1f}/s)")
    print(f"latency overall: p50 {percentile(every, 0.5):.2f} s, p95 {percentile(every, 0.95):.2f} s")
    print(f"{'kind':<18} {'n':>5} {'p50 s':>7} {'p95 s':>7}")
    for kind in KINDS:
        values = tally.latency.get(kind, [])
        print(f"{kind:<18} {len(values):>5} {percentile(values, 0.5):>7.2f} {percentile(values, 0.95):>7.2f}")
    print("responses by status: " + ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses.items())))
    print("unexpected: " + (", ".join(f"{key} x{n}" for key, n in tally.unexpected.items()) or "none"))
    warm = [kb for seconds, kb in samples if seconds >= min(30.0, args.seconds / 4)]
    if samples:
        print(
            f"server RSS: {warm[0] / 1024 if warm else 0:.0f} MB after warm-up, "
            f"{max(kb for _, kb in samples) / 1024:.0f} MB at most (sampled), {samples[-1][1] / 1024:.0f} MB at the end; "
            f"peak (VmHWM) {peak_kb / 1024:.0f} MB"
        )
        minutes = range(int(samples[-1][0] // 60) + 1)
        marks = [next(kb for seconds, kb in samples if seconds >= 60 * minute) for minute in minutes]
        print("server RSS at 0, 1, 2... minutes (MB): " + ", ".join(f"{kb / 1024:.0f}" for kb in marks))
        if len(warm) > 10:
            half = len(warm) // 2
            print(
                f"server RSS median, first half after warm-up: {statistics.median(warm[:half]) / 1024:.0f} MB; "
                f"second half: {statistics.median(warm[half:]) / 1024:.0f} MB"
            )
    print(
        f"store: {len(stats)} papers ({len(tally.uploaded)} uploaded during the soak, 46 sample), "
        + ("consistent: every paper has chunks, none twice, none lost" if not problems else "; ".join(problems[:10]))
    )
    five_xx = sum(n for code, n in tally.statuses.items() if code >= 500)
    print(f"5xx: {five_xx}")
    return 1 if problems or five_xx else 0


if __name__ == "__main__":
    raise SystemExit(main())
