"""autoenc download, offline: a local HTTP server in a thread serves a generated Tiny ImageNet zip."""

import hashlib
import http.server
import io
import socket
import stat
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import make_tiny_imagenet, run_cli
from typer.testing import CliRunner

from autoenc_cli.training import download as dl
from autoenc_cli.cli.app import app
from autoenc_cli.data.splits import is_tiny_imagenet
from autoenc_cli.errors import AutoencError


def zip_folder(folder: Path) -> bytes:
    """The folder as a zip whose entries start with the folder's name, as the official zip does."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder.parent).as_posix())
    return buf.getvalue()


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory) -> bytes:
    root = make_tiny_imagenet(tmp_path_factory.mktemp("src") / "tiny-imagenet-200", classes=2, per_class=3, val=2, corrupt=False)
    return zip_folder(root)


class Server:
    """Serves `files` by path; honours Range; `cut_after` closes the first response after that many bytes."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(dict(self.headers))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if outer.cut_after is not None:
                    body, outer.cut_after = body[:outer.cut_after], None
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.slow
def test_download_checks_md5_extracts_and_a_second_run_does_nothing(tmp_path, server, dataset_zip):
    server.files["/tiny.zip"] = dataset_zip
    dest = tmp_path / "tiny-imagenet-200"
    proc = run_cli("download", dest, "--url", server.url("/tiny.zip"), "--md5", md5(dataset_zip))
    assert is_tiny_imagenet(dest) and len(list(dest.glob("train/*/images/*.JPEG"))) == 6
    assert "ready" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-imagenet-200"]  # no zip, no .part, no temp folder
    again = run_cli("download", dest, "--url", server.url("/tiny.zip"))
    assert "already a complete" in again.stderr and len(server.requests) == 1


def test_a_transfer_cut_mid_stream_resumes_with_range(tmp_path, server, dataset_zip):
    server.files["/tiny.zip"] = dataset_zip
    cut = len(dataset_zip) // 3
    server.cut_after = cut
    dest = tmp_path / "data"
    with pytest.raises(AutoencError, match="run the same command again to resume"):  # one attempt: the user reruns
        dl.download_dataset(dest, server.url("/tiny.zip"), md5(dataset_zip), attempts=1)
    part = tmp_path / "data.zip.part"
    assert part.stat().st_size == cut and not dest.exists()
    assert dl.download_dataset(dest, server.url("/tiny.zip"), md5(dataset_zip))
    assert server.requests[-1]["Range"] == f"bytes={cut}-"
    assert is_tiny_imagenet(dest) and not part.exists()


def test_the_cli_resumes_by_itself_after_a_dropped_connection(tmp_path, server, dataset_zip):
    server.files["/tiny.zip"] = dataset_zip
    server.cut_after = 5000
    proc = run_cli("download", tmp_path / "d", "--url", server.url("/tiny.zip"), "--md5", md5(dataset_zip))
    assert "connection lost" in proc.stderr and "resuming" in proc.stderr
    assert [r.get("Range") for r in server.requests] == [None, "bytes=5000-"]
    assert is_tiny_imagenet(tmp_path / "d")


def test_an_md5_in_upper_case_is_the_same_checksum(tmp_path, dataset_zip):
    """Checksums are printed in either case; --md5 takes both (hexdigest gives lower case)."""
    archive = tmp_path / "tiny.zip"
    archive.write_bytes(dataset_zip)
    dest = tmp_path / "tiny-imagenet-200"
    proc = run_cli("download", dest, "--url", archive, "--md5", md5(dataset_zip).upper(), check=False)
    assert proc.returncode == 0 and is_tiny_imagenet(dest), proc.stderr
    assert "mismatch" not in proc.stderr


def test_a_wrong_checksum_leaves_nothing_behind(tmp_path, server, dataset_zip):
    server.files["/tiny.zip"] = dataset_zip
    proc = run_cli("download", tmp_path / "d", "--url", server.url("/tiny.zip"), "--md5", "0" * 32, check=False)
    assert proc.returncode == 1 and "checksum mismatch" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and proc.stderr.count("error") == 1
    assert tree(tmp_path) == set()


