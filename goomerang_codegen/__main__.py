"""``python -m goomerang_codegen``: the protoc plugin (``protoc-gen-goomerang``); ``--help`` says how protoc runs it."""

import sys

from .plugin import main

sys.exit(main())
