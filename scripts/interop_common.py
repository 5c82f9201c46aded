"""Helpers shared by the interoperability scripts: cosine similarity, a pass/fail tally, and
Python stubs generated from the repository's .proto files."""

import math
import sys
import tempfile

from grpc_tools import protoc

MIN_COSINE = 0.9999


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


class Checks:
    """Prints each check and ends with the `N passed, N failed` line."""

    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed += 1
            print(f"FAIL {what} {detail}")

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


def stubs(proto_root):
    """Generates the `aki.embed.v1` and `tei.v1` stubs into a temporary directory on the path."""
    out = tempfile.mkdtemp()
    code = protoc.main(["protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}",
                        "aki/embed/v1/embed.proto", "tei/v1/tei.proto"])
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, out)
