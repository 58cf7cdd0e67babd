"""Operations: watches and steers the engine from above (metrics, the sampler, alerts, the
dashboard and its management API). The engine never imports this package;
:func:`conduit.ops.attach.attach` joins an engine's observer and adds the services, before the
engine starts. Each module is loaded only when used (FastAPI and uvicorn only when served).
"""
