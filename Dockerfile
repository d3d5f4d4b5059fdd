# The inferfleet operator image. Build: docker build --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t inferfleet:0.1.0 .
# (This project's own machines have no Docker engine; the image is built by users and release CI.)
#
# The base is pinned by digest, so a rebuild gets the same Python and Debian layers until the pin is
# moved on purpose.  Refresh it (docs/operations.md, "The image"):
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
# (or `crane digest python:3.11-slim`), replace the digest below, rebuild, run the tests on the image.
# Another base (a mirror, a hardened Python 3.11 image): --build-arg PYTHON_IMAGE=<image>@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# Dependencies come from uv.lock, exactly and hash-checked: the runtime set only (no dev extra), the
# same versions the tests ran against.  uv is the version scripts/env.sh pins.  The licence and the
# SBOM of that set (CycloneDX, the same export as scripts/sbom) go to /usr/local/share/doc/inferfleet/.
FROM ${PYTHON_IMAGE} AS build
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md LICENSE ./
RUN uv export --quiet --frozen --no-dev --no-emit-project --format requirements-txt --output-file requirements.txt \
 && pip install --no-cache-dir --prefix=/install --require-hashes -r requirements.txt \
 && mkdir -p /install/share/doc/inferfleet \
 && cp LICENSE /install/share/doc/inferfleet/LICENSE \
 && uv export --quiet --frozen --no-dev --preview-features sbom-export --format cyclonedx1.5 --output-file /install/share/doc/inferfleet/sbom.cdx.json
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install --no-deps .

FROM ${PYTHON_IMAGE}
# the commit `inferfleet version` reports (INFERFLEET_GIT_COMMIT) and the image's revision label
ARG GIT_COMMIT=""
LABEL org.opencontainers.image.title="inferfleet" \
      org.opencontainers.image.description="Kubernetes operator for heterogeneous AI inference fleets" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /install /usr/local
# Non-root, read-only root filesystem friendly: no writes outside /tmp.
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 INFERFLEET_GIT_COMMIT="${GIT_COMMIT}"
EXPOSE 8080 8081
ENTRYPOINT ["inferfleet"]
CMD ["run"]
