"""protoc-gen-goomerang: typed stubs and handler bases from annotated protos; the ``goomerang`` command."""

from goomerang_runtime._version import __version__ as __version__
