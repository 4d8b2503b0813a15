"""tq's gRPC API, version 1: code generated from ``proto/tq/v1/tq.proto``.

``tq_pb2`` holds the messages and ``tq_pb2_grpc`` the ``Tq`` service's stub
and servicer registration. Both need the ``grpc`` extra (``pip install
tq[grpc]``); ``scripts/gen-proto`` regenerates them.
"""
