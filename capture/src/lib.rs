//! Camera sources (V4L2, GStreamer, stills folder, test pattern) producing `Frame`s.
