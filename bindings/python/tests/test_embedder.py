"""knytt.Embedder against a loopback /v1/embeddings server in the test:
texts come back as the vectors the server computed, in input order."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import knytt

SEEN = []


def vec(text):
    """The server's embedding of @text: [len, first code point, 1.5]."""
    return [float(len(text)), float(ord(text[0]) if text else 0), 1.5]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append((self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") == "Bearer wrong":
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        inputs = body["input"]
        inputs = [inputs] if isinstance(inputs, str) else inputs
        data = [{"index": i, "embedding": vec(t)}
                for i, t in reversed(list(enumerate(inputs)))]
        out = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    SEEN.clear()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()
    t.join(5)


def test_embed_probe_dim(server):
    with knytt.Embedder(server, model="m1", api_key="k1",
                        timeout_ms=5000) as em:
        assert em.dim == 0
        assert em.probe() == 3 and em.dim == 3
        rows = em.embed(["shoe", "Zebra", "a"])
        assert [list(map(float, r)) for r in rows] == [
            vec("shoe"), vec("Zebra"), vec("a")]
        path, auth, body = SEEN[-1]
        assert path == "/v1/embeddings" and auth == "Bearer k1"
        assert body["model"] == "m1"
        assert len(em.embed([])) == 0
        with pytest.raises(knytt.EINVAL) as e:
            em.embed(["ok", "bad\0"])
        assert "texts[1]" in e.value.message


def test_embedder_errors(server):
    with knytt.Embedder(server, api_key="wrong", timeout_ms=5000) as em:
        with pytest.raises(knytt.EAUTH):
            em.probe()
    with pytest.raises(knytt.EINVAL):
        knytt.Embedder("ftp://127.0.0.1:1")
    with pytest.raises(knytt.EINVAL) as e:
        knytt.Embedder(server, model="m\0x")
    assert "model" in e.value.message
    with knytt.Embedder(server, dim=2, timeout_ms=5000) as em:
        with pytest.raises(knytt.EPROTO):
            em.embed(["x"])
