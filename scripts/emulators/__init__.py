"""Local stand-ins for Amazon Personalize and Segment, spoken to over real HTTP on 127.0.0.1.

Development tools only: never packaged into a Lambda. See ``scripts/emulators/README.md``.
"""
