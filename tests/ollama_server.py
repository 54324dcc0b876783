"""An in-test HTTP server that follows Ollama's documented /api/chat and /api/tags contract.

No Ollama server installs on these machines, so the Ollama backend is tested against this one. It answers with
text from the real embedded model: /api/chat streams NDJSON lines ({"message": {...}, "done": false} ... a last
line with "done": true) and honours ``format`` (a JSON schema) and ``options`` (temperature, num_predict).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from voicebot.llm.base import ChatMessage


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class FakeOllama:
    def __init__(self, chat_model, model_name: str):
        self.chat_model = chat_model
        self.model_name = model_name
        self.requests: list[dict] = []
        self.fail_status: int | None = None  # set: /api/chat answers this status with an error, as a failing server
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, line: dict) -> None:
                data = (json.dumps(line) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_GET(self):
                if self.path != "/api/tags":
                    return self._json(404, {"error": "not found"})
                self._json(200, {"models": [{
                    "name": server.model_name, "model": server.model_name, "modified_at": _now(),
                    "size": 1117320768, "digest": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                    "details": {"format": "gguf", "family": "qwen2", "parameter_size": "1.5B",
                                "quantization_level": "Q4_K_M"},
                }]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, **body})
                if self.path != "/api/chat":
                    return self._json(404, {"error": "not found"})
                if server.fail_status is not None:
                    return self._json(server.fail_status, {"error": "llama runner process has terminated: signal: "
                                                                    "killed"})
                if body.get("model") != server.model_name:
                    return self._json(404, {"error": f"model '{body.get('model')}' not found"})
                messages = [ChatMessage(m["role"], m["content"]) for m in body["messages"]]
                options = body.get("options") or {}
                schema = body.get("format") if isinstance(body.get("format"), dict) else None
                pieces = server.chat_model.stream(messages, json_schema=schema,
                                                  max_tokens=options.get("num_predict"),
                                                  temperature=options.get("temperature"))
                if body.get("stream") is False:
                    text = "".join(pieces)
                    return self._json(200, {"model": server.model_name, "created_at": _now(), "done": True,
                                            "message": {"role": "assistant", "content": text}})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                count = 0
                for piece in pieces:
                    count += 1
                    self._chunk({"model": server.model_name, "created_at": _now(),
                                 "message": {"role": "assistant", "content": piece}, "done": False})
                self._chunk({"model": server.model_name, "created_at": _now(),
                             "message": {"role": "assistant", "content": ""}, "done": True,
                             "done_reason": "stop", "eval_count": count})
                self.wfile.write(b"0\r\n\r\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeOllama":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
