"""Builds a TUF repository with the PyPI `tuf` package (python-tuf), the reference
implementation, for enigm-ota's interoperability test: metadata python-tuf writes must verify
with Enigm's client.

    python make_repository.py OUT_DIR NOW_UNIX_SECONDS

Writes OUT_DIR/metadata/{1.root.json, 2.root.json, 1.targets.json, 1.snapshot.json,
timestamp.json} (consistent snapshots, a root rotation from v1 to v2 with new root and targets
keys) and OUT_DIR/targets/os/<sha256>.enigm-os.img, one OS image carrying Enigm's release
fields and a Release-Signing payload signature made with a key pinned in the root. Prints a JSON
summary (target name, length, sha256, release fields) on stdout.
"""

import datetime
import hashlib
import json
import os
import sys

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

RELEASE_FIELD = "x-enigm-release-signing"


def main() -> None:
    out = sys.argv[1]
    now = datetime.datetime.fromtimestamp(int(sys.argv[2]), tz=datetime.timezone.utc)
    expires = (now + datetime.timedelta(days=30)).replace(microsecond=0)
    metadata_dir = os.path.join(out, "metadata")
    os.makedirs(os.path.join(out, "targets", "os"), exist_ok=True)
    os.makedirs(metadata_dir, exist_ok=True)

    old_root = CryptoSigner.generate_ed25519()
    new_root = CryptoSigner.generate_ecdsa()
    targets_key = CryptoSigner.generate_ecdsa()
    snapshot_key = CryptoSigner.generate_ed25519()
    timestamp_key = CryptoSigner.generate_ed25519()
    release_key = CryptoSigner.generate_ed25519()

    def release_signing() -> dict:
        key = release_key.public_key
        return {"keys": {key.keyid: key.to_dict()}, "threshold": 1}

    root = Root(expires=expires, unrecognized_fields={RELEASE_FIELD: release_signing()})
    root.add_key(old_root.public_key, "root")
    root.add_key(targets_key.public_key, "targets")
    root.add_key(snapshot_key.public_key, "snapshot")
    root.add_key(timestamp_key.public_key, "timestamp")
    first = Metadata(root)
    first.sign(old_root)
    write(first, metadata_dir, "1.root.json")

    # Root rotation: version 2 replaces the root key; signed by the old and the new one.
    root.version = 2
    root.revoke_key(old_root.public_key.keyid, "root")
    root.add_key(new_root.public_key, "root")
    second = Metadata(root)
    second.sign(old_root, append=True)
    second.sign(new_root, append=True)
    write(second, metadata_dir, "2.root.json")

    image = b"an Enigm OS image made by python-tuf's interoperability test\n" * 64
    sha256 = hashlib.sha256(image).hexdigest()
    name = "os/enigm-os.img"
    release = {
        "kind": "os-image",
        "release_version": "2026.11.2",
        "rollback_index": 9,
        "channel": "stable",
        "hardware": ["enigm-sim"],
        "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    statement = {
        "_type": "enigm-release-payload",
        "name": name,
        "length": len(image),
        "sha256": sha256,
        **release,
    }
    payload_signature = release_key.sign(encode_canonical(statement).encode())
    target = TargetFile.from_data(name, image, ["sha256"])
    target.unrecognized_fields["custom"] = {
        "enigm": {
            **release,
            "payload_signatures": [
                {"keyid": payload_signature.keyid, "sig": payload_signature.signature}
            ],
        }
    }
    with open(os.path.join(out, "targets", "os", f"{sha256}.enigm-os.img"), "wb") as file:
        file.write(image)

    targets = Targets(expires=expires)
    targets.targets[name] = target
    targets_md = Metadata(targets)
    targets_md.sign(targets_key)
    write(targets_md, metadata_dir, "1.targets.json")

    snapshot = Snapshot(expires=expires)
    snapshot.meta["targets.json"] = MetaFile(version=1)
    snapshot_md = Metadata(snapshot)
    snapshot_md.sign(snapshot_key)
    write(snapshot_md, metadata_dir, "1.snapshot.json")

    timestamp = Timestamp(expires=expires)
    timestamp.snapshot_meta = MetaFile(version=1)
    timestamp_md = Metadata(timestamp)
    timestamp_md.sign(timestamp_key)
    write(timestamp_md, metadata_dir, "timestamp.json")

    json.dump(
        {"name": name, "length": len(image), "sha256": sha256, **release},
        sys.stdout,
    )


def write(metadata: Metadata, directory: str, name: str) -> None:
    metadata.to_file(os.path.join(directory, name), JSONSerializer(compact=False))


if __name__ == "__main__":
    main()
