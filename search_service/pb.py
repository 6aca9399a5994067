"""The generated protobuf and gRPC modules.

Importing never generates code (an import that writes into the installed tree races between
processes and fails on a read-only image): `learn protos` generates it, and `make install` and the
image build run that. Missing or stale code fails here with the command that fixes it.
"""

from search_service.protos import GEN_ROOT, is_stale

if is_stale():
    raise ImportError(
        f"the generated gRPC code in {GEN_ROOT} is missing or older than protos/: "
        "run `learn protos` (make install runs it)"
    )

from search_service._gen.learn.search.v1 import search_pb2, search_pb2_grpc

__all__ = ["search_pb2", "search_pb2_grpc"]
