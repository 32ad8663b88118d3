"""The dev kit: what tests, the sandbox and the benches need to drive the functions locally.

- :mod:`devkit.events`: real-shaped Kinesis, API Gateway (REST, payload v1), SQS and S3 events.
- :mod:`devkit.context`: a Lambda context object whose remaining time runs down (or is fixed).
- :mod:`devkit.loader`: ``functions/<name>/app.py`` imported by path (both functions have an
  ``app`` module).
- :mod:`devkit.aws`: a fake AWS environment (dummy credentials, no developer config, the SDK's
  own endpoint variables) and moto's server on a free loopback port.
- :mod:`devkit.fixtures`: the pytest fixtures (emulators, sample data, moto server, fake AWS
  environment), registered by ``tests/conftest.py``.
- :mod:`devkit.processes`: reading a child process's output with a deadline.

This module imports nothing heavy: import the submodule you need.
"""
