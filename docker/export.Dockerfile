# The export on NVIDIA's TensorRT image: ONNX files, then TensorRT engines built on the GPU it runs on.
#   docker build -f docker/export.Dockerfile -t visualizr-export .        (from the repository root)
# Same NGC release as triton.Dockerfile: the same TensorRT builds and loads the engines.
ARG NGC_RELEASE=25.01
FROM nvcr.io/nvidia/tensorrt:${NGC_RELEASE}-py3

# The image brings TensorRT's Python module; the `tensorrt` extra is not installed over it.
WORKDIR /opt/visualizr
COPY pyproject.toml setup.py README.md ./
COPY visualizr ./visualizr
COPY frontend ./frontend
COPY export ./export
RUN pip install --no-cache-dir --break-system-packages "./[pipeline]" \
    && python3 -c "import tensorrt; print('TensorRT', tensorrt.__version__)"

ENV VISUALIZR_MODEL_REPOSITORY=/models
# Up to date in seconds when nothing changed (build stamp + engine manifests vs this GPU and TensorRT).
ENTRYPOINT ["python3", "-m", "visualizr.export", "--backend", "tensorrt", "--repository", "/models"]
CMD ["--weights", "tiny"]
