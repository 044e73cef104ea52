#!/usr/bin/env python3
# shard_path.py MANIFEST_DIR PATH: the shard names on PATH's way from the
# top-level manifest to its leaf, one a line, top first, following the
# bins of docs/format/manifest.md ("Shards"): the first shard_bits[0] bits
# of SHA-256(path), then the next shard_bits[1], ... An independent reading
# of the format for the tests (stdlib only).
import hashlib, json, os, sys

d, path = sys.argv[1], sys.argv[2]
top = json.load(open(os.path.join(d, "manifest.json")))
bits = top["shard_bits"]
h = int.from_bytes(hashlib.sha256(path.encode()).digest(), "big")
pos, node = 0, top
for b in bits:
    i = (h >> (256 - pos - b)) & ((1 << b) - 1)
    pos += b
    name = node["shards"][i]
    print(name)
    node = json.load(open(os.path.join(d, "shards", name + ".json")))
