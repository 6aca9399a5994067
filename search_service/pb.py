"""The generated protobuf and gRPC modules (generated on first import when missing or stale)."""

from search_service.protos import ensure_generated

ensure_generated()

from search_service._gen.learn.search.v1 import search_pb2, search_pb2_grpc  # noqa: E402

__all__ = ["search_pb2", "search_pb2_grpc"]
