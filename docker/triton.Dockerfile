# Triton Inference Server on NVIDIA's image, with the pipeline model's Python dependencies.
#   docker build -f docker/triton.Dockerfile -t visualizr-triton .        (from the repository root)
# The release pins TensorRT: export.Dockerfile must use the same NGC release, so the engines it builds
# deserialise here (the pipeline model checks, see docs/ARCHITECTURE.md "TensorRT engines").
ARG NGC_RELEASE=25.01
FROM nvcr.io/nvidia/tritonserver:${NGC_RELEASE}-py3

# The pipeline model (Python backend, the image's Python 3.12) imports visualizr and its `pipeline` extra:
# torch==2.13.0 from PyPI is a CUDA build, so the loop keeps its tensors on the GPU.
WORKDIR /opt/visualizr
COPY pyproject.toml setup.py README.md ./
COPY visualizr ./visualizr
COPY frontend ./frontend
COPY export ./export
RUN pip install --no-cache-dir --break-system-packages "./[pipeline]"

# Ports as in visualizr/settings.py: HTTP 8000, gRPC 8001, metrics 8003 (the API owns 8002).
EXPOSE 8000 8001 8003
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/v2/health/ready', timeout=4)"]
CMD ["tritonserver", "--model-repository=/models", "--model-control-mode=explicit", "--load-model=*", \
     "--http-port=8000", "--grpc-port=8001", "--metrics-port=8003", \
     "--cuda-memory-pool-byte-size=0:268435456", "--exit-timeout-secs=30"]
