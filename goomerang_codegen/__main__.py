"""``python -m goomerang_codegen``: the protoc plugin."""

from .plugin import main

main()
