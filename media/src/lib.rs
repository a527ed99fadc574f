//! Video encoding over GStreamer: the encode pipeline, encoder choice, poster and preview.
