"""The Python SDK example of the API reference (``## SDK Example``), read from the spec at test time.

``spec_sdk_example()`` extracts the python block from ``../shared/spec/visualizr-api.md`` (beside the repo, as in
CI) and falls back to ``FALLBACK``, a verbatim copy of that block, when the spec is not there.
"""

from __future__ import annotations

import re
from pathlib import Path

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "visualizr-api.md"


USAGE_MARKER = "# Usage"


# Verbatim copy of the spec's ```python block (trailing whitespace included).
FALLBACK = '''import requests
import time

class VisualizrClient:
    def __init__(self, base_url="http://localhost:8002", api_key=None):
        self.base_url = base_url
        self.api_key = api_key
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {api_key}" if api_key else None
        }
    
    def generate_video(self, prompt, **kwargs):
        """Generate video from text prompt"""
        data = {"prompt": prompt, **kwargs}
        response = requests.post(
            f"{self.base_url}/api/v1/generate/video",
            headers=self.headers,
            json=data
        )
        return response.json()
    
    def get_status(self, request_id):
        """Get generation status"""
        response = requests.get(
            f"{self.base_url}/api/v1/generate/status/{request_id}",
            headers=self.headers
        )
        return response.json()
    
    def wait_for_completion(self, request_id, timeout=300):
        """Wait for generation to complete"""
        start_time = time.time()
        while time.time() - start_time < timeout:
            status = self.get_status(request_id)
            if status["status"] == "completed":
                return status
            elif status["status"] == "failed":
                raise Exception(f"Generation failed: {status['error']['message']}")
            time.sleep(2)
        raise TimeoutError("Generation timed out")

# Usage
client = VisualizrClient(api_key="your-api-key")
result = client.generate_video("A beautiful sunset over mountains")
final_result = client.wait_for_completion(result["request_id"])
print(f"Video URL: {final_result['result']['video_url']}")
'''  # noqa: W293 - verbatim: the spec's blank lines carry indentation


def extract(markdown: str) -> str:
    """The first ```python block after the "### Python SDK" heading."""
    section = markdown[markdown.index("### Python SDK") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    if match is None:
        raise ValueError("no ```python block under '### Python SDK'")
    return match.group(1)


def spec_sdk_example() -> tuple[str, str]:
    """(source, origin): the spec's example from the spec file if present, else the stored copy."""
    if SPEC.is_file():
        return extract(SPEC.read_text()), str(SPEC)
    return FALLBACK, "tests/test_sdk_spec_example.py:FALLBACK"


def split_example(source: str) -> tuple[str, str]:
    """(class definition, usage): the usage part starts at the "# Usage" comment."""
    head, marker, usage = source.partition(USAGE_MARKER)
    if not marker:
        raise ValueError("the SDK example has no '# Usage' part")
    return head, marker + usage
