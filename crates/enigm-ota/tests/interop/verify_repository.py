"""Verifies a TUF repository written by Enigm with the PyPI `tuf` package's client
(tuf.ngclient.Updater), for enigm-ota's interoperability test: metadata Enigm writes must
verify with the reference implementation.

    python verify_repository.py REPO_DIR WORK_DIR TARGET_NAME...

REPO_DIR has metadata/ and targets/ as Command serves or exports them; its metadata/1.root.json
is the trusted root. Each target is looked up, downloaded and checked (length and hashes) by
python-tuf; prints a JSON list of {name, length, custom} on stdout. Exits 1 with the error on
stderr when python-tuf refuses anything.
"""

import json
import os
import sys
from collections.abc import Iterator
from urllib.parse import urlparse

from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig
from tuf.api.exceptions import DownloadHTTPError


class DirectoryFetcher(FetcherInterface):
    """Serves `file://` URLs from the repository directory, as a mirror would."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = urlparse(url).path
        if not os.path.isfile(path):
            raise DownloadHTTPError(f"{path} not found", 404)
        with open(path, "rb") as file:
            while chunk := file.read(65536):
                yield chunk


def main() -> int:
    repo, work, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    metadata_dir = os.path.join(work, "metadata")
    targets_dir = os.path.join(work, "targets")
    os.makedirs(metadata_dir, exist_ok=True)
    os.makedirs(targets_dir, exist_ok=True)
    with open(os.path.join(repo, "metadata", "1.root.json"), "rb") as file:
        trusted_root = file.read()
    updater = Updater(
        metadata_dir,
        "file://" + os.path.abspath(os.path.join(repo, "metadata")) + "/",
        targets_dir,
        "file://" + os.path.abspath(os.path.join(repo, "targets")) + "/",
        fetcher=DirectoryFetcher(),
        config=UpdaterConfig(prefix_targets_with_hash=True),
        bootstrap=trusted_root,
    )
    try:
        updater.refresh()
        results = []
        for name in names:
            info = updater.get_targetinfo(name)
            if info is None:
                raise RuntimeError(f"target {name} not found")
            path = updater.download_target(info, os.path.join(targets_dir, name.replace("/", "_")))
            results.append({"name": name, "length": info.length, "custom": info.custom, "path": path})
    except Exception as error:  # noqa: BLE001 - any refusal is the answer
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
