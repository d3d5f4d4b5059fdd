# The inferfleet operator image. Build: docker build -t inferfleet:0.1.0 .
# (This project's own machines have no Docker engine; the image is built by users and release CI.)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="inferfleet" \
      org.opencontainers.image.description="Kubernetes operator for heterogeneous AI inference fleets" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /install /usr/local
# Non-root, read-only root filesystem friendly: no writes outside /tmp.
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 8080 8081
ENTRYPOINT ["inferfleet"]
CMD ["run"]
