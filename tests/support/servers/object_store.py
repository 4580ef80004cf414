"""A real S3 server on 127.0.0.1: versitygw with its posix backend, each object a file under the store's root.

Built from the Go module proxy by scripts/servers/install-versitygw. The tests reach the bucket through the S3
API like any client; to damage a backup, a test edits the object's file under `root`, as bit rot would.
"""

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers.process import CACHE, ServerProcess, free_ports, installed

MODULE = Path(__file__).resolve().parents[3] / "scripts" / "servers" / "go" / "versitygw" / "go.mod"
ACCESS_KEY = "backup-test-access-0001"
SECRET_KEY = "backup-test-secret-0002"
REGION = "us-east-1"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
"""x-amz-content-sha256 of an empty body, which versitygw requires on every signed request."""


def versitygw() -> Path:
    """The binary scripts/servers/install-versitygw built, at the version its wrapper module pins."""
    match = re.search(r"github.com/versity/versitygw v([0-9.]+)", MODULE.read_text())
    assert match, f"no versitygw version in {MODULE}"
    return installed(CACHE / f"versitygw-{match[1]}" / "versitygw", "versitygw (scripts/servers/install-versitygw)")


@dataclass
class ObjectStoreNode:
    """A running S3 server, its credentials and the directory its objects are stored in."""

    server: ServerProcess
    port: int
    root: Path

    @property
    def endpoint(self) -> str:
        """The S3 API's URL."""
        return f"http://127.0.0.1:{self.port}"

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket with a SigV4-signed PUT (curl signs it), as any S3 client would."""
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail-with-body",
                "-X",
                "PUT",
                "--aws-sigv4",
                f"aws:amz:{REGION}:s3",
                "--user",
                f"{ACCESS_KEY}:{SECRET_KEY}",
                "-H",
                f"x-amz-content-sha256: {EMPTY_SHA256}",
                f"{self.endpoint}/{bucket}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, f"creating bucket {bucket} failed: {done.stdout}{done.stderr}"

    def objects(self, bucket: str) -> list[Path]:
        """Every object's file in a bucket (the posix backend's layout: <root>/<bucket>/<key>)."""
        return sorted(path for path in (self.root / bucket).rglob("*") if path.is_file())


def start_object_store(workdir: Path) -> ObjectStoreNode:
    """Start versitygw over an empty directory, with one root account."""
    binary = versitygw()
    root = workdir / "objects"
    root.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    env = {"ROOT_ACCESS_KEY": ACCESS_KEY, "ROOT_SECRET_KEY": SECRET_KEY}
    argv = [str(binary), "--port", f"127.0.0.1:{port}", "--region", REGION, "posix", str(root)]
    server = ServerProcess("versitygw", argv, port, workdir / "versitygw.log", env=env).start()
    return ObjectStoreNode(server, port, root)
