"""protoc-gen-goomerang: typed stubs and handler bases from annotated protos."""
