"""The wire and the transports: data-plane frames, ZeroMQ, shared memory, JPEG, control messages,
cluster authentication, the data plane's session keys (``keys``) and private endpoints
(``endpoints``)."""
