"""A tiny OpenAI-compatible ``/v1/embeddings`` server around the project's own embedder.

Used by ``benchmarks/peers.py`` so that PaperQA2 (in its own environment) embeds with exactly
the all-MiniLM-L6-v2 int8 model that Paper Assistant uses, offline, instead of OpenAI's
``text-embedding-3-small``. Runs in the project's environment::

    python -m benchmarks.peers_embed_server --port 8766      # 127.0.0.1 only

``POST /v1/embeddings`` takes ``{"input": str | [str], "model": ..., "encoding_format": "float" | "base64"}``
and answers as OpenAI does (the openai client asks for base64 unless told otherwise).
``GET /v1/models`` and ``GET /health`` answer for readiness checks. Vectors are unit length.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

MODEL_NAME = "minilm"
MAX_BODY_BYTES = 16 * 1024 * 1024


def _make_handler(embed: Any, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "peers-embed/1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/health", "/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY_BYTES:
                self._send(400, {"error": {"message": "missing or oversized body"}})
                return
            try:
                request = json.loads(self.rfile.read(length))
                texts = request["input"]
                if isinstance(texts, str):
                    texts = [texts]
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    raise ValueError("input must be a string or a list of strings (token arrays are not supported)")
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"error": {"message": f"bad request: {exc}"}})
                return
            with lock:  # one forward pass at a time: the benchmark's cores are few
                vectors = embed([t if t.strip() else " " for t in texts])
            as_base64 = request.get("encoding_format") == "base64"
            data = []
            for index, vector in enumerate(vectors):
                array = np.asarray(vector, dtype=np.float32)
                embedding: Any = base64.b64encode(array.tobytes()).decode("ascii") if as_base64 else array.tolist()
                data.append({"object": "embedding", "index": index, "embedding": embedding})
            tokens = sum(len(t.split()) for t in texts)
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": request.get("model") or MODEL_NAME,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="loopback only; the benchmark never needs more")
    args = parser.parse_args(argv)

    from assistant.embeddings import build_embedder

    embedder = build_embedder()
    embed = getattr(embedder, "embed_query", None) or embedder
    embed(["warm up"])  # load the ONNX graph before the first request
    server = ThreadingHTTPServer((args.host, args.port), _make_handler(embed, threading.Lock()))
    identity = getattr(embedder, "identity", MODEL_NAME)
    identity = identity() if callable(identity) else identity
    print(f"embeddings ({identity}) on http://{args.host}:{args.port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
