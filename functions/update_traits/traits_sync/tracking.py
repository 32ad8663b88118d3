"""Segment's HTTP Tracking API client, shared with the batch write-back: see
:mod:`common.tracking` (re-exported here)."""

from __future__ import annotations

from common.tracking import TrackingClient, TrackingError

__all__ = ["TrackingClient", "TrackingError"]