@pytest.mark.slow
def test_http_404_and_no_server_are_one_line_each(tmp_path, server):
    proc = run_cli("download", tmp_path / "d", "--url", server.url("/missing.zip"), check=False)
    assert proc.returncode == 1 and "HTTP 404" in proc.stderr and "Traceback" not in proc.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli("download", tmp_path / "d", "--url", f"http://127.0.0.1:{port}/x.zip", check=False)
    assert proc.returncode == 1 and "cannot reach 127.0.0.1" in proc.stderr and "Traceback" not in proc.stderr
    assert tree(tmp_path) == set()


def evil_zip(kind: str, absolute: Path) -> bytes:
    """An archive with one unsafe entry; kind "absolute" names `absolute` (a path in the test's own folder)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("tiny-imagenet-200/train/n0/images/a.JPEG", b"fine")
        if kind == "dotdot":
            zf.writestr("tiny-imagenet-200/../../escaped.txt", b"owned")
        elif kind == "absolute":
            zf.writestr(zipfile.ZipInfo(str(absolute)), b"owned")
        else:
            link = zipfile.ZipInfo("tiny-imagenet-200/link")
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(link, "/etc")
        zf.writestr("tiny-imagenet-200/zz.txt", b"after the bad entry")
    return buf.getvalue()


@pytest.mark.parametrize("kind,problem", [("dotdot", "'..'"), ("absolute", "absolute path"), ("symlink", "symbolic link")])
def test_unsafe_archives_are_refused_and_nothing_is_written(tmp_path, server, kind, problem):
    archive = tmp_path / "evil.zip"
    escaped = tmp_path / "escaped.txt"  # where the absolute entry points: inside this test's folder, checked below
    archive.write_bytes(evil_zip(kind, escaped))
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli("download", work / "d", "--url", archive, check=False)
    assert proc.returncode == 1 and "refused" in proc.stderr and problem in proc.stderr, proc.stderr
    assert tree(tmp_path) == {"evil.zip", "work"} and not escaped.exists()
    server.files["/evil.zip"] = evil_zip(kind, escaped)  # the same over HTTP: the refused download is removed too
    with pytest.raises(AutoencError, match=problem):
        dl.download_dataset(work / "d", server.url("/evil.zip"), None)
    assert tree(tmp_path) == {"evil.zip", "work"}


def test_too_little_disk_is_refused_before_writing(tmp_path, dataset_zip, monkeypatch):
    archive = tmp_path / "t.zip"
    archive.write_bytes(dataset_zip)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, used=10**9, free=100))
    with pytest.raises(AutoencError, match="not enough free disk"):
        dl.download_dataset(tmp_path / "d", str(archive), None)
    assert tree(tmp_path) == {"t.zip"}


def test_a_folder_that_is_not_a_dataset_is_left_alone(tmp_path, dataset_zip):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("keep me")
    archive = tmp_path / "t.zip"
    archive.write_bytes(dataset_zip)
    with pytest.raises(AutoencError, match="not a Tiny ImageNet folder"):
        dl.download_dataset(tmp_path / "d", str(archive), md5(dataset_zip))
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep me"


def test_train_download_fetches_a_missing_dataset_then_trains(tmp_path, server, dataset_zip, monkeypatch):
    server.files["/tiny.zip"] = dataset_zip
    monkeypatch.setattr(dl, "OFFICIAL_URL", server.url("/tiny.zip"))
    monkeypatch.setattr(dl, "OFFICIAL_MD5", md5(dataset_zip))
    dest = tmp_path / "tiny-imagenet-200"
    result = CliRunner().invoke(app, ["train", str(dest), "--download", "--out", str(tmp_path / "run"),
                                      "--max-steps", "2", "--batch-size", "2", "--warmup-steps", "1"])
    assert result.exit_code == 0, result.output
    assert is_tiny_imagenet(dest) and (tmp_path / "run" / "model.safetensors").is_file()
