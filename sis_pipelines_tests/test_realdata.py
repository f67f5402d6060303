"""`make realdata`: the GPL bundles are fetched from their pinned source, and a file whose
SHA-256 is not the pinned one is refused and not kept."""

import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .realdata import fetch_moodle


@pytest.fixture
def served(tmp_path):
    """A loopback web server over a folder (GitHub's raw files, as far as the fetch can tell)."""
    root = tmp_path / "upstream"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_pinned_bundles_are_fetched_and_a_changed_one_is_refused(served, tmp_path):
    root, url = served
    (root / "a.zip").write_bytes(b"bundle a")
    (root / "b.zip").write_bytes(b"bundle b, changed upstream")
    pins = {
        "a.zip": hashlib.sha256(b"bundle a").hexdigest(),
        "b.zip": hashlib.sha256(b"bundle b").hexdigest(),
    }
    target = tmp_path / "fetched"
    with pytest.raises(ValueError, match=r"b\.zip: SHA-256 .* pinned"):
        fetch_moodle(target, url, pins)
    assert (target / "a.zip").read_bytes() == b"bundle a"
    assert sorted(p.name for p in target.iterdir()) == ["a.zip"]  # nothing of b, not even staged
    (root / "b.zip").write_bytes(b"bundle b")
    assert [p.name for p in fetch_moodle(target, url, pins)] == ["a.zip", "b.zip"]
