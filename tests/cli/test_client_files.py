"""Files over HTTP from the client: the API key goes only to the endpoint's own origin — never to
a presigned S3 URL, another port, or wherever a redirect points — and an artifact is saved only
when its bytes are what the listing says. Real HTTP servers on loopback record what arrives."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from mycli_magic.client import ApiClient
from mycli_magic.config import Endpoint
from mycli_magic.downloads import download
from mycli_magic.errors import ApiRequestError, MycliError

KEY = "sk-test-0123456789abcdef"


class Recorder(http.server.ThreadingHTTPServer):
    """Answers every request from `routes` (path → (status, headers, body)) and records it."""

    def __init__(self):
        self.seen: list[tuple[str, str, dict, bytes]] = []
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        self.server.seen.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}, body))
        status, headers, payload = self.server.routes.get(path, (404, {}, b'{"error": "no such thing"}'))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def servers():
    started = [Recorder(), Recorder()]  # the endpoint, and "S3" elsewhere
    yield started
    for srv in started:
        srv.shutdown()
        srv.server_close()


def client_for(endpoint: Recorder) -> ApiClient:
    return ApiClient(Endpoint(url=endpoint.origin + "/execute", api_key=KEY, profile="t"))


def test_a_local_path_gets_the_key_and_a_presigned_url_elsewhere_never_does(servers, tmp_path):
    endpoint, s3 = servers
    endpoint.routes["/uploads/up-1"] = (200, {}, b"{}")
    s3.routes["/bucket/uploads/up-2"] = (200, {}, b"")
    body = tmp_path / "inputs.tar.gz"
    body.write_bytes(b"x" * 1000)
    client = client_for(endpoint)
    client.put_file({"url": "/uploads/up-1", "method": "PUT", "headers": {}}, body, 1000)
    client.put_file({"url": s3.origin + "/bucket/uploads/up-2?X-Amz-Signature=abc", "method": "PUT",
                     "headers": {"x-amz-checksum-sha256": "c2hh"}}, body, 1000)
    (_, path, local_headers, local_body), = endpoint.seen
    (_, s3_path, s3_headers, s3_body), = s3.seen
    assert path == "/uploads/up-1" and local_headers["x-api-key"] == KEY and local_body == b"x" * 1000
    assert s3_path == "/bucket/uploads/up-2" and "x-api-key" not in s3_headers and s3_body == b"x" * 1000
    assert s3_headers["x-amz-checksum-sha256"] == "c2hh" and s3_headers["content-length"] == "1000"


def test_bytes_in_memory_are_put_as_they_are_with_the_same_key_rule(servers):
    """The local-changes archive is already bytes: it is sent without a temporary file."""
    endpoint, s3 = servers
    endpoint.routes["/uploads/up-3"] = (200, {}, b"{}")
    s3.routes["/bucket/uploads/up-4"] = (200, {}, b"")
    archive = bytes(range(256)) * 4
    client = client_for(endpoint)
    client.put_file({"url": "/uploads/up-3", "headers": {}}, archive, len(archive))
    client.put_file({"url": s3.origin + "/bucket/uploads/up-4?X-Amz-Signature=abc", "headers": {}}, archive, len(archive))
    (method, _, local_headers, local_body), = endpoint.seen
    (_, _, s3_headers, s3_body), = s3.seen
    assert method == "PUT" and local_headers["x-api-key"] == KEY and local_body == archive
    assert "x-api-key" not in s3_headers and s3_body == archive and s3_headers["content-length"] == str(len(archive))


@pytest.mark.parametrize("other", ["port", "host", "scheme"])
def test_the_same_host_on_another_port_or_scheme_is_another_origin(servers, other):
    endpoint, _ = servers
    client = client_for(endpoint)
    port = endpoint.server_address[1]
    url = {"port": f"http://127.0.0.1:{port + 1}/x", "host": f"http://localhost:{port}/x",
           "scheme": f"https://127.0.0.1:{port}/x"}[other]
    assert client.same_origin(f"http://127.0.0.1:{port}/artifacts/a/b")
    assert not client.same_origin(url)


def test_a_redirect_from_the_endpoint_never_carries_the_key_along(servers, tmp_path):
    endpoint, elsewhere = servers
    endpoint.routes["/artifacts/abc/plot.svg"] = (302, {"Location": elsewhere.origin + "/stolen"}, b"")
    elsewhere.routes["/stolen"] = (200, {}, b"<svg/>")
    with client_for(endpoint).open_file("/artifacts/abc/plot.svg") as stream:
        assert stream.read() == b"<svg/>"
    assert endpoint.seen[0][2]["x-api-key"] == KEY
    assert "x-api-key" not in elsewhere.seen[0][2]


def test_the_json_api_does_not_carry_the_key_along_a_redirect_either(servers):
    endpoint, elsewhere = servers
    endpoint.routes["/execute"] = (302, {"Location": elsewhere.origin + "/stolen"}, b"")
    elsewhere.routes["/stolen"] = (200, {"Content-Type": "application/json"}, b'{"executions": []}')
    client_for(endpoint).list()
    assert endpoint.seen[0][2]["x-api-key"] == KEY
    assert "x-api-key" not in elsewhere.seen[0][2]


def test_s3s_refusal_is_one_line_naming_its_code(servers, tmp_path):
    endpoint, s3 = servers
    s3.routes["/b/k"] = (403, {}, b"<?xml version='1.0'?><Error><Code>SignatureDoesNotMatch</Code>"
                                  b"<Message>The request signature we calculated does not match</Message></Error>")
    body = tmp_path / "f"
    body.write_bytes(b"1")
    with pytest.raises(ApiRequestError) as caught:
        client_for(endpoint).put_file({"url": s3.origin + "/b/k", "headers": {}}, body, 1)
    assert "SignatureDoesNotMatch" in str(caught.value) and "15 minutes" in str(caught.value)
    assert "\n" not in str(caught.value)


def _listing(origin: str, files: dict[str, bytes], lie: str | None = None) -> dict:
    return {"execution_id": "abc", "complete": True, "skipped": [], "artifacts": [
        {"name": name, "size": len(data), "url": f"{origin}/a/{name}",
         "sha256": hashlib.sha256(b"other" if name == lie else data).hexdigest()} for name, data in files.items()]}


def test_download_saves_each_file_under_its_name_and_twice_fetches_nothing_new(servers, tmp_path):
    endpoint, s3 = servers
    files = {"plot.svg": b"<svg/>", "out/rows.csv": b"a,b\n1,2\n"}
    for name, data in files.items():
        s3.routes[f"/a/{name}"] = (200, {}, data)
    client = client_for(endpoint)
    saved = download(client, _listing(s3.origin, files), tmp_path / "dl")
    assert [p.relative_to(tmp_path / "dl").as_posix() for p in saved.paths] == ["plot.svg", "out/rows.csv"]
    assert (tmp_path / "dl" / "out" / "rows.csv").read_bytes() == files["out/rows.csv"]
    assert all("x-api-key" not in headers for _, _, headers, _ in s3.seen)
    again = download(client, _listing(s3.origin, files), tmp_path / "dl")
    assert again.paths == saved.paths and again.fetched_bytes == 0 and len(s3.seen) == 2


def test_a_file_whose_bytes_differ_from_the_listing_is_not_saved(servers, tmp_path):
    endpoint, s3 = servers
    s3.routes["/a/model.bin"] = (200, {}, b"tampered")
    with pytest.raises(MycliError, match="did not match"):
        download(client_for(endpoint), _listing(s3.origin, {"model.bin": b"tampered"}, lie="model.bin"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_name_leaving_the_directory_refuses_the_whole_download_before_any_write(servers, tmp_path):
    endpoint, s3 = servers
    s3.routes["/a/ok.txt"] = (200, {}, b"ok")
    listing = _listing(s3.origin, {"ok.txt": b"ok", "../evil": b"x"})
    with pytest.raises(MycliError, match="would not stay inside"):
        download(client_for(endpoint), listing, tmp_path / "dl")
    assert not (tmp_path / "dl").exists() and not (tmp_path / "evil").exists() and s3.seen == []


def test_a_size_limit_leaves_out_what_would_go_over_it(servers, tmp_path):
    endpoint, s3 = servers
    files = {"small.txt": b"1" * 10, "big.bin": b"2" * 100, "tiny.txt": b"3"}
    for name, data in files.items():
        s3.routes[f"/a/{name}"] = (200, {}, data)
    saved = download(client_for(endpoint), _listing(s3.origin, files), tmp_path, limit=50)
    assert [p.name for p in saved.paths] == ["small.txt", "tiny.txt"] and saved.left_out == ["big.bin"]
    assert not (tmp_path / "big.bin").exists()
