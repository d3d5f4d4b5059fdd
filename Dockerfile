# The inferfleet operator image. Build: docker build -t inferfleet:0.1.0 .
# (This project's own machines have no Docker engine; the image is built by users and release CI.)
# Dependencies come from uv.lock, exactly and hash-checked: the runtime set only (no dev extra), the
# same versions the tests ran against.  uv is the version scripts/env.sh pins.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv export --quiet --frozen --no-dev --no-emit-project --format requirements-txt --output-file requirements.txt \
 && pip install --no-cache-dir --prefix=/install --require-hashes -r requirements.txt
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install --no-deps .

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
