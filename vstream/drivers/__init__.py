"""The three ways to run the stages: a file (pipeline), a live feed (live, segments) and an archive (archive, split) — in-process or on Ray actors (actors)."""
