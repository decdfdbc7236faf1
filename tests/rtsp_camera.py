"""A camera-like RTSP server for the live tests: GStreamer's rtsp-server serving an MP4 clip.

Run with the system Python that has PyGObject (``/usr/bin/python3 tests/rtsp_camera.py CLIP PORT``).
Each client that pulls ``rtsp://127.0.0.1:PORT/cam`` gets the clip's H.264 from its first frame,
paced in real time like a camera, then end of stream. Prints ``ready`` once it listens.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main(clip: str, port: int) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    # No h264parse: qtdemux hands rtph264pay avc-format H.264, which it takes as it is.
    factory.set_launch(f'( filesrc location="{clip}" ! qtdemux ! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
