"""`make sandbox`: the whole system on local stand-ins, the unmodified handlers included.

moto's server (Kinesis, SSM, SQS) runs as a child process; the Personalize and Segment
emulators, a local API gateway and a Kinesis event-source poller run in this process.
Run ``PYTHONPATH=scripts python -m sandbox --help``. See ``scripts/sandbox/README.md``.
"""
