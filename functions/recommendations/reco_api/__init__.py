"""The recommendations API: ``GET /recommendations?userId=…|itemId=…[&numResults=N]``.

``app.lambda_handler`` adapts API Gateway (REST, proxy integration, payload v1) events to
:func:`reco_api.handler.handle`; the rest is plain logic that takes its clients as arguments.
Nothing is read or imported at import time beyond the standard library.
"""
