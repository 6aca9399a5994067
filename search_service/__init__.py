"""The gRPC search service: servicer, query building, keyword/vector backends, auth, health."""
