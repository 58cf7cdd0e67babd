"""The dashboard and management API: FastAPI app served by the engine, one module per concern.

``config`` (settings models) is light; the rest imports FastAPI and is loaded only when served.
"""
