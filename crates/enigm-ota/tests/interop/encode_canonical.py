"""securesystemslib's canonical JSON of each value, for enigm-ota's differential test.

    python encode_canonical.py < values.json

values.json is a JSON list; prints one line per value: the hex of its canonical bytes (UTF-8).
"""

import json
import sys

from securesystemslib.formats import encode_canonical

for value in json.load(sys.stdin):
    print(encode_canonical(value).encode("utf-8").hex())
