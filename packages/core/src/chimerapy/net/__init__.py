"""The wire and the transports: data-plane frames, ZeroMQ, shared memory, JPEG, control messages
and cluster authentication."""
