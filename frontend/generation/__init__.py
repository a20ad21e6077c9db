"""Text-to-video generation: request validation, job queue and workers, Triton streaming, encoding, WebSocket
hub.
"""
