"""The recommendations API: ``GET /recommendations?userId=…|itemId=…[&numResults=N]``.

``app.lambda_handler`` hands API Gateway's event (REST, proxy integration, payload v1) to
:func:`reco_api.handler.handle_with`, which has :mod:`reco_api.edge` read it into one typed
request; the rest is plain logic that takes that request and its clients as arguments.
Nothing is read or imported at import time beyond the standard library.
"""
