"""Traits sync: Segment events from Kinesis → Personalize PutEvents → GetRecommendations per
user → purchased-item exclusion → one Segment identify per user through ``/v1/batch``.

The Lambda handler (``app.py``) only adapts; the logic here takes its clients as arguments.
"""
