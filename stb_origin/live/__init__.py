"""Live TV: channels from SRT/UDP/RTMP/HLS feeds into encrypted live HLS."""
