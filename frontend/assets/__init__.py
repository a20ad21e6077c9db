"""Asset management: listing, describing and deleting generated videos, and serving their files (with HTTP
Range support) under ``/assets/video``.

An *asset* is a completed generation job whose MP4 is on disk. Its id is the file stem the generation service
writes (``video_<hex>`` for request ``video_req_<hex>``); its ``created_at`` is the job's ``completed_at`` (the
moment the files were written), as in the API reference's examples.
"""
