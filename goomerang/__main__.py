"""``python -m goomerang``: the ``goomerang`` command (generate, package, include-path).

``goomerang`` is a namespace package: besides this module it holds only what
protoc compiles from ``goomerang/options.proto`` (``goomerang.options_pb2``),
so that a project's own ``goomerang.*`` protos import beside it.
"""

from goomerang_codegen.cli import console

if __name__ == "__main__":
    console()
